from pathlib import Path

import pytest
from django.conf import settings
from django.urls import reverse

from glossary.models import Snippet, Topic

pytestmark = pytest.mark.django_db

DIAGRAM = Path(settings.BASE_DIR) / "static" / "img" / "models.svg"


@pytest.fixture
def orm_topic():
    return Topic.objects.create(name="Django ORM", slug="django-orm", summary="Django's ORM.")


def make_example(topic, slug, **kwargs):
    return Snippet.objects.create(
        topic=topic,
        title=f"Example {slug}",
        slug=slug,
        code="from examples import orm\n",
        runtime="django",
        **kwargs,
    )


def test_it_explains_the_models_and_shows_the_diagram(client):
    html = client.get(reverse("glossary:about")).text

    for model in ("Topic", "Link", "Snippet", "Account", "Tag", "PageView"):
        assert f"<strong>{model}</strong>" in html
    assert '<img class="about__diagram" src="/static/img/models.svg"' in html


def test_the_diagram_is_an_svg_of_every_model():
    svg = DIAGRAM.read_text(encoding="utf-8")

    assert "<svg" in svg
    for model in ("Topic", "Link", "Snippet", "Account", "Tag", "PageView"):
        assert f";{model} &#160;" in svg, f"{model} has no box in the diagram"


def test_it_lists_published_orm_examples_in_order(client, orm_topic):
    second = make_example(orm_topic, "orm-second", position=11)
    first = make_example(orm_topic, "orm-first", position=10)
    make_example(orm_topic, "orm-draft", position=12, is_published=False)
    Snippet.objects.create(topic=orm_topic, title="Plain", slug="plain", code="1", runtime="python")

    html = client.get(reverse("glossary:about")).text

    assert html.index(first.get_absolute_url()) < html.index(second.get_absolute_url())
    assert "orm-draft" not in html
    assert "/snippets/plain/" not in html
    assert f'<a href="{orm_topic.get_absolute_url()}">Django ORM</a>' in html


def test_it_says_so_when_there_are_no_examples(client):
    html = client.get(reverse("glossary:about")).text

    assert "No ORM examples are published yet." in html


def test_the_page_costs_two_queries_however_many_examples(
    client, orm_topic, django_assert_num_queries
):
    for number in range(5):
        make_example(orm_topic, f"orm-{number}", position=number)

    with django_assert_num_queries(2):
        response = client.get(reverse("glossary:about"))

    assert response.status_code == 200


def test_the_navigation_links_to_it_and_marks_it_current(client):
    home = client.get(reverse("glossary:home")).text
    about = client.get(reverse("glossary:about")).text

    assert '<a href="/about/">About</a>' in home
    assert '<a href="/about/" aria-current="page">About</a>' in about
