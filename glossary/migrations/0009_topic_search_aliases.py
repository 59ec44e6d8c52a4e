"""Topic.search_aliases: spellings and related terms that search matches but readers never see.

On PostgreSQL the topic trigger of migration 0005 is replaced by one that also weighs
search_aliases A, like the name and aliases, and a trigram index on UPPER(search_aliases)
serves typo matching as topic_aliases_trgm does for aliases. Other databases only get the
column.
"""

from importlib import import_module

from django.contrib.postgres.indexes import GinIndex, OpClass
from django.db import migrations, models
from django.db.models.functions import Upper

TABLE = "glossary_topic"
COLUMNS = ["name", "aliases", "search_aliases", "summary"]
VECTOR = (
    "setweight(to_tsvector('english', coalesce(NEW.name, '') || ' ' "
    "|| coalesce(NEW.aliases, '') || ' ' || coalesce(NEW.search_aliases, '')), 'A')"
    " || setweight(to_tsvector('english', coalesce(NEW.summary, '')), 'B')"
)
TRIGRAM_INDEX = GinIndex(
    OpClass(Upper("search_aliases"), name="gin_trgm_ops"),
    name="topic_search_aliases_trgm",
    fastupdate=False,
)


def replace_trigger(schema_editor, columns, vector):
    schema_editor.execute(
        f"CREATE OR REPLACE FUNCTION {TABLE}_search_vector() RETURNS trigger LANGUAGE plpgsql "
        f"AS $$ BEGIN NEW.search_vector := {vector}; RETURN NEW; END $$"
    )
    schema_editor.execute(f"DROP TRIGGER {TABLE}_search_vector ON {TABLE}")
    schema_editor.execute(
        f"CREATE TRIGGER {TABLE}_search_vector "
        f"BEFORE INSERT OR UPDATE OF {', '.join(columns)}, search_vector ON {TABLE} "
        f"FOR EACH ROW EXECUTE FUNCTION {TABLE}_search_vector()"
    )
    schema_editor.execute(f"UPDATE {TABLE} SET search_vector = NULL")  # the trigger fills it


def include_search_aliases(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    replace_trigger(schema_editor, COLUMNS, VECTOR)
    schema_editor.add_index(apps.get_model("glossary", "topic"), TRIGRAM_INDEX)


def exclude_search_aliases(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.remove_index(apps.get_model("glossary", "topic"), TRIGRAM_INDEX)
    previous = import_module("glossary.migrations.0005_search_vector_triggers")
    table, columns, vector = previous.VECTORS[0]
    assert table == TABLE
    replace_trigger(schema_editor, columns, vector)


class Migration(migrations.Migration):
    dependencies = [
        ("glossary", "0008_rederive_snippet_code"),
    ]

    operations = [
        migrations.AddField(
            model_name="topic",
            name="search_aliases",
            field=models.CharField(
                blank=True,
                help_text="Search only, never shown: spellings, variants and related terms "
                "readers type, separated by commas (e.g. PostgresQL, pgsql).",
                max_length=255,
            ),
        ),
        migrations.AlterField(
            model_name="topic",
            name="aliases",
            field=models.CharField(
                blank=True,
                help_text="Other names a person would say, separated by commas (e.g. Postgres, "
                "PG). Shown on the topic page as “Also known as”.",
                max_length=255,
            ),
        ),
        migrations.RunPython(include_search_aliases, exclude_search_aliases),
    ]
