import pytest
from django.contrib.auth.models import AnonymousUser
from django.urls import reverse

from glossary.models import Link, Snippet, Topic
from glossary.search import MAX_QUERY_LENGTH, contains_backend, search
from glossary.templatetags.glossary_tags import excerpt, highlight, lead, query_terms

pytestmark = pytest.mark.django_db

reader = AnonymousUser()

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
        assert response.context["results"].topics == [content]
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

        with django_assert_num_queries(3):
            client.get(reverse("glossary:search"), {"q": "postgres"})

    def test_it_shows_unpublished_matches_to_staff(self, staff_client, content):
        Topic.objects.filter(pk=content.pk).update(is_published=False)

        response = staff_client.get(reverse("glossary:search"), {"q": "Postgres"})

        assert response.context["results"].topics == [content]
        assert "badge--draft" in response.content.decode()


class TestSearchFunction:
    def test_it_finds_a_topic_by_alias(self, content):
        assert search("PG", reader).topics == [content]

    def test_it_finds_a_topic_by_name_case_insensitively(self, content):
        assert search("postgres", reader).topics == [content]

    def test_it_finds_a_topic_by_summary(self, content):
        assert search("open source relational", reader).topics == [content]

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
        assert results.topics == [content]

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

        assert search("Größe", reader).topics == [topic]
        assert search("数据库", reader).topics == [topic]
        assert search("🐘", reader).topics == [topic]

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

        assert results.topics == [content]
        assert [link.title for link in results.links] == ["Psycopg 3"]
        assert results.snippets == []


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

    def test_lead_is_the_first_paragraph_as_plain_text(self):
        html = "<p>Fast &amp; <strong>small</strong>.</p><table><tr><td>cell</td></tr></table>"

        assert lead(html) == "Fast & small."
