#!/usr/bin/env python3
"""Standalone echo server for the fdguard gRPC scenarios (meant to run WITHOUT the shim).

Binds port 0 (or --port), prints exactly one stdout line {"listening": port} when ready.
Exits on SIGTERM / SIGINT, when stdin reaches EOF, on a stdin line "stop [grace_s]",
or after --lifetime-s (bounded).  Exit always calls server.stop(grace) which sends
GOAWAY and closes connections.  Diagnostics go to stderr.
"""

import argparse
import json
import os
import signal
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", default="127.0.0.1", help="127.0.0.1 or ::1")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--max-connection-age-ms", type=int, default=None,
                    help="server sends GOAWAY after this connection age")
    ap.add_argument("--max-connection-age-grace-ms", type=int, default=None,
                    help="server force-closes the connection this long after the GOAWAY")
    ap.add_argument("--max-workers", type=int, default=4)
    ap.add_argument("--lifetime-s", type=float, default=600.0, help="hard upper bound")
    args = ap.parse_args()

    server, port = harness.make_server(
        host=args.host, port=args.port,
        max_connection_age_ms=args.max_connection_age_ms,
        max_connection_age_grace_ms=args.max_connection_age_grace_ms,
        max_workers=args.max_workers)

    done = threading.Event()
    grace = [0.0]
    why = ["lifetime"]

    def on_signal(signum, _frame):
        why[0] = "signal %d" % signum
        done.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    def stdin_reader():
        for raw in sys.stdin:  # bounded by the process lifetime
            words = raw.split()
            if words and words[0] == "stop":
                if len(words) > 1:
                    try:
                        grace[0] = float(words[1])
                    except ValueError:
                        pass
                why[0] = "stop command"
                done.set()
                return
        why[0] = "stdin EOF"
        done.set()

    threading.Thread(target=stdin_reader, daemon=True).start()

    sys.stdout.write(json.dumps({"listening": port}) + "\n")
    sys.stdout.flush()
    harness.log("server.py pid %d listening on %s:%d (age_ms=%s grace_ms=%s)" % (
        os.getpid(), args.host, port, args.max_connection_age_ms,
        args.max_connection_age_grace_ms))

    deadline = time.monotonic() + args.lifetime_s
    while not done.is_set() and time.monotonic() < deadline:
        done.wait(0.2)
    harness.log("server.py pid %d stopping (%s, grace %.1fs)" % (os.getpid(), why[0], grace[0]))
    server.stop(grace[0]).wait(timeout=grace[0] + 10)
    return 0


if __name__ == "__main__":
    sys.exit(main())
