"""Readers report problems and suggest links; curators work through the queue."""

import pytest
from django.test import Client
from django.urls import reverse

from glossary.models import Link, ReaderReport, Topic

REPORT = reverse("glossary:report")


def problem(**fields):
    return {"kind": "problem", "message": "The second link is dead.", "website": ""} | fields


def suggestion(**fields):
    return {
        "kind": "link",
        "url": "https://www.psycopg.org/psycopg3/docs/",
        "title": "Psycopg 3 docs",
        "message": "The driver's own documentation.",
        "website": "",
    } | fields


def test_topic_snippet_and_link_pages_offer_the_form(client, topic, snippet):
    topic_page = client.get(topic.get_absolute_url()).text
    snippet_page = client.get(snippet.get_absolute_url()).text
    links_page = client.get(reverse("glossary:link-list")).text

    assert f'href="{REPORT}?topic=postgresql&amp;kind=link">Suggest a link' in topic_page
    assert f'href="{REPORT}?topic=postgresql">Report a problem' in topic_page
    assert f'href="{REPORT}?snippet=hello">Report a problem' in snippet_page
    assert f'href="{REPORT}?kind=link">Suggest a link' in links_page


def test_the_form_says_what_it_is_about(client, topic, snippet):
    page = client.get(REPORT, {"snippet": "hello"}).text

    assert "About the snippet" in page and "Hello" in page and "csrfmiddlewaretoken" in page


def test_a_reader_reports_a_problem_with_a_topic(client, topic):
    response = client.post(REPORT, problem(topic="postgresql"))

    assert response.status_code == 200 and "A curator will read your report." in response.text
    report = ReaderReport.objects.get()
    assert (report.kind, report.topic, report.message) == (
        "problem",
        topic,
        "The second link is dead.",
    )
    assert report.status == "new"


def test_a_reader_suggests_a_link_for_a_snippets_topic(client, snippet):
    client.post(REPORT, suggestion(snippet="hello"))

    report = ReaderReport.objects.get()
    assert report.snippet == snippet and report.topic == snippet.topic
    assert report.url == "https://www.psycopg.org/psycopg3/docs/"


def test_the_form_is_csrf_protected(topic):
    strict = Client(enforce_csrf_checks=True)

    response = strict.post(REPORT, problem(topic="postgresql"))

    assert response.status_code == 403
    assert not ReaderReport.objects.exists()


def test_a_bot_that_fills_the_honeypot_is_thanked_and_ignored(client, topic):
    response = client.post(REPORT, problem(topic="postgresql", website="https://spam.example"))

    assert response.status_code == 200
    assert not ReaderReport.objects.exists()


@pytest.mark.parametrize(
    ("data", "error"),
    [
        (problem(message="x" * 2001), "Please keep it under 2000 characters (it has 2001)."),
        (
            problem(message="buy http://a.example http://b.example http://c.example"),
            "At most 2 links in a message",
        ),
        (problem(message="   "), "Tell us what is wrong."),
        (suggestion(url=""), "Which link do you suggest? Give its address."),
        (suggestion(url="javascript:alert(1)"), "Enter a valid URL."),
        (suggestion(url="ftp://example.com/file"), "Enter a valid URL."),
        (problem(kind="praise"), "Select a valid choice."),
    ],
)
def test_bad_input_is_refused_with_a_clear_error(client, topic, data, error):
    response = client.post(REPORT, data | {"topic": "postgresql"})

    assert response.status_code == 400
    assert error in response.text
    assert not ReaderReport.objects.exists()


def test_control_characters_are_dropped_from_messages(client, topic):
    client.post(REPORT, problem(topic="postgresql", message="dead\x07 link\x1b[31m"))

    assert ReaderReport.objects.get().message == "dead link[31m"


def test_reports_about_unknown_or_draft_topics_are_not_found(client, topic):
    Topic.objects.create(name="Secret", slug="secret", is_published=False)

    assert client.post(REPORT, problem(topic="nope")).status_code == 404
    assert client.get(REPORT, {"topic": "secret"}).status_code == 404


def test_each_client_is_limited_per_hour(client, topic, settings):
    settings.READER_REPORTS_PER_HOUR = 2
    for _ in range(2):
        assert client.post(REPORT, problem(topic="postgresql")).status_code == 200

    response = client.post(REPORT, problem(topic="postgresql"))
    other_client = client.post(REPORT, problem(topic="postgresql"), REMOTE_ADDR="192.0.2.7")

    assert response.status_code == 429 and "try again later" in response.text
    assert other_client.status_code == 200
    assert ReaderReport.objects.count() == 3


def accept(staff_client, *reports):
    return staff_client.post(
        reverse("admin:glossary_readerreport_changelist"),
        {"action": "accept", "_selected_action": [report.pk for report in reports]},
        follow=True,
    )


def test_accepting_a_suggested_link_creates_a_draft_link(staff_client, client, topic):
    client.post(REPORT, suggestion(topic="postgresql"))
    report = ReaderReport.objects.get()

    response = accept(staff_client, report)

    link = Link.objects.get(url="https://www.psycopg.org/psycopg3/docs/")
    assert (link.topic, link.title, link.is_published) == (topic, "Psycopg 3 docs", False)
    report.refresh_from_db()
    assert report.status == "accepted" and report.created_link == link
    assert "Accepted 1 reader report." in response.text
    assert link.history.first().history_change_reason == "Suggested by a reader."


def test_a_suggestion_without_a_topic_waits_for_one(staff_client, client):
    client.post(REPORT, suggestion())
    report = ReaderReport.objects.get()

    response = accept(staff_client, report)

    assert "choose the topic it belongs to first." in response.text
    assert not Link.objects.exists()
    report.refresh_from_db()
    assert report.status == "new"


def test_a_suggestion_the_topic_already_has_is_refused(staff_client, client, link):
    client.post(REPORT, suggestion(topic="postgresql", url="https://www.postgresql.org/docs"))

    response = accept(staff_client, ReaderReport.objects.get())

    assert "This topic already has a link to this URL." in response.text
    assert Link.objects.count() == 1


def test_curators_dismiss_reports(staff_client, client, topic):
    client.post(REPORT, problem(topic="postgresql"))
    report = ReaderReport.objects.get()

    response = staff_client.post(
        reverse("admin:glossary_readerreport_changelist"),
        {"action": "dismiss", "_selected_action": [report.pk]},
        follow=True,
    )

    assert "Dismissed 1 reader report." in response.text
    report.refresh_from_db()
    assert report.status == "dismissed"


def test_the_queue_lists_new_reports(staff_client, client, topic):
    client.post(REPORT, problem(topic="postgresql"))
    report = ReaderReport.objects.get()
    changelist = reverse("admin:glossary_readerreport_changelist")

    page = staff_client.get(changelist, {"status__exact": "new", "q": "dead"}).text
    change = staff_client.get(reverse("admin:glossary_readerreport_change", args=[report.pk]))

    assert "The second link is dead." in page
    assert change.status_code == 200
