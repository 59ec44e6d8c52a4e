"""Readers never see a draft, through any relation a page shows; staff see them all."""

import pytest
from django.urls import reverse

from glossary.models import Link, Snippet, Topic


@pytest.fixture
def draft(db):
    """A draft topic with a published link and snippet of its own."""
    topic = Topic.objects.create(name="Secret Store", slug="secret-store", is_published=False)
    Link.objects.create(topic=topic, url="https://secret.example/", title="Secret link")
    Snippet.objects.create(
        topic=topic, title="Secret snippet", slug="secret-snippet", code="x", runtime="django"
    )
    return topic


def page(client, name, *args, **query):
    response = client.get(reverse(f"glossary:{name}", args=args), query)
    assert response.status_code == 200
    return response.content.decode()


def test_a_draft_parent_is_not_shown_as_part_of(client, topic, draft):
    topic.parent = draft
    topic.save()

    html = page(client, "topic-detail", topic.slug)

    assert "Part of" not in html
    assert "Secret Store" not in html


def test_staff_see_the_draft_parent(staff_client, topic, draft):
    topic.parent = draft
    topic.save()

    assert "Secret Store" in page(staff_client, "topic-detail", topic.slug)


def test_a_draft_child_is_not_listed(client, topic, draft):
    draft.parent = topic
    draft.save()

    assert "Secret Store" not in page(client, "topic-detail", topic.slug)


def test_a_draft_see_also_is_not_listed(client, topic, draft):
    topic.see_also.add(draft)

    assert "Secret Store" not in page(client, "topic-detail", topic.slug)


def test_draft_links_and_snippets_are_not_on_their_topic(client, topic):
    Link.objects.create(
        topic=topic, url="https://d.example/", title="Draft link", is_published=False
    )
    Snippet.objects.create(
        topic=topic, title="Draft snippet", slug="d", code="x", runtime="python", is_published=False
    )

    html = page(client, "topic-detail", topic.slug)

    assert "Draft link" not in html
    assert "Draft snippet" not in html


def test_the_draft_topic_and_its_snippets_have_no_page(client, draft):
    assert client.get(draft.get_absolute_url()).status_code == 404
    assert (
        client.get(reverse("glossary:snippet-detail", args=["secret-snippet"])).status_code == 404
    )


def test_the_home_page_does_not_list_a_drafts_links(client, topic, draft):
    html = page(client, "home")

    assert "Secret link" not in html
    assert "Secret" not in html


def test_the_letter_page_does_not_list_a_draft(client, draft):
    Topic.objects.create(name="Sqlite", slug="sqlite")

    html = page(client, "letter-detail", "S")

    assert "Sqlite" in html
    assert "Secret Store" not in html


def test_the_link_list_leaves_out_a_drafts_links_and_the_draft_itself(client, link, draft):
    html = page(client, "link-list")

    assert "PostgreSQL docs" in html
    assert "Secret" not in html


def test_the_about_page_does_not_list_a_drafts_orm_example(client, draft):
    assert "Secret snippet" not in page(client, "about")


def test_the_sitemap_leaves_out_drafts(client, topic, draft):
    xml = client.get(reverse("glossary:sitemap")).content.decode()

    assert topic.get_absolute_url() in xml
    assert "secret" not in xml


def test_the_feed_leaves_out_a_drafts_links(client, link, draft):
    xml = client.get(reverse("glossary:link-feed")).content.decode()

    assert "PostgreSQL docs" in xml
    assert "Secret" not in xml


def test_the_export_leaves_out_drafts_and_a_draft_parent(client, topic, draft):
    topic.parent = draft
    topic.save()

    data = client.get(reverse("glossary:export")).json()

    assert [item["slug"] for item in data["topics"]] == ["postgresql"]
    assert data["topics"][0]["parent"] is None
    assert "secret" not in str(data).lower()
