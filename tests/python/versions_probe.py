"""Issue 16: Python frames on every CPython this machine has (and a clean refusal on the others).

Opens one listening socket from each kind of Python frame fdguard must read: a plain function on
the main thread, a generator, a coroutine (Python 3.5+), a `threading` thread, a thread with a
small (256 KiB) stack, and the bottom of a 200-deep recursion (more frames than fdguard keeps).
Runs unchanged on Python 2.7 and 3.6+; leaves with os._exit so the exit report sees them all.

Prints one JSON line: {"ok": true, "version": [3, 11, 7], "fds": {"main": fd, ...}}.
"""

import json
import os
import socket
import sys
import threading

keep = []
fds = {}


def listener():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    s.listen(1)
    keep.append(s)
    return s.fileno()


def open_from_main():
    fds["main"] = listener()  # fdguard: main


def open_from_generator():
    fds["generator"] = listener()  # fdguard: generator
    yield


def open_from_thread():
    fds["thread"] = listener()  # fdguard: thread


def open_from_small_stack():
    fds["small_stack"] = listener()  # fdguard: small stack


def recurse(n):
    if n == 0:
        fds["deep"] = listener()  # fdguard: deep
        return
    recurse(n - 1)


open_from_main()
for _ in open_from_generator():
    pass
t = threading.Thread(target=open_from_thread)
t.start()
t.join()
threading.stack_size(256 * 1024)
t = threading.Thread(target=open_from_small_stack)
t.start()
t.join()
threading.stack_size(0)
recurse(200)
if sys.version_info >= (3, 5):
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import versions_probe_async
    versions_probe_async.run(listener, fds)
# "ok" first on every version (2.7's dicts are unordered).
print('{"ok":true,"version":%s,"fds":%s}' % (json.dumps(list(sys.version_info[:3])), json.dumps(fds)))
sys.stdout.flush()
os._exit(0)
