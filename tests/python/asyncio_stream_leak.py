"""Issue 16: an asyncio stream client that never closes its writer.

An asyncio server in the same loop says hello and hangs up. `leak_stream` (a coroutine) opens a
stream with asyncio.open_connection and keeps the writer: its socket sits in CLOSE_WAIT (asyncio
keeps a stream transport half-open after EOF). `polite_stream` closes its writer: no finding.
Leaves with os._exit, so the loop never gets to close the transport.

Prints one JSON line: {"ok": true, "leaked": [fd], "python": "3.x.y"}.
"""

import asyncio
import json
import os
import platform
import socket


async def greet(reader, writer):
    writer.write(b"hello\n")
    await writer.drain()
    writer.close()


async def leak_stream(port):
    reader, writer = await asyncio.open_connection("127.0.0.1", port)  # fdguard: opens the leaked stream
    assert await reader.readline() == b"hello\n"
    return writer


async def polite_stream(port):
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    await reader.readline()
    writer.close()
    await writer.wait_closed()


async def wait_close_wait(sock, seconds):
    """Bounded wait until the kernel says the peer hung up (TCP_INFO's tcpi_state)."""
    for _ in range(int(seconds / 0.02)):
        if sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 1)[0] == 8:  # TCP_CLOSE_WAIT
            return True
        await asyncio.sleep(0.02)
    return False


async def main():
    server = await asyncio.start_server(greet, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    writer = await leak_stream(port)
    await polite_stream(port)
    sock = writer.get_extra_info("socket")
    assert await wait_close_wait(sock, 10), "the server never hung up"
    await asyncio.sleep((int(os.environ.get("FDGUARD_GRACE_MS", "0")) + 400) / 1000.0)
    truth = {"ok": True, "leaked": [sock.fileno()], "python": platform.python_version()}
    print(json.dumps(truth, separators=(",", ":")), flush=True)
    os._exit(0)


asyncio.run(main())
