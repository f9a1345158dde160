#!/usr/bin/env python3
"""urllib3 keep-alive pools against tests/http/server.py, for the findings corpus. Run under the
shim with target/deps/venv-http's python; the server runs as a child WITHOUT the shim.

--scenario healthy (default thresholds):
  4 threads share one HTTPConnectionPool(maxsize=4): 4 pooled connections. Checkpoints:
  "busy" after a burst; "server_closed_idle" once the server has closed them for being idle
  (CLOSE_WAIT, inside the pool); "reused" after another burst, when urllib3 has noticed,
  closed them and connected again.
--scenario leak:
  one pool kept busy (a request every 50 ms, so the server never finds it idle), and a
  "session cache" that creates a PoolManager per call and never lets go of it: each keeps a
  connection that the server closes for being idle, and nobody closes it. Checkpoint
  "leaked" after --wait-s.
Every checkpoint line (harness.checkpoint) carries the kernel's view; the leak scenario's
first line {"leaked_local": [...], "healthy_local": [...]} names the connections by local
address. Leaves with os._exit(0), keeping what is open for the exit report.
"""

import argparse
import json
import os
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "grpc"))
import harness  # noqa: E402
import urllib3  # noqa: E402

SESSION_CACHE = []  # the leak: pools nobody closes
KEEP = []  # the healthy pools, alive until exit (CPython closes a socket it frees)


def start_server(idle_timeout_s):
    env = {k: v for k, v in os.environ.items()
           if k not in ("LD_PRELOAD", "FDGUARD_REPORT", "FDGUARD_EXPECT_SHIM")}
    proc = subprocess.Popen([sys.executable, os.path.join(HERE, "server.py"),
                             "--idle-timeout-s", str(idle_timeout_s)],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env)
    return proc, json.loads(proc.stdout.readline())["listening"]


def burst(pool, threads=4, per_thread=25):
    def work():
        for _ in range(per_thread):
            r = pool.request("GET", "/", retries=urllib3.Retry(3))
            assert r.status == 200 and r.data == b"ok\n"

    workers = [threading.Thread(target=work) for _ in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(timeout=60)


def states(port):
    return sorted((e["fd"], e["state"]) for e in harness.tcp_with_peer_port(
        harness.kernel_view(), port))


def wait_for(port, predicate, timeout_s=10.0):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and not predicate(states(port)):
        time.sleep(0.05)


def healthy(port, idle_timeout_s):
    pool = urllib3.HTTPConnectionPool("127.0.0.1", port, maxsize=4, block=True)
    KEEP.append(pool)
    burst(pool)
    harness.checkpoint("busy", server_port=port)
    time.sleep(idle_timeout_s * 2)
    wait_for(port, lambda st: st and all(s == "CLOSE_WAIT" for _, s in st))
    harness.checkpoint("server_closed_idle", server_port=port)
    burst(pool)
    harness.checkpoint("reused", server_port=port)


def leak(port, wait_s, leaked):
    pool = urllib3.HTTPConnectionPool("127.0.0.1", port, maxsize=1, block=True)
    KEEP.append(pool)
    stop = threading.Event()

    def keep_busy():
        while not stop.is_set():
            assert pool.request("GET", "/").status == 200
            time.sleep(0.05)

    busy = threading.Thread(target=keep_busy)
    busy.start()
    for _ in range(leaked):
        manager = urllib3.PoolManager()
        assert manager.request("GET", "http://127.0.0.1:%d/" % port).status == 200
        SESSION_CACHE.append(manager)
    # Each cached manager holds one idle connection; the busy pool holds the other one.
    leaked_local = []
    for manager in SESSION_CACHE:
        for key in manager.pools.keys():
            conn = manager.pools[key].pool.queue[-1]
            leaked_local.append("%s:%d" % conn.sock.getsockname())
    print(json.dumps({"leaked_local": leaked_local, "server_port": port}), flush=True)
    time.sleep(wait_s)
    harness.checkpoint("leaked", server_port=port)
    stop.set()
    busy.join(timeout=10)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--scenario", choices=["healthy", "leak"], default="healthy")
    ap.add_argument("--idle-timeout-s", type=float, default=0.5)
    ap.add_argument("--wait-s", type=float, default=2.5)
    ap.add_argument("--leaked", type=int, default=3)
    args = ap.parse_args()
    server, port = start_server(args.idle_timeout_s)
    if args.scenario == "healthy":
        healthy(port, args.idle_timeout_s)
    else:
        leak(port, args.wait_s, args.leaked)
    sys.stdout.flush()
    os._exit(0)


if __name__ == "__main__":
    sys.exit(main())
