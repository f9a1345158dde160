"""Issue 16: a grpcio client whose channel is created from a named Python function.

`make_channel` creates the channel; `call_backend` makes the RPCs. The backend is an echo server
in this process (its own sockets are tracked too). The server is told to drop each connection
after 300 ms (GOAWAY), so the client reconnects for the second RPC. What the report shows for
the client's sockets depends on which thread C-core creates them on: that is what the test
checks and the README states.

Prints one JSON line: {"ok": true, "grpc": "1.x", "port": port, "python": "3.x.y"}.
"""

import json
import os
import platform
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "grpc"))
import grpc  # noqa: E402
import harness  # noqa: E402


def make_channel(port):
    return grpc.insecure_channel("127.0.0.1:%d" % port)  # fdguard: creates the channel


def call_backend(channel):
    return harness.echo(channel, b"hello")  # fdguard: makes the RPC


def main():
    server, port = harness.make_server(max_connection_age_ms=300, max_connection_age_grace_ms=100)
    channel = make_channel(port)
    call_backend(channel)
    time.sleep(1.0)  # past the server's max connection age: the next RPC reconnects
    call_backend(channel)
    truth = {"ok": True, "grpc": grpc.__version__, "port": port, "python": platform.python_version()}
    print(json.dumps(truth, separators=(",", ":")), flush=True)
    os._exit(0)


main()
