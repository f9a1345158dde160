#!/usr/bin/env python3
"""Server-side scenario: this process (run under the shim) is the gRPC SERVER.

It starts the generic Echo server in-process, checkpoints "before_clients", spawns
--client-procs client processes (same interpreter, WITHOUT LD_PRELOAD/FDGUARD_*), which
together make --clients short-lived connections (each: new channel, one Echo call, then
close / leak-until-exit / get SIGKILLed), waits until the clients are done and the server
has no accepted connections left on its port (bounded by --settle-s), then checkpoints
"after_clients" and stops the server (server.stop(0)).  Optionally checkpoints
"after_stop" (--checkpoint-after-stop).

Client modes (--client-mode):
  close  channel.close() after each call (orderly FIN from the client).
  leak   keep all channels open; client process then exits normally.
  kill   keep all channels open; the client process is SIGKILLed by this script.

Internal: `--as-client PORT` runs one client process (used by this script itself).
stdout: checkpoint JSON lines only.  Diagnostics: stderr.
"""

import argparse
import json
import os
import select
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import harness  # noqa: E402

STRIP_ENV = ("LD_PRELOAD", "FDGUARD_REPORT", "FDGUARD_EXPECT_SHIM")


def run_client(args):
    import grpc
    target = args.target
    chans = []
    for i in range(args.count):
        ch = grpc.insecure_channel(target, options=[("fdguard.client_conn", i)])
        resp = harness.echo(ch, b"c%d" % i, timeout=10.0)
        if resp != b"c%d" % i:
            harness.log("client: bad echo %r" % resp)
            return 1
        if args.client_mode == "close":
            ch.close()
        else:
            chans.append(ch)
    sys.stdout.write("done\n")
    sys.stdout.flush()
    if args.client_mode == "kill":
        # Wait (bounded) to be killed; stdin EOF also ends us.
        select.select([sys.stdin], [], [], 60.0)
    return 0


def server_conns(view, port):
    return [e for e in harness.tcp_with_local_port(view, port) if e["state"] != "LISTEN"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", default="127.0.0.1", help="127.0.0.1 or ::1")
    ap.add_argument("--clients", type=int, default=20, help="total client connections (<= 500)")
    ap.add_argument("--client-procs", type=int, default=2, help="client processes (<= 16)")
    ap.add_argument("--client-mode", choices=["close", "leak", "kill"], default="close")
    ap.add_argument("--max-connection-age-ms", type=int, default=None)
    ap.add_argument("--max-connection-age-grace-ms", type=int, default=None)
    ap.add_argument("--settle-s", type=float, default=10.0,
                    help="max wait for the server to drop its accepted connections")
    ap.add_argument("--timeout-s", type=float, default=120.0, help="overall client deadline")
    ap.add_argument("--checkpoint-after-stop", action="store_true")
    ap.add_argument("--as-client", metavar="TARGET", dest="target", help=argparse.SUPPRESS)
    ap.add_argument("--count", type=int, default=1, help=argparse.SUPPRESS)
    args = ap.parse_args()

    if args.target:
        return run_client(args)

    clients = max(1, min(args.clients, 500))
    procs_n = max(1, min(args.client_procs, 16, clients))

    import grpc
    server, port = harness.make_server(
        host=args.host, port=0,
        max_connection_age_ms=args.max_connection_age_ms,
        max_connection_age_grace_ms=args.max_connection_age_grace_ms)
    host = "[%s]" % args.host if ":" in args.host else args.host
    target = "%s:%d" % (host, port)
    harness.log("many_clients_server: grpcio %s pid %d on %s, %d clients in %d procs, mode %s" % (
        grpc.__version__, os.getpid(), target, clients, procs_n, args.client_mode))
    harness.checkpoint("before_clients", grpc_version=grpc.__version__, server_port=port)

    env = {k: v for k, v in os.environ.items() if k not in STRIP_ENV}
    per = [clients // procs_n + (1 if i < clients % procs_n else 0) for i in range(procs_n)]
    procs = []
    t_start = time.monotonic()
    for n in per:
        procs.append(subprocess.Popen(
            [sys.executable, os.path.abspath(__file__), "--as-client", target,
             "--count", str(n), "--client-mode", args.client_mode],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env))

    deadline = t_start + args.timeout_s
    failures = 0
    for p in procs:
        # each client prints "done" once all its calls are made
        line = b""
        fd = p.stdout.fileno()
        while time.monotonic() < deadline and not line.endswith(b"\n"):
            r, _, _ = select.select([fd], [], [], 0.1)
            if r:
                chunk = os.read(fd, 64)
                if not chunk:
                    break
                line += chunk
            elif p.poll() is not None:
                break
        if line.strip() != b"done":
            failures += 1
            harness.log("many_clients_server: client pid %d failed (%r)" % (p.pid, line))
    for p in procs:
        if args.client_mode == "kill" and p.poll() is None:
            p.kill()
        try:
            p.stdin.close()
        except OSError:
            pass
        try:
            p.wait(timeout=max(1.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(timeout=5)
        p.stdout.close()
    t_clients = time.monotonic()

    # Bounded settle: wait until the server has no accepted connections left.
    settle_deadline = t_clients + args.settle_s
    remaining = server_conns(harness.kernel_view(), port)
    while remaining and time.monotonic() < settle_deadline:
        time.sleep(0.02)
        remaining = server_conns(harness.kernel_view(), port)
    settle = round(time.monotonic() - t_clients, 3)
    harness.log("many_clients_server: clients done in %.2fs, settle %.3fs, %d conn(s) left" % (
        t_clients - t_start, settle, len(remaining)))
    harness.checkpoint("after_clients", grpc_version=grpc.__version__, server_port=port,
                       clients=clients, client_procs=procs_n, client_mode=args.client_mode,
                       client_failures=failures, echo_calls=harness.echo_calls(), settle_s=settle,
                       remaining_conns=len(remaining))

    server.stop(0).wait(timeout=10)
    if args.checkpoint_after_stop:
        time.sleep(0.2)
        harness.checkpoint("after_stop", grpc_version=grpc.__version__, server_port=port)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
