"""Workload 6 (issue 16): sockets created from Python. Times `socket.create_connection` to a
listener in this process, called DEPTH Python frames deep (up to 10 distinct functions, an
application's call path, then recursion), and only that call: accepting and closing both ends happen outside
the clock. The accepting side closes first, so TIME_WAIT never holds a client port (see
lifecycle.c). argv: OPS DEPTH. Prints {"ns_per_op": mean ns per create_connection, ...}.
"""

import json
import socket
import sys
import time

ops = int(sys.argv[1]) if len(sys.argv) > 1 else 10000
depth = int(sys.argv[2]) if len(sys.argv) > 2 else 10
server = socket.socket()
server.bind(("127.0.0.1", 0))
server.listen(128)
address = server.getsockname()


# An application's call path to its connect: ten distinct functions (a handler, its service,
# a client, a pool...), so every frame is one fdguard has to name.
def open_connection():
    return socket.create_connection(address)


def pool_get():
    return open_connection()


def client_call():
    return pool_get()


def retrying():
    return client_call()


def repository():
    return retrying()


def service():
    return repository()


def use_case():
    return service()


def view():
    return use_case()


def middleware():
    return view()


def handler():
    return middleware()


LAYERS = [open_connection, pool_get, client_call, retrying, repository, service, use_case,
          view, middleware, handler]


def connect(n):
    if n > len(LAYERS):
        return connect(n - 1)
    return LAYERS[n - 1]()


def cycle():
    start = time.perf_counter_ns()
    client = connect(depth)
    took = time.perf_counter_ns() - start
    accepted, _ = server.accept()
    accepted.close()
    client.close()
    return took


for _ in range(ops // 20 + 1):
    cycle()  # warm-up
total = sum(cycle() for _ in range(ops))
print(json.dumps({"ns_per_op": total / ops, "ops": ops, "depth": depth,
                  "python": sys.version.split()[0]}))
