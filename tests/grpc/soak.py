#!/usr/bin/env python3
"""Soak scenario for tests/soak_grpc.rs: a gRPC server and a churning client, both meant to run
UNDER the shim, pausing at checkpoints so the test can compare fdguard's reports with the
kernel's own view (/proc/PID/fd, /proc/net/tcp*) while nothing moves.

  soak.py server                 prints {"listening": port}; then per stdin line:
                                 "checkpoint" -> asks for a report, prints {"report": path}
                                 "stop"       -> server.stop(0), prints {"stopped": true},
                                                 waits for "exit" -> os._exit(0)
  soak.py client PORT SECONDS    THREADS threads (default 4) open a channel with its own
                                 connection, make a few Echo calls and close it, for SECONDS;
                                 two "pinned" channels stay open throughout. Then checkpoints:
                                 "after_churn" (pinned still open) and "after_close" (pinned
                                 closed); each prints {"checkpoint": name, "report": path,
                                 "churned": n} and waits for a "continue" line. Then os._exit(0).

Reports: FDGUARD_REPORT (with %p and %n) and FDGUARD_EXPECT_SHIM=1, as harness.py expects.
Bounded: every wait has a timeout; the server gives up after --lifetime-s.
"""

import json
import os
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402


def say(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def wait_line(expected, timeout_s=60.0):
    """Reads stdin lines until `expected` (bounded by a watchdog that exits the process)."""
    timer = threading.Timer(timeout_s, lambda: os._exit(3))
    timer.daemon = True
    timer.start()
    try:
        for raw in sys.stdin:
            if raw.strip() == expected:
                return
        os._exit(4)  # stdin closed: the test is gone
    finally:
        timer.cancel()


def server():
    srv, port = harness.make_server(max_workers=8)
    say({"listening": port})
    watchdog = threading.Timer(120.0, lambda: os._exit(5))
    watchdog.daemon = True
    watchdog.start()
    for raw in sys.stdin:
        word = raw.strip()
        if word == "checkpoint":
            path, err = harness.request_report()
            say({"report": path, "error": err})
        elif word == "stop":
            srv.stop(0).wait(10)
            say({"stopped": True})
        elif word == "exit":
            os._exit(0)
    os._exit(0)


def client(port, seconds, threads=4):
    import grpc

    target = "127.0.0.1:%d" % port
    own_connection = [("grpc.use_local_subchannel_pool", 1)]
    pinned = [grpc.insecure_channel(target, options=own_connection + [("fdguard.pin", i)])
              for i in range(2)]
    for ch in pinned:
        harness.echo(ch, b"pinned")
    churned = [0]
    errors = []
    lock = threading.Lock()
    deadline = time.monotonic() + seconds

    def churn():
        while time.monotonic() < deadline:
            ch = grpc.insecure_channel(target, options=own_connection)
            try:
                for _ in range(3):
                    harness.echo(ch, b"churn", timeout=10)
            except Exception as e:  # noqa: BLE001 - reported, fails the test
                errors.append(repr(e))
            finally:
                ch.close()
            with lock:
                churned[0] += 1

    workers = [threading.Thread(target=churn) for _ in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(seconds + 30)
    time.sleep(1.0)  # let gRPC finish closing the churned connections
    path, err = harness.request_report()
    say({"checkpoint": "after_churn", "report": path, "error": err, "churned": churned[0],
         "errors": errors[:5]})
    wait_line("continue")
    for ch in pinned:
        ch.close()
    time.sleep(1.0)
    path, err = harness.request_report()
    say({"checkpoint": "after_close", "report": path, "error": err})
    wait_line("continue")
    os._exit(0)


if __name__ == "__main__":
    if sys.argv[1] == "server":
        server()
    else:
        client(int(sys.argv[2]), float(sys.argv[3]))
