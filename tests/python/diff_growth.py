"""Issue 16: `fdguard diff` on Python stacks.

Connections from two named functions to a listener in this process (never accepted: they
complete in its backlog, so only the client ends are ours). A report is written through the C
API (ctypes: the preloaded library's fdguard_report_to_path), three more connections are opened
from `open_growing`, and a second report is written. Between the two, the stack through
`open_growing` grows by 3 and the one through `open_steady` does not.

argv: OLD_PATH NEW_PATH. Prints {"ok": true}.
"""

import ctypes
import json
import socket
import sys

FORMAT_JSON = 2
report = ctypes.CDLL(None).fdguard_report_to_path
report.argtypes = [ctypes.c_char_p, ctypes.c_uint32]
report.restype = ctypes.c_uint32

server = socket.socket()
server.bind(("127.0.0.1", 0))
server.listen(64)
port = server.getsockname()[1]
keep = []


def open_steady():
    keep.append(socket.create_connection(("127.0.0.1", port)))  # fdguard: steady


def open_growing():
    keep.append(socket.create_connection(("127.0.0.1", port)))  # fdguard: growing


open_steady()
open_growing()
assert report(sys.argv[1].encode(), FORMAT_JSON) == 7000
for _ in range(3):
    open_growing()
assert report(sys.argv[2].encode(), FORMAT_JSON) == 7000
print(json.dumps({"ok": True}, separators=(",", ":")))
