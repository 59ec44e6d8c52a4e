"""Every change to a topic, link or snippet is kept with who and when, shown as a diff,
and can be reverted; readers see when a topic last changed."""

from datetime import UTC, datetime

from django.urls import reverse

from glossary.models import Link, Snippet, Topic


def link_form(link, **changes):
    data = {
        "topic": link.topic_id,
        "title": link.title,
        "url": link.url,
        "group": link.group,
        "description": link.description,
        "position": link.position,
        "is_published": "on",
        "checks-TOTAL_FORMS": 0,
        "checks-INITIAL_FORMS": 0,
    }
    return data | changes


def test_an_admin_edit_is_kept_with_who_and_when(staff_client, link):
    url = reverse("admin:glossary_link_change", args=[link.pk])

    staff_client.post(url, link_form(link, title="The PostgreSQL manual"))

    latest = link.history.first()
    assert latest.title == "The PostgreSQL manual"
    assert latest.history_user.username == "curator"
    assert latest.prev_record.title == "PostgreSQL docs"


def test_the_history_page_shows_what_changed(staff_client, link):
    staff_client.post(
        reverse("admin:glossary_link_change", args=[link.pk]),
        link_form(link, title="The PostgreSQL manual"),
    )

    page = staff_client.get(reverse("admin:glossary_link_history", args=[link.pk])).text

    assert "PostgreSQL docs" in page and "The PostgreSQL manual" in page
    assert "curator" in page


def test_a_curator_reverts_a_topic_to_an_earlier_version(staff_client, topic):
    first = topic.history.get()
    topic.summary = "A vandalised summary."
    topic.save()
    revert_url = reverse("admin:glossary_topic_simple_history", args=[topic.pk, first.pk])
    form = {
        "name": topic.name,
        "slug": topic.slug,
        "summary": first.summary,
        "is_published": "on",
        "links-TOTAL_FORMS": 0,
        "links-INITIAL_FORMS": 0,
        "snippets-TOTAL_FORMS": 0,
        "snippets-INITIAL_FORMS": 0,
    }
    assert "An RDBMS." in staff_client.get(revert_url).text

    response = staff_client.post(revert_url, form)

    assert response.status_code == 302
    topic.refresh_from_db()
    assert topic.summary == "An RDBMS." and topic.summary_html == "<p>An RDBMS.</p>"
    assert topic.history.count() == 3


def test_snippet_edits_are_kept_but_verification_runs_are_not(snippet):
    snippet.code = "print('hello again')"
    snippet.save()
    snippet.verification = "passing"
    snippet.save(update_fields=["verification"])

    assert [record.code for record in snippet.history.all()] == [
        "print('hello again')",
        "print('hello')",
    ]


def test_a_deleted_link_stays_in_the_history(link):
    link_id = link.pk
    link.delete()

    assert Link.history.filter(id=link_id).first().history_type == "-"


def stamp(model, obj, day):
    model.objects.filter(pk=obj.pk).update(updated=datetime(2026, 3, day, tzinfo=UTC))


def test_readers_see_when_a_topic_or_its_content_last_changed(client, topic, link, snippet):
    stamp(Topic, topic, 1)
    stamp(Link, link, 9)
    stamp(Snippet, snippet, 5)

    page = client.get(topic.get_absolute_url()).text

    assert 'Last updated <time datetime="2026-03-09T00:00:00+00:00">9 March 2026</time>' in page


def test_a_draft_links_change_does_not_show_to_readers(client, topic, link):
    stamp(Topic, topic, 1)
    stamp(Link, link, 2)
    draft = Link.objects.create(topic=topic, url="https://example.com/", title="Draft")
    Link.objects.filter(pk=draft.pk).update(is_published=False)
    stamp(Link, draft, 20)

    page = client.get(topic.get_absolute_url()).text

    assert "2 March 2026" in page
