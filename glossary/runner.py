"""Snippet execution: run untrusted code in a sandbox and stream what it prints.

`run()` is an async generator of event dicts that a test, a management command and the
WebSocket consumer can all drive; it knows nothing of Channels. Events:

    {"type": "start", "run": "<uuid hex>", "sandbox": "bubblewrap", "limits": {...}}
    {"type": "stdout", "text": "..."}  and  {"type": "stderr", "text": "..."}
    {"type": "exit", "reason": "ok", "code": 0, "signal": None, "wall_ms": 41,
     "truncated": False}
    {"type": "error", "message": "..."}  (nothing was run)

Exit reasons: ok, error, timeout, memory, output_limit. A generator that is closed or
whose task is cancelled cannot yield any more; it kills the run's processes on the way
out, and its driver reports EXIT_CANCELLED itself if it wants to.

On Linux every run goes through bubblewrap: new pid, network, ipc and uts namespaces, a
read-only view of the system and the Python installation, and a small tmpfs as its
working directory. Without bubblewrap, runs are refused unless DEBUG and
SNIPPET_ALLOW_UNSAFE_LOCAL are both on.
"""

import asyncio
import codecs
import collections
import dataclasses
import functools
import hashlib
import logging
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import django
from django.conf import settings

RUNTIMES = ("python", "django", "postgresql")
EXIT_CANCELLED = "cancelled"
READ_CHUNK = 4096
SANDBOX_DIR = "/sandbox"
# Each file is capped by RLIMIT_FSIZE; these caps bound the total, in memory, not on disk.
WORKDIR_BYTES = 32 * 1024 * 1024
TMP_BYTES = 16 * 1024 * 1024
# RLIMIT_NPROC counts processes per user and never binds root, so as root each run gets
# its own unprivileged uid, far above any real account (collisions only share the count).
RUN_UIDS = range(2_000_000_000, 2_010_000_000)
# Only these parts of the project are visible to Django snippets: not the site's
# database, not .secret_key, not anything added later.
PROJECT_PARTS = ("config", "glossary", "examples")
SANDBOX_SETTINGS = "config.settings.sandbox"

logger = logging.getLogger(__name__)

DJANGO_BOOTSTRAP = """\
import sys
sys.path.insert(0, {project!r})
import django
django.setup()
with open("snippet.py", encoding="utf-8") as source:
    code = compile(source.read(), "snippet.py", "exec")
del sys, django, source
exec(code, {{"__name__": "__main__"}})
"""

# Without bubblewrap (macOS) there is no prlimit either: a Python wrapper sets the limits
# and execs the interpreter.
RLIMIT_WRAPPER = """\
import os, resource, sys
for name, soft, hard in {limits!r}:
    try:
        resource.setrlimit(getattr(resource, name), (soft, hard))
    except (AttributeError, ValueError, OSError):
        pass
os.execv(sys.argv[1], sys.argv[1:])
"""


@dataclasses.dataclass(frozen=True)
class Limits:
    wall_seconds: float
    cpu_seconds: int
    memory_mb: int
    processes: int
    file_size_kb: int
    open_files: int
    output_kb: int

    @classmethod
    def from_settings(cls):
        return cls(**settings.SNIPPET_LIMITS)

    def as_dict(self):
        return dataclasses.asdict(self)

    def rlimits(self):
        """(name, soft, hard) for each resource limit; SIGXCPU comes a second before SIGKILL."""
        return [
            ("RLIMIT_CPU", self.cpu_seconds, self.cpu_seconds + 1),
            ("RLIMIT_AS", self.memory_mb * 1024 * 1024, self.memory_mb * 1024 * 1024),
            ("RLIMIT_NPROC", self.processes, self.processes),
            ("RLIMIT_FSIZE", self.file_size_kb * 1024, self.file_size_kb * 1024),
            ("RLIMIT_NOFILE", self.open_files, self.open_files),
        ]


def error_event(message):
    return {"type": "error", "message": message}


def child_env(home, extra=None):
    """The whole environment of a run: nothing of the server's."""
    return {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "LANG": "C.UTF-8",
        "HOME": home,
        "TMPDIR": "/tmp",
        "PYTHONUNBUFFERED": "1",
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONIOENCODING": "utf-8",
        # glibc reserves 64 MB of address space per thread arena; under RLIMIT_AS a
        # handful of threads would exhaust the memory limit without using it.
        "MALLOC_ARENA_MAX": "2",
        **(extra or {}),
    }


# Sandbox -----------------------------------------------------------------------------


def _ancestors(path):
    """Parent directories of path, outermost first (bwrap would copy /root's 0700)."""
    return [str(parent) for parent in reversed(Path(path).parents) if str(parent) != "/"]


def bwrap_argv(command, read_only=(), files=(), limits=None):
    """The bubblewrap command line that runs command (an argv list) in a fresh sandbox.

    read_only: host paths bound read-only at the same place. files: (fd, path) pairs copied
    into the sandbox's working directory.
    """
    limits = limits or Limits.from_settings()
    argv = ["bwrap", "--unshare-ipc", "--unshare-pid", "--unshare-net", "--unshare-uts"]
    argv += ["--unshare-cgroup-try", "--die-with-parent", "--new-session"]
    if os.geteuid() == 0:
        # No user namespace: the child becomes a real unprivileged uid (setpriv below),
        # the only way RLIMIT_NPROC binds. setpriv needs these three to do it.
        argv += ["--cap-drop", "ALL"]
        for cap in ("CAP_SETUID", "CAP_SETGID", "CAP_SETPCAP"):
            argv += ["--cap-add", cap]
    else:
        argv += ["--unshare-user", "--uid", "65534", "--gid", "65534", "--disable-userns"]
    argv += ["--ro-bind", "/usr", "/usr"]
    for top in ("/bin", "/sbin", "/lib", "/lib32", "/lib64"):
        if os.path.islink(top):
            argv += ["--symlink", os.readlink(top), top]
        elif os.path.isdir(top):
            argv += ["--ro-bind", top, top]
    argv += ["--proc", "/proc", "--dev", "/dev"]
    # Before the binds: a project checked out under /tmp must stay visible.
    argv += ["--perms", "1777", "--size", str(TMP_BYTES), "--tmpfs", "/tmp"]
    for path in read_only:
        for parent in _ancestors(path):
            argv += ["--perms", "0755", "--dir", parent]
        argv += ["--ro-bind", str(path), str(path)]
    argv += ["--perms", "0777", "--size", str(WORKDIR_BYTES), "--tmpfs", SANDBOX_DIR]
    for fd, name in files:
        argv += ["--perms", "0666", "--file", str(fd), f"{SANDBOX_DIR}/{name}"]
    argv += ["--chdir", SANDBOX_DIR, "--"]
    if os.geteuid() == 0:
        uid = str(random.choice(RUN_UIDS))
        argv += ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups"]
        argv += ["--inh-caps=-all", "--bounding-set=-all", "--no-new-privs", "--"]
    argv += ["prlimit"]
    argv += [f"--{name[7:].lower()}={soft}:{hard}" for name, soft, hard in limits.rlimits()]
    return [*argv, "--", *command]


@functools.cache
def bubblewrap_works():
    """Whether a trivial command runs in the sandbox; probed once per process."""
    if not shutil.which("bwrap"):
        return False
    argv = bwrap_argv(["true"], read_only=[sys.base_prefix])
    try:
        probe = subprocess.run(argv, env=child_env(SANDBOX_DIR), capture_output=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return probe.returncode == 0


def sandbox_name():
    """ "bubblewrap", "unsafe-local" when explicitly allowed in development, or None."""
    if sys.platform == "linux" and bubblewrap_works():
        return "bubblewrap"
    if settings.DEBUG and settings.SNIPPET_ALLOW_UNSAFE_LOCAL:
        return "unsafe-local"
    return None


# Django runtime database ---------------------------------------------------------------


_template_lock = threading.Lock()


class DatabaseBuildError(Exception):
    pass


def template_database():
    """Path of a migrated SQLite database with the seed fixture, built once and cached.

    The cache key covers what shapes the database: the apps' migrations, fixtures and
    Django's version (for contrib migrations). Blocking: call it in a thread.
    """
    base_dir = Path(settings.BASE_DIR)
    fixture = base_dir / "glossary" / "fixtures" / "glossary.json"
    inputs = []
    for part in PROJECT_PARTS:
        inputs += sorted((base_dir / part / "migrations").glob("*.py"))
        inputs += sorted((base_dir / part / "fixtures").glob("*.json"))
    digest = hashlib.sha256(django.get_version().encode())
    for path in inputs:
        digest.update(str(path.relative_to(base_dir)).encode() + b"\0" + path.read_bytes())
    cache_dir = Path(tempfile.gettempdir()) / "db-glossary-cache"
    target = cache_dir / f"{digest.hexdigest()[:16]}.sqlite3"
    with _template_lock:
        if target.exists():
            return target
        cache_dir.mkdir(mode=0o700, exist_ok=True)
        partial = target.with_suffix(f".{os.getpid()}.partial")
        partial.unlink(missing_ok=True)
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": SANDBOX_SETTINGS,
            "DATABASE_URL": f"sqlite:///{partial}",
        }
        manage = [sys.executable, str(base_dir / "manage.py")]
        build = [["migrate", "--no-input"]]
        if fixture.exists():
            build.append(["loaddata", "glossary"])
        for command in build:
            result = subprocess.run([*manage, *command, "-v", "0"], env=env, capture_output=True)
            if result.returncode != 0:
                partial.unlink(missing_ok=True)
                stderr = result.stderr.decode(errors="replace").strip()
                logger.error("Building the sandbox database failed: %s", stderr)
                last_line = stderr.splitlines()[-1] if stderr else f"exit {result.returncode}"
                raise DatabaseBuildError(f"{' '.join(command)} failed: {last_line}")
        # Atomic, so concurrent server processes never copy a half-built database.
        os.replace(partial, target)
        return target


# Running -------------------------------------------------------------------------------


def base_python():
    """The interpreter without the project's virtualenv: standard library only."""
    return getattr(sys, "_base_executable", None) or sys.executable


async def run(code: str, runtime: str, limits: Limits | None = None) -> AsyncIterator[dict]:
    """Run code and yield its events (see the module docstring) as they happen."""
    limits = limits or Limits.from_settings()
    if runtime not in RUNTIMES:
        yield error_event(f"Unknown runtime {runtime!r}; expected one of {', '.join(RUNTIMES)}.")
        return
    if runtime == "postgresql":
        if not getattr(settings, "SNIPPET_POSTGRES_URL", ""):
            yield error_event(
                "This snippet needs PostgreSQL, which is not configured on this server."
            )
        else:
            yield error_event("PostgreSQL snippets cannot run on this server yet.")
        return
    sandbox = await asyncio.to_thread(sandbox_name)
    if sandbox is None:
        yield error_event(
            "No sandbox is available on this server (bubblewrap with namespaces is needed), "
            "so snippets cannot run here."
        )
        return
    database = None
    if runtime == "django":
        try:
            database = await asyncio.to_thread(template_database)
        except DatabaseBuildError as error:
            yield error_event(f"The Django runtime's database could not be built: {error}")
            return

    run_dir = Path(tempfile.mkdtemp(prefix="snippet-run-"))
    opened = []
    try:
        (run_dir / "snippet.py").write_text(code, encoding="utf-8")
        if runtime == "django":
            project = str(settings.BASE_DIR)
            bootstrap = DJANGO_BOOTSTRAP.format(project=project)
            command = [sys.executable, "-u", "-I", "-B", "-c", bootstrap]
            extra = {"DJANGO_SETTINGS_MODULE": SANDBOX_SETTINGS}
            parts = [Path(project) / part for part in PROJECT_PARTS]
            read_only = [sys.base_prefix, sys.prefix, *(part for part in parts if part.is_dir())]
        else:
            command = [base_python(), "-u", "-I", "-B", "snippet.py"]
            extra, read_only = {}, [sys.base_prefix]

        if sandbox == "bubblewrap":
            opened.append(os.open(run_dir / "snippet.py", os.O_RDONLY))
            files = [(opened[-1], "snippet.py")]
            if database:
                opened.append(os.open(database, os.O_RDONLY))
                files.append((opened[-1], "db.sqlite3"))
            workdir = SANDBOX_DIR
            argv = bwrap_argv(command, read_only, files, limits)
        else:
            if database:
                shutil.copyfile(database, run_dir / "db.sqlite3")
            workdir = str(run_dir)
            wrapper = RLIMIT_WRAPPER.format(limits=limits.rlimits())
            argv = [base_python(), "-I", "-S", "-c", wrapper, *command]
        if database:
            extra["DATABASE_URL"] = f"sqlite:///{workdir}/db.sqlite3"

        yield {
            "type": "start",
            "run": uuid.uuid4().hex,
            "sandbox": sandbox,
            "limits": limits.as_dict(),
        }
        process = await asyncio.create_subprocess_exec(
            *argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=child_env(workdir, extra),
            cwd=workdir if sandbox != "bubblewrap" else None,
            start_new_session=True,
            pass_fds=opened,
        )
        for fd in opened:  # bwrap holds its own copies now
            os.close(fd)
        opened.clear()
        async for event in supervise(process, limits, sandboxed=sandbox == "bubblewrap"):
            yield event
    finally:
        for fd in opened:
            os.close(fd)
        shutil.rmtree(run_dir, ignore_errors=True)


async def _pump(stream, name, queue):
    while data := await stream.read(READ_CHUNK):
        await queue.put((name, data))
    await queue.put((name, None))


def _kill(process):
    """SIGKILL the process group. With bwrap this takes the sandbox's init, and with it
    every process in the pid namespace, setsid() or not."""
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


async def supervise(process, limits, sandboxed):
    """Stream a started process's output, enforce wall and output limits, yield exit."""
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
    reason, truncated, open_streams = None, False, 2
    try:
        while open_streams and reason is None:
            try:
                name, data = await asyncio.wait_for(queue.get(), deadline - loop.time())
            except TimeoutError:
                reason = "timeout"
                break
            if data is None:
                open_streams -= 1
                text = decoders[name].decode(b"", final=True)
            else:
                if len(data) > output_left:
                    data, reason, truncated = data[:output_left], "output_limit", True
                output_left -= len(data)
                text = decoders[name].decode(data, final=truncated)
            if name == "stderr":
                stderr_tail.extend(text)
            if text:
                yield {"type": name, "text": text}
        if reason is None:
            try:
                await asyncio.wait_for(process.wait(), deadline - loop.time())
            except TimeoutError:
                reason = "timeout"
        if reason is not None:
            _kill(process)
            await process.wait()
        code, signum = _status(process.returncode, sandboxed)
        if reason is None:
            reason = _reason(code, signum, "".join(stderr_tail))
        yield {
            "type": "exit",
            "reason": reason,
            "code": code,
            "signal": signum,
            "wall_ms": int((loop.time() - started) * 1000),
            "truncated": truncated,
        }
    finally:
        # Runs on normal exit, aclose(), task cancellation and errors alike.
        if process.returncode is None:
            _kill(process)
            await process.wait()
        for pump in pumps:
            pump.cancel()
        await asyncio.gather(*pumps, return_exceptions=True)


def _status(returncode, sandboxed):
    """(exit code, signal) of the snippet. bwrap reports a child killed by signal N as
    exit code 128 + N, like a shell does."""
    if returncode < 0:
        return None, -returncode
    if sandboxed and returncode > 128 and returncode - 128 < signal.NSIG:
        return None, returncode - 128
    return returncode, None


def _reason(code, signum, stderr_tail):
    if code == 0:
        return "ok"
    if signum == signal.SIGXCPU:
        return "timeout"
    lines = stderr_tail.strip().splitlines()
    if code == 1 and lines and lines[-1].startswith("MemoryError"):
        return "memory"
    return "error"


# Queueing ------------------------------------------------------------------------------


class Busy(Exception):
    pass


class RunSlots:
    """At most `slots` concurrent runs (in this process) and a bounded queue of waiters."""

    def __init__(self, slots, queue_size):
        self.slots = slots
        self.queue_size = queue_size
        self.running = 0
        self.waiting = collections.deque()

    def hold(self):
        """A ticket: `async with slots.hold() as ticket: async for event in ticket.wait()`.

        Raises Busy at once when every slot is taken and the queue is full.
        """
        if self.running >= self.slots and len(self.waiting) >= self.queue_size:
            raise Busy("The server is busy running other snippets; try again in a minute.")
        return Ticket(self)

    def _grant(self):
        while self.waiting and self.running < self.slots:
            ticket = self.waiting.popleft()
            ticket.granted = True
            self.running += 1
            ticket.changed.set()
        for ticket in self.waiting:  # positions moved
            ticket.changed.set()


class Ticket:
    def __init__(self, slots):
        self.slots = slots
        self.granted = False
        self.changed = asyncio.Event()
        slots.waiting.append(self)
        slots._grant()

    async def wait(self) -> AsyncIterator[dict]:
        """Yield queued events as the position changes; return once a slot is held."""
        position = None
        while not self.granted:
            self.changed.clear()
            if (new := self.slots.waiting.index(self) + 1) != position:
                position = new
                yield {"type": "queued", "position": position}
            if not self.granted:
                await self.changed.wait()

    async def __aenter__(self):
        return self

    async def __aexit__(self, *exc_info):
        if self.granted:
            self.slots.running -= 1
        else:
            self.slots.waiting.remove(self)
        self.slots._grant()


_default_slots = None


def default_slots():
    global _default_slots
    if _default_slots is None:
        _default_slots = RunSlots(settings.SNIPPET_RUN_SLOTS, settings.SNIPPET_QUEUE_SIZE)
    return _default_slots


async def run_queued(code, runtime, limits=None, slots=None) -> AsyncIterator[dict]:
    """run(), after waiting for a free slot (queued events) or refusing when busy."""
    slots = slots or default_slots()
    try:
        ticket = slots.hold()
    except Busy as busy:
        yield error_event(str(busy))
        return
    async with ticket:
        async for event in ticket.wait():
            yield event
        async for event in run(code, runtime, limits):
            yield event
