#!/usr/bin/env python3
"""grpc/grpc#42125's shape with grpc.aio (reproduces on grpcio 1.80.0 and 1.85.3): a channel
is closed while the application still holds its call objects, and its TCP connection stays
ESTABLISHED, idle, for the life of the process. A second channel to the same server stays in
use the whole time (the healthy sibling).

Run under the shim with a venv python. The server runs in a child process WITHOUT the shim
(this script with --serve). stdout, one JSON object per line:
  {"orphans": [fd...], "server_port": P}   the connections left after channel.close(), from
                                           the kernel (/proc/self/net), and the port
  {"checkpoint": "orphaned", ...}          harness.checkpoint: report requested, kernel view
Then the process leaves with os._exit(0) (CPython would tear gRPC down before C atexit runs;
os._exit keeps what is open, so the exit report sees it).
"""

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

SERVICE = "fdguard.Test"
BIDI = "/fdguard.Test/Bidi"

# The application's own list of calls it meant to look at later: this is what keeps them alive.
HELD_CALLS = []


def serve():
    import grpc
    from concurrent import futures

    def bidi(requests, _context):
        for message in requests:
            yield message

    handler = grpc.method_handlers_generic_handler(SERVICE, {
        "Bidi": grpc.stream_stream_rpc_method_handler(bidi, None, None),
        "Echo": grpc.unary_unary_rpc_method_handler(lambda r, _c: r, None, None),
    })
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=32), handlers=[handler])
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    print(json.dumps({"listening": port}), flush=True)
    sys.stdin.read()  # until the parent goes away
    server.stop(0)


def start_server():
    env = {k: v for k, v in os.environ.items()
           if k not in ("LD_PRELOAD", "FDGUARD_REPORT", "FDGUARD_EXPECT_SHIM")}
    proc = subprocess.Popen([sys.executable, os.path.abspath(__file__), "--serve"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env)
    line = proc.stdout.readline()
    return proc, json.loads(line)["listening"]


def connections_to(port):
    return [e for e in harness.tcp_with_peer_port(harness.kernel_view(), port)
            if e["state"] == "ESTABLISHED"]


async def leaky_session(port, streams):
    from grpc import aio
    channel = aio.insecure_channel("127.0.0.1:%d" % port)
    readers = []
    for i in range(streams):
        call = channel.stream_stream(BIDI, request_serializer=None, response_deserializer=None)()
        await call.write(b"hello %d" % i)
        await call.read()
        HELD_CALLS.append(call)

        async def reader(c=call):
            while await c.read() is not aio.EOF:
                pass

        readers.append(asyncio.ensure_future(reader()))
    for task in readers:
        task.cancel()
    await channel.close(grace=0)
    await asyncio.gather(*readers, return_exceptions=True)


async def main_async(args):
    from grpc import aio
    server, port = start_server()
    await leaky_session(port, args.streams)
    # Give the closed channel every chance to let go of its connection.
    deadline = time.monotonic() + 2.0
    while connections_to(port) and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    orphans = sorted(e["fd"] for e in connections_to(port))
    print(json.dumps({"orphans": orphans, "server_port": port}), flush=True)

    # The healthy sibling: another channel (other options, so it gets its own connection),
    # busy until the checkpoint.
    healthy = aio.insecure_channel("127.0.0.1:%d" % port,
                                   options=[("grpc.primary_user_agent", "healthy-sibling")])
    echo = healthy.unary_unary("/fdguard.Test/Echo", request_serializer=None,
                               response_deserializer=None)
    until = time.monotonic() + args.busy_s
    while time.monotonic() < until:
        assert await echo(b"ping", timeout=10) == b"ping"
        await asyncio.sleep(0.05)
    harness.checkpoint("orphaned", server_port=port)
    sys.stdout.flush()
    os._exit(0)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--serve", action="store_true")
    ap.add_argument("--streams", type=int, default=5)
    ap.add_argument("--busy-s", type=float, default=2.5)
    args = ap.parse_args()
    if args.serve:
        serve()
        return 0
    asyncio.run(main_async(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
