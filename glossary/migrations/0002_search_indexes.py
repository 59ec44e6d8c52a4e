"""PostgreSQL search indexes: weighted full-text (GIN) and trigram (GIN, pg_trgm).

Nothing here runs on other databases, and nothing enters the migration state: the indexes
are not declared in any model's Meta, so makemigrations stays quiet on every backend.

The expressions are frozen copies of the vectors in glossary/search.py. A query only uses
an expression index when it computes exactly the same expression, so a change to a vector
there needs a new migration that drops and recreates its index here.
"""

from django.contrib.postgres.indexes import GinIndex, OpClass
from django.contrib.postgres.operations import TrigramExtension
from django.contrib.postgres.search import SearchVector
from django.db import migrations
from django.db.models.functions import Upper

CONFIG = "english"


def search_indexes():
    """(model name, index) pairs."""
    return [
        (
            "topic",
            GinIndex(
                SearchVector("name", "aliases", weight="A", config=CONFIG)
                + SearchVector("summary", weight="B", config=CONFIG),
                name="topic_search_vector",
            ),
        ),
        (
            "link",
            GinIndex(
                SearchVector("title", weight="B", config=CONFIG)
                + SearchVector("description", weight="C", config=CONFIG),
                name="link_search_vector",
            ),
        ),
        (
            "snippet",
            GinIndex(
                SearchVector("title", weight="B", config=CONFIG)
                + SearchVector("description", weight="C", config=CONFIG)
                + SearchVector("code", weight="D", config=CONFIG),
                name="snippet_search_vector",
            ),
        ),
        ("topic", GinIndex(OpClass(Upper("name"), name="gin_trgm_ops"), name="topic_name_trgm")),
        (
            "topic",
            GinIndex(OpClass(Upper("aliases"), name="gin_trgm_ops"), name="topic_aliases_trgm"),
        ),
    ]


def add_indexes(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for model_name, index in search_indexes():
        schema_editor.add_index(apps.get_model("glossary", model_name), index)


def remove_indexes(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for model_name, index in search_indexes():
        schema_editor.remove_index(apps.get_model("glossary", model_name), index)


class Migration(migrations.Migration):
    dependencies = [
        ("glossary", "0001_initial"),
    ]

    operations = [
        TrigramExtension(),
        migrations.RunPython(add_indexes, remove_indexes),
    ]
