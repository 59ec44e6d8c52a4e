"""The topic pages a reader browses: the A–Z index, a letter's page and a topic's page,
each listing topics by name whatever their case."""

import re
from datetime import UTC, datetime

import pytest
from django.urls import reverse
from django.utils.text import slugify

from glossary.models import Link, Snippet, Topic
from tests.conftest import make_links, make_snippets

pytestmark = pytest.mark.django_db


def card_names(html):
    return re.findall(r'class="topic-card__title"><a href="[^"]+">([^<]+)</a>', html)


class TestTopicOrder:
    NAMES = ["Async database access", "ACID", "aggregate functions", "Apache Cassandra"]

    @pytest.fixture
    def a_topics(self, db):
        topics = [Topic.objects.create(name=name, slug=slugify(name)) for name in self.NAMES]
        make_links(topics[0], 2)
        return topics

    def test_the_letter_page_lists_topics_by_name_ignoring_case(self, client, a_topics):
        html = client.get(reverse("glossary:letter-detail", args=["A"])).content.decode()

        assert card_names(html) == [
            "ACID",
            "aggregate functions",
            "Apache Cassandra",
            "Async database access",
        ]

    def test_the_index_lists_topics_by_name_ignoring_case(self, client, a_topics):
        html = client.get(reverse("glossary:topic-index")).content.decode()

        names = re.findall(r'<li><a href="/topics/[^"]+">([^<]+)</a>', html)
        assert names == ["ACID", "aggregate functions", "Apache Cassandra", "Async database access"]

    def test_the_link_directory_groups_links_by_topic_name_ignoring_case(self, client, db):
        for name in ["Beta", "alpha", "Gamma"]:
            make_links(Topic.objects.create(name=name, slug=name.lower()), 1)

        html = client.get(reverse("glossary:link-list")).content.decode()

        listed = html.split('class="link-list"')[1]
        assert re.findall(r"(\w+) link 0</a>", listed) == ["alpha", "Beta", "Gamma"]


class TestTopicIndex:
    def test_the_menu_points_at_it(self, client, topic):
        html = client.get(reverse("glossary:topic-index")).content.decode()

        assert '<a href="/topics/" aria-current="page">A–Z</a>' in html

    def test_it_shows_every_letter_with_its_topics(self, client, busy_topic):
        Topic.objects.create(name="2PC", slug="2pc")

        html = client.get(reverse("glossary:topic-index")).content.decode()

        headings = re.findall(r'<h2 id="letter-\d+"><a href="/letters/[^"]+">(.)</a></h2>', html)
        assert headings == ["M", "P", "#"]
        p_section = html.split('href="/letters/P/">P</a>')[1].split("</section>")[0]
        assert re.findall(r">([^<]+)</a></li>", p_section) == ["pgvector", "PostgreSQL", "Psycopg"]

    def test_it_keeps_queries_constant(self, client, busy_topic, django_assert_max_num_queries):
        with django_assert_max_num_queries(2):
            client.get(reverse("glossary:topic-index"))

    def test_it_hides_drafts_from_readers(self, client, topic, draft_topic):
        assert "Secret store" not in client.get(reverse("glossary:topic-index")).content.decode()

    def test_it_shows_drafts_to_staff(self, staff_client, draft_topic):
        html = staff_client.get(reverse("glossary:topic-index")).content.decode()

        assert "Secret store" in html
        assert "badge--draft" in html


class TestLetterPage:
    def test_its_heading_reads_naturally(self, client, topic):
        html = client.get(reverse("glossary:letter-detail", args=["P"])).content.decode()

        assert '<h1 class="page-title">Topics starting with P</h1>' in html

    def test_the_hash_heading_names_digits_and_symbols(self, client):
        Topic.objects.create(name="2PC", slug="2pc")

        html = client.get(reverse("glossary:letter-detail", args=["#"])).content.decode()

        assert '<h1 class="page-title">Topics starting with a digit or symbol</h1>' in html

    def test_card_summaries_end_at_a_sentence(self, client):
        first = "Consistency is kept by the constraints that every transaction must satisfy."
        Topic.objects.create(
            name="Consistency", slug="consistency", summary=f"{first} {'More words here. ' * 20}"
        )

        html = client.get(reverse("glossary:letter-detail", args=["C"])).content.decode()

        summary = re.search(r'<p class="topic-card__summary">(.*?)</p>', html).group(1)
        assert summary.startswith(first)
        assert summary.endswith("More words here.")

    def test_card_summaries_cut_in_one_long_sentence_end_at_a_whole_word(self, client):
        words = [f"word{number}" for number in range(60)]
        Topic.objects.create(name="Run-on", slug="run-on", summary=" ".join(words) + ".")

        html = client.get(reverse("glossary:letter-detail", args=["R"])).content.decode()

        summary = re.search(r'<p class="topic-card__summary">(.*?)</p>', html).group(1)
        assert summary.endswith("…")
        assert set(summary.removesuffix("…").split()) <= set(words)

    def test_it_lists_the_topics_of_the_letter_with_counts(self, client, busy_topic):
        response = client.get(reverse("glossary:letter-detail", args=["P"]))

        html = response.content.decode()
        assert response.status_code == 200
        assert "PostgreSQL" in html
        assert "Psycopg" in html
        assert "pgvector" in html
        assert "MySQL" not in html.split('class="topic-cards"')[1]
        assert "20 links · 10 snippets" in html

    def test_it_redirects_lower_case_letters(self, client, topic):
        response = client.get("/letters/p/")

        assert response.status_code == 301
        assert response.headers["Location"] == "/letters/P/"

    def test_it_files_names_that_do_not_start_with_a_letter_under_hash(self, client):
        Topic.objects.create(name="2PC", slug="2pc")

        response = client.get(reverse("glossary:letter-detail", args=["#"]))

        assert response.request["PATH_INFO"] == "/letters/#/"
        assert "2PC" in response.content.decode()

    @pytest.mark.parametrize("path", ["/letters/ab/", "/letters/%25/", "/letters/1/", "/letters/"])
    def test_it_404s_for_bad_letters(self, client, path):
        assert client.get(path).status_code == 404

    def test_it_says_so_when_a_letter_has_no_topics(self, client, topic):
        response = client.get(reverse("glossary:letter-detail", args=["Q"]))

        assert response.status_code == 200
        assert "No topics under Q yet." in response.content.decode()

    def test_it_keeps_queries_constant(self, client, busy_topic, django_assert_max_num_queries):
        with django_assert_max_num_queries(3):
            client.get(reverse("glossary:letter-detail", args=["P"]))

    def test_it_hides_drafts_from_readers(self, client, draft_topic):
        url = reverse("glossary:letter-detail", args=["S"])

        assert "Secret store" not in client.get(url).content.decode()

    def test_it_shows_drafts_to_staff(self, staff_client, draft_topic):
        url = reverse("glossary:letter-detail", args=["S"])

        assert "Secret store" in staff_client.get(url).content.decode()


class TestTopicPage:
    def test_it_shows_summary_aliases_and_related_topics(self, client, busy_topic):
        busy_topic.summary = "An **object-relational** database."
        busy_topic.aliases = "Postgres, PG"
        busy_topic.save()

        html = client.get(busy_topic.get_absolute_url()).content.decode()

        assert "An <strong>object-relational</strong> database." in html
        assert '<span class="chip">Postgres</span>' in html
        assert '<span class="chip">PG</span>' in html
        assert 'href="/topics/psycopg/"' in html
        assert 'href="/topics/mysql/"' in html

    def test_it_shows_each_related_topic_once(self, client, busy_topic):
        parent = Topic.objects.create(name="Relational database", slug="relational-database")
        busy_topic.parent = parent
        busy_topic.save()
        busy_topic.see_also.add(parent, Topic.objects.get(slug="psycopg"))

        html = client.get(busy_topic.get_absolute_url()).content.decode()

        sidebar = html.split('aria-label="Related topics"')[1].split("</aside>")[0]
        assert sidebar.count('href="/topics/relational-database/"') == 1
        assert sidebar.count('href="/topics/psycopg/"') == 1
        groups = re.findall(r"<h2>([^<]+)</h2>", sidebar)
        assert groups == ["Part of", "Includes", "See also"]
        see_also = sidebar.split("<h2>See also</h2>")[1]
        assert re.findall(r'href="/topics/([^/]+)/"', see_also) == ["mysql"]

    def test_an_alias_redirects_permanently_to_its_topic(self, client, topic):
        topic.aliases = "Postgres, Postgre SQL"
        topic.save()

        for path in ["/topics/postgres/", "/topics/postgre-sql/"]:
            response = client.get(path)

            assert response.status_code == 301
            assert response.headers["Location"] == "/topics/postgresql/"

    def test_an_unknown_slug_that_is_no_alias_is_not_found(self, client, topic):
        topic.aliases = "Postgres"
        topic.save()

        assert client.get("/topics/postgr/").status_code == 404

    def test_an_alias_of_a_draft_is_not_found_by_readers(self, client, draft_topic):
        draft_topic.aliases = "Vault"
        draft_topic.save()

        assert client.get("/topics/vault/").status_code == 404

    def test_it_links_to_the_parent_topic(self, client, topic):
        child = Topic.objects.create(name="Psycopg", slug="psycopg", parent=topic)

        html = client.get(child.get_absolute_url()).content.decode()

        assert "Part of" in html
        assert 'href="/topics/postgresql/"' in html

    def test_it_groups_links_in_link_group_order(self, client, topic):
        Link.objects.create(topic=topic, url="https://a.example/", title="Async", group="async")
        Link.objects.create(topic=topic, url="https://s.example/", title="Site", group="site")
        Link.objects.create(topic=topic, url="https://d.example/", title="Docs", group="docs")

        html = client.get(topic.get_absolute_url()).content.decode()

        headings = re.findall(r'<h3 id="group-[a-z]+">([^<]+)</h3>', html)
        assert headings == ["Official site", "Documentation", "Async drivers"]

    def test_it_renders_snippets_through_one_include(self, client, topic):
        Snippet.objects.create(
            topic=topic, title="Run me", slug="run-me", code="x = 1\n", runtime="python"
        )
        Snippet.objects.create(
            topic=topic,
            title="Look only",
            slug="look-only",
            code="db.find()",
            language="javascript",
            display_only_reason="It needs a MongoDB server.",
        )

        html = client.get(topic.get_absolute_url()).content.decode()

        runnable = html.split('data-snippet="run-me"')[1].split("</article>")[0]
        display_only = html.split('data-snippet="look-only"')[1].split("</article>")[0]
        assert 'data-runnable="true"' in runnable
        assert 'class="run-panel" data-slug="run-me" hidden' in runnable
        assert "Runs in a sandbox on the server: 10 s wall time" in runnable
        assert "Runs on Python (standard library)" in runnable
        assert 'data-runnable="false"' in display_only
        assert "run-panel" not in display_only
        assert "It needs a MongoDB server." in display_only
        assert '<button type="button" class="copy-button" data-copy hidden>' in runnable
        assert '<div class="highlight">' in runnable

    def test_it_shows_the_last_verified_output(self, client, snippet):
        Snippet.objects.filter(pk=snippet.pk).update(
            verified_at=datetime(2025, 3, 4, 12, 0, tzinfo=UTC),
            verified_output="hello <world>\n",
            verification="passing",
        )

        html = client.get(snippet.topic.get_absolute_url()).content.decode()

        assert "Verified on <time" in html
        assert "4 Mar 2025" in html
        assert "<details" in html
        assert "hello &lt;world&gt;" in html

    def test_it_leaves_out_the_verification_of_unverified_snippets(self, client, snippet):
        html = client.get(snippet.topic.get_absolute_url()).content.decode()

        assert "Verified on" not in html
        assert "<details" not in html

    def test_it_stays_within_six_queries(self, client, busy_topic, django_assert_max_num_queries):
        busy_topic.summary = "Often used with MySQL."  # a term link costs no query
        busy_topic.save()

        with django_assert_max_num_queries(6):
            response = client.get(busy_topic.get_absolute_url())

        assert response.content.decode().count("data-snippet=") == 10
        assert response.content.decode().count('class="link-item"') == 20
        assert '<a class="term-link" href="/topics/mysql/">MySQL</a>' in response.text

    def test_it_stays_within_eight_queries_for_staff(
        self, staff_client, busy_topic, django_assert_max_num_queries
    ):
        # Two of them are the session and the user.
        with django_assert_max_num_queries(8):
            staff_client.get(busy_topic.get_absolute_url())

    def test_it_404s_for_unknown_topics(self, client, db):
        assert client.get("/topics/no-such-topic/").status_code == 404

    def test_it_hides_unpublished_topics_from_readers(self, client, draft_topic):
        assert client.get(draft_topic.get_absolute_url()).status_code == 404

    def test_it_shows_unpublished_topics_to_staff_with_a_badge(self, staff_client, draft_topic):
        response = staff_client.get(draft_topic.get_absolute_url())

        assert response.status_code == 200
        assert "badge--draft" in response.content.decode()

    def test_it_hides_unpublished_links_and_snippets_from_readers(self, client, topic):
        make_links(topic, 1, is_published=False)
        make_snippets(topic, 1, is_published=False)

        html = client.get(topic.get_absolute_url()).content.decode()

        assert "PostgreSQL link 0" not in html
        assert "PostgreSQL snippet 0" not in html

    def test_it_shows_unpublished_links_and_snippets_to_staff(self, staff_client, topic):
        make_links(topic, 1, is_published=False)
        make_snippets(topic, 1, is_published=False)

        html = staff_client.get(topic.get_absolute_url()).content.decode()

        assert "PostgreSQL link 0" in html
        assert "PostgreSQL snippet 0" in html
        assert html.count("badge--draft") >= 3  # banner, link, snippet
