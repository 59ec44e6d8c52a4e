"""Snippet execution: run untrusted code in a sandbox and stream what it prints.

`run()` is an async generator of event dicts that a test, a management command and the
WebSocket consumer can all drive; it knows nothing of Channels. Events:

    {"type": "start", "run": "<uuid hex>", "sandbox": "bubblewrap", "limits": {...}}
    {"type": "stdout", "text": "..."}  and  {"type": "stderr", "text": "..."}
    {"type": "sql", "sql": "...", "params": [...], "ms": 0.42, "line": 23, "plan": None}
      (Django runtime only: one per query the snippet's reporter writes, see below)
    {"type": "exit", "reason": "ok", "code": 0, "signal": None, "wall_ms": 41,
     "truncated": False}
    {"type": "error", "message": "..."}

The rule: an error means nothing ran (it never follows start); a run that started
ends with exactly one exit. Exit reasons: ok, error, timeout (the wall clock), cpu (the
CPU time limit), memory, output_limit, and lost (the run's end is unknown: its exit has a
"message"). A generator that is closed or whose task is cancelled cannot yield any more;
it kills the run's processes on the way out, and its driver reports EXIT_CANCELLED itself
if it wants to.

On Linux every run goes through bubblewrap: new pid, network, ipc and uts namespaces, a
read-only view of the system and the Python installation, and a small tmpfs as its
working directory. Without bubblewrap, runs are refused unless DEBUG and
SNIPPET_ALLOW_UNSAFE_LOCAL are both on.

Every run's process starts by doing the expensive part (the sandbox, the interpreter and,
for Django, django.setup() and the models) and then reads the snippet's code from stdin
until EOF. That lets each event loop keep a few such processes warm (SNIPPET_WARM_POOL per
runtime) so a run only hands its code over. A warm process serves exactly one run: its
tmpfs, database copy and uid are its own.

Django runs get SNIPPET_SQL_EVENTS=1; a query reporter then writes each query to stdout
as one record, "\x1e" + a JSON object with "type": "sql" + "\n", which becomes an event.

PostgreSQL runs (only with SNIPPET_POSTGRES_URL, an admin connection) get a database and a
login role of their own, both named snippet_<run id> and dropped when the run ends, and
reach the server through its Unix socket (the sandbox has no network); PGHOST and friends
are set, so `psycopg.connect()` needs no arguments. They always start cold. What the
operator must configure in pg_hba.conf is in PostgresDatabase's docstring.
"""

import asyncio
import atexit
import codecs
import collections
import contextlib
import dataclasses
import datetime
import functools
import hashlib
import json
import logging
import math
import os
import random
import secrets
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import threading
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import django
import psycopg
from django.conf import settings
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict

RUNTIMES = ("python", "django", "postgresql")
EXIT_CANCELLED = "cancelled"
EXIT_LOST = "lost"
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
DEFAULT_POSTGRES_SOCKET_DIR = "/var/run/postgresql"

logger = logging.getLogger(__name__)

# A run's process does its warm-up, then waits for the code on stdin. Once it has the code
# it lowers RLIMIT_CPU to the snippet's budget on top of the CPU the warm-up spent
# (rounded up: rlimits count whole seconds), so a snippet gets the same budget warm or
# cold. The excepthook hides this bootstrap's frames, so tracebacks start at snippet.py;
# tracebacks and warnings show each file relative to the directory Python found it in
# (json/decoder.py, django/db/models/query.py, snippet.py): the server's paths mean nothing
# to a reader.
# Reading stdin, which only carried the code, says so instead of a bare EOFError.
BOOTSTRAP = """\
import sys
{warm_up}

def _receive(cpu_seconds):
    import io, linecache, math, os, re, resource, sysconfig, traceback, types, warnings
    bootstrap = globals()
    roots = {{os.getcwd(), *sysconfig.get_paths().values(), *sys.path}}
    roots = sorted((os.path.join(root, "") for root in roots if root), key=len, reverse=True)
    file_line = re.compile(r'^(  File ")([^"]+)', re.MULTILINE)
    format_warning = warnings.formatwarning

    def relative(path):
        root = next((root for root in roots if path.startswith(root)), "")
        return path[len(root):]

    def formatwarning(message, category, filename, lineno, line=None):
        if line is None:
            line = linecache.getline(filename, lineno)
        return format_warning(message, category, relative(filename), lineno, line)

    def excepthook(kind, value, tb):
        frames = []
        while tb is not None:
            if tb.tb_frame.f_globals is not bootstrap:
                frames.append(tb)
            tb = tb.tb_next
        for frame, after in zip(frames, [*frames[1:], None]):
            frame.tb_next = after
        tb = frames[0] if frames else None
        text = "".join(traceback.format_exception(kind, value.with_traceback(tb), tb))
        sys.stderr.write(file_line.sub(lambda match: match[1] + relative(match[2]), text))

    class NoInput(io.TextIOBase):
        def readable(self):
            return True

        def read(self, size=-1):
            raise EOFError("this sandbox has no input; write the value into the code instead")

        readline = read

    sys.excepthook = excepthook
    warnings.formatwarning = formatwarning
    source = sys.stdin.buffer.read()
    sys.stdin = NoInput()
    path = os.path.join(os.getcwd(), "snippet.py")
    with open(path, "wb") as file:
        file.write(source)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    budget = math.ceil(usage.ru_utime + usage.ru_stime) + cpu_seconds
    soft, hard = resource.getrlimit(resource.RLIMIT_CPU)
    resource.setrlimit(resource.RLIMIT_CPU, (min(soft, budget), min(hard, budget + 1)))
    main = types.ModuleType("__main__")
    main.__file__ = path
    sys.modules["__main__"] = main
    sys.argv[:] = [path]
    return compile(source, path, "exec"), vars(main)

exec(*_receive({cpu_seconds}))
"""
DJANGO_WARM_UP = """\
sys.path.insert(0, {project!r})
import django
django.setup()
import glossary.models
from django.db import connection
connection.ensure_connection()
from examples import sqlreport
sqlreport.install()
"""
# Headroom on RLIMIT_CPU until the bootstrap lowers it (Django's warm-up takes ~0.3 s).
WARM_UP_CPU_SECONDS = 2
SQL_RECORD_START = "\x1e"
SQL_RECORD_CHARS = 64 * 1024
# How long a runtime goes unwarmed after a warm process died while idle.
IDLE_DEATH_PAUSE = 30

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
    """Nothing ran: the only event of a run that never started."""
    return {"type": "error", "message": message}


def exit_event(reason, wall_ms, code=None, signum=None, truncated=False, message=None):
    event = {
        "type": "exit",
        "reason": reason,
        "code": code,
        "signal": signum,
        "wall_ms": wall_ms,
        "truncated": truncated,
    }
    return event if message is None else {**event, "message": message}


def lost_event(message, wall_ms):
    """The end of a run that started but cannot report its own (its worker vanished)."""
    return exit_event(EXIT_LOST, wall_ms, message=message)


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


def private_directory(path):
    """path as a directory only this server's user can use, made (0700) if missing.

    Every sandbox gets a copy of what is in it: a directory someone else made first, or
    a symlink they planted, is refused rather than trusted.
    """
    path = Path(path)
    try:
        path.mkdir(mode=0o700, parents=True)
    except FileExistsError:
        pass
    info = os.lstat(path)
    problem = None
    if stat.S_ISLNK(info.st_mode):
        problem = "is a symbolic link"
    elif not stat.S_ISDIR(info.st_mode):
        problem = "is not a directory"
    elif info.st_uid != os.geteuid():
        problem = f"belongs to uid {info.st_uid}, not to this server's uid {os.geteuid()}"
    elif info.st_mode & 0o077:
        problem = f"has mode {stat.S_IMODE(info.st_mode):04o}; it must be 0700"
    if problem:
        logger.error("Refusing the cache directory %s: it %s", path, problem)
        raise DatabaseBuildError(f"the cache directory {path} {problem} (SNIPPET_CACHE_DIR)")
    return path


def template_database():
    """Path of a migrated SQLite database with the seed fixture, built once and cached
    in SNIPPET_CACHE_DIR.

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
    cache_dir = private_directory(settings.SNIPPET_CACHE_DIR)
    target = cache_dir / f"{digest.hexdigest()[:16]}.sqlite3"
    with _template_lock:
        if target.exists():
            return target
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


# PostgreSQL runtime database -----------------------------------------------------------


class PostgresDatabase:
    """A throwaway database and login role, both named snippet_<run id>, for one run.

    create() and drop() block (call them in a thread) and may run in either order: a run
    closed while its database is still being created gets it dropped right after.

    The role has no privileges beyond owning its database, but PostgreSQL grants CONNECT on
    every database to PUBLIC by default, and authentication is pg_hba.conf's business. In
    production, let snippet roles in only through the socket and only to their own database,
    above any broader rule (regular expressions need PostgreSQL 16):

        local   sameuser   /^snippet_   scram-sha-256
        local   all        /^snippet_   reject
        host    all        /^snippet_   all   reject

    and/or REVOKE CONNECT ON DATABASE <each site database> FROM PUBLIC. create() logs a
    warning while the role could still connect to another database.
    """

    def __init__(self, admin_url, run_id):
        self.admin_url = admin_url
        self.name = f"snippet_{run_id}"
        self.password = secrets.token_hex(24)
        params = conninfo_to_dict(admin_url)
        host = params.get("host", "").split(",")[0]
        self.socket_dir = host if host.startswith("/") else DEFAULT_POSTGRES_SOCKET_DIR
        self.port = params.get("port", "5432").split(",")[0]
        self._lock = threading.Lock()
        self._dropped = False

    @property
    def socket(self):
        return Path(self.socket_dir) / f".s.PGSQL.{self.port}"

    def child_env(self):
        """libpq's environment for the run: psycopg.connect() reaches its own database."""
        return {
            "PGHOST": self.socket_dir,
            "PGPORT": self.port,
            "PGDATABASE": self.name,
            "PGUSER": self.name,
            "PGPASSWORD": self.password,
        }

    def _connect(self, **params):
        return psycopg.connect(self.admin_url, autocommit=True, connect_timeout=10, **params)

    def create(self):
        name = sql.Identifier(self.name)
        expires = datetime.datetime.now(datetime.UTC) + datetime.timedelta(hours=1)
        with self._lock:
            if self._dropped:
                return
            with self._connect() as admin:
                admin.execute(
                    sql.SQL(
                        "CREATE ROLE {} LOGIN PASSWORD {} NOSUPERUSER NOCREATEDB NOCREATEROLE"
                        " NOINHERIT NOREPLICATION NOBYPASSRLS CONNECTION LIMIT 5"
                        # Should the drop ever fail, the password still stops working.
                        " VALID UNTIL {}"
                    ).format(name, sql.Literal(self.password), sql.Literal(expires.isoformat()))
                )
                admin.execute(
                    sql.SQL("CREATE DATABASE {} OWNER {} TEMPLATE template0").format(name, name)
                )
                admin.execute(sql.SQL("REVOKE ALL ON DATABASE {} FROM PUBLIC").format(name))
                others = admin.execute(
                    "SELECT datname FROM pg_database WHERE datallowconn AND datname <> %s"
                    " AND has_database_privilege(%s, oid, 'CONNECT') ORDER BY datname",
                    [self.name, self.name],
                ).fetchall()
            # public belongs to pg_database_owner, whose rights a NOINHERIT role lacks.
            with self._connect(dbname=self.name) as admin:
                admin.execute(sql.SQL("ALTER SCHEMA public OWNER TO {}").format(name))
        if others:
            _warn_reachable_databases(tuple(other for (other,) in others))

    def drop(self):
        """Disconnect the run's sessions, drop its database and role. Idempotent."""
        with self._lock:
            self._dropped = True
            with self._connect() as admin:
                admin.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                    " WHERE usename = %s OR datname = %s",
                    [self.name, self.name],
                )
                name = sql.Identifier(self.name)
                admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(name))
                admin.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(name))


@functools.cache
def _warn_reachable_databases(databases):
    logger.warning(
        "Snippet roles may connect to other databases (%s): restrict them in pg_hba.conf "
        "(see glossary.runner.PostgresDatabase)",
        ", ".join(databases),
    )


# Running -------------------------------------------------------------------------------


def base_python():
    """The interpreter without the project's virtualenv: standard library only."""
    return getattr(sys, "_base_executable", None) or sys.executable


async def start_process(runtime, limits, sandbox, database=None, run_dir=None, postgres=None):
    """Start a run's process: it warms up, then waits for the snippet's code on stdin.

    run_dir: the run's working directory when there is no sandbox (bubblewrap gives each
    process a tmpfs of its own). postgres: the PostgresDatabase of a postgresql run.
    """
    if runtime == "postgresql":
        warm_up, interpreter, extra = "", sys.executable, postgres.child_env()
        # Read-only is enough: connecting to a socket is no write to its file system.
        read_only = [sys.base_prefix, sys.prefix, postgres.socket_dir]
    elif runtime == "django":
        project = str(settings.BASE_DIR)
        warm_up = DJANGO_WARM_UP.format(project=project)
        interpreter = sys.executable
        extra = {"DJANGO_SETTINGS_MODULE": SANDBOX_SETTINGS, "SNIPPET_SQL_EVENTS": "1"}
        parts = [Path(project) / part for part in PROJECT_PARTS]
        read_only = [sys.base_prefix, sys.prefix, *(part for part in parts if part.is_dir())]
    else:
        warm_up, interpreter, extra, read_only = "", base_python(), {}, [sys.base_prefix]
    bootstrap = BOOTSTRAP.format(warm_up=warm_up, cpu_seconds=limits.cpu_seconds)
    command = [interpreter, "-u", "-I", "-B", "-c", bootstrap]
    # The bootstrap lowers the CPU limit to the snippet's budget once warmed up.
    spawn_limits = dataclasses.replace(limits, cpu_seconds=limits.cpu_seconds + WARM_UP_CPU_SECONDS)
    if database:
        # The file limit is the snippet's allowance on top of the database it is given.
        database_kb = -(-os.path.getsize(database) // 1024)
        spawn_limits = dataclasses.replace(
            spawn_limits, file_size_kb=limits.file_size_kb + database_kb
        )
    opened = []
    try:
        if sandbox == "bubblewrap":
            files = []
            if database:
                opened.append(os.open(database, os.O_RDONLY))
                files.append((opened[-1], "db.sqlite3"))
            workdir = SANDBOX_DIR
            argv = bwrap_argv(command, read_only, files, spawn_limits)
        else:
            if database:
                shutil.copyfile(database, run_dir / "db.sqlite3")
            workdir = str(run_dir)
            wrapper = RLIMIT_WRAPPER.format(limits=spawn_limits.rlimits())
            argv = [base_python(), "-I", "-S", "-c", wrapper, *command]
        if database:
            extra["DATABASE_URL"] = f"sqlite:///{workdir}/db.sqlite3"
        return await asyncio.create_subprocess_exec(
            *argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=child_env(workdir, extra),
            cwd=workdir if sandbox != "bubblewrap" else None,
            start_new_session=True,
            pass_fds=opened,
        )
    finally:
        for fd in opened:  # bwrap holds its own copies once started
            os.close(fd)


async def run(code: str, runtime: str, limits: Limits | None = None) -> AsyncIterator[dict]:
    """Run code and yield its events (see the module docstring) as they happen."""
    limits = limits or Limits.from_settings()
    if runtime not in RUNTIMES:
        yield error_event(f"Unknown runtime {runtime!r}; expected one of {', '.join(RUNTIMES)}.")
        return
    if runtime == "postgresql" and not settings.SNIPPET_POSTGRES_URL:
        yield error_event("This snippet needs PostgreSQL, which is not configured on this server.")
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
    run_id = uuid.uuid4().hex
    postgres = None
    if runtime == "postgresql":
        postgres = PostgresDatabase(settings.SNIPPET_POSTGRES_URL, run_id)
        if not await asyncio.to_thread(postgres.socket.exists):
            yield error_event(
                f"PostgreSQL's socket {postgres.socket} does not exist on this server; "
                "snippets have no network and reach PostgreSQL only through its Unix socket."
            )
            return

    process = run_dir = None
    # PostgreSQL runs start cold: their database is made for the run.
    pool = _warm_pool() if sandbox == "bubblewrap" and postgres is None else None
    # Runs with other limits than the settings' (tests, mostly) start cold.
    if pool is not None and limits == Limits.from_settings():
        process = pool.take(runtime, limits)
    try:
        start = {"type": "start", "run": run_id, "sandbox": sandbox, "limits": limits.as_dict()}
        if postgres is not None:
            try:
                await asyncio.to_thread(postgres.create)
            except psycopg.Error as error:
                logger.exception("Could not create the database of run %s", run_id)
                yield error_event(f"The run's PostgreSQL database could not be created: {error}")
                return
            start["database"] = postgres.name
        yield start
        if process is None:
            if sandbox != "bubblewrap":
                run_dir = Path(tempfile.mkdtemp(prefix="snippet-run-"))
            try:
                process = await start_process(runtime, limits, sandbox, database, run_dir, postgres)
            except OSError:
                logger.exception("Could not start the process of run %s", run_id)
                yield lost_event("The run could not start on this server.", 0)
                return
        # The transport writes in the background and closes stdin (EOF) once it has.
        process.stdin.write(code.encode("utf-8"))
        process.stdin.close()
        sandboxed, sql_events = sandbox == "bubblewrap", runtime == "django"
        async for event in supervise(process, limits, sandboxed, sql_events):
            yield event
    finally:
        if process is not None and process.returncode is None:
            _kill(process)
            await process.wait()
        if run_dir is not None:
            shutil.rmtree(run_dir, ignore_errors=True)
        if postgres is not None:
            # The thread finishes the drop even if this task is cancelled again meanwhile.
            try:
                await asyncio.to_thread(postgres.drop)
            except psycopg.Error:
                logger.exception("Could not drop the database and role %s", postgres.name)


# Warm pool -----------------------------------------------------------------------------


# Process groups of warm processes not handed to a run yet, killed at interpreter exit.
# (bwrap's --die-with-parent covers a server that is killed outright.)
_unused_pids = set()
_pools = {}
SHUTDOWN_WAIT_SECONDS = 10


@atexit.register
def _kill_unused():
    for pid in list(_unused_pids):
        try:
            os.killpg(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


class WarmPool:
    """Up to `size` idle warm processes per runtime, for the event loop that made it.

    A runtime is kept warm from its second run in the loop on: a loop that runs one snippet
    and ends (asyncio.run() in a management command) would only pay for processes it never
    uses. A keeper task starts replacements; cancelling it (shutdown_pool(), or the loop's
    own shutdown cancelling every task) kills every process not handed to a run.
    """

    def __init__(self, size):
        self.size = size
        self.runs = collections.Counter()
        self.limits = {}  # runtime: the Limits its idle processes were started with
        self.idle = collections.defaultdict(collections.deque)
        self.unused = set()  # started, not handed to a run, not yet reaped
        self.paused_until = {}
        self.watchers = set()
        self.changed = asyncio.Event()
        self.keeper = asyncio.create_task(self._keep())

    def take(self, runtime, limits):
        """An idle process for a run of runtime with limits, or None: start one cold."""
        self.runs[runtime] += 1
        if self.limits.get(runtime) != limits:
            self._discard(runtime)
            self.limits[runtime] = limits
        idle, process = self.idle[runtime], None
        while idle and process is None:
            candidate = idle.popleft()
            self._release(candidate)
            if candidate.returncode is None:
                process = candidate
        self.changed.set()
        return process

    def pids(self, runtime=None):
        runtimes = [runtime] if runtime else list(self.idle)
        return [process.pid for name in runtimes for process in self.idle.get(name, ())]

    def _release(self, process):
        self.unused.discard(process)
        _unused_pids.discard(process.pid)

    def _discard(self, runtime):
        while self.idle[runtime]:
            _kill(self.idle[runtime].popleft())  # its watcher reaps it

    async def _keep(self):
        loop = asyncio.get_running_loop()
        try:
            while True:
                self.changed.clear()
                for runtime, limits in list(self.limits.items()):
                    while (
                        self.runs[runtime] >= 2
                        and len(self.idle[runtime]) < self.size
                        and self.limits[runtime] == limits
                        and loop.time() >= self.paused_until.get(runtime, 0)
                    ):
                        await self._start(runtime, limits)
                pauses = [until - loop.time() for until in self.paused_until.values()]
                try:
                    timeout = min((p for p in pauses if p > 0), default=None)
                    await asyncio.wait_for(self.changed.wait(), timeout)
                except TimeoutError:
                    pass
        finally:
            watchers, unused = list(self.watchers), list(self.unused)
            for watcher in watchers:
                watcher.cancel()
            self.idle.clear()
            for process in unused:
                _kill(process)
                self._release(process)
            waits = [process.wait() for process in unused]
            try:
                async with asyncio.timeout(SHUTDOWN_WAIT_SECONDS):
                    await asyncio.gather(*waits, *watchers, return_exceptions=True)
            except TimeoutError:
                logger.error("Warm processes %s did not exit", [p.pid for p in unused])

    async def _start(self, runtime, limits):
        loop = asyncio.get_running_loop()
        try:
            database = None
            if runtime == "django":
                database = await asyncio.to_thread(template_database)
            process = await start_process(runtime, limits, "bubblewrap", database)
        except (DatabaseBuildError, OSError):
            logger.exception("Could not start a warm %s process; runs start cold for now", runtime)
            self.paused_until[runtime] = loop.time() + IDLE_DEATH_PAUSE
            return
        self.unused.add(process)
        _unused_pids.add(process.pid)
        watcher = asyncio.create_task(self._watch(runtime, process))
        self.watchers.add(watcher)
        watcher.add_done_callback(self.watchers.discard)
        if self.limits[runtime] == limits:
            self.idle[runtime].append(process)
        else:  # the settings changed while it started
            _kill(process)

    async def _watch(self, runtime, process):
        await process.wait()
        self._release(process)
        if process in self.idle[runtime]:
            # Dead before any run: something is wrong with the runtime, so stop respawning
            # it in a tight loop; runs start cold (and show the error) meanwhile.
            self.idle[runtime].remove(process)
            stderr = (await process.stderr.read(4096)).decode(errors="replace").strip()
            logger.warning(
                "A warm %s process exited while idle (%s): %s", runtime, process.returncode, stderr
            )
            self.paused_until[runtime] = asyncio.get_running_loop().time() + IDLE_DEATH_PAUSE
            self.changed.set()


def _warm_pool():
    """The running loop's pool, made on first use; None when SNIPPET_WARM_POOL is 0."""
    for loop in [loop for loop in _pools if loop.is_closed()]:
        # Closed without cancelling its tasks: nothing will reap these any more.
        for process in _pools.pop(loop).unused:
            _kill(process)
            with contextlib.suppress(ChildProcessError):
                os.waitpid(process.pid, 0)
    size = settings.SNIPPET_WARM_POOL
    if size <= 0:
        return None
    loop = asyncio.get_running_loop()
    pool = _pools.get(loop)
    if pool is None or pool.keeper.done():
        pool = _pools[loop] = WarmPool(size)
    pool.size = size
    return pool


def warm_pids(runtime=None):
    """Host pids of the running loop's idle warm processes (of one runtime, if given)."""
    pool = _pools.get(asyncio.get_running_loop())
    return pool.pids(runtime) if pool else []


async def shutdown_pool():
    """Kill the running loop's warm processes; later runs start a new pool."""
    pool = _pools.pop(asyncio.get_running_loop(), None)
    if pool is not None:
        pool.keeper.cancel()
        await asyncio.gather(pool.keeper, return_exceptions=True)


# Supervising ---------------------------------------------------------------------------


async def _pump(stream, name, queue):
    while data := await stream.read(READ_CHUNK):
        await queue.put((name, data))
    await queue.put((name, None))


def _kill(process):
    """SIGKILL the process group. With bwrap this takes the sandbox's init, and with it
    every process in the pid namespace, setsid() or not.

    Closing stdin too ends a warm process waiting for its code even if it outlived bwrap
    (killed in the instant before bwrap arms --die-with-parent): it reads EOF and exits.
    """
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    if process.stdin is not None and not process.stdin.is_closing():
        process.stdin.close()


async def supervise(process, limits, sandboxed, sql_events=False):
    """Stream a started process's output, enforce wall and output limits, yield exit.

    sql_events: turn query records on stdout into sql events (see SqlRecords).
    """
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
    records = SqlRecords() if sql_events else None
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
            if name == "stdout" and records:
                for event in records.feed(text):
                    yield event
            elif text:
                yield {"type": name, "text": text}
        if records:
            for event in records.feed("", final=True):
                yield event
        if reason is None:
            try:
                await asyncio.wait_for(process.wait(), deadline - loop.time())
            except TimeoutError:
                reason = "timeout"
        if reason is not None:
            _kill(process)
            await process.wait()
        code, signum = _status(process.returncode, sandboxed)
        wall_ms = int((loop.time() - started) * 1000)
        if reason is None:
            reason = _reason(code, signum, "".join(stderr_tail), wall_ms, limits)
        yield exit_event(reason, wall_ms, code, signum, truncated)
    finally:
        # Runs on normal exit, aclose(), task cancellation and errors alike.
        if process.returncode is None:
            _kill(process)
            await process.wait()
        for pump in pumps:
            pump.cancel()
        await asyncio.gather(*pumps, return_exceptions=True)


class SqlRecords:
    """Splits a Django run's stdout into text and query records.

    A record is "\x1e" + a JSON object with "type": "sql" + "\n", written at once but
    maybe read in pieces. Anything that is not a valid record (bad JSON, another type or
    shape, no newline within SQL_RECORD_CHARS, cut off at the end) passes through as
    stdout text.
    """

    def __init__(self):
        self.record = None  # the record read so far, from its "\x1e"

    def feed(self, text, final=False):
        """Events for the next piece of stdout, in order; final: it is the last piece."""
        events, plain = [], []
        while text:
            if self.record is None:
                start = text.find(SQL_RECORD_START)
                if start == -1:
                    plain.append(text)
                    break
                plain.append(text[:start])
                self.record, text = "", text[start:]
            end = text.find("\n") + 1 or len(text)
            self.record += text[:end]
            text = text[end:]
            if len(self.record) > SQL_RECORD_CHARS:
                plain.append(self.record)
                self.record = None
            elif self.record.endswith("\n"):
                event = self._event(self.record)
                if event is None:
                    plain.append(self.record)
                else:
                    events += self._text_event(plain)
                    events.append(event)
                self.record = None
        if final and self.record is not None:
            plain.append(self.record)
            self.record = None
        return events + self._text_event(plain)

    @staticmethod
    def _event(record):
        """The sql event a record holds, or None if it is not exactly one.

        The snippet writes these records, so they are checked as any input: no NaN or
        Infinity (not JSON; browsers refuse them), no integer msgpack cannot carry to a
        run worker's reader, no nesting deeper than a query's parameters need.
        """
        try:
            fields = json.loads(record[len(SQL_RECORD_START) :], parse_constant=_not_json)
        except (ValueError, RecursionError):
            return None
        if not isinstance(fields, dict) or fields.get("type") != "sql":
            return None
        if not fields.keys() >= set(SQL_EVENT_FIELDS):
            return None
        event = {name: fields[name] for name in SQL_EVENT_FIELDS}
        # The panel's layout of the query (examples/sqlreport.py), when the reporter sent it.
        event |= {name: fields[name] for name in SQL_EVENT_LAYOUT if name in fields}
        valid = (
            isinstance(event["sql"], str)
            and _is_params(event["params"])
            and _is_number(event["ms"])
            and (event["line"] is None or _is_integer(event["line"]))
            and (event["plan"] is None or isinstance(event["plan"], str))
            and all(
                event.get(name) is None or isinstance(event[name], str) for name in SQL_EVENT_LAYOUT
            )
        )
        return event if valid else None

    @staticmethod
    def _text_event(plain):
        text = "".join(plain)
        plain.clear()
        return [{"type": "stdout", "text": text}] if text else []


SQL_EVENT_FIELDS = ("type", "sql", "params", "ms", "line", "plan")
SQL_EVENT_LAYOUT = ("formatted", "short")
SQL_PARAMS_DEPTH = 4
INTEGERS = range(-(2**63), 2**63)


def _not_json(constant):
    raise ValueError(f"{constant} is not JSON")


def _is_integer(value):
    return type(value) is int and value in INTEGERS


def _is_number(value):
    # Floats are finite: the parser refuses NaN and Infinity, and overflows to Infinity
    # only for literals such as 1e999.
    return _is_integer(value) or (type(value) is float and math.isfinite(value))


def _is_params(value, depth=0):
    """None, or a list or dict of JSON scalars (nested a little: list parameters)."""
    if depth > SQL_PARAMS_DEPTH:
        return False
    if isinstance(value, list):
        return all(_is_params(item, depth + 1) or _is_scalar(item) for item in value)
    if isinstance(value, dict):
        return all(_is_params(item, depth + 1) or _is_scalar(item) for item in value.values())
    return depth == 0 and value is None


def _is_scalar(value):
    return value is None or isinstance(value, str | bool) or _is_number(value)


def encode(event):
    """An event as strict JSON text, the only form in which events leave the server."""
    return json.dumps(event, allow_nan=False)


def _status(returncode, sandboxed):
    """(exit code, signal) of the snippet. bwrap reports a child killed by signal N as
    exit code 128 + N, like a shell does."""
    if returncode < 0:
        return None, -returncode
    if sandboxed and returncode > 128 and returncode - 128 < signal.NSIG:
        return None, returncode - 128
    return returncode, None


def _reason(code, signum, stderr_tail, wall_ms, limits):
    if code == 0:
        return "ok"
    # RLIMIT_CPU sends SIGXCPU at the soft limit and SIGKILL a second later (if SIGXCPU is
    # ignored); nothing else in the sandbox sends SIGKILL that soon but the snippet itself.
    if signum == signal.SIGXCPU or (
        signum == signal.SIGKILL and wall_ms >= limits.cpu_seconds * 1000
    ):
        return "cpu"
    lines = stderr_tail.strip().splitlines()
    if code == 1 and lines and lines[-1].startswith("MemoryError"):
        return "memory"
    return "error"


# Queueing ------------------------------------------------------------------------------


class Busy(Exception):
    pass


class RunSlots:
    """At most `slots` concurrent runs (in this process) and a bounded queue of waiters.

    Each client gets a fair share: at most `client_runs` running and `client_queued`
    waiting (None: no share), and a free slot goes to the waiter whose client has the
    fewest runs going, so one client flooding the server does not keep others waiting.
    """

    def __init__(self, slots, queue_size, client_runs=None, client_queued=None):
        self.slots = slots
        self.queue_size = queue_size
        self.client_runs = client_runs
        self.client_queued = client_queued
        self.running = 0
        self.waiting = collections.deque()
        self.running_of = collections.Counter()

    def hold(self, client=None):
        """A ticket: `async with slots.hold() as ticket: async for event in ticket.wait()`.

        Raises Busy at once when every slot is taken and the queue is full, or when the
        client has its share running and waiting already.
        """
        if client is not None and self.client_runs is not None:
            waiting = sum(ticket.client == client for ticket in self.waiting)
            runs_at_once = self.running_of[client] < self.client_runs and self.running < self.slots
            if waiting >= self.client_queued and not runs_at_once:
                raise Busy(
                    f"You have {self.running_of[client]} runs going and {waiting} waiting, "
                    "your share of this server; wait for one to finish."
                )
        if self.running >= self.slots and len(self.waiting) >= self.queue_size:
            raise Busy("The server is busy running other snippets; try again in a minute.")
        return Ticket(self, client)

    def _may_run(self, ticket):
        return (
            ticket.client is None
            or self.client_runs is None
            or self.running_of[ticket.client] < self.client_runs
        )

    def _grant(self):
        while self.running < self.slots:
            eligible = [ticket for ticket in self.waiting if self._may_run(ticket)]
            if not eligible:
                break
            # min() keeps the first of equals: queue order among clients as busy.
            ticket = min(eligible, key=lambda ticket: self.running_of[ticket.client])
            self.waiting.remove(ticket)
            ticket.granted = True
            self.running += 1
            self.running_of[ticket.client] += 1
            ticket.changed.set()
        for ticket in self.waiting:  # positions moved
            ticket.changed.set()

    def _release(self, ticket):
        self.running -= 1
        self.running_of[ticket.client] -= 1
        if not self.running_of[ticket.client]:
            del self.running_of[ticket.client]


class Ticket:
    def __init__(self, slots, client=None):
        self.slots = slots
        self.client = client
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
            self.slots._release(self)
        else:
            self.slots.waiting.remove(self)
        self.slots._grant()


_default_slots = None


def default_slots():
    global _default_slots
    if _default_slots is None:
        _default_slots = RunSlots(
            settings.SNIPPET_RUN_SLOTS,
            settings.SNIPPET_QUEUE_SIZE,
            settings.SNIPPET_RUNS_PER_CLIENT,
            settings.SNIPPET_QUEUED_PER_CLIENT,
        )
    return _default_slots


async def run_queued(code, runtime, limits=None, slots=None, client=None) -> AsyncIterator[dict]:
    """run(), after waiting for a free slot (queued events) or refusing when busy.

    client: whose run it is (an address), for the client's fair share of the slots.
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
        async for event in run(code, runtime, limits):
            yield event
