"""The exercise list, an exercise's page, and the exercises a topic page lists."""

import re

import pytest
from django.urls import reverse

from glossary.models import Check, DataVariant, Exercise, Hint, Topic

pytestmark = pytest.mark.django_db


def make_exercise(topic, slug, **fields):
    defaults = {
        "title": slug.replace("-", " ").capitalize(),
        "prompt": "List the **cheap** products.",
        "runtime": "python",
        "language": "sql",
        "setup": "CREATE TABLE product (name TEXT, price REAL);",
        "starter_code": "SELECT name FROM product;",
        "solution": "SELECT name FROM product WHERE price < 10 ORDER BY name;",
        "explanation": "Filter with `WHERE`, then sort.",
    }
    return Exercise.objects.create(topic=topic, slug=slug, **(defaults | fields))


@pytest.fixture
def exercise(topic):
    exercise = make_exercise(topic, "cheap-products")
    for order, text in enumerate(["Look at `WHERE`.", "Compare with `<`.", "Sort by name."]):
        Hint.objects.create(exercise=exercise, order=order, text=text)
    Check.objects.create(exercise=exercise, order=0, kind="rows", ordered=True)
    Check.objects.create(exercise=exercise, order=1, kind="time_limit", number=500)
    DataVariant.objects.create(exercise=exercise, order=0, name="NULL prices", setup="")
    return exercise


class TestExercisePage:
    def test_it_shows_the_prompt_starter_code_checks_and_hints_without_javascript(
        self, client, exercise
    ):
        html = client.get(exercise.get_absolute_url()).text

        assert "List the <strong>cheap</strong> products." in html
        assert re.search(r"SELECT.*name.*FROM.*product", html)  # the starter code, highlighted
        assert "Rows equal the reference&#x27;s" in html
        assert "Finishes within 500 ms" in html
        assert "on 1 hidden variant of it" in html
        assert html.count("data-hint>") == 3
        assert "Compare with <code>&lt;</code>." in html

    def test_the_solution_waits_behind_a_disclosure(self, client, exercise):
        html = client.get(exercise.get_absolute_url()).text

        solution = re.search(r'<details class="solution"[^>]*>(.*?)</details>', html, re.S)
        assert solution and "<summary>Show solution</summary>" in solution.group(1)
        assert "WHERE" in solution.group(1) and "Filter with <code>WHERE</code>" in html
        assert '<details class="solution" open' not in html

    def test_it_offers_run_check_and_reset_on_the_exercise_socket(self, client, exercise):
        html = client.get(exercise.get_absolute_url()).text

        assert "data-exercise-panel" in html
        assert 'data-exercise="cheap-products"' in html
        for button in ("data-check>Check<", "data-run>Run<", "data-reset hidden>Reset"):
            assert button in html

    def test_without_readers_code_it_says_answers_cannot_be_checked(
        self, client, exercise, settings
    ):
        settings.SNIPPET_READER_CODE = False

        html = client.get(exercise.get_absolute_url()).text

        assert "answers cannot be checked here" in html
        assert "data-exercise-panel" not in html
        assert "List the <strong>cheap</strong> products." in html

    def test_it_404s_for_unknown_exercises(self, client):
        assert client.get("/exercises/no-such-exercise/").status_code == 404

    def test_it_hides_unpublished_exercises_and_those_of_unpublished_topics(self, client, exercise):
        draft = make_exercise(exercise.topic, "draft", is_published=False)
        hidden_topic = Topic.objects.create(name="Hidden", slug="hidden", is_published=False)
        in_draft_topic = make_exercise(hidden_topic, "in-a-draft-topic")

        assert client.get(draft.get_absolute_url()).status_code == 404
        assert client.get(in_draft_topic.get_absolute_url()).status_code == 404

    def test_staff_see_drafts_with_a_badge(self, staff_client, exercise):
        draft = make_exercise(exercise.topic, "draft", is_published=False)

        html = staff_client.get(draft.get_absolute_url()).text

        assert "badge--draft" in html

    def test_it_costs_a_fixed_number_of_queries(
        self, client, exercise, django_assert_max_num_queries
    ):
        # The content revision, the exercise, its hints and its checks.
        with django_assert_max_num_queries(4):
            assert client.get(exercise.get_absolute_url()).status_code == 200


class TestExerciseList:
    def test_it_groups_published_exercises_by_topic(self, client, exercise):
        other = Topic.objects.create(name="Aardvark DB", slug="aardvark-db")
        make_exercise(other, "first-steps", title="First steps")
        make_exercise(other, "draft", is_published=False, title="Unfinished")

        html = client.get(reverse("glossary:exercise-list")).text

        headings = re.findall(r'<h2 id="exercises-[^"]+"><a href="[^"]+">([^<]+)</a>', html)
        assert headings == ["Aardvark DB", "PostgreSQL"]
        assert "First steps" in html and "Cheap products" in html
        assert "Unfinished" not in html
        assert 'data-progress-item="exercise:cheap-products"' in html

    def test_it_keeps_queries_constant(self, client, topic, django_assert_max_num_queries):
        for number in range(15):
            other = Topic.objects.create(name=f"Topic {number}", slug=f"topic-{number}")
            make_exercise(other, f"exercise-{number}")

        with django_assert_max_num_queries(2):
            html = client.get(reverse("glossary:exercise-list")).text

        assert html.count("data-progress-item=") == 15

    def test_it_says_when_there_are_none(self, client, db):
        assert "No exercises yet." in client.get(reverse("glossary:exercise-list")).text


class TestTopicPageExercises:
    def test_it_lists_the_topics_published_exercises_in_order(self, client, exercise):
        make_exercise(exercise.topic, "a-later-one", title="A later one", order=5)
        make_exercise(exercise.topic, "draft", title="Unfinished", is_published=False)

        html = client.get(exercise.topic.get_absolute_url()).text

        section = re.search(r'<h2 id="exercises-title">.*?</section>', html, re.S).group()
        assert re.findall(r'<a href="/exercises/([^/]+)/">', section) == [
            "cheap-products",
            "a-later-one",
        ]

    def test_staff_see_draft_exercises_there(self, staff_client, exercise):
        make_exercise(exercise.topic, "draft", title="Unfinished", is_published=False)

        assert "Unfinished" in staff_client.get(exercise.topic.get_absolute_url()).text

    def test_a_topic_without_exercises_has_no_exercise_section(self, client, topic):
        assert "exercises-title" not in client.get(topic.get_absolute_url()).text

    def test_a_new_exercise_shows_on_the_cached_topic_page_at_once(self, client, topic):
        client.get(topic.get_absolute_url())

        make_exercise(topic, "fresh", title="Fresh exercise")

        assert "Fresh exercise" in client.get(topic.get_absolute_url()).text
