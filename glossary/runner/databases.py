"""The databases runs are given: the Django runtime's seeded SQLite template, built once
and cached, and a PostgreSQL run's throwaway database and role on the site's server.
"""

import datetime
import functools
import hashlib
import logging
import os
import secrets
import stat
import subprocess
import sys
import threading
from pathlib import Path

import django
import psycopg
from django.conf import settings
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict

# Only these parts of the project are visible to Django snippets: not the site's
# database, not .secret_key, not anything added later.
PROJECT_PARTS = ("config", "glossary", "examples")
SANDBOX_SETTINGS = "config.settings.sandbox"
DEFAULT_POSTGRES_SOCKET_DIR = "/var/run/postgresql"

logger = logging.getLogger(__name__)

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
            build.append(["loadseed"])
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
        "(see glossary.runner.databases.PostgresDatabase)",
        ", ".join(databases),
    )
