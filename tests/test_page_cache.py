"""Readers get cached pages that are never stale and never share a CSP nonce."""

import re

import pytest
from django.db import connection
from django.test import Client
from django.urls import reverse

from glossary.caching import TIMEOUT
from glossary.models import ContentRevision, Link, Topic

PAGES = ["home", "topic"]


def url_of(page, topic):
    return reverse("glossary:home") if page == "home" else topic.get_absolute_url()


def nonce_of(response):
    return re.search(r'nonce="([^"]+)"', response.text).group(1)


@pytest.mark.parametrize("page", PAGES)
def test_a_repeat_visit_costs_no_query(client, link, page, django_assert_num_queries):
    url = url_of(page, link.topic)
    first = client.get(url)

    with django_assert_num_queries(0):
        second = client.get(url)

    assert second.status_code == 200
    assert second.text.replace(nonce_of(second), "") == first.text.replace(nonce_of(first), "")


def test_each_cached_page_carries_its_own_nonce_matching_its_header(client, topic):
    responses = [client.get(topic.get_absolute_url()) for _ in range(3)]

    nonces = [nonce_of(response) for response in responses]
    assert len(set(nonces)) == 3
    for nonce, response in zip(nonces, responses, strict=True):
        assert f"'nonce-{nonce}'" in response.headers["Content-Security-Policy"]


def test_an_edit_shows_at_once(client, topic):
    client.get(topic.get_absolute_url())
    topic.summary = "Now with **MVCC**."
    topic.save()

    assert "<strong>MVCC</strong>" in client.get(topic.get_absolute_url()).text


def test_a_deleted_link_disappears_at_once(client, link):
    client.get(reverse("glossary:home"))
    link.delete()

    assert "PostgreSQL docs" not in client.get(reverse("glossary:home")).text


def test_a_see_also_change_shows_at_once(client, topic):
    other = Topic.objects.create(name="MVCC", slug="mvcc")
    client.get(topic.get_absolute_url())
    topic.see_also.add(other)

    assert other.get_absolute_url() in client.get(topic.get_absolute_url()).text


def test_unpublishing_in_the_admin_hides_a_cached_topic(staff_client, topic):
    reader = Client()
    assert reader.get(topic.get_absolute_url()).status_code == 200
    staff_client.post(
        reverse("admin:glossary_topic_changelist"),
        {"action": "unpublish", "_selected_action": [topic.pk]},
    )

    assert reader.get(topic.get_absolute_url()).status_code == 404


def test_staff_never_get_a_readers_cached_page(staff_client, topic):
    draft = Link.objects.create(
        topic=topic, url="https://example.com/draft", title="Draft link", is_published=False
    )
    assert draft.title not in Client().get(topic.get_absolute_url()).text

    assert draft.title in staff_client.get(topic.get_absolute_url()).text


def test_missing_pages_are_not_cached(client, db):
    assert client.get("/topics/nothing-here/").status_code == 404
    Topic.objects.create(name="Nothing here", slug="nothing-here")

    assert client.get("/topics/nothing-here/").status_code == 200


def test_another_processs_edit_shows_within_the_reuse_time(client, topic, monkeypatch):
    monkeypatch.setattr(ContentRevision, "REUSE_SECONDS", 60)
    client.get(topic.get_absolute_url())
    # As another process would: the row changes, this process's signals never fire.
    ContentRevision.objects.update_or_create(pk=1, defaults={"number": 99})
    with connection.cursor() as cursor:
        cursor.execute("UPDATE glossary_topic SET name = 'Postgres' WHERE id = %s", [topic.pk])

    assert "Postgres<" not in client.get(topic.get_absolute_url()).text
    monkeypatch.setattr(ContentRevision, "REUSE_SECONDS", 0)
    assert "Postgres<" in client.get(topic.get_absolute_url()).text


def stored_pages(settings):
    """(key, seconds to live or None) of each page in this test's cache, either backend."""
    from django.core.cache import cache

    prefix = settings.CACHES["default"]["KEY_PREFIX"]
    if "RedisCache" in settings.CACHES["default"]["BACKEND"]:
        client = cache._cache.get_client()
        return [(key, client.ttl(key)) for key in client.keys(f"{prefix}:*:page:*")]
    return [(key, None) for key in cache._cache if key.startswith(f"{prefix}:") and ":page:" in key]


def test_made_up_query_strings_share_one_cached_copy_of_a_page(client, topic, settings):
    for n in range(20):
        assert client.get(f"{topic.get_absolute_url()}?junk={n}").status_code == 200

    assert len(stored_pages(settings)) == 1


def test_the_page_cache_is_bounded(client, db, settings):
    topics = [Topic(name=f"Topic {n}", slug=f"topic-{n}") for n in range(520)]
    Topic.objects.bulk_create(topics)
    for topic in topics:
        client.get(topic.get_absolute_url())

    pages = stored_pages(settings)
    if "RedisCache" in settings.CACHES["default"]["BACKEND"]:
        # Redis keeps what it is given until it expires.
        assert all(0 < ttl <= TIMEOUT for _, ttl in pages)
    else:
        assert len(pages) <= settings.CACHES["default"]["OPTIONS"]["MAX_ENTRIES"] < 520


def test_query_parameters_a_view_reads_get_pages_of_their_own(rf, db, settings):
    from django.contrib.auth.models import AnonymousUser
    from django.http import HttpResponse

    from glossary.caching import cache_page_for_readers

    @cache_page_for_readers(query=("page",))
    def numbered(request):
        return HttpResponse(f"page {request.GET.get('page', '1')}")

    def visit(url):
        request = rf.get(url)
        request.user = AnonymousUser()
        return numbered(request).content.decode()

    assert visit("/list/?page=2") == "page 2"
    assert visit("/list/?page=3") == "page 3"
    assert visit("/list/?page=2&junk=1") == "page 2"
    assert len(stored_pages(settings)) == 2


def test_turning_edited_runs_off_shows_on_cached_pages_at_once(client, snippet, settings):
    url = snippet.get_absolute_url()
    assert "data-editor=" in client.get(url).text  # now cached with the editor

    settings.SNIPPET_READER_CODE = False
    page = client.get(url).text

    assert "data-editor=" not in page
    assert "Running your own code is turned off on this server." in page
    settings.SNIPPET_READER_CODE = True
    assert "data-editor=" in client.get(url).text


def test_stricter_reader_limits_show_on_cached_pages_at_once(client, snippet, settings):
    url = snippet.get_absolute_url()
    assert "it runs under the same limits." in client.get(url).text

    settings.SNIPPET_READER_LIMITS = {"wall_seconds": 1}

    assert "it runs under these limits:" in client.get(url).text


def without_nonce(response):
    return {
        name: value.replace(nonce_of(response), "NONCE")
        for name, value in response.headers.items()
        if name != "Date"
    }


@pytest.mark.parametrize("page", PAGES)
def test_a_page_served_from_the_cache_has_the_headers_of_a_rendered_one(client, link, page):
    url = url_of(page, link.topic)
    rendered = client.get(url)
    served = client.get(url)

    # Served before sessions and authentication: no session was read for it.
    assert hasattr(rendered.wsgi_request, "session")
    assert not hasattr(served.wsgi_request, "session")
    assert without_nonce(served) == without_nonce(rendered)
    assert {"Content-Security-Policy", "X-Frame-Options", "Content-Length", "ETag"} <= set(
        served.headers
    )
    assert served.headers["Vary"] == "Accept-Encoding, Cookie"


def test_a_reader_with_a_session_cookie_gets_the_page_the_long_way(client, topic):
    client.get(topic.get_absolute_url())
    client.cookies["sessionid"] = "not-a-session"

    response = client.get(topic.get_absolute_url())

    assert response.status_code == 200
    assert hasattr(response.wsgi_request, "session")
    assert nonce_of(response) in response.headers["Content-Security-Policy"]


def test_a_page_not_yet_cached_is_looked_up_once(client, topic, monkeypatch):
    from django.core.cache import caches

    backend, looked_up = caches["default"], []
    get = backend.get
    monkeypatch.setattr(backend, "get", lambda key, *args: looked_up.append(key) or get(key, *args))

    assert client.get(topic.get_absolute_url()).status_code == 200

    # Once, before the rest of the stack; the view renders without asking again (a hung
    # cache would cost every first visit its timeout twice).
    assert len([key for key in looked_up if key.startswith("page:")]) == 1


def test_a_cached_page_is_not_served_to_a_host_the_site_does_not_serve(client, topic):
    assert client.get(topic.get_absolute_url()).status_code == 200

    assert client.get(topic.get_absolute_url(), headers={"host": "evil.example"}).status_code == 400
