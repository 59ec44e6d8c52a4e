"""What Daphne's side and the run workers agree on: the channel, the messages' timing,
the texts a reader sees when a run fails in between, the claim that says which worker
took a run, and the workers' presence (see the package's docstring for the messages)."""

import asyncio
import time

from channels.exceptions import ChannelFull
from redis.exceptions import RedisError

RUNS_CHANNEL = "snippet-runs"
FLUSH_SECONDS = 0.05
FLUSH_BYTES = 16 * 1024
HEARTBEAT_SECONDS = 1
# The reader's patience: for a worker to take the run when none is there, while every
# worker is busy, then between two messages.
PICKUP_SECONDS = 5
QUEUE_SECONDS = 30
SILENCE_SECONDS = 3
# A waiting reader looks at the queue this often: its position, and whether workers live.
QUEUE_POLL_SECONDS = 1
# A request this old has been given up on by its reader (allowing for clock skew).
STALE_SECONDS = QUEUE_SECONDS - 1
# A worker says it is there every HEARTBEAT_SECONDS; one unheard of this long is gone.
PRESENCE_SECONDS = 3
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
# Set by a reader who stopped waiting before any worker took the run: none will.
WITHDRAWN = b"withdrawn"
# TimeoutError (a silent Redis) is an OSError, like a refused connection.
LAYER_ERRORS = (OSError, RedisError)

NO_WORKER = "No run worker is available; try again in a minute."
BUSY = "Every run worker has been busy for a while; try again in a minute."
LOST = "The run was lost: its worker stopped answering."
UNREACHABLE = "The run workers cannot be reached right now; try again in a minute."
QUEUE_FULL = "Too many runs are waiting for a worker; try again in a minute."
GAP = "Part of the run's output was lost on its way from the worker."
FAILED = "The run failed on its worker."


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


async def withdraw(layer, run_id):
    """Whether the run was withdrawn before any worker took it (else one has)."""
    connection, key = claim_of(layer, run_id)
    async with asyncio.timeout(SEND_SECONDS):
        return bool(await connection.set(key, WITHDRAWN, nx=True, ex=CLAIM_SECONDS))


def presence_of(layer):
    """The Redis connection and sorted set of the workers listening on RUNS_CHANNEL, each
    scored by when it last said so."""
    return layer.connection(layer.consistent_hash(RUNS_CHANNEL)), f"{layer.prefix}run-workers"


async def advertise(layer, name):
    """Say, until cancelled, that the worker called name is listening."""
    connection, key = presence_of(layer)
    try:
        while True:
            now = time.time()
            try:
                async with asyncio.timeout(SEND_SECONDS):
                    async with connection.pipeline(transaction=False) as pipeline:
                        pipeline.zadd(key, {name: now})
                        pipeline.zremrangebyscore(key, 0, now - 10 * PRESENCE_SECONDS)
                        pipeline.expire(key, 10 * PRESENCE_SECONDS)
                        await pipeline.execute()
            except LAYER_ERRORS:
                pass  # Readers then count this worker gone; it is back on the next beat.
            await asyncio.sleep(HEARTBEAT_SECONDS)
    finally:
        try:
            async with asyncio.timeout(SEND_SECONDS):
                await connection.zrem(key, name)
        except LAYER_ERRORS:
            pass


async def workers_listening(layer):
    """How many workers have said they are listening within PRESENCE_SECONDS."""
    connection, key = presence_of(layer)
    return await connection.zcount(key, time.time() - PRESENCE_SECONDS, "+inf")


async def queue_position(layer, sent):
    """A request's place among those waiting on RUNS_CHANNEL (1: next), sent being the
    time it was sent at: the channel layer scores each message by when it was sent."""
    connection = layer.connection(layer.consistent_hash(RUNS_CHANNEL))
    return 1 + await connection.zcount(layer.prefix + RUNS_CHANNEL, "-inf", f"({sent}")
