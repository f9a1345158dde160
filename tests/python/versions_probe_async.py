"""The coroutine part of versions_probe.py (Python 3.5+ syntax, imported only there)."""

import asyncio


async def open_from_coroutine(listener, fds):
    await asyncio.sleep(0)
    fds["coroutine"] = listener()  # fdguard: coroutine


def run(listener, fds):
    loop = asyncio.new_event_loop()
    loop.run_until_complete(open_from_coroutine(listener, fds))
