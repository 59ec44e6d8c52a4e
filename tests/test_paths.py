"""Learning paths: the list, a path's steps, each step's page and the way between them."""

import re

import pytest
from django.db import IntegrityError, transaction
from django.urls import reverse

from glossary.models import Exercise, Path, PathStep, Snippet, Topic

pytestmark = pytest.mark.django_db


def make_path(slug="sql-from-zero", title="SQL from zero", **fields):
    return Path.objects.create(slug=slug, title=title, summary="Start *here*.", **fields)


@pytest.fixture
def exercise(topic):
    return Exercise.objects.create(
        topic=topic,
        slug="cheap-products",
        title="Cheap products",
        prompt="List the cheap products.",
        runtime="python",
        language="sql",
        starter_code="SELECT name FROM product;",
        solution="SELECT name FROM product WHERE price < 10;",
    )


@pytest.fixture
def path(topic, snippet, exercise):
    """Three steps: the topic, its snippet, its exercise."""
    path = make_path()
    PathStep.objects.create(path=path, order=1, topic=topic, note="What it is.")
    PathStep.objects.create(path=path, order=2, snippet=snippet)
    PathStep.objects.create(path=path, order=3, exercise=exercise, note="Now you.")
    return path


def step_url(path, number):
    return reverse("glossary:path-step", args=[path.slug, number])


class TestPathList:
    def test_it_lists_published_paths_in_order_with_their_step_counts(self, client, path):
        make_path("later", "Later path", order=9)
        make_path("draft", "Unfinished path", is_published=False)

        html = client.get(reverse("glossary:path-list")).text

        assert re.findall(r'class="path-card__title"><a href="[^"]+">([^<]+)</a>', html) == [
            "SQL from zero",
            "Later path",
        ]
        assert "3 steps" in html
        assert 'data-progress-count="topic:postgresql snippet:hello exercise:cheap-products "' in (
            html
        )

    def test_it_keeps_queries_constant(self, client, topic, django_assert_max_num_queries):
        for number in range(8):
            path = make_path(f"path-{number}", f"Path {number}")
            for order in range(5):
                PathStep.objects.create(path=path, order=order, topic=topic)

        # The content revision, the paths, their steps with what each shows.
        with django_assert_max_num_queries(3):
            html = client.get(reverse("glossary:path-list")).text

        assert html.count("5 steps") == 8


def test_the_home_page_offers_the_published_paths(client, path):
    make_path("draft", "Unfinished path", is_published=False)

    html = client.get(reverse("glossary:home")).text

    section = html.split('id="paths-title"')[1].split("</section>")[0]
    assert re.findall(r'class="path-card__title"><a href="([^"]+)">([^<]+)</a>', section) == [
        (path.get_absolute_url(), "SQL from zero")
    ]
    assert "Start here." in section


class TestPathPage:
    def test_it_lists_the_steps_in_order_with_links_notes_and_progress_marks(self, client, path):
        html = client.get(path.get_absolute_url()).text

        steps = re.findall(r'<a href="/paths/sql-from-zero/(\d)/">([^<]+)</a>', html)
        assert steps == [("1", "PostgreSQL"), ("2", "Hello"), ("3", "Cheap products")]
        assert "What it is." in html and "Now you." in html
        assert 'data-progress-item="exercise:cheap-products"' in html
        assert "Start <em>here</em>." in html

    def test_steps_whose_content_is_a_draft_are_left_out(self, client, path, snippet):
        Snippet.objects.filter(pk=snippet.pk).update(is_published=False)

        html = client.get(path.get_absolute_url()).text

        steps = re.findall(r'<a href="/paths/sql-from-zero/(\d)/">([^<]+)</a>', html)
        assert steps == [("1", "PostgreSQL"), ("2", "Cheap products")]

    def test_it_404s_for_unknown_and_unpublished_paths(self, client, path):
        make_path("draft", "Unfinished path", is_published=False)

        assert client.get("/paths/no-such-path/").status_code == 404
        assert client.get("/paths/draft/").status_code == 404

    def test_staff_see_a_draft_path(self, staff_client, db):
        make_path("draft", "Unfinished path", is_published=False)

        assert "badge--draft" in staff_client.get("/paths/draft/").text

    def test_it_costs_a_fixed_number_of_queries(self, client, path, django_assert_max_num_queries):
        with django_assert_max_num_queries(3):
            assert client.get(path.get_absolute_url()).status_code == 200


class TestStepPage:
    def test_a_topic_step_shows_the_topic_with_the_way_on(self, client, path, link):
        html = client.get(step_url(path, 1)).text

        assert '<h1 id="topic-title">PostgreSQL' in html
        assert "PostgreSQL docs" in html  # the topic's links, as on its own page
        assert "step <strong>1 of 3</strong>" in html
        assert 'rel="next" href="/paths/sql-from-zero/2/"' in html
        assert 'rel="prev"' not in html
        assert 'data-progress-read="topic:postgresql"' in html

    def test_a_snippet_step_shows_the_runnable_snippet(self, client, path):
        html = client.get(step_url(path, 2)).text

        assert 'data-snippet="hello"' in html and 'class="run-panel"' in html
        assert 'rel="prev" href="/paths/sql-from-zero/1/"' in html
        assert 'rel="next" href="/paths/sql-from-zero/3/"' in html

    def test_an_exercise_step_shows_the_exercise_and_ends_the_path(self, client, path):
        html = client.get(step_url(path, 3)).text

        assert 'data-exercise="cheap-products"' in html
        assert "List the cheap products." in html
        assert "step <strong>3 of 3</strong>" in html
        assert 'rel="next"' not in html
        assert "back to the path" in html

    @pytest.mark.parametrize("number", [0, 4, 99])
    def test_a_step_out_of_range_is_not_found(self, client, path, number):
        assert client.get(step_url(path, number)).status_code == 404

    def test_steps_of_an_unpublished_path_are_not_found(self, client, path):
        Path.objects.filter(pk=path.pk).update(is_published=False)

        assert client.get(step_url(path, 1)).status_code == 404

    def test_a_topic_step_costs_no_more_than_the_topic_page(
        self, client, path, django_assert_max_num_queries
    ):
        # The path and its steps, then what the topic page costs (its term index too).
        with django_assert_max_num_queries(9):
            assert client.get(step_url(path, 1)).status_code == 200


class TestPathStepIntegrity:
    @pytest.mark.parametrize("things", [{}, {"topic": True, "snippet": True}])
    def test_a_step_shows_exactly_one_thing(self, path, topic, snippet, things):
        fields = {"topic": topic, "snippet": snippet}
        step = PathStep(path=path, order=7, **{name: fields[name] for name in things})

        with pytest.raises(IntegrityError), transaction.atomic():
            step.save()

    def test_two_steps_cannot_share_a_position(self, path, topic):
        with pytest.raises(IntegrityError), transaction.atomic():
            PathStep.objects.create(path=path, order=1, topic=topic)


class TestPathAdmin:
    def test_the_changelist_add_and_change_pages_render(self, staff_client, path):
        for url in (
            reverse("admin:glossary_path_changelist") + "?q=sql",
            reverse("admin:glossary_path_add"),
            reverse("admin:glossary_path_change", args=[path.pk]),
        ):
            assert staff_client.get(url).status_code == 200

    def test_a_step_with_two_things_gets_a_clear_error_and_nothing_is_saved(
        self, staff_client, path, topic, snippet
    ):
        data = {
            "slug": "another",
            "title": "Another path",
            "summary": "",
            "order": 0,
            "steps-TOTAL_FORMS": 1,
            "steps-INITIAL_FORMS": 0,
            "steps-0-order": 1,
            "steps-0-topic": topic.pk,
            "steps-0-snippet": snippet.pk,
        }

        response = staff_client.post(reverse("admin:glossary_path_add"), data)

        assert response.status_code == 200
        assert "A step shows exactly one topic, snippet or exercise." in response.text
        assert not Path.objects.filter(slug="another").exists()


def test_a_topic_rename_shows_on_cached_path_pages_at_once(client, path, topic):
    client.get(path.get_absolute_url())

    Topic.objects.filter(pk=topic.pk).update(name="Postgres")

    assert "Postgres<" in client.get(path.get_absolute_url()).text


def test_the_sitemap_lists_published_paths_and_exercises(client, path, exercise):
    make_path("draft", "Unfinished path", is_published=False)

    xml = client.get(reverse("glossary:sitemap")).text

    assert "/paths/sql-from-zero/</loc>" in xml and "/paths/draft/" not in xml
    assert "/exercises/cheap-products/</loc>" in xml
    assert "/exercises/</loc>" in xml and "/paths/</loc>" in xml
