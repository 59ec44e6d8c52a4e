"""`pruneexampletemplates` drops the examples' outdated PostgreSQL templates, not the current."""

import io
import uuid

import psycopg
import pytest
from django.core.management import CommandError, call_command
from psycopg import sql

from examples import orm
from glossary.management.commands import pruneexampletemplates
from tests.conftest import require

SERVER = "postgres://postgres@127.0.0.1:5432"


def databases():
    with psycopg.connect(f"{SERVER}/postgres", autocommit=True) as admin:
        return {name for (name,) in admin.execute("SELECT datname FROM pg_database")}


@pytest.fixture
def templates(monkeypatch):
    """Two stand-in templates: one for this state of the migrations, one for an older.

    Under a prefix of their own: the server's real templates may be in use by other runs.
    """
    try:
        psycopg.connect(f"{SERVER}/postgres", connect_timeout=2).close()
    except psycopg.Error:
        require(False, f"PostgreSQL is not reachable at {SERVER}")
    monkeypatch.setenv("DATABASE_URL", f"{SERVER}/glossary")
    prefix = f"test_templates_{uuid.uuid4().hex[:8]}_"
    monkeypatch.setattr(pruneexampletemplates, "PREFIX", prefix)
    monkeypatch.setattr(orm, "template_digest", lambda: "c0ffeec0ffeecafe")
    names = [f"{prefix}c0ffeec0ffeecafe", f"{prefix}0123456789abcdef"]
    with psycopg.connect(f"{SERVER}/postgres", autocommit=True) as admin:
        for name in names:
            admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    yield names
    with psycopg.connect(f"{SERVER}/postgres", autocommit=True) as admin:
        for name in names:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)))


def prune(*args):
    out = io.StringIO()
    call_command("pruneexampletemplates", *args, stdout=out)
    return out.getvalue()


def test_it_drops_templates_of_older_migrations_and_keeps_the_current(templates):
    current, stale = templates

    output = prune()

    assert f"Dropped {stale}" in output
    assert stale not in databases()
    assert current in databases()


def test_all_drops_the_current_template_too(templates):
    prune("--all")

    assert not set(templates) & databases()


def test_it_refuses_without_a_postgresql_url(monkeypatch):
    monkeypatch.setenv("DATABASE_URL", "sqlite:///db.sqlite3")

    with pytest.raises(CommandError, match="Set DATABASE_URL to the PostgreSQL server"):
        prune()
