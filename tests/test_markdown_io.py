"""`manage.py importmarkdown` and `exportmarkdown`: the directory as an awesome list."""

import pytest
from django.core.management import CommandError, call_command

from glossary.models import Link, Topic

AWESOME_LIST = """\
# Awesome databases

A list of database things.

## PostgreSQL

> An open-source relational database.
>
> - **MVCC** keeps readers and writers apart.

- [PostgreSQL](https://www.postgresql.org/) - The project's site.

### Sync drivers

- [psycopg](https://www.psycopg.org/) – The PostgreSQL adapter for Python.

### Async

* [asyncpg](https://github.com/MagicStack/asyncpg) - A fast async driver.

### JSONB

- [JSON types](https://www.postgresql.org/docs/current/datatype-json.html)

**Articles**

- [ACID \\[Wikipedia\\]](https://en.wikipedia.org/wiki/ACID_(db)) - The four properties.

## Redis

Tools:

- [redis-py](https://github.com/redis/redis-py) - The Redis client: sync and async.
"""


@pytest.fixture
def awesome_list(tmp_path):
    path = tmp_path / "awesome.md"
    path.write_text(AWESOME_LIST)
    return path


def run(command, *args):
    from io import StringIO

    out, err = StringIO(), StringIO()
    call_command(command, *args, stdout=out, stderr=err)
    return out.getvalue()


def test_headings_become_topics_and_items_become_grouped_links(db, awesome_list):
    run("importmarkdown", awesome_list)

    postgresql, jsonb, redis = (Topic.objects.get(name=n) for n in ("PostgreSQL", "JSONB", "Redis"))
    assert jsonb.parent == postgresql and redis.parent is None
    assert postgresql.summary.startswith("An open-source relational database.\n\n- **MVCC**")
    assert not postgresql.is_published  # a curator reviews and publishes
    groups = {link.title: (link.topic.name, link.group) for link in Link.objects.all()}
    assert groups == {
        "PostgreSQL": ("PostgreSQL", "docs"),
        "psycopg": ("PostgreSQL", "sync"),
        "asyncpg": ("PostgreSQL", "async"),
        "JSON types": ("JSONB", "docs"),
        "ACID [Wikipedia]": ("JSONB", "article"),
        "redis-py": ("Redis", "tool"),
    }
    acid = Link.objects.get(title="ACID [Wikipedia]")
    assert acid.url == "https://en.wikipedia.org/wiki/ACID_(db)"
    assert acid.description == "The four properties."
    assert Link.objects.get(title="psycopg").description == "The PostgreSQL adapter for Python."


def test_the_dry_run_prints_what_would_change_and_writes_nothing(db, awesome_list):
    out = run("importmarkdown", awesome_list, "--dry-run")

    assert "+ topic JSONB under PostgreSQL (new, a draft)" in out
    assert "+ link https://www.psycopg.org/ under PostgreSQL (Sync drivers), a draft" in out
    assert "9 change(s) would be made (dry run: nothing written)." in out
    assert not Topic.objects.exists() and not Link.objects.exists()


def test_an_import_updates_what_differs(db, awesome_list):
    topic = Topic.objects.create(name="PostgreSQL", slug="postgresql", summary="Old.")
    Link.objects.create(topic=topic, url="https://www.psycopg.org", title="Psycopg", group="docs")

    out = run("importmarkdown", awesome_list)

    assert "~ topic PostgreSQL: summary" in out
    assert "~ link https://www.psycopg.org: title, description, group" in out
    link = Link.objects.get(topic=topic, normalized_url="https://www.psycopg.org")
    assert (link.title, link.group) == ("psycopg", "sync")
    topic.refresh_from_db()
    assert topic.is_published  # an update does not unpublish


@pytest.fixture
def directory(db):
    """A published directory with nesting, Markdown summaries and awkward titles and URLs."""
    database = Topic.objects.create(name="Database", slug="database", summary="Stores data.")
    relational = Topic.objects.create(
        name="Relational database",
        slug="relational-database",
        parent=database,
        summary="Tables and keys:\n\n- rows\n- columns\n\n## Not a heading",
    )
    Topic.objects.create(name="Hidden", slug="hidden", is_published=False)
    Link.objects.create(
        topic=relational,
        url="https://en.wikipedia.org/wiki/Relation_(database)",
        title="Relation [Wikipedia]",
        description="Rows  and\ncolumns.",
        group="article",
    )
    Link.objects.create(topic=database, url="https://sqlite.org/", title="SQLite", group="site")
    Link.objects.create(topic=database, url="https://duckdb.org/", title="DuckDB", group="tool")
    Link.objects.create(topic=database, url="https://draft.example/", title="D", is_published=False)
    return database


def test_importing_an_export_changes_nothing(directory, tmp_path):
    exported = tmp_path / "export.md"
    run("exportmarkdown", "--output", exported)

    out = run("importmarkdown", exported)

    assert out == "0 change(s) made.\n"


def test_an_export_rebuilds_the_directory_elsewhere(directory, tmp_path):
    exported = tmp_path / "export.md"
    run("exportmarkdown", "--output", exported)
    first = exported.read_text()
    Link.objects.all().delete()
    Topic.objects.all().delete()

    run("importmarkdown", exported)
    Topic.objects.update(is_published=True)
    Link.objects.update(is_published=True)

    assert run("exportmarkdown") == first
    assert "Hidden" not in first and "draft.example" not in first


BAD = """\
- [Orphan](https://example.com/) - before any topic
## Redis
- [redis-py](https://github.com/redis/redis-py
- [Evil](javascript:alert(1)) - a script
- [redis-py](https://github.com/redis/redis-py) - fine
- [Again](https://github.com/redis/redis-py/) - the same URL
##
## redis
## ++
"""


def test_bad_input_is_reported_line_by_line_and_nothing_is_imported(db, tmp_path, capsys):
    path = tmp_path / "bad.md"
    path.write_text(BAD)

    with pytest.raises(CommandError, match="7 problem\\(s\\) in .*bad.md; nothing imported."):
        call_command("importmarkdown", path)

    errors = capsys.readouterr().err.splitlines()
    assert errors == [
        f"{path}: line 1: a list item outside any topic",
        f"{path}: line 3: expected '- [title](https://…) - description'",
        f"{path}: line 4: 'javascript:alert(1)' is not an http(s) URL",
        f"{path}: line 6: https://github.com/redis/redis-py/ is already under Redis (line 5)",
        f"{path}: line 7: a heading without text",
        f"{path}: line 8: the topic 'redis' appears twice (line 2)",
        f"{path}: line 9: '++' has no letters or digits for a slug",
    ]
    assert not Topic.objects.exists() and not Link.objects.exists()


def test_a_missing_file_is_a_clear_error(db, tmp_path):
    with pytest.raises(CommandError, match="Cannot read .*nope.md"):
        call_command("importmarkdown", tmp_path / "nope.md")


def test_the_seed_content_round_trips(db, tmp_path):
    call_command("loadseed", verbosity=0)
    exported = tmp_path / "seed.md"
    run("exportmarkdown", "--output", exported)

    assert run("importmarkdown", exported, "--dry-run").startswith("0 change(s)")


def test_a_topic_found_by_its_slug_gets_the_files_links(db, tmp_path):
    topic = Topic.objects.create(name="Key–value store", slug="key-value-store")
    path = tmp_path / "kv.md"
    path.write_text("## Key-value store\n\n- [Redis](https://redis.io/) - In memory.\n")

    run("importmarkdown", path)

    assert Link.objects.get().topic == topic
