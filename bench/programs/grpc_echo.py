#!/usr/bin/env python3
"""Workload 5: unary gRPC RPCs per second between a grpcio client and server on 127.0.0.1.

    grpc_echo.py server [--lifetime-s S]      prints {"port": P}, serves until stdin EOF
    grpc_echo.py client --port P --rpcs N     prints {"rps": R, "rpcs": N}

A generic handler echoes a 64-byte payload (no generated code needed). Every wait is bounded.
"""

import argparse
import json
import sys
import threading
import time
from concurrent import futures

import grpc

SERVICE = "fdguard.bench.Echo"
METHOD = "/" + SERVICE + "/Echo"


def serve(args):
    handler = grpc.method_handlers_generic_handler(
        SERVICE, {"Echo": grpc.unary_unary_rpc_method_handler(lambda request, _ctx: request)})
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    server.add_generic_rpc_handlers((handler,))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    print(json.dumps({"port": port}), flush=True)
    done = threading.Event()

    def wait_for_eof():
        sys.stdin.read()
        done.set()

    threading.Thread(target=wait_for_eof, daemon=True).start()
    done.wait(args.lifetime_s)
    server.stop(0).wait(10)
    return 0


def client(args):
    payload = b"x" * 64
    with grpc.insecure_channel("127.0.0.1:%d" % args.port) as channel:
        grpc.channel_ready_future(channel).result(timeout=60)
        echo = channel.unary_unary(METHOD)
        for _ in range(max(args.rpcs // 10, 10)):
            echo(payload, timeout=60)
        start = time.perf_counter()
        for _ in range(args.rpcs):
            if echo(payload, timeout=60) != payload:
                raise SystemExit("echo mismatch")
        elapsed = time.perf_counter() - start
    print(json.dumps({"rps": args.rpcs / elapsed, "rpcs": args.rpcs,
                      "ns_per_op": elapsed * 1e9 / args.rpcs}), flush=True)
    return 0


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("server")
    s.add_argument("--lifetime-s", type=float, default=600.0)
    c = sub.add_parser("client")
    c.add_argument("--port", type=int, required=True)
    c.add_argument("--rpcs", type=int, default=2000)
    args = ap.parse_args()
    return serve(args) if args.cmd == "server" else client(args)


if __name__ == "__main__":
    sys.exit(main())
