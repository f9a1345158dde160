"""Shared helpers for the fdguard gRPC scenarios (stdlib only, grpc imported lazily).

- kernel_view(): this process's socket fds joined with /proc/net/{tcp,tcp6,udp,udp6,unix}
- checkpoint(name, **extra): one JSON line on stdout, optionally after asking the
  fdguard shim for a report (SIGUSR1) and waiting for the report file.
- make_server(...): generic-handler gRPC server with /fdguard.Test/Echo.

Environment:
  FDGUARD_REPORT        report path template: %p -> pid, %n -> report sequence number
                        (1 for the first report requested by this process), %% -> %
  FDGUARD_EXPECT_SHIM   must be "1" for SIGUSR1 to be sent (otherwise no signal at all:
                        SIGUSR1's default action would kill an unshimmed process)
  FDGUARD_REPORT_TIMEOUT_S  override the 15 s report wait (float)
"""

import json
import os
import signal
import socket
import sys
import threading
import time

TCP_STATES = {
    0x01: "ESTABLISHED",
    0x02: "SYN_SENT",
    0x03: "SYN_RECV",
    0x04: "FIN_WAIT1",
    0x05: "FIN_WAIT2",
    0x06: "TIME_WAIT",
    0x07: "CLOSE",
    0x08: "CLOSE_WAIT",
    0x09: "LAST_ACK",
    0x0A: "LISTEN",
    0x0B: "CLOSING",
    0x0C: "NEW_SYN_RECV",
}

SERVICE = "fdguard.Test"
ECHO_METHOD = "/fdguard.Test/Echo"


def log(*args):
    print(*args, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- kernel view

def _decode_addr(hexaddr):
    """'0100007F:1F90' or 32-hex v6 form -> 'ip:port' / '[v6]:port'."""
    ip_hex, port_hex = hexaddr.split(":")
    port = int(port_hex, 16)
    raw = bytes.fromhex(ip_hex)
    if len(raw) == 4:
        # one 32-bit word in host (little-endian) order
        return "%s:%d" % (socket.inet_ntop(socket.AF_INET, raw[::-1]), port)
    # four 32-bit words, each in host order
    b = b"".join(raw[i:i + 4][::-1] for i in range(0, 16, 4))
    if b[:12] == b"\x00" * 10 + b"\xff\xff":  # IPv4-mapped
        return "%s:%d" % (socket.inet_ntop(socket.AF_INET, b[12:]), port)
    return "[%s]:%d" % (socket.inet_ntop(socket.AF_INET6, b), port)


def _read_inet_table(path, proto, out):
    try:
        with open(path) as f:
            lines = f.read().splitlines()[1:]
    except OSError:
        return
    for line in lines:
        parts = line.split()
        if len(parts) < 10:
            continue
        try:
            inode = int(parts[9])
            st = int(parts[3], 16)
            entry = {
                "proto": proto,
                "local": _decode_addr(parts[1]),
                "remote": _decode_addr(parts[2]),
                "state": TCP_STATES.get(st, "0x%02X" % st) if proto.startswith("tcp") else None,
            }
        except (ValueError, IndexError):
            continue
        if inode:
            out[inode] = entry


def _read_unix_table(out):
    try:
        with open("/proc/self/net/unix") as f:
            lines = f.read().splitlines()[1:]
    except OSError:
        return
    for line in lines:
        parts = line.split()
        if len(parts) < 7:
            continue
        try:
            inode = int(parts[6])
        except ValueError:
            continue
        out[inode] = {"proto": "unix", "local": parts[7] if len(parts) > 7 else None,
                      "remote": None, "state": None}


def kernel_view():
    """List of dicts {fd, inode, proto, local, remote, state} for every socket fd."""
    fds = []
    try:
        names = os.listdir("/proc/self/fd")
    except OSError:
        return []
    for name in names:
        try:
            target = os.readlink("/proc/self/fd/" + name)
        except OSError:
            continue  # fd closed meanwhile (other threads) or the listdir fd itself
        if target.startswith("socket:[") and target.endswith("]"):
            fds.append((int(name), int(target[8:-1])))
    table = {}
    _read_inet_table("/proc/self/net/tcp", "tcp", table)
    _read_inet_table("/proc/self/net/tcp6", "tcp6", table)
    _read_inet_table("/proc/self/net/udp", "udp", table)
    _read_inet_table("/proc/self/net/udp6", "udp6", table)
    _read_unix_table(table)
    view = []
    for fd, inode in sorted(fds):
        e = table.get(inode, {"proto": None, "local": None, "remote": None, "state": None})
        d = {"fd": fd, "inode": inode}
        d.update(e)
        view.append(d)
    return view


def tcp_with_peer_port(view, port):
    """Entries of a kernel_view whose remote port is `port` (client side connections)."""
    suffix = ":%d" % port
    return [e for e in view if e["proto"] in ("tcp", "tcp6") and e["remote"]
            and e["remote"].endswith(suffix)]


def tcp_with_local_port(view, port):
    suffix = ":%d" % port
    return [e for e in view if e["proto"] in ("tcp", "tcp6") and e["local"]
            and e["local"].endswith(suffix)]


# --------------------------------------------------------------------------- checkpoints

_report_seq = 0
_lock = threading.Lock()


def expand_report_path(template, pid, seq):
    out = []
    i = 0
    while i < len(template):
        c = template[i]
        if c == "%" and i + 1 < len(template):
            n = template[i + 1]
            if n == "p":
                out.append(str(pid)); i += 2; continue
            if n == "n":
                out.append(str(seq)); i += 2; continue
            if n == "%":
                out.append("%"); i += 2; continue
        out.append(c)
        i += 1
    return "".join(out)


def shim_expected():
    return bool(os.environ.get("FDGUARD_REPORT")) and os.environ.get("FDGUARD_EXPECT_SHIM") == "1"


def request_report():
    """Ask the shim for a report; returns (path_or_None, error_or_None)."""
    global _report_seq
    template = os.environ.get("FDGUARD_REPORT")
    if not template or os.environ.get("FDGUARD_EXPECT_SHIM") != "1":
        return None, None
    _report_seq += 1
    path = expand_report_path(template, os.getpid(), _report_seq)
    timeout = float(os.environ.get("FDGUARD_REPORT_TIMEOUT_S", "15"))
    os.kill(os.getpid(), signal.SIGUSR1)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if os.path.exists(path):
            return path, None
        time.sleep(0.02)
    log("harness: report %s did not appear within %.1fs" % (path, timeout))
    return None, "timeout waiting for %s" % path


def checkpoint(name, **extra):
    """Writes one checkpoint line: a report and the kernel's view of the same moment. gRPC's
    own threads may close a socket between the two (grpcio 1.51.1's backup poller closes a
    CLOSE_WAIT socket at any 5 s tick), so the report is taken between two kernel views and
    taken again (at most 5 times) until both views agree: the report then saw that state."""
    with _lock:
        for _ in range(5):
            before = kernel_view()
            report, err = request_report()
            after = kernel_view()
            if before == after or err:
                break
        rec = {"checkpoint": name, "pid": os.getpid(), "kernel": after,
               "report": report}
        if err:
            rec["report_error"] = err
        if report:
            rec["report_seq"] = _report_seq
        rec.update(extra)
        sys.stdout.write(json.dumps(rec) + "\n")
        sys.stdout.flush()
        return rec


# --------------------------------------------------------------------------- server

_echo_calls = [0]
_echo_lock = threading.Lock()


def echo_calls():
    """Number of Echo calls served by make_server() servers in this process."""
    return _echo_calls[0]


def _echo(request, context):
    with _echo_lock:
        _echo_calls[0] += 1
    return request


def make_server(host="127.0.0.1", port=0, max_connection_age_ms=None,
                max_connection_age_grace_ms=None, max_workers=4, extra_options=()):
    """Start a generic-handler server; returns (server, bound_port)."""
    import grpc
    from concurrent import futures

    options = list(extra_options)
    if max_connection_age_ms is not None:
        options.append(("grpc.max_connection_age_ms", int(max_connection_age_ms)))
    if max_connection_age_grace_ms is not None:
        options.append(("grpc.max_connection_age_grace_ms", int(max_connection_age_grace_ms)))
    handler = grpc.method_handlers_generic_handler(SERVICE, {
        "Echo": grpc.unary_unary_rpc_method_handler(
            _echo, request_deserializer=None, response_serializer=None),
    })
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=max_workers),
                         handlers=[handler], options=options)
    addr = ("[%s]" % host if ":" in host else host) + ":%d" % port
    bound = server.add_insecure_port(addr)
    if not bound:
        raise RuntimeError("could not bind %s" % addr)
    server.start()
    return server, bound


def echo(channel, payload=b"ping", timeout=10.0):
    """One unary call on /fdguard.Test/Echo with identity (de)serializers."""
    call = channel.unary_unary(ECHO_METHOD, request_serializer=None,
                               response_deserializer=None)
    return call(payload, timeout=timeout)


# --------------------------------------------------------------------------- server process

class ServerProcess:
    """server.py run as a child with the same interpreter, WITHOUT the shim."""

    def __init__(self, args=(), env_strip=("LD_PRELOAD", "FDGUARD_REPORT", "FDGUARD_EXPECT_SHIM"),
                 ready_timeout=30.0):
        import subprocess
        import select
        here = os.path.dirname(os.path.abspath(__file__))
        env = {k: v for k, v in os.environ.items() if k not in env_strip}
        self.proc = subprocess.Popen(
            [sys.executable, os.path.join(here, "server.py")] + list(args),
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env)
        deadline = time.monotonic() + ready_timeout
        buf = b""
        self.port = None
        fd = self.proc.stdout.fileno()
        while time.monotonic() < deadline and self.port is None:
            r, _, _ = select.select([fd], [], [], 0.1)
            if not r:
                if self.proc.poll() is not None:
                    break
                continue
            chunk = os.read(fd, 4096)
            if not chunk:
                break
            buf += chunk
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                try:
                    msg = json.loads(line)
                except ValueError:
                    continue
                if "listening" in msg:
                    self.port = int(msg["listening"])
                    break
        if self.port is None:
            self.kill()
            raise RuntimeError("server.py did not become ready")

    def command(self, line):
        """Send a control line on stdin ('stop <grace_s>' / 'kill')."""
        try:
            self.proc.stdin.write((line + "\n").encode())
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError):
            pass

    def stop(self, timeout=10.0):
        """SIGTERM (graceful server.stop(0): GOAWAY + close) and reap."""
        if self.proc.poll() is None:
            self.proc.terminate()
        return self._reap(timeout)

    def kill(self, timeout=10.0):
        """SIGKILL: kernel closes the server sockets (FIN), no GOAWAY."""
        if self.proc.poll() is None:
            self.proc.kill()
        return self._reap(timeout)

    def _reap(self, timeout):
        import subprocess
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait(timeout=5)
        finally:
            for f in (self.proc.stdin, self.proc.stdout):
                try:
                    f.close()
                except OSError:
                    pass
