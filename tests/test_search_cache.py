"""Readers' search results are cached per content revision: never stale, never a draft."""

import pytest
from django.contrib.auth.models import AnonymousUser
from django.urls import reverse

from glossary.models import Link, Topic
from glossary.search import search

reader = AnonymousUser()


@pytest.fixture
def content(db):
    topic = Topic.objects.create(name="PostgreSQL", slug="postgresql", summary="An RDBMS.")
    Link.objects.create(topic=topic, url="https://example.com/pool", title="Connection pools")
    return topic


def test_a_repeated_search_costs_no_query(client, content, django_assert_num_queries):
    url = reverse("glossary:search")
    first = client.get(url, {"q": "connection pools"})

    with django_assert_num_queries(0):
        again = client.get(url, {"q": " connection   pools "})

    assert [link.title for link in again.context["results"].links] == ["Connection pools"]
    assert again.context["results"].links == first.context["results"].links


def test_a_new_link_is_found_at_once(content):
    assert search("replication", reader).links == []
    Link.objects.create(topic=content, url="https://example.com/r", title="Replication")

    assert [link.title for link in search("replication", reader).links] == ["Replication"]


def test_an_unpublished_topic_disappears_from_results_at_once(staff_client, content):
    assert [topic.name for topic in search("PostgreSQL", reader).topics] == ["PostgreSQL"]

    # Through the admin, as a curator would.
    staff_client.post(
        reverse("admin:glossary_topic_changelist"),
        {"action": "unpublish", "_selected_action": [content.pk]},
    )

    assert search("PostgreSQL", reader).topics == []


def test_a_draft_staff_found_is_never_served_to_readers(django_user_model, content):
    Topic.objects.filter(pk=content.pk).update(is_published=False)
    staff = django_user_model(username="curator", is_staff=True)

    assert [topic.name for topic in search("PostgreSQL", staff).topics] == ["PostgreSQL"]
    assert search("PostgreSQL", reader).topics == []
