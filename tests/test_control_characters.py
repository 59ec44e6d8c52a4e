"""Control characters are refused where text is entered, and cannot break the feed."""

import xml.dom.minidom

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from glossary.models import Link, Snippet, Topic

SINGLE_LINE = [
    (Topic, "name"),
    (Topic, "aliases"),
    (Link, "title"),
    (Snippet, "title"),
    (Snippet, "display_only_reason"),
]
MULTI_LINE = [
    (Topic, "summary"),
    (Link, "description"),
    (Snippet, "description"),
    (Snippet, "code"),
]


def errors_for(model, field, value):
    try:
        model(**{field: value}).full_clean()
    except ValidationError as error:
        return error.message_dict.get(field, [])
    return []


@pytest.mark.parametrize(("model", "field"), SINGLE_LINE + MULTI_LINE)
@pytest.mark.parametrize("character", ["\x00", "\x0b", "\x1b", "\x7f", "\x85"])
def test_every_text_field_refuses_control_characters(db, model, field, character):
    errors = errors_for(model, field, f"before{character}after")

    assert any("control characters" in error for error in errors), errors


@pytest.mark.parametrize(("model", "field"), MULTI_LINE)
def test_multi_line_text_keeps_its_line_breaks_and_tabs(db, model, field):
    assert errors_for(model, field, "line one\r\n\tline two\n") == []


@pytest.mark.parametrize(("model", "field"), SINGLE_LINE)
def test_single_line_text_refuses_line_breaks(db, model, field):
    assert errors_for(model, field, "one\ntwo") != []


def test_the_admin_refuses_a_link_title_with_a_vertical_tab(staff_client, topic):
    response = staff_client.post(
        reverse("admin:glossary_link_add"),
        {
            "topic": topic.pk,
            "url": "https://example.com/",
            "title": "Bad\x0btitle",
            "group": "docs",
            "position": 0,
            "is_published": "on",
        },
    )

    assert response.status_code == 200
    assert "Remove the control characters" in response.text
    assert not Link.objects.exists()


def test_the_feed_survives_a_stored_control_character(client, topic):
    # Stored before the validators existed: create() does not validate.
    Link.objects.create(
        topic=topic, url="https://example.com/", title="Bad\x0btitle", description="A\x0cB"
    )

    response = client.get(reverse("glossary:link-feed"))

    assert response.status_code == 200
    feed = xml.dom.minidom.parseString(response.content)
    titles = [node.firstChild.data for node in feed.getElementsByTagName("title")]
    assert "PostgreSQL: Badtitle" in titles
