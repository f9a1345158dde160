#!/usr/bin/env python3
"""A keep-alive HTTP/1.1 server for the findings corpus (run WITHOUT the shim).

Closes a connection that has been idle for --idle-timeout-s (like nginx's keepalive_timeout,
Node's keepAliveTimeout): the client's pooled connection then sits in CLOSE_WAIT until the
client notices. Prints {"listening": PORT} when ready; exits when stdin reaches EOF.
"""

import argparse
import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--idle-timeout-s", type=float, default=0.5)
    args = ap.parse_args()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        timeout = args.idle_timeout_s  # idle keep-alive connections are closed after this

        def do_GET(self):
            body = b"ok\n"
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    print(json.dumps({"listening": server.server_address[1]}), flush=True)
    sys.stdin.read()
    server.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
