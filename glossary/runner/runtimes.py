"""One class per runtime, and the registry keyed by the model's Runtime choices (their
values: examples/orm.py imports the runner before Django is set up, so the models cannot
be imported here; a test holds the two together).

A runtime says what a run's process runs (the interpreter and the child's warm-up), what
it sees (read-only paths, files copied into its working directory, its environment),
what a run needs of its own (a Session: a database, say) and whether its processes may be
started before their run. Adding a runtime is one class and one line in RUNTIMES;
nothing else in the runner branches on a runtime's name.
"""

import asyncio
import dataclasses
import logging
import os
import sys
from pathlib import Path

import psycopg
from django.conf import settings

from . import child, databases
from .sandbox import base_python

# Headroom on RLIMIT_CPU until the child lowers it (Django's warm-up takes ~0.3 s).
WARM_UP_CPU_SECONDS = 2

logger = logging.getLogger(__name__)


class RunRefused(Exception):
    """The run cannot start; the message tells the reader why."""


class Session:
    """What one run has of its own beyond its sandbox; this one has nothing."""

    start_fields = {}  # added to the run's start event
    env = {}
    read_only = ()

    async def close(self):
        pass


class Runtime:
    name: str
    # Whether query records on stdout become sql events (examples/sqlreport.py).
    sql_events = False
    # Whether a process may be started before its run and wait for the code (warm pool).
    warm = True

    def unavailable(self):
        """Why this server cannot run this runtime, or None."""
        return None

    def interpreter(self):
        return sys.executable

    def warm_up(self):
        """The child's warm-up and its arguments (see child.WARM_UPS)."""
        return []

    def read_only(self):
        return [sys.base_prefix, sys.prefix]

    async def files(self):
        """{name in the working directory: host path}: what each run gets a copy of."""
        return {}

    def env(self, workdir):
        return {}

    async def open(self, run_id):
        """The run's Session; RunRefused if it cannot be had."""
        return Session()

    async def start(self, sandbox, limits, files, session=None):
        """Start a run's process: it warms up, then waits for the snippet's code on stdin."""
        session = session or Session()
        command = child.command(
            self.interpreter(), "serve", str(limits.cpu_seconds), *self.warm_up()
        )
        # The child lowers the CPU limit to the snippet's budget once warmed up, and the
        # file limit is the snippet's allowance on top of the largest file it is given.
        given_kb = max((-(-os.path.getsize(path) // 1024) for path in files.values()), default=0)
        spawn_limits = dataclasses.replace(
            limits,
            cpu_seconds=limits.cpu_seconds + WARM_UP_CPU_SECONDS,
            file_size_kb=limits.file_size_kb + given_kb,
        )
        return await sandbox.start(
            command,
            spawn_limits,
            read_only=[*self.read_only(), *session.read_only],
            files=files,
            env={**self.env(sandbox.workdir), **session.env},
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

    async def files(self):
        try:
            database = await asyncio.to_thread(databases.template_database)
        except databases.DatabaseBuildError as error:
            raise RunRefused(f"The Django runtime's database could not be built: {error}") from None
        return {"db.sqlite3": database}

    def env(self, workdir):
        return {
            "DJANGO_SETTINGS_MODULE": databases.SANDBOX_SETTINGS,
            "SNIPPET_SQL_EVENTS": "1",
            "DATABASE_URL": f"sqlite:///{workdir}/db.sqlite3",
        }


class PostgresSession(Session):
    def __init__(self, database):
        self.database = database
        self.start_fields = {"database": database.name}
        self.env = database.child_env()
        # Read-only is enough: connecting to a socket is no write to its file system.
        self.read_only = [database.socket_dir]

    async def close(self):
        # The thread finishes the drop even if this task is cancelled again meanwhile.
        try:
            await asyncio.to_thread(self.database.drop)
        except psycopg.Error:
            logger.exception("Could not drop the database and role %s", self.database.name)


class PostgreSQL(Runtime):
    """Python with a database and login role of its own on the site's PostgreSQL server
    (SNIPPET_POSTGRES_URL), reached through its Unix socket; PGHOST and friends are set.
    Its runs start cold: their database is made for the run."""

    name = "postgresql"
    warm = False

    def unavailable(self):
        if not settings.SNIPPET_POSTGRES_URL:
            return "This snippet needs PostgreSQL, which is not configured on this server."
        socket = databases.PostgresDatabase(settings.SNIPPET_POSTGRES_URL, "probe").socket
        if not socket.exists():
            return (
                f"PostgreSQL's socket {socket} does not exist on this server; "
                "snippets have no network and reach PostgreSQL only through its Unix socket."
            )
        return None

    async def open(self, run_id):
        database = databases.PostgresDatabase(settings.SNIPPET_POSTGRES_URL, run_id)
        try:
            await asyncio.to_thread(database.create)
        except psycopg.Error as error:
            logger.exception("Could not create the database of run %s", run_id)
            raise RunRefused(
                f"The run's PostgreSQL database could not be created: {error}"
            ) from None
        return PostgresSession(database)


RUNTIMES = {runtime.name: runtime for runtime in (Python(), Django(), PostgreSQL())}


def get(name):
    """The runtime called name; RunRefused if there is none."""
    try:
        return RUNTIMES[name]
    except (KeyError, TypeError):
        raise RunRefused(
            f"Unknown runtime {name!r}; expected one of {', '.join(RUNTIMES)}."
        ) from None
