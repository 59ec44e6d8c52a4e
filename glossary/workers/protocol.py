"""What Daphne's side and the run workers agree on: the channel, the messages' timing,
the texts a reader sees when a run fails in between, and the claim that says which
worker took a run (see the package's docstring for the messages)."""

import asyncio
import time

from channels.exceptions import ChannelFull
from redis.exceptions import RedisError

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
