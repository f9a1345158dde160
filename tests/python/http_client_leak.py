"""Issue 16: an http.client connection leaked from a named function.

A keep-alive HTTP server in this process hangs up after each response (as a server with a short
idle timeout does). `leak_connection` keeps its HTTPConnection and never closes it: its socket
sits in CLOSE_WAIT. `fetch_and_close` does the same request and closes: no finding. The script
waits (bounded) until the leaked socket sees the hang-up, past FDGUARD_GRACE_MS, then leaves with
os._exit so the exit report sees the sockets as they are.

Prints one JSON line: {"ok": true, "leaked": [fd], "closed_port": port, "python": "3.x.y"}.
"""

import http.client
import http.server
import json
import os
import platform
import socket
import threading
import time


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        body = b"ok"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        self.close_connection = True  # hang up after one response

    def log_message(self, *args):
        pass


def serve():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server.server_address[1]


def leak_connection(port):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("GET", "/leak")  # fdguard: opens the leaked connection
    conn.getresponse().read()
    return conn


def fetch_and_close(port):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("GET", "/ok")
    conn.getresponse().read()
    conn.close()


def wait_close_wait(sock, seconds):
    """Bounded wait until the kernel says the peer hung up (TCP_INFO's tcpi_state)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 1)[0] == 8:  # TCP_CLOSE_WAIT
            return True
        time.sleep(0.02)
    return False


def main():
    port = serve()
    conn = leak_connection(port)
    fetch_and_close(port)
    assert wait_close_wait(conn.sock, 10), "the server never hung up"
    time.sleep((int(os.environ.get("FDGUARD_GRACE_MS", "0")) + 400) / 1000.0)
    truth = {"ok": True, "leaked": [conn.sock.fileno()], "python": platform.python_version()}
    print(json.dumps(truth, separators=(",", ":")), flush=True)
    os._exit(0)


main()
