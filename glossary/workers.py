"""Snippet runs on Channels workers: RUNNER_MODE=workers.

Daphne processes hand each run to `manage.py runworker snippet-runs` processes over the
Redis channel layer, so any number of each can share one Redis:

    reader's socket ── SnippetRunConsumer ── run_on_worker() ──► "snippet-runs"
                                                   ▲                   │ (one worker takes it)
                                     run.events    │                   ▼
                                     run.stopped   └──────────── RunWorkerConsumer
                                                                 drives runner.run_queued()

- run.request {run, code, runtime, client, reply_to, sent}: sent to "snippet-runs"; reply_to
  is a channel of the run's own, so the relay needs nothing from the consumer's dispatch
  loop; client is whose run it is, for the client's fair share of the worker's slots.
- run.events {run, worker, seq, events}: the runner's events in batches (see Outbox), at
  least one a second as a heartbeat. `worker` is the worker's own channel; `seq` lets the
  reader notice a missing batch.
- run.cancel {run, reply_to}: sent to that worker; it kills the run's processes and
  answers run.stopped on the run's reply channel.

A worker takes a run by claiming it in Redis, and renews the claim while the run goes on.
When the reader has heard nothing for a while, the claim tells a worker that is gone (or
never came) from a Daphne process that is only slow to read its messages under load.
The reader never gets silence. When no worker takes the run, or Redis is full or gone
before it starts, an error event says nothing ran; when a started run's worker stops
answering (or Redis goes), an exit event with reason "lost" and a message ends it.
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
# Longer than a request can wait in Redis (the channel layer's expiry); renewed twice a
# second at most while the run goes on, and marked FINISHED at its end.
CLAIM_SECONDS = 120
RENEW_SECONDS = 0.5
RUNNING = b"running"
FINISHED = b"finished"
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


def claim_of(layer, run_id):
    """The Redis connection and key that hold which worker took the run.

    The claim is this module's own use of the Redis layer's connections: a worker makes
    it with SET NX, so a run never runs twice (django/channels_redis#163: readers of a
    shared channel can each get the same message).
    """
    return layer.connection(layer.consistent_hash(run_id)), f"{layer.prefix}claimed:{run_id}"


async def claim_state(layer, run_id):
    """None if no worker took the run; "alive" while its worker renews the claim, or once
    the worker has finished and its last events may still be on their way; else "gone"."""
    connection, key = claim_of(layer, run_id)
    async with connection.pipeline(transaction=False) as pipeline:
        value, left_ms = await pipeline.get(key).pttl(key).execute()
    if value is None:
        return None
    age = CLAIM_SECONDS - left_ms / 1000
    # Finished: its messages wait in Redis until the layer's expiry, however slow we read.
    limit = layer.expiry if value == FINISHED else SILENCE_SECONDS
    return "alive" if age < limit else "gone"


class RunFailed(Exception):
    pass


# The Daphne side ---------------------------------------------------------------------


async def run_on_worker(code, runtime, client=None, limits=None):
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
        "client": client,
        "limits": limits and limits.as_dict(),
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

    replies = Replies(layer, reply_to)
    worker, seq, started = None, 0, None

    def failed(message):
        """Before start nothing ran (an error); after it, the run ends with an exit."""
        if started is None:
            return runner.error_event(message)
        return runner.lost_event(message, round((time.monotonic() - started) * 1000))

    try:
        while True:
            try:
                batch = await next_batch(replies, run_id, picked_up=worker is not None)
            except RunFailed as failure:
                yield failed(str(failure))
                break
            worker = batch["worker"]
            if batch["seq"] != seq:
                yield failed(GAP)
                break
            seq += 1
            for event in batch["events"]:
                if event["type"] == "start":
                    started = time.monotonic()
                yield event
                if event["type"] in ("exit", "error"):
                    return
        if worker:
            # Given up on: should the worker still be there, it need not go on.
            await stop_on_worker(replies, worker, run_id, wait=False)
    except (GeneratorExit, asyncio.CancelledError):
        # The reader pressed Stop or left.
        if worker:
            await stop_on_worker(replies, worker, run_id)
        raise
    finally:
        replies.close()


class Replies:
    """The messages on one run's reply channel.

    Waiting with a timeout never cancels a receive: channels_redis loses the message in
    flight when a receive that is reading for the whole process is cancelled. Only a run
    that ends without its last message (lost, cancel unconfirmed) cancels one, in close().
    """

    def __init__(self, layer, channel):
        self.layer = layer
        self.channel = channel
        self.pending = None

    async def next(self, timeout):
        """The next message, or None after timeout seconds."""
        if self.pending is None:
            self.pending = asyncio.ensure_future(self.layer.receive(self.channel))
        done, _ = await asyncio.wait({self.pending}, timeout=timeout)
        if not done:
            return None
        received, self.pending = self.pending, None
        return received.result()

    def close(self):
        if self.pending is not None:
            self.pending.cancel()


async def next_batch(replies, run_id, picked_up):
    """The run's next batch of events; RunFailed if its worker is gone or never came."""
    try:
        while True:
            batch = await replies.next(SILENCE_SECONDS if picked_up else PICKUP_SECONDS)
            if batch is not None:
                return batch
            state = await claim_state(replies.layer, run_id)
            if state != "alive":
                raise RunFailed(NO_WORKER if state is None and not picked_up else LOST)
            # Alive: this process is only slow to read its messages; wait on.
    except LAYER_ERRORS:
        logger.exception("Lost the channel layer during run %s.", run_id)
        raise RunFailed(UNREACHABLE) from None


async def stop_on_worker(replies, worker, run_id, wait=True):
    """Ask the worker to kill the run and, if wait, wait briefly until it says it has."""
    cancel = {"type": "run.cancel", "run": run_id, "reply_to": replies.channel}
    try:
        await send(replies.layer, worker, cancel)
        if not wait:
            return
        give_up = time.monotonic() + STOP_SECONDS
        while time.monotonic() < give_up:
            # Output the worker sent before it heard of the cancel is dropped here.
            message = await replies.next(give_up - time.monotonic())
            if message and message["type"] == "run.stopped":
                return
    except (ChannelFull, *LAYER_ERRORS):
        pass
    logger.warning("Run %s: worker %s did not confirm the cancel.", run_id, worker)


# The worker side ---------------------------------------------------------------------


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
        code, runtime, reply_to = message["code"], message["runtime"], message["reply_to"]
        task = asyncio.create_task(
            self.serve(
                run_id, code, runtime, reply_to, message.get("client"), message.get("limits")
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

    async def serve(self, run_id, code, runtime, reply_to, client, limits=None):
        outbox = Outbox(self.channel_layer, reply_to, run_id, self.channel_name)
        events = asyncio.Queue()
        producer = asyncio.create_task(produce(code, runtime, events, client, limits))
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


async def produce(code, runtime, events, client, limits=None):
    """Put the run's events on the queue, then None. limits: a dict, or None for the
    settings' limits."""
    started = None
    try:
        limits = limits and runner.Limits(**limits)
        async for event in runner.run_queued(code, runtime, limits, client=client):
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
