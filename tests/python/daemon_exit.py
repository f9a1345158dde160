"""Issue 16, hazard: sockets created while the interpreter finalizes.

CPython frees the state of daemon threads during Py_Finalize while they may still be inside
accept() or socket() with the GIL released: exactly where fdguard reads their Python frames.
Four daemon threads accept connections that a child process keeps making, two more create and
close sockets in a loop, and the main thread returns normally (Py_Finalize) while all of that
goes on. Under the shim the process must exit like it does without it.

Prints {"ok": true} before returning; exits 0.
"""

import json
import os
import socket
import subprocess
import sys
import threading
import time

CONNECTOR = r"""
import socket, sys, time
port = int(sys.argv[1])
deadline = time.monotonic() + 5
while time.monotonic() < deadline:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        break  # the parent is gone
"""


def acceptor(server):
    while True:
        conn, _ = server.accept()
        conn.close()


def creator():
    while True:
        socket.socket().close()


server = socket.socket()
server.bind(("127.0.0.1", 0))
server.listen(128)
port = server.getsockname()[1]
for _ in range(4):
    threading.Thread(target=acceptor, args=(server,), daemon=True).start()
for _ in range(2):
    threading.Thread(target=creator, daemon=True).start()
env = dict(os.environ)
env.pop("LD_PRELOAD", None)
child = subprocess.Popen([sys.executable, "-c", CONNECTOR, str(port)], env=env,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
time.sleep(0.3)
print(json.dumps({"ok": True}, separators=(",", ":")))
sys.stdout.flush()
# Returning now finalizes the interpreter with the daemon threads busy.
