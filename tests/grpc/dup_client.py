#!/usr/bin/env python3
"""Duplicate-connection client scenario (grpc/grpc#38871 shape), grpcio.

Two (--channels N) channels to the SAME target with DIFFERENT channel args (so they do not share a
subchannel from the global pool) -> two TCP connections to one backend.  One Echo call
on each, checkpoint "both_open"; then the server goes away, we wait --wait-s while
sampling the kernel state of the original sockets, checkpoint "after_server_gone"
(with the sampled transitions), optionally linger, then exit with the channels leaked
(default), closed (--exit close, followed by an extra "after_close" checkpoint) or via os._exit (--exit hard, skips atexit handlers).

Server-gone modes (--server-gone):
  goaway  own server runs with max_connection_age (--age-ms / --grace-ms): it sends
          GOAWAY and force-closes the connection after the grace; server stays up.
  stop    SIGTERM to own server -> server.stop(0): GOAWAY + close, process exits.
  kill    SIGKILL to own server -> kernel FINs the sockets, no GOAWAY.
  none    do nothing (e.g. --target with an externally managed server).

stdout: checkpoint JSON lines only.  Diagnostics: stderr.
"""

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

import grpc  # noqa: E402

_KEEP = []  # channels kept alive until interpreter exit in --exit leak


def snapshot(port, inodes):
    view = harness.kernel_view()
    by_inode = {e["inode"]: e for e in view}
    cur = {i: (by_inode[i]["state"] if i in by_inode else "CLOSED_FD") for i in inodes}
    others = [e for e in harness.tcp_with_peer_port(view, port) if e["inode"] not in inodes]
    return cur, others


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--target", help="host:port of an external server (default: start server.py)")
    ap.add_argument("--host", default="127.0.0.1", help="own server bind host: 127.0.0.1 or ::1")
    ap.add_argument("--server-gone", choices=["goaway", "stop", "kill", "none"], default="stop")
    ap.add_argument("--age-ms", type=int, default=3000, help="goaway mode: max_connection_age_ms")
    ap.add_argument("--grace-ms", type=int, default=500, help="goaway mode: max_connection_age_grace_ms")
    ap.add_argument("--wait-s", type=float, default=8.0,
                    help="time between the server-gone event (goaway: both_open) and after_server_gone")
    ap.add_argument("--sample-ms", type=int, default=50, help="kernel sampling period during --wait-s (0: off)")
    ap.add_argument("--linger-s", type=float, default=0.0, help="sleep after after_server_gone")
    ap.add_argument("--channels", type=int, default=2, help="number of channels (<= 64)")
    ap.add_argument("--same-args", action="store_true",
                    help="control: identical channel args (expect ONE shared connection)")
    ap.add_argument("--exit", choices=["leak", "close", "hard"], default="leak")
    ap.add_argument("--close-wait-s", type=float, default=0.5,
                    help="--exit close: wait before the extra 'after_close' checkpoint")
    args = ap.parse_args()

    if args.server_gone != "none" and args.target:
        ap.error("--target only with --server-gone none (the script can only stop its own server)")

    server = None
    if args.target:
        target = args.target
        port = int(target.rsplit(":", 1)[1])
    else:
        sargs = ["--host", args.host]
        if args.server_gone == "goaway":
            sargs += ["--max-connection-age-ms", str(args.age_ms),
                      "--max-connection-age-grace-ms", str(args.grace_ms)]
        server = harness.ServerProcess(sargs)
        port = server.port
        host = "[%s]" % args.host if ":" in args.host else args.host
        target = "%s:%d" % (host, port)
    harness.log("dup_client: grpcio %s target %s mode %s pid %d" % (
        grpc.__version__, target, args.server_gone, os.getpid()))

    try:
        chans = []
        for i in range(max(1, min(args.channels, 64))):
            k = 0 if args.same_args else i
            opts = [("grpc.primary_user_agent", "fdguard-%s" % chr(ord("a") + k % 26)),
                    ("fdguard.channel_id", k + 1)]
            chans.append(grpc.insecure_channel(target, options=opts))
        _KEEP.extend(chans)
        for i, ch in enumerate(chans):
            payload = b"c%d" % i
            resp = harness.echo(ch, payload)
            assert resp == payload, (resp, payload)

        rec = harness.checkpoint("both_open", grpc_version=grpc.__version__, server_port=port,
                                 mode=args.server_gone)
        conns = harness.tcp_with_peer_port(rec["kernel"], port)
        inodes = [e["inode"] for e in conns]
        harness.log("dup_client: %d connection(s) to port %d: %s" % (
            len(conns), port, [(e["fd"], e["local"], e["state"]) for e in conns]))

        t0 = time.monotonic()
        if args.server_gone == "stop":
            server.stop()
        elif args.server_gone == "kill":
            server.kill()
        harness.log("dup_client: server-gone event (%s) at t=%.3f" % (args.server_gone, time.monotonic() - t0))

        # Sample until --wait-s elapsed (bounded: wait_s / sample period iterations).
        last, _ = snapshot(port, inodes)
        transitions = [{"t": 0.0, "states": dict((str(k), v) for k, v in last.items())}]
        seen_others = {}
        deadline = t0 + args.wait_s
        while True:
            now = time.monotonic()
            if now >= deadline:
                break
            time.sleep(min(max(args.sample_ms, 1) / 1000.0, deadline - now) if args.sample_ms
                       else deadline - now)
            if not args.sample_ms:
                continue
            cur, others = snapshot(port, inodes)
            for e in others:
                seen_others.setdefault(e["inode"], e["state"])
            if cur != last:
                t = round(time.monotonic() - t0, 3)
                transitions.append({"t": t, "states": dict((str(k), v) for k, v in cur.items())})
                harness.log("dup_client: t=%.3fs %s" % (t, cur))
                last = cur
        harness.checkpoint("after_server_gone", grpc_version=grpc.__version__, server_port=port,
                           mode=args.server_gone, original_inodes=inodes, transitions=transitions,
                           other_conns_seen=len(seen_others))

        if args.linger_s > 0:
            time.sleep(args.linger_s)
        if args.exit == "close":
            for ch in chans:
                ch.close()
            harness.log("dup_client: channels closed")
            time.sleep(max(0.0, args.close_wait_s))
            harness.checkpoint("after_close", grpc_version=grpc.__version__, server_port=port,
                               mode=args.server_gone)
    finally:
        if server is not None:
            server.kill()
    sys.stdout.flush()
    sys.stderr.flush()
    if args.exit == "hard":
        os._exit(0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
