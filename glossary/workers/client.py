"""The Daphne side of runs on workers: hand a run over, relay its events, stop it."""

import asyncio
import logging
import time
import uuid

from channels.exceptions import ChannelFull
from channels.layers import get_channel_layer

from glossary.runner import error_event, lost_event

from .protocol import (
    GAP,
    LAYER_ERRORS,
    LOST,
    NO_WORKER,
    PICKUP_SECONDS,
    QUEUE_FULL,
    RUNS_CHANNEL,
    SILENCE_SECONDS,
    STOP_SECONDS,
    UNREACHABLE,
    claim_state,
    send,
)

logger = logging.getLogger(__name__)


class RunFailed(Exception):
    pass


class WorkerRuns:
    """Runs on `manage.py runworker snippet-runs` processes over the channel layer."""

    def run(self, code, runtime, client=None, language="python", limits=None, **exercise):
        """The run's events; closing the generator stops the run on its worker."""
        return run_on_worker(code, runtime, client, language, limits, **exercise)


async def run_on_worker(
    code, runtime, client=None, language="python", limits=None, setup=None, probes=None
):
    """Hand a run to a run worker and yield its events as they arrive.

    The same events and contract as runner.run_queued(): closing the generator (or
    cancelling its task) stops the run, and returns once the worker has killed it.
    setup, probes: an exercise's run (see runner.run).
    """
    layer = get_channel_layer()
    run_id = uuid.uuid4().hex
    reply_to = await layer.new_channel()
    request = {
        "type": "run.request",
        "run": run_id,
        "code": code,
        "runtime": runtime,
        "language": language,
        "setup": setup,
        "probes": probes,
        "limits": limits and limits.as_dict(),
        "client": client,
        "reply_to": reply_to,
        "sent": time.time(),
    }
    try:
        await send(layer, RUNS_CHANNEL, request)
    except ChannelFull:
        yield error_event(QUEUE_FULL)
        return
    except LAYER_ERRORS:
        logger.exception("Could not hand run %s to a worker.", run_id)
        yield error_event(UNREACHABLE)
        return

    replies = Replies(layer, reply_to)
    worker, seq, started = None, 0, None

    def failed(message):
        """Before start nothing ran (an error); after it, the run ends with an exit."""
        if started is None:
            return error_event(message)
        return lost_event(message, round((time.monotonic() - started) * 1000))

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
