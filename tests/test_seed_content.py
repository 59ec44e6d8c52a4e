"""The seed glossary fixture: it loads, reloads idempotently, fails cleanly, and its code runs."""

import asyncio
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.serializers.base import DeserializationError
from django.db import IntegrityError

from glossary import runner
from glossary.models import Link, Snippet, Topic, letter_for, normalize_url
from glossary.rendering import highlight_code, render_markdown
from tests.conftest import require

ROOT = Path(__file__).resolve().parent.parent
FIXTURE = ROOT / "glossary" / "fixtures" / "glossary.json"
# `loadseed` loads the ORM examples' fixture along with it.
SEED_FIXTURES = [FIXTURE, ROOT / "examples" / "fixtures" / "examples.json"]
STAMP = "2025-01-01T00:00:00Z"
INTERNAL_LINK = re.compile(r"\]\(/topics/([^/)]*)/\)")


def fixture_objects(model=None):
    objects = json.loads(FIXTURE.read_text(encoding="utf-8"))
    return [obj for obj in objects if model is None or obj["model"] == model]


def seed_count(model):
    return sum(
        obj["model"] == model
        for path in SEED_FIXTURES
        for obj in json.loads(path.read_text(encoding="utf-8"))
    )


def fixture_snippets(runtime):
    return [
        obj["fields"]
        for obj in fixture_objects("glossary.snippet")
        if obj["fields"]["runtime"] == runtime
    ]


RUNNABLE = fixture_snippets("python")
# Python code run with the sandbox's drivers, beside a server of the run's own or the
# Django runtime's copy of the seed (SQL snippets open nothing in Python).
WITH_DRIVERS = [
    obj["fields"]
    for obj in fixture_objects("glossary.snippet")
    if obj["fields"]["runtime"] not in ("", "python") and obj["fields"]["language"] == "python"
]


def load_seed():
    call_command("loaddata", "glossary", "examples", verbosity=0)


def snapshot():
    """Every row the seed touches, by primary key, plus the see-also pairs."""
    return {
        "topics": set(Topic.objects.values_list("pk", "slug", "parent_id")),
        "links": set(Link.objects.values_list("pk", "topic_id", "url")),
        "snippets": set(Snippet.objects.values_list("pk", "slug", "topic_id")),
        "see_also": set(Topic.see_also.through.objects.values_list("from_topic", "to_topic")),
    }


def write_fixture(tmp_path, objects):
    path = tmp_path / "broken_seed.json"
    path.write_text(json.dumps(objects), encoding="utf-8")
    return str(path)


def valid_topic_entry():
    return {
        "model": "glossary.topic",
        "fields": {
            "name": "Valid topic from a broken file",
            "slug": "valid-topic-from-a-broken-file",
            "summary": "Saved only if the whole file loads.",
            "letter": "V",
            "summary_html": "<p>Saved only if the whole file loads.</p>",
            "created": STAMP,
            "updated": STAMP,
        },
    }


@pytest.mark.django_db
def test_seed_fixture_loads_published_content_in_the_promised_amounts():
    load_seed()

    assert Topic.objects.count() >= 60
    assert Link.objects.count() >= 100
    assert Snippet.objects.count() >= 25
    assert Snippet.objects.filter(runtime="python").count() >= 12
    assert not Topic.objects.filter(is_published=False).exists()
    assert not Snippet.objects.filter(is_published=False).exists()
    for link in Link.objects.filter(is_published=False):
        assert link.title.endswith(("(closed)", "gone)")), link.url
    for topic in Topic.objects.all():
        assert topic.summary.strip(), topic.slug
        assert topic.summary_html.strip(), topic.slug
    for link in Link.objects.all():
        assert link.url.startswith(("http://", "https://")), link.url
        assert link.title.strip() and link.description.strip(), link.url


@pytest.mark.django_db
def test_the_seed_features_a_handful_of_topics_and_a_snippet_to_run():
    load_seed()

    featured = Topic.objects.featured()
    assert 4 <= featured.count() <= 12
    assert Snippet.objects.runnable().filter(topic__in=featured).exists()


@pytest.mark.django_db
def test_seed_derived_columns_match_what_save_computes():
    """loaddata saves raw, bypassing save(); the derived columns are filled all the same."""
    load_seed()

    for topic in Topic.objects.all():
        assert topic.letter == letter_for(topic.name), topic.slug
        assert topic.summary_html == render_markdown(topic.summary), topic.slug
        assert topic.created is not None and topic.updated is not None
    for link in Link.objects.all():
        assert link.normalized_url == normalize_url(link.url), link.url
        assert link.domain and not link.domain.startswith("www."), link.url
    for snippet in Snippet.objects.all():
        label = f"Code: {snippet.title}"
        assert snippet.highlighted == highlight_code(snippet.code, snippet.language, label)
        assert snippet.description_html == render_markdown(snippet.description), snippet.slug


@pytest.mark.django_db
def test_loading_the_seed_twice_leaves_the_same_rows():
    load_seed()
    first = snapshot()
    load_seed()
    second = snapshot()

    assert second == first
    assert len(first["topics"]) == seed_count("glossary.topic")
    assert len(first["links"]) == seed_count("glossary.link")
    assert len(first["snippets"]) == seed_count("glossary.snippet")


@pytest.mark.django_db
def test_seed_parent_and_see_also_references_resolve_as_declared():
    load_seed()

    topics = {topic.slug: topic for topic in Topic.objects.prefetch_related("see_also")}
    for obj in fixture_objects("glossary.topic"):
        fields = obj["fields"]
        topic = topics[fields["slug"]]
        expected_parent = fields["parent"][0] if fields["parent"] else None
        assert (topic.parent.slug if topic.parent else None) == expected_parent
        related = {other.slug for other in topic.see_also.all()}
        assert {key[0] for key in fields["see_also"]} <= related, fields["slug"]
    for obj in fixture_objects("glossary.link") + fixture_objects("glossary.snippet"):
        assert obj["fields"]["topic"][0] in topics


@pytest.mark.django_db(transaction=True)
def test_broken_fixture_with_javascript_url_fails_and_saves_nothing(tmp_path):
    load_seed()
    before = snapshot()
    broken = write_fixture(
        tmp_path,
        [
            valid_topic_entry(),
            {
                "model": "glossary.link",
                "fields": {
                    "topic": ["valid-topic-from-a-broken-file"],
                    "url": "javascript:alert(1)",
                    "title": "Not a web link",
                    "normalized_url": "javascript:alert(1)",
                    "created": STAMP,
                    "updated": STAMP,
                },
            },
        ],
    )

    with pytest.raises(IntegrityError, match="link_url_http_or_https"):
        call_command("loaddata", broken, verbosity=0)

    assert snapshot() == before
    assert not Topic.objects.filter(slug="valid-topic-from-a-broken-file").exists()


@pytest.mark.django_db(transaction=True)
def test_broken_fixture_referring_to_a_missing_topic_fails_and_saves_nothing(tmp_path):
    load_seed()
    before = snapshot()
    broken = write_fixture(
        tmp_path,
        [
            valid_topic_entry(),
            {
                "model": "glossary.link",
                "fields": {
                    "topic": ["no-such-topic"],
                    "url": "https://example.com/orphan",
                    "title": "Orphan link",
                    "normalized_url": "https://example.com/orphan",
                    "created": STAMP,
                    "updated": STAMP,
                },
            },
        ],
    )

    with pytest.raises(DeserializationError, match="no topic"):
        call_command("loaddata", broken, verbosity=0)

    assert snapshot() == before
    assert not Topic.objects.filter(slug="valid-topic-from-a-broken-file").exists()


@pytest.mark.django_db(transaction=True)
def test_broken_fixture_with_a_missing_parent_topic_fails_and_saves_nothing(tmp_path):
    load_seed()
    before = snapshot()
    orphan = valid_topic_entry()
    orphan["fields"] = {
        **orphan["fields"],
        "name": "Orphan topic",
        "slug": "orphan-topic",
        "parent": ["no-such-parent"],
    }
    broken = write_fixture(tmp_path, [valid_topic_entry(), orphan])

    with pytest.raises(DeserializationError, match="no-such-parent"):
        call_command("loaddata", broken, verbosity=0)

    assert snapshot() == before
    assert not Topic.objects.filter(slug__in=["valid-topic-from-a-broken-file", "orphan-topic"])


@pytest.mark.parametrize("snippet", RUNNABLE, ids=[snippet["slug"] for snippet in RUNNABLE])
def test_runnable_seed_snippet_runs_with_the_standard_library_and_closes_what_it_opens(
    snippet, tmp_path
):
    # An unclosed sqlite3 connection or file shows up on stderr as a ResourceWarning.
    result = subprocess.run(
        [sys.executable, "-W", "always::ResourceWarning", "-c", snippet["code"]],
        cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=20,
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip(), "a runnable snippet should print something to read"
    assert result.stderr == ""


def test_seed_has_at_least_twelve_runnable_snippets():
    assert len(RUNNABLE) >= 12


def test_nine_in_ten_published_seed_snippets_have_a_runtime_of_this_site():
    published = [
        obj["fields"]
        for path in SEED_FIXTURES
        for obj in json.loads(path.read_text(encoding="utf-8"))
        if obj["model"] == "glossary.snippet" and obj["fields"].get("is_published", True)
    ]
    runnable = [snippet for snippet in published if snippet["runtime"]]

    assert {snippet["runtime"] for snippet in runnable} <= set(runner.RUNTIMES)
    assert len(runnable) >= 0.9 * len(published), f"{len(runnable)} of {len(published)} run"


async def run_events(code, runtime):
    try:
        return [event async for event in runner.run(code, runtime)]
    finally:
        await runner.shutdown_pool()


@pytest.mark.parametrize("snippet", WITH_DRIVERS, ids=[snippet["slug"] for snippet in WITH_DRIVERS])
def test_seed_snippet_with_drivers_runs_in_the_sandbox_and_closes_what_it_opens(snippet):
    require(runner.bubblewrap_works(), "bubblewrap with namespaces is not available")
    missing = runner.unavailable(snippet["runtime"])
    require(missing is None, missing or "")
    # Warnings of unclosed connections, sockets and files are hidden unless asked for.
    code = "import warnings; warnings.simplefilter('always', ResourceWarning)\n" + snippet["code"]

    events = asyncio.run(run_events(code, snippet["runtime"]))

    stderr = "".join(event["text"] for event in events if event["type"] == "stderr")
    assert events[-1]["reason"] == "ok", stderr or events
    assert any(event["type"] == "stdout" for event in events), "it should print something"
    assert "ResourceWarning" not in stderr


def test_every_display_only_seed_snippet_says_why_it_cannot_run():
    display_only = fixture_snippets("")
    assert display_only
    for snippet in display_only:
        assert snippet["display_only_reason"].strip(), snippet["slug"]
        assert len(snippet["display_only_reason"]) <= 200, snippet["slug"]


def test_every_internal_topic_link_in_the_seed_points_to_a_seeded_topic():
    slugs = {obj["fields"]["slug"] for obj in fixture_objects("glossary.topic")}
    texts = [obj["fields"]["summary"] for obj in fixture_objects("glossary.topic")]
    texts += [obj["fields"]["description"] for obj in fixture_objects("glossary.snippet")]

    targets = {target for text in texts for target in INTERNAL_LINK.findall(text)}

    assert targets, "the summaries should cross-link topics"
    assert targets <= slugs, sorted(targets - slugs)


def test_study_questions_link_every_question_to_an_answer():
    study = next(
        obj["fields"]
        for obj in fixture_objects("glossary.topic")
        if obj["fields"]["slug"] == "postgresql-study-questions"
    )
    questions = [line for line in study["summary"].splitlines() if line.startswith("- ")]

    assert len(questions) >= 50
    for question in questions:
        assert INTERNAL_LINK.search(question), question


def test_seed_slugs_are_lowercase_and_hyphenated():
    for obj in fixture_objects():
        slug = obj["fields"].get("slug")
        if slug is not None:
            assert re.fullmatch(r"[a-z0-9]+(?:-[a-z0-9]+)*", slug), slug


# Services that shut down; their domains may be taken over by anyone.
CLOSED_SERVICE_HOSTS = ("elephantsql.com", "gobitcan.com", "initd.org")


@pytest.mark.django_db
def test_links_to_closed_services_are_hidden_from_readers():
    load_seed()

    for link in Link.objects.published():
        assert not link.domain.endswith(CLOSED_SERVICE_HOSTS), link.url
    # Kept in the seed unpublished, so reloading it hides the rows a database already has.
    hidden = Link.objects.filter(is_published=False)
    assert {link.domain for link in hidden} == set(CLOSED_SERVICE_HOSTS)


def test_snippets_that_need_python_312_say_so():
    for snippet in RUNNABLE:
        if "autocommit=" in snippet["code"]:
            assert "Python 3.12" in snippet["description"], snippet["slug"]


def test_study_questions_send_jsonb_indexing_to_the_jsonb_topic():
    study = next(
        obj["fields"]
        for obj in fixture_objects("glossary.topic")
        if obj["fields"]["slug"] == "postgresql-study-questions"
    )
    (question,) = [line for line in study["summary"].splitlines() if "JSONB with GIN" in line]

    assert "(/topics/jsonb/)" in question


def test_seed_see_also_lists_name_each_other():
    # "See also" is symmetrical: a one-sided pair in the fixture is added by one topic and
    # removed again by the other, depending on load order, so reloading changes the rows.
    see_also = {
        obj["fields"]["slug"]: {key[0] for key in obj["fields"]["see_also"]}
        for obj in fixture_objects("glossary.topic")
    }

    one_sided = [(a, b) for a, others in see_also.items() for b in others if a not in see_also[b]]

    assert one_sided == []
