"""The worker side: `manage.py runworker snippet-runs` takes runs off the shared channel,
drives the runner and sends the events back in batches."""

import asyncio
import logging
import time

from channels.consumer import AsyncConsumer
from channels.exceptions import ChannelFull

from glossary import runner

from .protocol import (
    CLAIM_SECONDS,
    FAILED,
    FINISHED,
    FLUSH_BYTES,
    FLUSH_SECONDS,
    FULL_PATIENCE_SECONDS,
    HEARTBEAT_SECONDS,
    LAYER_ERRORS,
    RENEW_SECONDS,
    RUNNING,
    SEND_SECONDS,
    STALE_SECONDS,
    claim_of,
    send,
)

logger = logging.getLogger(__name__)


class Outbox:
    """A run's events on their way to its reader, in batches.

    A batch goes at once for start, exit and error and for the first event of each other
    kind; 50 ms after output (or at 16 KiB of it); else with the heartbeat, once a second.
    The first batch, empty if need be, goes within 50 ms: it tells the reader which worker
    took the run. A queue position that keeps changing only goes as its latest value.
    """

    def __init__(self, layer, reply_to, run_id, worker):
        self.layer = layer
        self.reply_to = reply_to
        self.run_id = run_id
        self.header = {"type": "run.events", "run": run_id, "worker": worker}
        self.seq = 0
        self.events = []
        self.size = 0
        self.seen = set()
        self.last_sent = self.renewed = time.monotonic()
        self.due = self.last_sent + FLUSH_SECONDS

    async def renew(self, value):
        connection, key = claim_of(self.layer, self.run_id)
        async with asyncio.timeout(SEND_SECONDS):
            await connection.set(key, value, ex=CLAIM_SECONDS)
        self.renewed = time.monotonic()

    def add(self, event):
        kind = event["type"]
        last = self.events[-1] if self.events else {"type": None}
        if kind == last["type"] and kind in ("stdout", "stderr"):
            # One event per stream and batch: fewer, larger WebSocket frames.
            self.events[-1] = {**last, "text": last["text"] + event["text"]}
        elif kind == last["type"] == "queued":
            self.events[-1] = event
        else:
            self.events.append(event)
        self.size += len(event.get("text", ""))
        now = time.monotonic()
        if kind not in self.seen or kind in ("start", "exit", "error") or self.size >= FLUSH_BYTES:
            self.due = now
        elif kind == "queued":
            self.due = min(self.due, self.last_sent + HEARTBEAT_SECONDS)
        else:
            self.due = min(self.due, now + FLUSH_SECONDS)
        self.seen.add(kind)

    def until_due(self):
        """Seconds until the next batch must go (0: now)."""
        return max(0, self.due - time.monotonic())

    async def flush(self):
        if time.monotonic() - self.renewed >= RENEW_SECONDS:
            # Before the send: a reader that hears nothing finds the claim as old or older.
            await self.renew(RUNNING)
        message = {**self.header, "seq": self.seq, "events": self.events}
        self.seq += 1
        self.events, self.size = [], 0
        await send(self.layer, self.reply_to, message, patience=FULL_PATIENCE_SECONDS)
        self.last_sent = time.monotonic()
        self.due = self.last_sent + HEARTBEAT_SECONDS


class RunWorkerConsumer(AsyncConsumer):
    """Runs snippets for Daphne processes: `manage.py runworker snippet-runs`.

    Each worker process has one instance: it takes requests off the shared snippet-runs
    channel and cancels on its own channel. Every run is a task driving
    runner.run_queued(), so this worker's run slots and queue apply.
    """

    def __init__(self):
        self.runs = {}

    async def run_request(self, message):
        run_id = message["run"]
        if time.time() - message["sent"] > STALE_SECONDS:
            logger.warning("Dropped run %s: its reader stopped waiting for a worker.", run_id)
            return
        try:
            if not await self.claim(run_id):
                return
        except LAYER_ERRORS:
            logger.exception("Could not claim run %s.", run_id)
            return
        logger.info("Took run %s", run_id)
        task = asyncio.create_task(
            self.serve(
                run_id,
                message["code"],
                message["runtime"],
                message.get("language", "python"),
                message["reply_to"],
                message.get("client"),
                message.get("limits"),
                {"setup": message.get("setup"), "probes": message.get("probes")},
            )
        )
        self.runs[run_id] = task
        task.add_done_callback(lambda _: self.runs.pop(run_id, None))

    async def claim(self, run_id):
        """Whether this worker is the first to take the run (see claim_of)."""
        connection, key = claim_of(self.channel_layer, run_id)
        async with asyncio.timeout(SEND_SECONDS):
            return await connection.set(key, RUNNING, nx=True, ex=CLAIM_SECONDS)

    async def run_cancel(self, message):
        if task := self.runs.get(message["run"]):
            task.cancel()
            # The run's generator has killed its processes once the task is done.
            await asyncio.gather(task, return_exceptions=True)
        try:
            await send(self.channel_layer, message["reply_to"], {"type": "run.stopped"})
        except (ChannelFull, *LAYER_ERRORS) as error:
            logger.warning("Could not confirm the cancel of run %s: %r", message["run"], error)

    async def serve(
        self, run_id, code, runtime, language, reply_to, client, limits=None, exercise=None
    ):
        outbox = Outbox(self.channel_layer, reply_to, run_id, self.channel_name)
        events = asyncio.Queue()
        run = produce(code, runtime, language, events, client, limits, **(exercise or {}))
        producer = asyncio.create_task(run)
        try:
            while True:
                if outbox.until_due() == 0:
                    await outbox.flush()
                try:
                    async with asyncio.timeout(outbox.until_due()):
                        event = await events.get()
                except TimeoutError:
                    continue
                if event is None:
                    break
                outbox.add(event)
            if outbox.events:
                await outbox.flush()
            await outbox.renew(FINISHED)
        except (ChannelFull, *LAYER_ERRORS) as error:
            logger.warning("Stopped run %s: its reader cannot be reached (%r).", run_id, error)
        finally:
            producer.cancel()
            await asyncio.gather(producer, return_exceptions=True)


async def produce(code, runtime, language, events, client, limits=None, **exercise):
    """Put the run's events on the queue, then None. limits: a dict (a reader's own code),
    or None for the runtime's limits. exercise: run()'s setup and probes."""
    started = None
    try:
        limits = limits and runner.Limits(**limits)
        runs = runner.run_queued(
            code, runtime, limits, client=client, language=language, **exercise
        )
        async for event in runs:
            if event["type"] == "start":
                started = time.monotonic()
            events.put_nowait(event)
    except Exception:
        logger.exception("A run failed on this worker.")
        if started is None:
            events.put_nowait(runner.error_event(FAILED))
        else:
            wall_ms = round((time.monotonic() - started) * 1000)
            events.put_nowait(runner.lost_event(FAILED, wall_ms))
    finally:
        events.put_nowait(None)
