"""A run from the top: refuse early, take a warm process or start one, hand the code
over, supervise, clean up. Read from the top, a run goes down the package's modules once:
runtimes, sandbox, pool, supervise; slots in front of all of it."""

import asyncio
import json
import logging
import uuid
from collections.abc import AsyncIterator

from . import runtimes, sandbox
from .events import error_event, lost_event, start_event
from .limits import Limits
from .pool import warm_pool
from .slots import Busy, default_slots
from .supervise import kill, supervise

LANGUAGES = ("python", "sql")

logger = logging.getLogger(__name__)


def unavailable(runtime):
    """Why runs of runtime cannot happen on this server, or None: for the snippet page
    and verifysnippets. Blocking the first time (it probes the sandbox)."""
    try:
        kind = runtimes.get(runtime)
    except runtimes.RunRefused as refused:
        return str(refused)
    return kind.unavailable(sandbox.available())


async def run(
    code: str,
    runtime: str,
    limits: Limits | None = None,
    language: str = "python",
    setup: str | None = None,
    probes: list | None = None,
) -> AsyncIterator[dict]:
    """Run code and yield its events (see events.py) as they happen.

    language: "python", or "sql" to run the code statement by statement against the
    run's database (see child.run_sql), each result set a table event.
    setup, probes: an exercise's run (child.run_check): setup, in the code's language,
    runs first, and each probe ({"language", "code", "explain"}) after; phase events
    tell their events apart.

    A generator that is closed or whose task is cancelled cannot yield any more; it kills
    the run's processes on the way out, and its driver reports cancelled_event() itself if
    it wants to.
    """
    try:
        kind = runtimes.get(runtime)
    except runtimes.RunRefused as refused:
        yield error_event(str(refused))
        return
    if language not in LANGUAGES:
        yield error_event(f"Unknown language {language!r}; expected one of {', '.join(LANGUAGES)}.")
        return
    limits = limits or Limits.from_settings(kind.name)
    # The first call probes bubblewrap with a subprocess, so it goes to a thread; later
    # ones read the answer (a thread hop costs a warm run's first output a millisecond).
    if sandbox.probed():
        box_class = sandbox.available()
    else:
        box_class = await asyncio.to_thread(sandbox.available)
    if box_class is None:
        yield error_event(
            "No sandbox is available on this server (bubblewrap with namespaces is needed), "
            "so snippets cannot run here."
        )
        return
    if problem := kind.unavailable(box_class):
        yield error_event(problem)
        return
    try:
        given = await kind.given()
    except runtimes.RunRefused as refused:
        yield error_event(str(refused))
        return

    run_id = uuid.uuid4().hex
    process = None
    pool = warm_pool() if box_class.can_warm else None
    # Runs with other limits than the settings' (tests, mostly) start cold.
    if pool is not None and limits == Limits.from_settings(kind.name):
        process = pool.take(kind.name, limits)
    box = box_class()
    try:
        if process is not None:
            # A warm process starts on the code while the start event goes out.
            hand_over(process, code, language, setup, probes)
        yield start_event(run_id, box.name, limits.as_dict())
        if process is None:
            try:
                process = await start_process(kind, box, pool, limits, given)
            except OSError:
                logger.exception("Could not start the process of run %s", run_id)
                yield lost_event("The run could not start on this server.", 0)
                return
            hand_over(process, code, language, setup, probes)
        records = kind.sql_events or language == "sql" or setup is not None or bool(probes)
        async for event in supervise(process, limits, box, records):
            yield event
    finally:
        if process is not None and process.returncode is None:
            kill(process)
            await process.wait()
        box.close()


async def start_process(kind, box, pool, limits, given):
    """A process for a run that found no warm one: forked by the runtime's fork server,
    or started in a sandbox of its own (OSError if it cannot start)."""
    if pool is not None and (process := await pool.fork(kind, limits, given)) is not None:
        return process
    return await kind.start(box, limits, given)


def hand_over(process, code, language, setup, probes):
    """Write the run's code to its process, which waits for it (child.receive)."""
    # The transport writes in the background and closes stdin (EOF) once it has.
    if setup is None and not probes:
        process.stdin.write(f"{language}\n{code}".encode())
    else:
        job = {"language": language, "setup": setup or "", "code": code}
        process.stdin.write(b"check\n" + json.dumps({**job, "probes": probes or []}).encode())
    process.stdin.close()


async def run_queued(
    code, runtime, limits=None, slots=None, client=None, language="python", **exercise
) -> AsyncIterator[dict]:
    """run(), after waiting for a free slot (queued events) or refusing when busy.

    client: whose run it is (an address), for the client's fair share of the slots.
    exercise: run()'s setup and probes.
    """
    slots = slots or default_slots()
    try:
        ticket = slots.hold(client)
    except Busy as busy:
        yield error_event(str(busy))
        return
    async with ticket:
        async for event in ticket.wait():
            yield event
        async for event in run(code, runtime, limits, language, **exercise):
            yield event


class LocalRuns:
    """Runs in this process, in its run slots (SNIPPET_RUN_BACKEND's default)."""

    def run(self, code, runtime, client=None, language="python", limits=None, **exercise):
        """The run's events; closing the generator stops the run. limits: None for the
        runtime's own. exercise: run()'s setup and probes."""
        return run_queued(code, runtime, limits, client=client, language=language, **exercise)
