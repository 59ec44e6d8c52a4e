"""Readers' browsers revalidate cached pages: 304 Not Modified while nothing changed,
compressed pages for browsers that accept them, and nothing secret in either."""

import gzip
import re

import pytest
from django.test import Client
from django.urls import reverse

NONCE = re.compile(r'nonce="([^"]+)"')


@pytest.fixture
def urls(snippet):
    topic = snippet.topic
    return [
        reverse("glossary:home"),
        reverse("glossary:topic-index"),
        reverse("glossary:letter-detail", args=[topic.letter]),
        topic.get_absolute_url(),
        snippet.get_absolute_url(),
        reverse("glossary:topic-preview", args=[topic.slug]),
    ]


def test_a_revisit_with_the_etag_gets_304_without_rendering(
    client, topic, django_assert_num_queries
):
    first = client.get(topic.get_absolute_url())

    with django_assert_num_queries(0):
        again = client.get(topic.get_absolute_url(), headers={"if-none-match": first["ETag"]})

    assert again.status_code == 304
    assert again.content == b""
    assert again["ETag"] == first["ETag"]


def test_a_revisit_with_the_last_modified_date_gets_304(client, topic):
    first = client.get(topic.get_absolute_url())

    again = client.get(
        topic.get_absolute_url(), headers={"if-modified-since": first["Last-Modified"]}
    )

    assert again.status_code == 304


def test_an_edit_answers_the_old_etag_with_the_new_page(client, topic):
    first = client.get(topic.get_absolute_url())
    topic.summary = "Now with **MVCC**."
    topic.save()

    again = client.get(topic.get_absolute_url(), headers={"if-none-match": first["ETag"]})

    assert again.status_code == 200
    assert "<strong>MVCC</strong>" in again.text
    assert again["ETag"] != first["ETag"]


def test_browsers_are_told_to_ask_before_reusing_a_page(client, topic):
    response = client.get(topic.get_absolute_url())

    assert response["Cache-Control"] == "no-cache"


def test_a_304_sends_no_new_csp_nonce_that_would_block_the_kept_pages_scripts(client, topic):
    first = client.get(topic.get_absolute_url())

    again = client.get(topic.get_absolute_url(), headers={"if-none-match": first["ETag"]})

    assert again.status_code == 304
    assert "Content-Security-Policy" not in again


def test_pages_are_compressed_for_browsers_that_accept_gzip(client, topic):
    response = client.get(topic.get_absolute_url(), headers={"accept-encoding": "gzip, br"})

    assert response["Content-Encoding"] == "gzip"
    assert "Accept-Encoding" in response["Vary"]
    html = gzip.decompress(response.content).decode()
    nonce = NONCE.search(html).group(1)
    assert f"'nonce-{nonce}'" in response["Content-Security-Policy"]
    assert "An RDBMS." in html


def test_each_gzipped_page_is_the_plain_page_with_its_own_nonce(client, topic):
    plain = client.get(topic.get_absolute_url()).text
    bodies = [
        gzip.decompress(
            client.get(topic.get_absolute_url(), headers={"accept-encoding": "gzip"}).content
        ).decode()
        for _ in range(2)
    ]

    nonces = [NONCE.search(body).group(1) for body in [plain, *bodies]]
    assert len(set(nonces)) == 3
    for body, nonce in zip(bodies, nonces[1:], strict=True):
        assert body == plain.replace(nonces[0], nonce)


def test_pages_are_plain_for_clients_that_do_not_accept_gzip(client, topic):
    response = client.get(topic.get_absolute_url())

    assert "Content-Encoding" not in response
    assert "An RDBMS." in response.text


def test_readers_pages_hold_no_csrf_token_and_set_no_csrf_cookie(client, urls):
    for url in urls:
        for _ in range(2):  # rendered, then from the cache
            response = client.get(url)
            assert response.status_code == 200, url
            assert "csrfmiddlewaretoken" not in response.text, url
            assert "csrftoken" not in response.cookies, url


def test_staff_never_get_304_for_a_readers_page(staff_client, topic):
    readers_etag = Client().get(topic.get_absolute_url())["ETag"]

    response = staff_client.get(topic.get_absolute_url(), headers={"if-none-match": readers_etag})

    assert response.status_code == 200
    assert "ETag" not in response
