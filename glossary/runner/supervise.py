"""A started run's life: stream its output, enforce the wall and output limits, decide
how it ended, and kill whatever is left of it."""

import asyncio
import codecs
import collections
import os
import signal

from .events import (
    EXIT_CPU,
    EXIT_ERROR,
    EXIT_MEMORY,
    EXIT_OK,
    EXIT_OUTPUT_LIMIT,
    EXIT_TIMEOUT,
    SqlRecords,
    exit_event,
    output_event,
)

READ_CHUNK = 4096


async def _pump(stream, name, queue):
    while data := await stream.read(READ_CHUNK):
        await queue.put((name, data))
    await queue.put((name, None))


def kill(process):
    """SIGKILL the process group. With bwrap this takes the sandbox's init, and with it
    every process in the pid namespace, setsid() or not.

    Closing stdin too ends a warm process waiting for its code even if it outlived bwrap
    (killed in the instant before bwrap arms --die-with-parent): it reads EOF and exits.
    """
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    if process.stdin is not None and not process.stdin.is_closing():
        process.stdin.close()


async def supervise(process, limits, sandbox, sql_events=False):
    """Stream a started process's output, enforce wall and output limits, yield exit.

    sandbox: the one the process runs in. sql_events: turn query records on stdout into
    sql events (see SqlRecords).
    """
    loop = asyncio.get_running_loop()
    started = loop.time()
    deadline = started + limits.wall_seconds
    output_left = limits.output_kb * 1024
    queue = asyncio.Queue()
    pumps = [
        asyncio.create_task(_pump(process.stdout, "stdout", queue)),
        asyncio.create_task(_pump(process.stderr, "stderr", queue)),
    ]
    decoders = {
        name: codecs.getincrementaldecoder("utf-8")(errors="replace")
        for name in ("stdout", "stderr")
    }
    # Enough of stderr's end to recognise Python's MemoryError traceback.
    stderr_tail = collections.deque(maxlen=256)
    records = SqlRecords() if sql_events else None
    reason, truncated, open_streams = None, False, 2
    try:
        while open_streams and reason is None:
            try:
                name, data = await asyncio.wait_for(queue.get(), deadline - loop.time())
            except TimeoutError:
                reason = EXIT_TIMEOUT
                break
            if data is None:
                open_streams -= 1
                text = decoders[name].decode(b"", final=True)
            else:
                if len(data) > output_left:
                    data, reason, truncated = data[:output_left], EXIT_OUTPUT_LIMIT, True
                output_left -= len(data)
                text = decoders[name].decode(data, final=truncated)
            if name == "stderr":
                stderr_tail.extend(text)
            if name == "stdout" and records:
                for event in records.feed(text):
                    yield event
            elif text:
                yield output_event(name, text)
        if records:
            for event in records.feed("", final=True):
                yield event
        if reason is None:
            try:
                await asyncio.wait_for(process.wait(), deadline - loop.time())
            except TimeoutError:
                reason = EXIT_TIMEOUT
        if reason is not None:
            kill(process)
            await process.wait()
        code, signum = sandbox.status(process.returncode)
        wall_ms = int((loop.time() - started) * 1000)
        if reason is None:
            reason = _reason(code, signum, "".join(stderr_tail), wall_ms, limits)
        yield exit_event(reason, wall_ms, code, signum, truncated)
    finally:
        # Runs on normal exit, aclose(), task cancellation and errors alike.
        if process.returncode is None:
            kill(process)
            await process.wait()
        for pump in pumps:
            pump.cancel()
        await asyncio.gather(*pumps, return_exceptions=True)


def _reason(code, signum, stderr_tail, wall_ms, limits):
    if code == 0:
        return EXIT_OK
    # RLIMIT_CPU sends SIGXCPU at the soft limit and SIGKILL a second later (if SIGXCPU is
    # ignored); nothing else in the sandbox sends SIGKILL that soon but the snippet itself.
    if signum == signal.SIGXCPU or (
        signum == signal.SIGKILL and wall_ms >= limits.cpu_seconds * 1000
    ):
        return EXIT_CPU
    lines = stderr_tail.strip().splitlines()
    if code == 1 and lines and lines[-1].startswith("MemoryError"):
        return EXIT_MEMORY
    return EXIT_ERROR
