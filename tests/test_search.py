"""Search behaviour every backend shares: this module runs on SQLite and, with
DATABASE_URL set, on PostgreSQL (tests/test_search_postgresql.py holds what only the
PostgreSQL backend does)."""

import re

import pytest
from django.contrib.auth.models import AnonymousUser
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone

from glossary.models import Link, Snippet, Topic
from glossary.search import MAX_QUERY_LENGTH, contains_backend, search
from glossary.templatetags.glossary_tags import excerpt, highlight, lead, query_terms
from glossary.views import SEARCH_PAGE_SIZE

pytestmark = pytest.mark.django_db

reader = AnonymousUser()


def names(topics):
    return [topic.name for topic in topics]


def titles(rows):
    return [row.title for row in rows]


HOSTILE_QUERIES = [
    '"quoted"',
    "'",
    "%",
    "_",
    "\\",
    "100%_off\\",
    "' OR 1=1 --",
    "'; DROP TABLE glossary_topic; --",
    "<script>alert(1)</script>",
    "x" * 2_500,
    "Ünïcödé Straße",
    "数据库",
    "🐘 🍃",
    "post\x00gres",
    "\x00",
    "   ",
    "{{ request }}",
    "{% debug %}",
]


@pytest.fixture
def content(topic):
    topic.aliases = "Postgres, PG"
    topic.summary = "The world's most advanced open source relational database."
    topic.save()
    Link.objects.create(
        topic=topic,
        url="https://www.psycopg.org/",
        title="Psycopg 3",
        description="The Postgres adapter: 100% Python_friendly.",
        group="sync",
    )
    Snippet.objects.create(
        topic=topic,
        title="Connect",
        slug="connect",
        code="import sqlite3\nconn = sqlite3.connect(':memory:')\n",
        runtime="python",
    )
    return topic


class TestSearchPage:
    @pytest.mark.parametrize("query", HOSTILE_QUERIES)
    def test_it_never_errors_on_odd_input(self, client, content, query):
        response = client.get(reverse("glossary:search"), {"q": query})

        assert response.status_code == 200

    def test_it_prompts_for_an_empty_query_without_searching(
        self, client, content, django_assert_num_queries
    ):
        with django_assert_num_queries(0):
            response = client.get(reverse("glossary:search"))

        assert "Search topic names, aliases and summaries" in response.content.decode()
        assert "result" not in response.content.decode().split("</form>")[1].split("<p")[0]

    def test_it_says_when_a_long_query_was_cut_short(self, client, content):
        response = client.get(reverse("glossary:search"), {"q": "postgres " * 300})

        html = response.content.decode()
        assert "only its first 200 characters were used" in html
        assert len(response.context["query"]) <= MAX_QUERY_LENGTH

    def test_it_escapes_the_query_in_the_page(self, client, content):
        response = client.get(reverse("glossary:search"), {"q": "<script>alert(1)</script>"})

        html = response.content.decode()
        assert "<script>alert(1)</script>" not in html
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html

    def test_it_escapes_markup_in_matched_content(self, client, content):
        content.summary = "Fast <script>alert(1)</script> Postgres claims."
        content.save()
        Link.objects.create(
            topic=content,
            url="https://xss.example/",
            title="Postgres <script>alert(2)</script>",
            description="<img src=x onerror=alert(3)> Postgres",
        )

        response = client.get(reverse("glossary:search"), {"q": "Postgres"})

        html = response.content.decode()
        assert names(response.context["results"].topics) == [content.name]
        assert "<script>alert" not in html
        assert "<img src=x" not in html
        assert "&lt;script&gt;alert(2)&lt;/script&gt;" in html

    def test_it_escapes_markup_in_the_query_where_it_marks_matches(self, client, content):
        content.summary = "Bold <b>claims</b> about Postgres."
        content.save()

        response = client.get(reverse("glossary:search"), {"q": "<b>Postgres</b> claims"})

        html = response.content.decode()
        assert "<b>" not in html
        assert "&lt;b&gt;Postgres&lt;/b&gt;" in html

    def test_it_marks_matches(self, client, content):
        response = client.get(reverse("glossary:search"), {"q": "psycopg"})

        assert "<mark>Psycopg</mark> 3" in response.content.decode()

    def test_it_finds_snippets_by_code(self, client, content):
        response = client.get(reverse("glossary:search"), {"q": "sqlite3.connect"})

        assert [snippet.slug for snippet in response.context["results"].snippets] == ["connect"]
        assert "<mark>sqlite3.connect</mark>" in response.content.decode()

    def test_it_keeps_queries_constant(self, client, content, django_assert_num_queries):
        for number in range(20):
            Link.objects.create(
                topic=content, url=f"https://example.com/{number}", title=f"Postgres {number}"
            )

        # Three searches and the content revision the results are cached under.
        with django_assert_num_queries(4):
            client.get(reverse("glossary:search"), {"q": "postgres"})

    def test_a_suggestion_costs_at_most_one_more_query(
        self, client, content, django_assert_max_num_queries
    ):
        with django_assert_max_num_queries(5):  # and the content revision
            response = client.get(reverse("glossary:search"), {"q": "postgress"})

        assert response.context["results"].suggestion.name == content.name

    def test_it_shows_unpublished_matches_to_staff(self, staff_client, content):
        Topic.objects.filter(pk=content.pk).update(is_published=False)

        response = staff_client.get(reverse("glossary:search"), {"q": "Postgres"})

        assert names(response.context["results"].topics) == [content.name]
        assert "badge--draft" in response.content.decode()

    def test_staff_see_the_links_and_snippets_of_a_draft_topic_marked(self, staff_client, content):
        Topic.objects.filter(pk=content.pk).update(is_published=False)

        links = staff_client.get(reverse("glossary:search"), {"q": "psycopg"})
        snippets = staff_client.get(reverse("glossary:search"), {"q": "sqlite3.connect"})

        assert titles(links.context["results"].links) == ["Psycopg 3"]
        assert titles(snippets.context["results"].snippets) == ["Connect"]
        for response in (links, snippets):
            assert "badge--draft" in response.content.decode()

    def test_a_link_shows_its_topic_group_and_health(self, client, content):
        Link.objects.update(broken_since=timezone.now())

        html = client.get(reverse("glossary:search"), {"q": "psycopg"}).content.decode()

        assert "· may be broken" in html
        assert '<a href="/topics/postgresql/">PostgreSQL</a> · Sync drivers' in html

    def test_a_snippet_shows_its_topic_and_language(self, client, content):
        html = client.get(reverse("glossary:search"), {"q": "sqlite3.connect"}).content.decode()

        assert '<a class="result-list__title" href="/snippets/connect/">Connect</a>' in html
        assert 'in <a href="/topics/postgresql/">PostgreSQL</a> · Python' in html


class TestSearchFunction:
    def test_it_finds_a_topic_by_alias(self, content):
        assert names(search("PG", reader).topics) == [content.name]

    def test_it_finds_a_topic_by_name_case_insensitively(self, content):
        assert names(search("postgres", reader).topics) == [content.name]

    def test_it_finds_a_topic_by_summary(self, content):
        assert names(search("open source relational", reader).topics) == [content.name]

    def test_it_finds_links_by_title_and_description(self, content):
        assert [link.title for link in search("adapter", reader).links] == ["Psycopg 3"]
        assert [link.title for link in search("psycopg", reader).links] == ["Psycopg 3"]

    @pytest.mark.parametrize("query", ["%", "_", "100%", "Python_friendly", "' OR 1=1 --"])
    def test_it_does_not_treat_odd_characters_as_wildcards(self, content, query):
        Link.objects.create(topic=content, url="https://x.example/", title="Plain words")

        assert "Plain words" not in [link.title for link in search(query, reader).links]

    @pytest.mark.parametrize("query", ["100%", "Python_friendly"])
    def test_it_finds_words_next_to_odd_characters(self, content, query):
        assert [link.title for link in search(query, reader).links] == ["Psycopg 3"]

    @pytest.mark.parametrize("query", ["%", "_", "100%", "Python_friendly"])
    def test_the_substring_backend_matches_like_wildcards_literally(self, content, query):
        Link.objects.create(topic=content, url="https://x.example/", title="Plain words")

        _, links, _ = contains_backend(query, reader)

        assert [link.title for link in links] == ["Psycopg 3"]

    def test_it_strips_nul_bytes(self, content):
        results = search("Post\x00gres", reader)

        assert results.query == "Postgres"
        assert names(results.topics) == [content.name]

    def test_it_truncates_long_queries(self, content):
        results = search("a" * 2_000, reader)

        assert results.truncated
        assert len(results.query) == MAX_QUERY_LENGTH

    def test_it_returns_nothing_for_blank_queries(self, content, django_assert_num_queries):
        with django_assert_num_queries(0):
            results = search(" \t\n\x00 ", reader)

        assert results.query == ""
        assert results.total == 0

    def test_it_handles_unicode(self, db):
        topic = Topic.objects.create(name="Größe-Datenbank", slug="grosse", aliases="数据库, 🐘")

        assert names(search("Größe", reader).topics) == [topic.name]
        assert names(search("数据库", reader).topics) == [topic.name]
        assert names(search("🐘", reader).topics) == [topic.name]

    def test_it_does_not_find_unpublished_content(self, content):
        draft = Topic.objects.create(name="Postgres fork", slug="postgres-fork", is_published=False)
        Link.objects.create(
            topic=content,
            url="https://hidden.example/",
            title="Postgres hidden",
            is_published=False,
        )
        Link.objects.create(topic=draft, url="https://fork.example/", title="Postgres fork docs")
        Snippet.objects.create(
            topic=draft, title="Postgres fork snippet", slug="fork", code="x", runtime="python"
        )

        results = search("Postgres", reader)

        assert names(results.topics) == [content.name]
        assert [link.title for link in results.links] == ["Psycopg 3"]
        assert results.snippets == []


@pytest.fixture
def databases(db):
    """A few topics whose summaries mention each other, as real glossary entries do."""
    topics = {
        "PostgreSQL": ("Postgres, PG", "PostgresQL, pgsql", "An open source relational database."),
        "PostgreSQL limits": ("Postgres limits", "", "How big a Postgres table can grow."),
        "Aggregate functions": (
            "",
            "GROUP BY",
            "COUNT and SUM in Postgres, MySQL and SQLite; Postgres adds FILTER.",
        ),
        "MongoDB": ("Mongo", "Mongo DB", "A document database."),
        "Redis": ("", "redis-py", "An in-memory data store."),
        "Indexing": ("database indexes", "index", "How an index speeds up a query."),
    }
    return {
        name: Topic.objects.create(
            name=name,
            slug=name.lower().replace(" ", "-"),
            aliases=aliases,
            search_aliases=search_aliases,
            summary=summary,
        )
        for name, (aliases, search_aliases, summary) in topics.items()
    }


class TestSeveralWords:
    def test_every_word_must_appear_but_in_any_field_and_order(self, databases):
        topic = databases["PostgreSQL"]
        Link.objects.create(
            topic=topic,
            url="https://a.example/",
            title="Postgres index types",
            description="B-tree, GIN, GiST.",
        )
        Link.objects.create(
            topic=topic,
            url="https://b.example/",
            title="Postgres replication",
            description="Also rebuilds each index.",
        )
        Link.objects.create(topic=topic, url="https://c.example/", title="Postgres roles")

        for query in ("postgres index", "index postgres", "INDEX Postgres"):
            assert set(titles(search(query, reader).links)) == {
                "Postgres index types",
                "Postgres replication",
            }

    def test_a_repeated_word_finds_what_the_word_alone_finds(self, databases):
        alone = search("postgres", reader)
        twice = search("postgres postgres", reader)

        assert names(twice.topics) == names(alone.topics)
        assert names(twice.topics)[0] == "PostgreSQL"

    @pytest.mark.parametrize("query", ["replicating", "replicated", "Replication"])
    def test_it_finds_other_forms_of_a_word(self, databases, query):
        databases["PostgreSQL"].summary = "Streaming replication and logical decoding."
        databases["PostgreSQL"].save()

        assert names(search(query, reader).topics) == ["PostgreSQL"]

    def test_a_word_that_appears_nowhere_finds_no_document(self, databases):
        # Topics are left out: on PostgreSQL a name that looks like the query is a match.
        Link.objects.create(
            topic=databases["PostgreSQL"], url="https://p.example/", title="Postgres"
        )

        results = search("postgres xylophone", reader)

        assert results.links == results.snippets == []


class TestRanking:
    def test_a_topic_called_the_query_comes_first(self, databases):
        # Alphabetical order would put "Aggregate functions" first; it says Postgres twice.
        assert names(search("postgres", reader).topics)[0] == "PostgreSQL"

    @pytest.mark.parametrize("query", ["PG", "pg", "pgsql", "PostgresQL"])
    def test_an_alias_or_search_alias_counts_as_the_name(self, databases, query):
        assert names(search(query, reader).topics)[0] == "PostgreSQL"

    def test_a_name_match_ranks_above_a_summary_only_match(self, db):
        Topic.objects.create(name="KeyDB", slug="keydb", summary="A faster fork of Redis.")
        Topic.objects.create(name="Redis", slug="redis", summary="In-memory store.")

        assert names(search("redis", reader).topics) == ["Redis", "KeyDB"]

    def test_a_link_title_match_ranks_above_a_description_match(self, databases):
        topic = databases["Redis"]
        Link.objects.create(
            topic=topic,
            url="https://a.example/",
            title="A caching guide",
            description="Uses a cluster for sessions.",
        )
        Link.objects.create(topic=topic, url="https://z.example/", title="Zero-downtime cluster")

        assert titles(search("cluster", reader).links) == [
            "Zero-downtime cluster",
            "A caching guide",
        ]

    def test_a_snippet_title_match_ranks_above_a_code_match(self, databases):
        topic = databases["Redis"]
        Snippet.objects.create(
            topic=topic, title="A first table", slug="a", code="# vacuum later", runtime="python"
        )
        Snippet.objects.create(
            topic=topic, title="Vacuum", slug="z", code="print(1)", runtime="python"
        )

        assert [snippet.slug for snippet in search("vacuum", reader).snippets] == ["z", "a"]


class TestSuggestions:
    @pytest.mark.parametrize(
        "query, expected",
        [
            ("postgress", "PostgreSQL"),
            ("postgrsql", "PostgreSQL"),
            ("Reddis", "Redis"),
            ("mongodbb", "MongoDB"),
            ("indexng", "Indexing"),
        ],
    )
    def test_a_typo_gets_the_closest_topic(self, databases, query, expected):
        assert search(query, reader).suggestion.name == expected

    @pytest.mark.parametrize(
        "query",
        ["postgres", "Mongo", "index", "indexing", "postgres limits", "xylophone", "%", "🐘"],
    )
    def test_no_suggestion_for_a_name_or_for_nothing_alike(self, databases, query):
        assert search(query, reader).suggestion is None

    def test_readers_are_not_offered_a_draft(self, databases):
        Topic.objects.filter(name="Redis").update(is_published=False)

        assert search("reddis", reader).suggestion is None

    def test_the_page_links_the_suggestion_to_its_topic(self, client, databases):
        response = client.get(reverse("glossary:search"), {"q": "postgress"})

        assert 'Did you mean <a href="/topics/postgresql/">PostgreSQL</a>?' in (
            response.content.decode()
        )


class TestResultsPage:
    @pytest.fixture
    def many_links(self, databases):
        topic = databases["Redis"]
        for number in range(SEARCH_PAGE_SIZE * 2 + 5):
            Link.objects.create(
                topic=topic, url=f"https://example.com/{number}", title=f"Sentinel note {number}"
            )

    def listed(self, client, **params):
        response = client.get(reverse("glossary:search"), {"q": "sentinel", **params})
        html = response.content.decode()
        return html, re.findall(r'class="link-item__title"[^>]*>(.*?)</a>', html)

    def test_each_count_is_the_number_listed_across_its_pages(self, client, many_links):
        total = SEARCH_PAGE_SIZE * 2 + 5
        seen = []
        for page in (1, 2, 3):
            html, listed = self.listed(client, links_page=page)
            seen += listed
            assert f'Links <span class="count">{total}</span>' in html
            assert f"{total} results for" in html

        assert len(seen) == len(set(seen)) == total

    def test_pages_link_to_each_other_and_keep_the_query(self, client, many_links):
        html, listed = self.listed(client, links_page=2)

        assert len(listed) == SEARCH_PAGE_SIZE
        assert 'href="?q=sentinel&amp;links_page=1#links"' in html
        assert 'href="?q=sentinel&amp;links_page=3#links"' in html
        assert (
            f"{SEARCH_PAGE_SIZE + 1}–{SEARCH_PAGE_SIZE * 2} of {SEARCH_PAGE_SIZE * 2 + 5}" in html
        )

    @pytest.mark.parametrize("page", ["99", "0", "x", ""])
    def test_a_page_out_of_range_shows_a_page_that_exists(self, client, many_links, page):
        _, listed = self.listed(client, links_page=page)

        assert listed

    def test_results_are_grouped_by_kind_with_jump_links(self, client, databases):
        topic = databases["PostgreSQL"]
        Link.objects.create(topic=topic, url="https://p.example/", title="Postgres docs")
        Snippet.objects.create(
            topic=topic, title="Postgres hello", slug="pg-hello", code="print(1)", runtime="python"
        )

        html = client.get(reverse("glossary:search"), {"q": "postgres"}).content.decode()

        for kind in ("topics", "links", "snippets"):
            assert f'href="#{kind}"' in html
            assert f'<h2 id="{kind}">' in html
        assert html.index('id="topics"') < html.index('id="links"') < html.index('id="snippets"')

    def test_search_only_aliases_are_never_shown(self, client, databases):
        response = client.get(reverse("glossary:search"), {"q": "pgsql"})

        html = response.content.decode()
        assert names(response.context["results"].topics) == ["PostgreSQL"]
        assert "pgsql" not in html.split("</form>")[1].replace("“pgsql”", "")
        assert "PostgresQL" not in html


class TestOnTheSeedContent:
    def test_the_seed_answers_what_readers_asked_for(self, db):
        # One test, because loading the seed takes seconds.
        call_command("loaddata", "glossary", verbosity=0)

        assert names(search("postgres", reader).topics)[0] == "PostgreSQL"
        for query in ("postgres index", "index postgres", "postgres postgres"):
            assert search(query, reader).total > 0, query
        assert search("postgress", reader).suggestion.name == "PostgreSQL"
        assert Topic.objects.get(slug="postgresql").alias_list == ["Postgres", "PG"]
        assert names(search("pgsql", reader).topics)[0] == "PostgreSQL"


class TestHighlight:
    def test_it_escapes_before_marking(self):
        assert highlight("<b>PG</b> & pg", "pg") == (
            "&lt;b&gt;<mark>PG</mark>&lt;/b&gt; &amp; <mark>pg</mark>"
        )

    def test_it_escapes_a_query_that_looks_like_markup(self):
        assert highlight("a <mark> b", "<mark>") == "a <mark>&lt;mark&gt;</mark> b"

    def test_it_marks_each_word_of_the_query(self):
        assert highlight("open source relational database", "relational Open") == (
            "<mark>open</mark> source <mark>relational</mark> database"
        )

    def test_it_leaves_out_search_syntax(self):
        assert query_terms('"open source" or -mysql OR db') == ["source", "open", "db"]

    def test_it_treats_regex_characters_literally(self):
        assert highlight("a.b (c)", "(c)") == "a.b <mark>(c)</mark>"

    def test_it_only_escapes_without_a_query(self):
        assert highlight("<i>", "") == "&lt;i&gt;"

    def test_excerpt_centres_on_the_first_match(self):
        text = "word " * 100 + "needle " + "word " * 100

        result = excerpt(text, "needle")

        assert "needle" in result
        assert result.startswith("…")
        assert result.endswith("…")

    def test_excerpt_starts_and_ends_at_word_boundaries(self):
        text = " ".join(f"word{number}" for number in range(100)) + " needle " + "tail " * 60

        result = excerpt(text, "needle")

        first, *_, last = result.strip("…").split()
        assert re.fullmatch(r"word\d+", first)
        assert last == "tail"
        assert "needle" in result

    def test_code_excerpts_keep_whole_lines(self):
        code = "\n".join(f"line_{number} = compute({number})" for number in range(30))

        result = excerpt(code, "line_15")

        assert result.startswith("…line_")
        assert result.rstrip("…").endswith(")")

    def test_whole_words_are_marked(self):
        assert highlight("PostgreSQL and Postgres, not SQL.", "postgres") == (
            "<mark>PostgreSQL</mark> and <mark>Postgres</mark>, not SQL."
        )

    def test_excerpt_centres_on_another_form_of_the_word(self):
        text = "word " * 100 + "replication " + "word " * 100

        assert "replication" in excerpt(text, "replicating")

    def test_other_forms_of_a_word_are_marked(self):
        # Full-text search on PostgreSQL finds these by their stem.
        assert highlight("Streaming replication, logical replicas.", "replicating") == (
            "Streaming <mark>replication</mark>, logical replicas."
        )

    def test_lead_is_the_first_paragraph_as_plain_text(self):
        html = "<p>Fast &amp; <strong>small</strong>.</p><table><tr><td>cell</td></tr></table>"

        assert lead(html) == "Fast & small."
