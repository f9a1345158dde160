#!/usr/bin/env python3
"""Driver for the C++ dup_client (dup_client.cc) against server.py.

Run with a venv python (server.py needs grpcio); run the driver itself WITHOUT the shim.
It starts server.py (env stripped of LD_PRELOAD/FDGUARD_*), starts the C++ client on
127.0.0.1:PORT (or [::1]:PORT) with the driver's environment (plus LD_PRELOAD=LIB and
FDGUARD_EXPECT_SHIM=1 if --client-preload LIB is given), relays the client's checkpoint
lines to stdout, makes the server go away right after "both_open" (--server-gone), and
after --wait-s tells the client (one line on its stdin) to take "after_server_gone".

stdout: the client's checkpoint JSON lines only.  Diagnostics: stderr.
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

REPO = os.path.dirname(os.path.dirname(HERE))
DEFAULT_BIN = os.path.join(REPO, "target", "grpc-tests", "dup_client")


def build(binary):
    os.makedirs(os.path.dirname(binary), exist_ok=True)
    flags = subprocess.run(["pkg-config", "--cflags", "--libs", "grpc++"], check=True,
                           capture_output=True, text=True, timeout=60).stdout.split()
    cmd = ["g++", "-std=c++17", "-Wall", "-Wextra", "-O1", os.path.join(HERE, "dup_client.cc")] \
        + flags + ["-o", binary]
    harness.log("cc_driver: " + " ".join(cmd))
    subprocess.run(cmd, check=True, timeout=300)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default=DEFAULT_BIN)
    ap.add_argument("--build", action="store_true", help="(re)build --bin first")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--server-gone", choices=["goaway", "stop", "kill", "none"], default="stop")
    ap.add_argument("--age-ms", type=int, default=3000)
    ap.add_argument("--grace-ms", type=int, default=500)
    ap.add_argument("--wait-s", type=float, default=8.0)
    ap.add_argument("--sample-ms", type=int, default=50)
    ap.add_argument("--api", choices=["cq", "callback"], default="cq")
    ap.add_argument("--exit", choices=["leak", "close", "hard"], default="leak")
    ap.add_argument("--same-args", action="store_true")
    ap.add_argument("--client-preload", metavar="LIB", help="LD_PRELOAD for the client only")
    ap.add_argument("--timeout-s", type=float, default=120.0, help="overall bound")
    args = ap.parse_args()

    if args.build or not os.path.exists(args.bin):
        build(args.bin)

    sargs = ["--host", args.host]
    if args.server_gone == "goaway":
        sargs += ["--max-connection-age-ms", str(args.age_ms),
                  "--max-connection-age-grace-ms", str(args.grace_ms)]
    server = harness.ServerProcess(sargs)
    host = "[%s]" % args.host if ":" in args.host else args.host
    target = "%s:%d" % (host, server.port)

    env = dict(os.environ)
    if args.client_preload:
        env["LD_PRELOAD"] = os.path.abspath(args.client_preload)
        env["FDGUARD_EXPECT_SHIM"] = "1"
    cmd = [args.bin, target, "--wait-stdin",
           "--stdin-timeout-ms", str(int((args.wait_s + 60) * 1000)),
           "--sample-ms", str(args.sample_ms), "--api", args.api, "--exit", args.exit]
    if args.same_args:
        cmd.append("--same-args")
    harness.log("cc_driver: " + " ".join(cmd))
    client = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env)

    deadline = time.monotonic() + args.timeout_s
    rc = 1
    try:
        fd = client.stdout.fileno()
        buf = b""
        told = False
        t_gone = None
        eof = False
        while time.monotonic() < deadline and not eof:
            if t_gone is not None and not told and time.monotonic() - t_gone >= args.wait_s:
                client.stdin.write(b"go\n")
                client.stdin.flush()
                told = True
            r, _, _ = select.select([fd], [], [], 0.05)
            if not r:
                continue
            chunk = os.read(fd, 65536)
            if not chunk:
                eof = True
            buf += chunk
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                sys.stdout.write(line.decode() + "\n")
                sys.stdout.flush()
                try:
                    name = json.loads(line).get("checkpoint")
                except ValueError:
                    name = None
                if name == "both_open":
                    t_gone = time.monotonic()
                    if args.server_gone == "stop":
                        server.stop()
                    elif args.server_gone == "kill":
                        server.kill()
                    harness.log("cc_driver: server-gone (%s)" % args.server_gone)
        try:
            rc = client.wait(timeout=max(1.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            harness.log("cc_driver: client timed out, killing")
            client.kill()
            client.wait(timeout=5)
            rc = 124
    finally:
        if client.poll() is None:
            client.kill()
            client.wait(timeout=5)
        server.kill()
    harness.log("cc_driver: client exit status %s" % rc)
    return 0 if rc == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
