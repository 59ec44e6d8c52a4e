"""Aliases readers see ("Postgres") and search-only aliases ("pgsql", misspellings) that
search matches but no page shows."""

import json
from pathlib import Path

import pytest
from django.urls import reverse

pytestmark = pytest.mark.django_db

FIXTURE = Path(__file__).resolve().parent.parent / "glossary" / "fixtures" / "glossary.json"


@pytest.fixture
def postgresql(topic):
    topic.aliases = "Postgres, PG"
    topic.search_aliases = "PostgresQL, pgsql"
    topic.save()
    return topic


def test_the_topic_page_shows_aliases_but_not_search_aliases(client, postgresql):
    html = client.get(postgresql.get_absolute_url()).content.decode()

    assert "Postgres</span>" in html
    assert "pgsql" not in html
    assert "PostgresQL" not in html


def test_the_export_leaves_search_aliases_out(client, postgresql):
    data = client.get(reverse("glossary:export")).json()

    assert data["topics"][0]["aliases"] == ["Postgres", "PG"]
    assert "pgsql" not in json.dumps(data)


def test_curators_edit_search_aliases_in_the_admin(staff_client, postgresql):
    url = reverse("admin:glossary_topic_change", args=[postgresql.pk])

    html = staff_client.get(url).content.decode()

    assert 'name="search_aliases" value="PostgresQL, pgsql"' in html
    assert "Search only, never shown" in html


def test_the_admin_finds_a_topic_by_search_alias(staff_client, postgresql):
    response = staff_client.get(reverse("admin:glossary_topic_changelist"), {"q": "pgsql"})

    assert list(response.context["cl"].result_list) == [postgresql]


def test_seed_aliases_are_names_not_spellings_of_the_name():
    """A seed alias that only differs from the name or another alias in case, spaces or
    hyphens is a search variant and belongs in search_aliases."""

    def key(name):
        return "".join(char for char in name.casefold() if char.isalnum())

    for obj in json.loads(FIXTURE.read_text(encoding="utf-8")):
        if obj["model"] != "glossary.topic":
            continue
        fields = obj["fields"]
        aliases = [alias.strip() for alias in fields["aliases"].split(",") if alias.strip()]
        keys = [key(fields["name"]), *map(key, aliases)]
        assert len(keys) == len(set(keys)), (fields["name"], aliases)
