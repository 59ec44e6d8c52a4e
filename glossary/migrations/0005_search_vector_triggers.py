"""PostgreSQL keeps each row's search_vector current with a trigger, and indexes it.

Triggers rather than save(): bulk_create, QuerySet.update() and loaddata all skip save(),
and a stored vector that any of them left stale would hide the row from search. The
weights are those glossary/search.py ranked with before the column existed.

This replaces migration 0002's full-text expression indexes (the trigram indexes stay), and
does nothing on other databases, where search_vector stays NULL and unused.

The search indexes are written through (fastupdate off): with GIN's default pending list,
rows added since the last VACUUM are scanned one by one on every search, and after a bulk
load the planner rightly prefers a sequential scan. Edits are rare here; searches are not.
"""

from importlib import import_module

from django.contrib.postgres.indexes import GinIndex
from django.db import migrations

# (table, source columns, vector expression over NEW)
VECTORS = [
    (
        "glossary_topic",
        ["name", "aliases", "summary"],
        "setweight(to_tsvector('english', coalesce(NEW.name, '') || ' ' "
        "|| coalesce(NEW.aliases, '')), 'A')"
        " || setweight(to_tsvector('english', coalesce(NEW.summary, '')), 'B')",
    ),
    (
        "glossary_link",
        ["title", "description"],
        "setweight(to_tsvector('english', coalesce(NEW.title, '')), 'B')"
        " || setweight(to_tsvector('english', coalesce(NEW.description, '')), 'C')",
    ),
    (
        "glossary_snippet",
        ["title", "description", "code"],
        "setweight(to_tsvector('english', coalesce(NEW.title, '')), 'B')"
        " || setweight(to_tsvector('english', coalesce(NEW.description, '')), 'C')"
        " || setweight(to_tsvector('english', coalesce(NEW.code, '')), 'D')",
    ),
]
TRIGRAM_INDEXES = ["topic_name_trgm", "topic_aliases_trgm"]  # from migration 0002


def vector_indexes():
    """(model name, index) pairs."""
    return [
        (
            model_name,
            GinIndex(
                fields=["search_vector"], name=f"{model_name}_search_vector_gin", fastupdate=False
            ),
        )
        for model_name in ("topic", "link", "snippet")
    ]


def expression_indexes():
    """Migration 0002's full-text indexes, which the stored vectors make redundant."""
    initial = import_module("glossary.migrations.0002_search_indexes")
    return [
        (model_name, index)
        for model_name, index in initial.search_indexes()
        if index.name.endswith("_search_vector")
    ]


def add_triggers(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for table, columns, vector in VECTORS:
        schema_editor.execute(
            f"CREATE FUNCTION {table}_search_vector() RETURNS trigger LANGUAGE plpgsql AS $$ "
            f"BEGIN NEW.search_vector := {vector}; RETURN NEW; END $$"
        )
        # Also on writes to search_vector itself, so that no UPDATE can leave it wrong;
        # updates of other columns (publishing, verification) skip the work.
        schema_editor.execute(
            f"CREATE TRIGGER {table}_search_vector "
            f"BEFORE INSERT OR UPDATE OF {', '.join(columns)}, search_vector ON {table} "
            f"FOR EACH ROW EXECUTE FUNCTION {table}_search_vector()"
        )
        schema_editor.execute(f"UPDATE {table} SET search_vector = NULL")  # the trigger fills it
    for model_name, index in vector_indexes():
        schema_editor.add_index(apps.get_model("glossary", model_name), index)
    for model_name, index in expression_indexes():
        schema_editor.remove_index(apps.get_model("glossary", model_name), index)
    for name in TRIGRAM_INDEXES:
        schema_editor.execute(f"ALTER INDEX {name} SET (fastupdate = off)")
        schema_editor.execute(f"SELECT gin_clean_pending_list('{name}')")


def remove_triggers(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for name in TRIGRAM_INDEXES:
        schema_editor.execute(f"ALTER INDEX {name} RESET (fastupdate)")
    for model_name, index in expression_indexes():
        schema_editor.add_index(apps.get_model("glossary", model_name), index)
    for model_name, index in vector_indexes():
        schema_editor.remove_index(apps.get_model("glossary", model_name), index)
    for table, _, _ in VECTORS:
        schema_editor.execute(f"DROP TRIGGER {table}_search_vector ON {table}")
        schema_editor.execute(f"DROP FUNCTION {table}_search_vector()")
        schema_editor.execute(f"UPDATE {table} SET search_vector = NULL")


class Migration(migrations.Migration):
    dependencies = [
        ("glossary", "0004_search_vector"),
    ]

    operations = [
        migrations.RunPython(add_triggers, remove_triggers),
    ]
