import asyncio
import dataclasses
import ipaddress
import json
import logging
import time
from collections import deque
from contextlib import aclosing
from importlib import import_module
from types import SimpleNamespace

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings
from django.contrib import auth
from django.db import DatabaseError
from django.utils.module_loading import import_string

from . import checking, playground, runner
from .models import Exercise, Snippet

MAX_MESSAGE_BYTES = 1024
# A reader rarely earns an error. A socket answered with more than ERROR_BURST of them
# (given back at ERRORS_PER_SECOND) is flooding: it gets no more answers and is closed.
ERROR_BURST = 10
ERRORS_PER_SECOND = 0.5
# 1008 (policy violation) in the range an application may send: autobahn, under Daphne,
# refuses every code but 1000 and 3000-4999 from the server side.
POLICY_VIOLATION = 4008
# More unread messages than a reader could send by hand, and more output than a reader
# leaves unread, by far (see BacklogGuard).
MAX_BACKLOG = 64
MAX_UNSENT_BYTES = 1024 * 1024

# A published snippet looked up ahead of runs (as its socket opens, and after a run)
# serves each run while that lookup is this recent, so a run waits for no query.
LOOKAHEAD_SECONDS = 5

RUN_FAILED = "The run failed on the server; try again in a minute."
RUN_STOPPED = "Stopped."

logger = logging.getLogger(__name__)


def client_key(scope):
    """Whom the rate limit and run shares count: the client's address (see
    glossary.proxies), an IPv6 one by its /64, which one subscriber usually holds whole."""
    host = (scope.get("client") or ["unknown"])[0]
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host
    if address.version == 6:
        if address.ipv4_mapped:
            return str(address.ipv4_mapped)
        return str(ipaddress.ip_network(f"{address}/64", strict=False))
    return str(address)


class RateLimiter:
    """At most SNIPPET_RUNS_PER_MINUTE runs a minute for each client (this process).

    Clients idle for a window are forgotten, so memory follows the recent clients only.
    """

    def __init__(self, window=60):
        self.window = window
        self.starts = {}
        self.swept = time.monotonic()

    def allow(self, client):
        now = time.monotonic()
        if now - self.swept > self.window:
            self.forget_idle(now)
        starts = self.starts.setdefault(client, deque())
        while starts and now - starts[0] > self.window:
            starts.popleft()
        if len(starts) >= settings.SNIPPET_RUNS_PER_MINUTE:
            return False
        starts.append(now)
        return True

    def forget_idle(self, now):
        self.starts = {
            client: starts
            for client, starts in self.starts.items()
            if starts and now - starts[-1] <= self.window
        }
        self.swept = now


rate_limiter = RateLimiter()


class Allowance:
    """A token bucket: spend() says whether the socket is still within its allowance."""

    def __init__(self, burst, per_second):
        self.burst = self.left = burst
        self.per_second = per_second
        self.updated = time.monotonic()

    def spend(self, amount=1):
        now = time.monotonic()
        self.left = min(self.burst, self.left + (now - self.updated) * self.per_second)
        self.updated = now
        self.left -= amount
        return self.left >= 0


def message_limit():
    """The largest message: a run message with code of the largest size, escaped."""
    return MAX_MESSAGE_BYTES + 2 * settings.SNIPPET_SHARE_MAX_BYTES


@dataclasses.dataclass(frozen=True)
class Job:
    code: str
    runtime: str
    language: str = "python"
    # A reader's own code runs under the reader limits, and is logged.
    edited: bool = False
    # An answer to an exercise runs on its data; checked, it ends with a verdict.
    exercise: checking.Spec | None = None
    checked: bool = False

    @property
    def limits(self):
        return playground.reader_limits(self.runtime) if self.edited else None

    @property
    def last_events(self):
        """The events that end what the job streams."""
        return ("verdict", "error") if self.checked else ("exit", "error")


def reader_job(code, runtime, language="python"):
    """A run of a reader's code, or why it cannot run."""
    if not settings.SNIPPET_READER_CODE:
        return playground.READER_CODE_OFF
    if error := playground.code_error(code):
        return error
    return Job(code, runtime, language, edited=True)


class SnippetRunConsumer(AsyncWebsocketConsumer):
    """Runs one snippet at a time for one socket and relays the runner's events.

    receive() only validates and starts a task, so a cancel or a disconnect is handled
    while a run streams.
    """

    # Runs on workers answer on channels of their own, so a socket does not listen on the
    # channel layer: a Redis outage then ends a run with an error instead of the socket.
    channel_layer_alias = None
    # The actions that carry code, and the message that lists every action.
    code_actions = ("run",)
    unknown_action = 'Unknown action: use "run" or "cancel".'
    # Whether the socket looks its snippet up ahead of each run (see LOOKAHEAD_SECONDS).
    looks_ahead = True

    async def connect(self):
        self.slug = self.scope["url_route"]["kwargs"]["slug"]
        await self.open()

    async def open(self):
        self.task = None
        self.errors = Allowance(ERROR_BURST, ERRORS_PER_SECOND)
        self.flooded = False
        self.ahead = None
        await self.accept()
        self.look_ahead()

    async def disconnect(self, code):
        await self.stop_run()
        if self.ahead:
            self.ahead[0].cancel()

    async def receive(self, text_data=None, bytes_data=None):
        if self.flooded:
            return  # sent before the close; nothing more is answered
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
        action = message.get("action")
        carries_code = action in self.code_actions and "code" in message
        if size > MAX_MESSAGE_BYTES and not carries_code:
            return await self.send_error(too_large)
        if action == "cancel":
            await self.cancel_run()
        elif action in self.code_actions:
            await self.start_run(message)
        else:
            await self.send_error(self.unknown_action)

    async def start_run(self, message):
        if self.task and not self.task.done():
            return await self.send_error("This snippet is already running; cancel it first.")
        try:
            job = await self.job(message)
        except DatabaseError:
            logger.exception("Could not look up snippet %r", self.slug)
            return await self.send_error(
                "The site's database cannot be reached right now; try again in a minute."
            )
        if isinstance(job, str):
            return await self.send_error(job)
        client = client_key(self.scope)
        if not rate_limiter.allow(client):
            return await self.send_error("Too many runs from your address; wait a minute.")
        self.task = asyncio.create_task(self.relay(job, client))

    async def job(self, message):
        """What the run message asks to run (the snippet, or a reader's edit of it), or
        why it cannot run."""
        snippet = await self.published_ahead() or await self.find_snippet()
        if snippet is None:
            return f"There is no snippet called {self.slug!r}."
        if not snippet.is_runnable:
            return f"This snippet is display-only: {snippet.display_only_reason}"
        if "code" not in message or message["code"] == snippet.code:
            return Job(snippet.code, snippet.runtime, snippet.language)
        return reader_job(message["code"], snippet.runtime, snippet.language)

    @database_sync_to_async
    def find_snippet(self):
        """The socket's snippet if this user may run it. Closes the connection afterwards,
        which a long-lived socket would otherwise hold (and, pooled, never give back)."""
        user = self.current_user()
        visible = Snippet.objects.visible_to(user) if user else Snippet.objects.published()
        return visible.filter(slug=self.slug).first()

    def look_ahead(self):
        """Look the snippet up for the next runs, if it is published (a draft's
        visibility depends on the session as of the run, so drafts are not), unless a
        lookup made in the first half of LOOKAHEAD_SECONDS is still there to serve."""
        if not self.looks_ahead:
            return
        if self.ahead and time.monotonic() - self.ahead[1] < LOOKAHEAD_SECONDS / 2:
            return
        self.ahead = asyncio.create_task(self.find_published()), time.monotonic()

    async def find_published(self):
        try:
            return await database_sync_to_async(
                Snippet.objects.published().filter(slug=self.slug).first
            )()
        except DatabaseError:
            return None  # the run looks it up again, and says why it cannot

    async def published_ahead(self):
        """The published snippet looked up ahead of this run if that is recent, or None."""
        if self.ahead is None:
            return None
        lookup, since = self.ahead
        if time.monotonic() - since > LOOKAHEAD_SECONDS:
            lookup.cancel()
            self.ahead = None
            return None
        return await lookup

    def current_user(self):
        """The session's user as of now, not as of the handshake: a curator who has logged
        out (or whose session expired) no longer runs drafts on a socket left open."""
        session = self.scope.get("session")
        if session is None:
            return None
        engine = import_module(settings.SESSION_ENGINE)
        fresh = SimpleNamespace(session=engine.SessionStore(session.session_key))
        return auth.get_user(fresh)

    async def relay(self, job, client):
        self.started = time.monotonic()
        self.job_running, self.exited = job, False
        started = ended = False
        outcome = runner.EXIT_CANCELLED
        try:
            # aclosing: a cancelled relay has stopped the run by the time its task is done.
            async with aclosing(self.run_events(job, client)) as events:
                async for event in events:
                    if event["type"] == "start":
                        self.started, started = time.monotonic(), True
                    self.exited = self.exited or event["type"] == "exit"
                    ended = event["type"] in job.last_events
                    if ended:
                        outcome = event_outcome(event)
                    await self.send(text_data=runner.encode(event))
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
            await self.send_ends(started, RUN_FAILED)
        self.look_ahead()

    async def send_ends(self, started, message):
        """End what the job streamed: its run with an exit (or an error if it never
        started) unless it has ended already, and a check with a verdict."""
        job = self.job_running
        if not started:
            end = runner.error_event(message)
        elif self.exited:
            end = None
        elif message == RUN_STOPPED:
            # A cancelled run cannot report its own end; its processes are gone by now.
            end = runner.cancelled_event(round((time.monotonic() - self.started) * 1000))
        else:
            end = runner.lost_event(message, round((time.monotonic() - self.started) * 1000))
        if end is not None:
            await self.send(text_data=runner.encode(end))
        if started and job.checked:
            await self.send(text_data=runner.encode(runner.verdict_event(False, message)))

    def run_events(self, job, client):
        """The run's events, from this process or a run worker (SNIPPET_RUN_BACKEND); an
        answer's on its exercise's data, checked or not (glossary.checking)."""
        runs = import_string(settings.SNIPPET_RUN_BACKEND)()
        if job.exercise is None:
            return runs.run(job.code, job.runtime, client, job.language, job.limits)
        if job.checked:
            return checking.check(job.exercise, job.code, runs, client, job.limits)
        return checking.try_out(job.exercise, job.code, runs, client, job.limits)

    async def cancel_run(self):
        if not await self.stop_run():
            return await self.send_error("Nothing is running.")
        await self.send_ends(True, RUN_STOPPED)

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
        if not self.errors.spend():
            return await self.close_flooded()
        await self.send(text_data=runner.encode(runner.error_event(message)))

    async def close_flooded(self):
        self.flooded = True
        await self.stop_run()
        await self.close(code=POLICY_VIOLATION)


def event_outcome(event):
    """How a run or check ended, for the log."""
    if event["type"] == "verdict":
        return "passed" if event["passed"] else "not passed"
    return event.get("reason", "refused")


class UnknownPathConsumer(AsyncWebsocketConsumer):
    """Refuses the handshake (HTTP 403) of a WebSocket at any path the site does not serve."""

    async def connect(self):
        await self.close()


class BacklogGuard:
    """Bounds what one WebSocket can make Daphne hold, both ways.

    Incoming: Daphne reads every frame as it arrives and queues it for the application
    without limit, many times faster than a consumer handles them, so a flood of small
    messages would grow the server's memory however quickly each is refused. Daphne hands
    the application that queue's get(), so the backlog can be seen: past MAX_BACKLOG
    messages the socket is closed and whatever else arrives is dropped unread.

    Outgoing: what a client does not read waits in the connection's write buffer, which
    Twisted marks full (producerPaused) past 64 KiB. Past MAX_UNSENT_BYTES sent while it
    stays full, the socket is closed and nothing more is queued for it.

    Either way it closes with POLICY_VIOLATION; Daphne drops the connection a second
    later if the client does not answer the close. Under another server (the tests'
    communicator) only what that server exposes is guarded.
    """

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "websocket":
            return await self.app(scope, receive, send)
        connection = GuardedConnection(receive, send)
        return await self.app(scope, connection.receive, connection.send)


class GuardedConnection:
    def __init__(self, receive, send):
        self.queue = getattr(receive, "__self__", None)
        self._receive = receive
        self._send = send
        self.closed = False
        self.unsent = 0
        self.transport = None

    async def receive(self):
        if not isinstance(self.queue, asyncio.Queue):
            return await self._receive()
        if self.queue.qsize() > MAX_BACKLOG:
            await self.close()
        while self.closed:
            message = await self.queue.get()
            if message["type"] == "websocket.disconnect":
                return message
        return await self.queue.get()

    async def send(self, message):
        if self.closed:
            return
        if message["type"] == "websocket.send":
            if getattr(self.transport, "producerPaused", False):
                self.unsent += len(message.get("text") or message.get("bytes") or "")
                if self.unsent > MAX_UNSENT_BYTES:
                    return await self.close()
            else:
                self.unsent = 0
        if message["type"] == "websocket.close":
            self.closed = True
        await self._send(message)
        if message["type"] == "websocket.accept":
            # Daphne's send is partial(handle_reply, protocol), the protocol autobahn's,
            # on a Twisted connection.
            protocol = (getattr(self._send, "args", None) or [None])[0]
            self.transport = getattr(protocol, "transport", None)

    async def close(self):
        if not self.closed:
            await self.send({"type": "websocket.close", "code": POLICY_VIOLATION})
        self.closed = True


class PlaygroundRunConsumer(SnippetRunConsumer):
    """Runs readers' code as the playground choice the socket names: /ws/play/<runtime>/,
    where runtime is a choice's key (python, python-sql, postgresql-sql...)."""

    looks_ahead = False

    async def connect(self):
        self.runtime = self.scope["url_route"]["kwargs"]["runtime"]
        self.slug = f"the {self.runtime} playground"
        await self.open()

    async def job(self, message):
        choice = playground.find(self.runtime)
        if choice is None:
            keys = ", ".join(choice.key for choice in playground.available_choices())
            return f"There is no runtime {self.runtime!r} here; use one of {keys}."
        if "code" not in message:
            return 'Send the code to run: {"action": "run", "code": "print(1)"}.'
        return reader_job(message["code"], choice.runtime.value, choice.language.value)


class ExerciseConsumer(SnippetRunConsumer):
    """Runs a reader's answer to an exercise on its visible data ("run"), or checks it
    ("check": then a check event per check and the verdict): /ws/exercises/<slug>/."""

    code_actions = ("run", "check")
    unknown_action = 'Unknown action: use "run", "check" or "cancel".'
    looks_ahead = False

    async def job(self, message):
        exercise = await self.find_exercise()
        if exercise is None:
            return f"There is no exercise called {self.slug!r}."
        if "code" not in message:
            return 'Send your answer: {"action": "check", "code": "..."}.'
        job = reader_job(message["code"], exercise.runtime, exercise.language)
        if isinstance(job, str):
            return job
        return dataclasses.replace(job, exercise=exercise, checked=message["action"] == "check")

    @database_sync_to_async
    def find_exercise(self):
        """The socket's exercise (its checking.Spec) if this user may see it; closes the
        connection afterwards, as find_snippet() does."""
        user = self.current_user()
        visible = Exercise.objects.visible_to(user) if user else Exercise.objects.published()
        exercise = visible.for_checking().filter(slug=self.slug).first()
        return exercise and checking.Spec.of(exercise)
