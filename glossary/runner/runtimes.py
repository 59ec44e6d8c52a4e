"""One class per runtime, and the registry keyed by the model's Runtime choices (their
values: examples/orm.py imports the runner before Django is set up, so the models cannot
be imported here; a test holds the two together).

A runtime says what a run's process runs (the interpreter, the child's warm-up and, for a
server runtime, the launcher that starts the run's own server first) and what it sees
(read-only paths, files copied into its working directory, its environment, more of the
sandbox). Adding a runtime is one class and one line in RUNTIMES; nothing else in the
runner branches on a runtime's name.
"""

import asyncio
import dataclasses
import os
import sys
from pathlib import Path

from django.conf import settings

from . import child, databases, servers
from .sandbox import Bubblewrap, base_python

# Headroom on RLIMIT_CPU until the child lowers it (Django's warm-up takes ~0.3 s).
WARM_UP_CPU_SECONDS = 2


class RunRefused(Exception):
    """The run cannot start; the message tells the reader why."""


@dataclasses.dataclass(frozen=True)
class Given:
    """What each run of a runtime is given, prepared once and cached: files copied into
    its working directory ({name: host path}) and more bubblewrap options."""

    files: dict = dataclasses.field(default_factory=dict)
    sandbox_options: list = dataclasses.field(default_factory=list)


class Runtime:
    name: str
    # Whether query records on stdout become sql events (examples/sqlreport.py).
    sql_events = False

    def unavailable(self, sandbox):
        """Why this server cannot run this runtime in sandbox (a class), or None."""
        return None

    def interpreter(self):
        return sys.executable

    def warm_up(self):
        """The child's warm-up and its arguments (see child.WARM_UPS)."""
        return []

    def read_only(self):
        return [sys.base_prefix, sys.prefix]

    async def given(self):
        """What every run gets (see Given); RunRefused if it cannot be had."""
        return Given()

    def env(self, workdir):
        return {}

    def command(self, limits):
        """The argv that runs in the sandbox: the child, waiting for the code."""
        return child.command(self.interpreter(), "serve", str(limits.cpu_seconds), *self.warm_up())

    def zygote_options(self):
        """More of the fork server's options (zygote.py)."""
        return []

    def spawn_limits(self, limits, given):
        """The limits a run's process starts with. The child lowers the CPU limit to the
        snippet's budget once warmed up, and the file limit is the snippet's allowance on
        top of the largest file it is given."""
        sizes = [os.path.getsize(path) for path in given.files.values()]
        given_kb = -(-max(sizes, default=0) // 1024)
        return dataclasses.replace(
            limits,
            cpu_seconds=limits.cpu_seconds + WARM_UP_CPU_SECONDS,
            file_size_kb=limits.file_size_kb + given_kb,
        )

    async def start(self, sandbox, limits, given):
        """Start a run's process: it warms up, then waits for the snippet's code on stdin."""
        return await sandbox.start(
            self.command(limits),
            self.spawn_limits(limits, given),
            read_only=self.read_only(),
            files=given.files,
            env=self.env(sandbox.workdir),
            options=given.sandbox_options,
        )


class Python(Runtime):
    """The standard library only."""

    name = "python"

    def interpreter(self):
        return base_python()

    def read_only(self):
        return [sys.base_prefix]


class Django(Runtime):
    """The project's models on a private copy of the seeded database; queries stream."""

    name = "django"
    sql_events = True

    def warm_up(self):
        return ["django", str(settings.BASE_DIR)]

    def read_only(self):
        parts = [Path(settings.BASE_DIR) / part for part in databases.PROJECT_PARTS]
        return [*super().read_only(), *(part for part in parts if part.is_dir())]

    async def given(self):
        try:
            database = await asyncio.to_thread(databases.template_database)
        except databases.DatabaseBuildError as error:
            raise RunRefused(f"The Django runtime's database could not be built: {error}") from None
        return Given(files={"db.sqlite3": database})

    def env(self, workdir):
        return {
            "DJANGO_SETTINGS_MODULE": databases.SANDBOX_SETTINGS,
            "SNIPPET_SQL_EVENTS": "1",
            "DATABASE_URL": f"sqlite:///{workdir}/db.sqlite3",
        }


class ServerRuntime(Runtime):
    """Python of the sandbox environment (requirements/sandbox.txt) with a private server:
    the launcher (serve.py) starts it inside the run's sandbox, on a Unix socket in its
    tmpfs, then execs the child with the clients' environment set. Nothing of the host's
    servers is reachable, the run's limits cover the server too, and it dies with the
    sandbox, warm or not."""

    server: servers.Server
    # Imported by the warm-up: a warm run's snippet finds its client library loaded.
    clients = ()

    def unavailable(self, sandbox):
        if sandbox is not Bubblewrap:
            return f"{self.server.label} runs need bubblewrap, which this server lacks."
        return self.server.missing()

    def interpreter(self):
        return str(servers.sandbox_python())

    def warm_up(self):
        return ["import", *self.clients]

    def read_only(self):
        return self.server.read_only()

    async def given(self):
        template = None
        if self.server.has_template:
            try:
                template = await asyncio.to_thread(self.server.template)
            except servers.TemplateBuildError as error:
                raise RunRefused(str(error)) from None
        return Given(sandbox_options=self.server.bwrap_options(template))

    def command(self, limits):
        return self.server.launch("start", super().command(limits))

    def zygote_options(self):
        return ["--server", self.server.kind, "--bin-dir", str(self.server.bin_dir())]


class PostgreSQL(ServerRuntime):
    """psycopg.connect() needs no arguments; psql and pg_dump work too."""

    name = "postgresql"
    server = servers.SERVERS["postgresql"]
    clients = ("psycopg",)


class Redis(ServerRuntime):
    """REDIS_URL points at the run's redis-server (no persistence)."""

    name = "redis"
    server = servers.SERVERS["redis"]
    clients = ("redis",)


class MySQL(ServerRuntime):
    """MariaDB; clients find it through MYSQL_UNIX_PORT, as root, database learn."""

    name = "mysql"
    server = servers.SERVERS["mysql"]
    clients = ("pymysql",)


RUNTIMES = {
    runtime.name: runtime for runtime in (Python(), Django(), PostgreSQL(), Redis(), MySQL())
}


def get(name):
    """The runtime called name; RunRefused if there is none."""
    try:
        return RUNTIMES[name]
    except (KeyError, TypeError):
        raise RunRefused(
            f"Unknown runtime {name!r}; expected one of {', '.join(RUNTIMES)}."
        ) from None
