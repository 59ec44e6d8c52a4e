"""Django for an example run from a shell: a throwaway copy of the seed database, every
query reported.

`python -m examples.crud` imports the examples package first, which calls setup() here:
it sets Django up with the sandbox settings and a database of its own, removed at exit;
never the site's database:

* SQLite by default: a copy of the runner's template database (migrations + seed);
* PostgreSQL when DATABASE_URL is a postgres:// URL: a new database on that server, cloned
  from a migrated and seeded template database that is built once and kept.

On the site the runner's Django warm-up installs the same SQL reporter
(examples/sqlreport.py), so an example needs no setup of its own.
"""

import atexit
import hashlib
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from urllib.parse import urlsplit

import django
from django.apps import apps

from examples import sqlreport

ROOT = Path(__file__).resolve().parent.parent
SETTINGS = "config.settings.sandbox"
POSTGRES_SCHEMES = ("postgres", "postgresql", "pgsql")


def setup():
    """Set Django up (unless it is already) and report every query from here on."""
    if not apps.ready:
        os.environ["DJANGO_SETTINGS_MODULE"] = SETTINGS
        url = os.environ.get("DATABASE_URL", "")
        if urlsplit(url).scheme in POSTGRES_SCHEMES:
            os.environ["DATABASE_URL"] = throwaway_postgres_database(url)
        else:
            os.environ["DATABASE_URL"] = throwaway_sqlite_database()
        django.setup()
    sqlreport.install()


def throwaway_sqlite_database():
    """URL of a private copy of the runner's template database."""
    workdir = Path(tempfile.mkdtemp(prefix="examples-"))
    atexit.register(shutil.rmtree, workdir, ignore_errors=True)
    target = workdir / "db.sqlite3"
    # Settings are read (once) by template_database(); they must already name the copy.
    os.environ["DATABASE_URL"] = f"sqlite:///{target}"
    from glossary.runner import template_database

    shutil.copyfile(template_database(), target)
    return os.environ["DATABASE_URL"]


# PostgreSQL ----------------------------------------------------------------------------


def throwaway_postgres_database(url):
    """URL of a new database cloned from the template; dropped when the process exits."""
    import psycopg
    from psycopg import sql

    template = f"examples_template_{template_digest()}"
    name = f"examples_{os.getpid()}_{secrets.token_hex(4)}"
    with psycopg.connect(maintenance_url(url), autocommit=True) as admin:
        exists = admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", [template])
        if exists.fetchone() is None:
            build_template(admin, url, template)
        admin.execute(
            sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                sql.Identifier(name), sql.Identifier(template)
            )
        )
    atexit.register(drop_postgres_database, url, name)
    return database_url(url, name)


def template_digest():
    """What shapes the seeded database: Django's version, migrations and fixtures."""
    digest = hashlib.sha256(django.get_version().encode())
    for app in ("glossary", "examples"):
        paths = sorted((ROOT / app / "migrations").glob("*.py"))
        paths += sorted((ROOT / app / "fixtures").glob("*.json"))
        for path in paths:
            digest.update(f"{app}/{path.name}".encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


def build_template(admin, url, template):
    """Migrate and seed a new database under a temporary name, then rename it into place."""
    from psycopg import errors, sql

    partial = f"{template}_{os.getpid()}"
    admin.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(partial)))
    admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(partial)))
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": SETTINGS}
    env["DATABASE_URL"] = database_url(url, partial)
    try:
        for command in (["migrate", "--no-input"], ["loadseed"]):
            subprocess.run(
                [sys.executable, str(ROOT / "manage.py"), *command, "-v", "0"],
                env=env,
                check=True,
                capture_output=True,
            )
        admin.execute(
            sql.SQL("ALTER DATABASE {} RENAME TO {}").format(
                sql.Identifier(partial), sql.Identifier(template)
            )
        )
    except errors.DuplicateDatabase:
        pass  # another process built the same template first
    except subprocess.CalledProcessError as error:
        stderr = error.stderr.decode(errors="replace").strip()
        raise RuntimeError(f"Building {template} failed: {stderr}") from None
    finally:
        admin.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(partial))
        )


def drop_postgres_database(url, name):
    import psycopg
    from django.db import connections
    from psycopg import sql

    connections.close_all()
    connection = connections["default"]
    if hasattr(connection, "close_pool"):
        connection.close_pool()
    with psycopg.connect(maintenance_url(url), autocommit=True) as admin:
        admin.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


def database_url(url, name):
    return urlsplit(url)._replace(path=f"/{name}").geturl()


def maintenance_url(url):
    """A libpq URL for the server's "postgres" database, where databases are made."""
    parts = urlsplit(database_url(url, "postgres"))
    return parts._replace(scheme="postgresql").geturl()
