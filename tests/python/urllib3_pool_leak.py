"""Issue 16: a urllib3 pool whose connections are checked out and never released.

`leak_pool` makes three requests with preload_content=False and keeps the responses: each takes
a new connection from the pool and none goes back. The in-process server hangs up after each
response, so the three sockets sit in CLOSE_WAIT. `healthy_pool` reads its responses (the
connection goes back to the pool) and closes the pool: no finding.

Prints one JSON line: {"ok": true, "leaked": [fds], "urllib3": "2.x", "python": "3.x.y"}.
"""

import http.server
import json
import os
import platform
import socket
import threading
import time

import urllib3


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        body = b"ok"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        if self.path == "/ok":
            self.send_header("Connection", "close")  # the healthy pool must not reuse it
        self.end_headers()
        self.wfile.write(body)
        self.close_connection = True  # hang up after one response

    def log_message(self, *args):
        pass


def serve():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server.server_address[1]


def leak_pool(port):
    pool = urllib3.HTTPConnectionPool("127.0.0.1", port, maxsize=8, block=False, retries=False)
    held = []
    for _ in range(3):
        held.append(pool.request("GET", "/leak", preload_content=False))  # fdguard: checks out a connection
    return pool, held


def healthy_pool(port):
    pool = urllib3.HTTPConnectionPool("127.0.0.1", port, maxsize=2, retries=False)
    for _ in range(2):
        pool.request("GET", "/ok").data
    pool.close()


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
    pool, held = leak_pool(port)
    healthy_pool(port)
    socks = [r.connection.sock for r in held]
    for s in socks:
        assert wait_close_wait(s, 10), "the server never answered"
    time.sleep((int(os.environ.get("FDGUARD_GRACE_MS", "0")) + 600) / 1000.0)
    truth = {"ok": True, "leaked": [s.fileno() for s in socks], "urllib3": urllib3.__version__,
             "python": platform.python_version()}
    print(json.dumps(truth, separators=(",", ":")), flush=True)
    os._exit(0)


main()
