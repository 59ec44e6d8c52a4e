"""Snippet runs on Channels workers: RUNNER_MODE=workers.

Daphne processes hand each run to `manage.py runworker snippet-runs` processes over the
Redis channel layer, so any number of each can share one Redis:

    reader's socket ── SnippetRunConsumer ── run_on_worker() ──► "snippet-runs"
                                                   ▲                   │ (one worker takes it)
                                     run.events    │                   ▼
                                     run.stopped   └──────────── RunWorkerConsumer
                                                                 drives runner.run_queued()

- run.request {run, code, runtime, reply_to, sent}: sent to "snippet-runs"; reply_to is a
  channel of the run's own, so the relay needs nothing from the consumer's dispatch loop.
- run.events {run, worker, seq, events}: the runner's events in batches (at most every
  50 ms or 16 KiB; start, exit and the first output at once), and an empty batch at least
  every second as a heartbeat. `worker` is the worker's own channel.
- run.cancel {run, reply_to}: sent to that worker; it kills the run's processes and
  answers run.stopped {run}.

The reader gets an error event, never silence, when no worker takes the run, when its
worker stops answering, or when Redis is full or gone.
"""

import asyncio
import logging
import time
import uuid

from channels.consumer import AsyncConsumer
from channels.exceptions import ChannelFull
from channels.layers import get_channel_layer
from redis.exceptions import RedisError

from . import runner

RUNS_CHANNEL = "snippet-runs"
FLUSH_SECONDS = 0.05
FLUSH_BYTES = 16 * 1024
HEARTBEAT_SECONDS = 1
# The reader's patience: for a worker to take the run, then between two messages.
PICKUP_SECONDS = 5
SILENCE_SECONDS = 3
# A request this old has been given up on by its reader (allowing for clock skew).
STALE_SECONDS = PICKUP_SECONDS - 1
# How long a send may wait for Redis, and for room in a full channel.
SEND_SECONDS = 2
FULL_PATIENCE_SECONDS = 2
STOP_SECONDS = 2
# Longer than a request can wait in Redis (the channel layer's expiry).
CLAIM_SECONDS = 60
# TimeoutError (a silent Redis) is an OSError, like a refused connection.
LAYER_ERRORS = (OSError, RedisError)

NO_WORKER = "No run worker is available; try again in a minute."
LOST = "The run was lost: its worker stopped answering."
UNREACHABLE = "The run workers cannot be reached right now; try again in a minute."
QUEUE_FULL = "Too many runs are waiting for a worker; try again in a minute."
GAP = "Part of the run's output was lost on its way from the worker."
FAILED = "The run failed on its worker."

logger = logging.getLogger(__name__)


async def send(layer, channel, message, patience=0):
    """layer.send() that gives up on a silent Redis and retries a full channel a while."""
    give_up = time.monotonic() + patience
    while True:
        try:
            async with asyncio.timeout(SEND_SECONDS):
                return await layer.send(channel, message)
        except ChannelFull:
            if time.monotonic() >= give_up:
                raise
            await asyncio.sleep(FLUSH_SECONDS)


# The Daphne side ---------------------------------------------------------------------


async def run_on_worker(code, runtime):
    """Hand a run to a run worker and yield its events as they arrive.

    The same events and contract as runner.run_queued(): closing the generator (or
    cancelling its task) stops the run, and returns once the worker has killed it.
    """
    layer = get_channel_layer()
    run_id = uuid.uuid4().hex
    reply_to = await layer.new_channel()
    request = {
        "type": "run.request",
        "run": run_id,
        "code": code,
        "runtime": runtime,
        "reply_to": reply_to,
        "sent": time.time(),
    }
    try:
        await send(layer, RUNS_CHANNEL, request)
    except ChannelFull:
        yield runner.error_event(QUEUE_FULL)
        return
    except LAYER_ERRORS:
        logger.exception("Could not hand run %s to a worker.", run_id)
        yield runner.error_event(UNREACHABLE)
        return

    worker, seq = None, 0
    try:
        while True:
            try:
                async with asyncio.timeout(SILENCE_SECONDS if worker else PICKUP_SECONDS):
                    batch = await layer.receive(reply_to)
            except TimeoutError:
                yield runner.error_event(LOST if worker else NO_WORKER)
                break
            except LAYER_ERRORS:
                logger.exception("Lost the channel layer during run %s.", run_id)
                yield runner.error_event(UNREACHABLE)
                break
            worker = batch["worker"]
            if batch["seq"] != seq:
                yield runner.error_event(GAP)
                break
            seq += 1
            for event in batch["events"]:
                yield event
                if event["type"] in ("exit", "error"):
                    return
    except (GeneratorExit, asyncio.CancelledError):
        # The reader pressed Stop or left.
        if worker:
            await stop_on_worker(layer, worker, run_id, reply_to)
        raise
    if worker:
        # Given up on: should the worker still be there, it need not go on.
        await stop_on_worker(layer, worker, run_id, reply_to, wait=False)


async def stop_on_worker(layer, worker, run_id, reply_to, wait=True):
    """Ask the worker to kill the run and, if wait, wait briefly until it says it has."""
    try:
        await send(layer, worker, {"type": "run.cancel", "run": run_id, "reply_to": reply_to})
        if not wait:
            return
        async with asyncio.timeout(STOP_SECONDS):
            # Output the worker sent before it heard of the cancel is dropped here.
            while (await layer.receive(reply_to))["type"] != "run.stopped":
                pass
    except (ChannelFull, *LAYER_ERRORS):
        logger.warning("Run %s: worker %s did not confirm the cancel.", run_id, worker)


# The worker side ---------------------------------------------------------------------


class Outbox:
    """A run's events on their way to its reader, sent in batches."""

    def __init__(self, layer, reply_to, run_id, worker):
        self.layer = layer
        self.reply_to = reply_to
        self.header = {"type": "run.events", "run": run_id, "worker": worker}
        self.seq = 0
        self.events = []
        self.size = 0
        self.urgent = False
        self.output_seen = False
        self.oldest = self.last_sent = time.monotonic()

    def add(self, event):
        output = event["type"] in ("stdout", "stderr")
        if output and self.events and self.events[-1]["type"] == event["type"]:
            # One event per stream and batch: fewer, larger WebSocket frames.
            last = self.events[-1]
            self.events[-1] = {**last, "text": last["text"] + event["text"]}
        else:
            self.events.append(event)
        if len(self.events) == 1:
            self.oldest = time.monotonic()
        self.size += len(event.get("text", ""))
        self.urgent |= not output or not self.output_seen
        self.output_seen |= output

    def until_due(self):
        """Seconds until the next batch must go (0: now)."""
        if self.urgent or self.size >= FLUSH_BYTES:
            return 0
        if self.events:
            return max(0, self.oldest + FLUSH_SECONDS - time.monotonic())
        return max(0, self.last_sent + HEARTBEAT_SECONDS - time.monotonic())

    async def flush(self):
        message = {**self.header, "seq": self.seq, "events": self.events}
        self.seq += 1
        self.events, self.size, self.urgent = [], 0, False
        await send(self.layer, self.reply_to, message, patience=FULL_PATIENCE_SECONDS)
        self.last_sent = time.monotonic()


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
            self.serve(run_id, message["code"], message["runtime"], message["reply_to"])
        )
        self.runs[run_id] = task
        task.add_done_callback(lambda _: self.runs.pop(run_id, None))

    async def claim(self, run_id):
        """Whether this worker is the first to take the run.

        channels_redis can hand one message of a shared channel to two readers: each puts
        back what the others have in flight (django/channels_redis#163). The claim keeps a
        run from running twice; it can go when that issue is fixed.
        """
        layer = self.channel_layer
        connection = layer.connection(layer.consistent_hash(run_id))
        key = f"{layer.prefix}claimed:{run_id}"
        return await connection.set(key, self.channel_name, nx=True, ex=CLAIM_SECONDS)

    async def run_cancel(self, message):
        if task := self.runs.get(message["run"]):
            task.cancel()
            # The run's generator has killed its processes once the task is done.
            await asyncio.gather(task, return_exceptions=True)
        try:
            await send(self.channel_layer, message["reply_to"], {"type": "run.stopped"})
        except (ChannelFull, *LAYER_ERRORS) as error:
            logger.warning("Could not confirm the cancel of run %s: %r", message["run"], error)

    async def serve(self, run_id, code, runtime, reply_to):
        outbox = Outbox(self.channel_layer, reply_to, run_id, self.channel_name)
        events = asyncio.Queue()
        producer = asyncio.create_task(produce(code, runtime, events))
        try:
            await outbox.flush()  # tells the reader at once which worker took the run
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
        except (ChannelFull, *LAYER_ERRORS) as error:
            logger.warning("Stopped run %s: its reader cannot be reached (%r).", run_id, error)
        finally:
            producer.cancel()
            await asyncio.gather(producer, return_exceptions=True)


async def produce(code, runtime, events):
    """Put the run's events on the queue, then None."""
    try:
        async for event in runner.run_queued(code, runtime):
            events.put_nowait(event)
    except Exception:
        logger.exception("A run failed on this worker.")
        events.put_nowait(runner.error_event(FAILED))
    finally:
        events.put_nowait(None)
