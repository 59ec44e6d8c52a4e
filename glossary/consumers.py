import asyncio
import dataclasses
import json
import logging
import signal
import time
from collections import defaultdict, deque
from contextlib import aclosing

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings

from . import playground, runner, workers
from .models import Snippet

MAX_MESSAGE_BYTES = 1024
RUN_FAILED = "The run failed on the server; try again in a minute."

logger = logging.getLogger(__name__)


class RateLimiter:
    """At most SNIPPET_RUNS_PER_MINUTE runs a minute for each client address (this process)."""

    window = 60

    def __init__(self):
        self.starts = defaultdict(deque)

    def allow(self, client):
        now = time.monotonic()
        starts = self.starts[client]
        while starts and now - starts[0] > self.window:
            starts.popleft()
        if len(starts) >= settings.SNIPPET_RUNS_PER_MINUTE:
            return False
        starts.append(now)
        return True


rate_limiter = RateLimiter()


def client_address(scope):
    """The reader's address, which runs and shares are limited by."""
    return (scope.get("client") or ["unknown"])[0]


def message_limit():
    """The largest message: a run message with code of the largest size, escaped."""
    return MAX_MESSAGE_BYTES + 2 * settings.SNIPPET_SHARE_MAX_BYTES


@dataclasses.dataclass(frozen=True)
class Job:
    code: str
    runtime: str
    # A reader's own code runs under the reader limits, and is logged.
    edited: bool = False

    @property
    def limits(self):
        return playground.reader_limits() if self.edited else None


def reader_job(code, runtime):
    """A run of a reader's code, or why it cannot run."""
    if not settings.SNIPPET_READER_CODE:
        return playground.READER_CODE_OFF
    if error := playground.code_error(code):
        return error
    return Job(code, runtime, edited=True)


class SnippetRunConsumer(AsyncWebsocketConsumer):
    """Runs one snippet at a time for one socket and relays the runner's events.

    receive() only validates and starts a task, so a cancel or a disconnect is handled
    while a run streams.
    """

    # Runs on workers answer on channels of their own, so a socket does not listen on the
    # channel layer: a Redis outage then ends a run with an error instead of the socket.
    channel_layer_alias = None

    async def connect(self):
        self.slug = self.scope["url_route"]["kwargs"]["slug"]
        self.task = None
        await self.accept()

    async def disconnect(self, code):
        await self.stop_run()

    async def receive(self, text_data=None, bytes_data=None):
        size = len(text_data.encode()) if bytes_data is None else None
        too_large = (
            f"Messages are JSON text of at most {MAX_MESSAGE_BYTES} bytes; a run message "
            f"may carry code of at most {settings.SNIPPET_SHARE_MAX_BYTES // 1024} KiB."
        )
        if size is None or size > message_limit():
            return await self.send_error(too_large)
        try:
            message = json.loads(text_data)
        except ValueError:
            return await self.send_error("That message is not valid JSON.")
        if not isinstance(message, dict):
            return await self.send_error('Send a JSON object such as {"action": "run"}.')
        if size > MAX_MESSAGE_BYTES and not (message.get("action") == "run" and "code" in message):
            return await self.send_error(too_large)
        match message.get("action"):
            case "run":
                await self.start_run(message)
            case "cancel":
                await self.cancel_run()
            case _:
                await self.send_error('Unknown action: use "run" or "cancel".')

    async def start_run(self, message):
        if self.task and not self.task.done():
            return await self.send_error("This snippet is already running; cancel it first.")
        job = await self.job(message)
        if isinstance(job, str):
            return await self.send_error(job)
        client = client_address(self.scope)
        if not rate_limiter.allow(client):
            return await self.send_error("Too many runs from your address; wait a minute.")
        self.task = asyncio.create_task(self.relay(job, client))

    async def job(self, message):
        """What the run message asks to run (the snippet, or a reader's edit of it), or
        why it cannot run."""
        snippet = await self.find_snippet()
        if snippet is None:
            return f"There is no snippet called {self.slug!r}."
        if not snippet.is_runnable:
            return f"This snippet is display-only: {snippet.display_only_reason}"
        if "code" not in message or message["code"] == snippet.code:
            return Job(snippet.code, snippet.runtime)
        return reader_job(message["code"], snippet.runtime)

    @database_sync_to_async
    def find_snippet(self):
        """The socket's snippet if this user may run it. Closes the connection afterwards,
        which a long-lived socket would otherwise hold (and, pooled, never give back)."""
        user = self.scope.get("user")
        visible = Snippet.objects.visible_to(user) if user else Snippet.objects.published()
        return visible.filter(slug=self.slug).first()

    async def relay(self, job, client):
        self.started = time.monotonic()
        started = ended = False
        outcome = runner.EXIT_CANCELLED
        try:
            # aclosing: a cancelled relay has stopped the run by the time its task is done.
            async with aclosing(self.run_events(job)) as events:
                async for event in events:
                    if event["type"] == "start":
                        self.started, started = time.monotonic(), True
                    ended = event["type"] in ("exit", "error")
                    if ended:
                        outcome = event.get("reason", "refused")
                    await self.send(text_data=json.dumps(event))
        except Exception:
            outcome = "failed"
            logger.exception("A run of %s failed.", self.slug)
        finally:
            if job.edited:
                logger.info(
                    "Reader code run: code %s, runtime %s, client %s, outcome %s, %d ms",
                    playground.code_digest(job.code),
                    job.runtime,
                    client,
                    outcome,
                    round((time.monotonic() - self.started) * 1000),
                )
        if not ended:
            # The reader's panel waits for an end: never leave it waiting.
            if started:
                wall_ms = round((time.monotonic() - self.started) * 1000)
                end = runner.lost_event(RUN_FAILED, wall_ms)
            else:
                end = runner.error_event(RUN_FAILED)
            await self.send(text_data=json.dumps(end))

    def run_events(self, job):
        """The run's events, from this process (RUNNER_MODE=local) or a run worker."""
        if settings.RUNNER_MODE == "workers":
            return workers.run_on_worker(job.code, job.runtime, job.limits)
        return runner.run_queued(job.code, job.runtime, job.limits)

    async def cancel_run(self):
        if not await self.stop_run():
            return await self.send_error("Nothing is running.")
        # A cancelled run cannot report its own end; its processes are gone by now.
        exit_event = {
            "type": "exit",
            "reason": runner.EXIT_CANCELLED,
            "code": None,
            "signal": signal.SIGKILL,
            "wall_ms": round((time.monotonic() - self.started) * 1000),
            "truncated": False,
        }
        await self.send(text_data=json.dumps(exit_event))

    async def stop_run(self):
        """Cancel the run, if any, and wait until its processes are gone."""
        if not self.task or self.task.done():
            return False
        self.task.cancel()
        try:
            await self.task
        except asyncio.CancelledError:
            pass
        return True

    async def send_error(self, message):
        await self.send(text_data=json.dumps({"type": "error", "message": message}))


class PlaygroundRunConsumer(SnippetRunConsumer):
    """Runs readers' code in the runtime the socket names: /ws/play/<runtime>/."""

    async def connect(self):
        self.runtime = self.scope["url_route"]["kwargs"]["runtime"]
        self.slug = f"the {self.runtime} playground"
        self.task = None
        await self.accept()

    async def job(self, message):
        runtimes = [runtime.value for runtime in playground.available_runtimes()]
        if self.runtime not in runtimes:
            return f"There is no runtime {self.runtime!r} here; use one of {', '.join(runtimes)}."
        if "code" not in message:
            return 'Send the code to run: {"action": "run", "code": "print(1)"}.'
        return reader_job(message["code"], self.runtime)
