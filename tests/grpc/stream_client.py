#!/usr/bin/env python3
"""A gRPC client for tests/programs/grpc_stuck_server.cc (run WITHOUT the shim).

  --mode watch   start a /fdguard.Test/Watch stream, wait for the first answer, print
                 {"ready": true, "local": "ip:port"}, then wait to be killed (bounded by
                 --lifetime-s)
  --mode echo    5 calls to /fdguard.Test/Echo, print {"ready": true, "local": ...}; then with
                 --stay wait for stdin EOF, else close the channel and exit

"local" is this client's end of its connection to the server (from /proc/self/net), so the
test can tell which of the server's accepted sockets belongs to which client.
"""

import argparse
import json
import os
import queue
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402


def local_end(port, deadline_s=10.0):
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        conns = [e for e in harness.tcp_with_peer_port(harness.kernel_view(), port)
                 if e["state"] == "ESTABLISHED"]
        if conns:
            return conns[0]["local"]
        time.sleep(0.02)
    raise RuntimeError("no connection to port %d" % port)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--mode", choices=["watch", "echo"], required=True)
    ap.add_argument("--stay", action="store_true")
    ap.add_argument("--lifetime-s", type=float, default=120.0)
    args = ap.parse_args()

    import grpc
    channel = grpc.insecure_channel("127.0.0.1:%d" % args.port)
    if args.mode == "watch":
        requests = queue.Queue()
        requests.put(b"subscribe")

        def request_stream():
            deadline = time.monotonic() + args.lifetime_s
            while time.monotonic() < deadline:
                try:
                    yield requests.get(timeout=0.5)
                except queue.Empty:
                    continue

        stream = channel.stream_stream("/fdguard.Test/Watch", request_serializer=None,
                                       response_deserializer=None)(request_stream())
        next(stream)  # the server's one answer
        print(json.dumps({"ready": True, "local": local_end(args.port)}), flush=True)
        time.sleep(args.lifetime_s)
        return 0
    call = channel.unary_unary("/fdguard.Test/Echo", request_serializer=None,
                               response_deserializer=None)
    for i in range(5):
        assert call(b"ping %d" % i, timeout=10) == b"ping %d" % i
    print(json.dumps({"ready": True, "local": local_end(args.port)}), flush=True)
    if args.stay:
        sys.stdin.read()
    channel.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
