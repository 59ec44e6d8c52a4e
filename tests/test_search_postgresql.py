"""Search behaviour only the PostgreSQL backend has: stemming, websearch syntax, typo
tolerance in the results, the stored vectors that triggers keep current, and the GIN indexes
its queries rely on. The SQLite run skips this module; CI runs it on PostgreSQL. What both
backends do is tested in tests/test_search.py, which CI runs on both."""

import json

import pytest
from django.contrib.auth.models import AnonymousUser
from django.contrib.postgres.search import SearchQuery, SearchRank, SearchVector
from django.core.management import call_command
from django.db import connection
from django.db.models import Value
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from glossary.models import ContentRevision, Link, Snippet, Topic
from glossary.search import MAX_RESULTS, search

pytestmark = [pytest.mark.django_db, pytest.mark.postgresql]

reader = AnonymousUser()


@pytest.fixture(autouse=True)
def postgresql_only(db):
    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL search: set DATABASE_URL to a PostgreSQL database")


@pytest.fixture
def databases(db):
    names = ["PostgreSQL", "MongoDB", "Redis", "SQLite", "MySQL", "Cassandra", "DuckDB"]
    topics = {
        name: Topic.objects.create(name=name, slug=name.lower(), summary=f"{name} stores data.")
        for name in names
    }
    topics["PostgreSQL"].aliases = "Postgres, PG"
    topics["PostgreSQL"].save()
    return topics


def names(topics):
    return [topic.name for topic in topics]


class TestTypos:
    @pytest.mark.parametrize(
        "query, expected",
        [
            ("postgress", "PostgreSQL"),
            ("postgrsql", "PostgreSQL"),
            ("mongo db", "MongoDB"),
            ("mongo", "MongoDB"),
            ("reddis", "Redis"),
            ("Cassandar", "Cassandra"),
        ],
    )
    def test_a_misspelt_name_finds_its_topic_first(self, databases, query, expected):
        assert names(search(query, reader).topics)[:1] == [expected]

    def test_a_misspelt_alias_finds_its_topic(self, databases):
        databases["Redis"].aliases = "Valkey"
        databases["Redis"].save()

        assert names(search("valky", reader).topics)[:1] == ["Redis"]

    def test_a_misspelt_name_beats_topics_that_mention_it(self, databases):
        # Alphabetical order would put both before PostgreSQL.
        Topic.objects.create(name="Citus", slug="citus", search_aliases="distributed PostgreSQL")
        Topic.objects.create(name="JSON", slug="json", aliases="JSON in PostgreSQL")

        assert names(search("postgress", reader).topics)[0] == "PostgreSQL"

    def test_a_misspelt_search_alias_finds_its_topic(self, databases):
        databases["Redis"].search_aliases = "Valkey"
        databases["Redis"].save()

        assert names(search("valky", reader).topics)[:1] == ["Redis"]

    def test_unrelated_words_find_nothing(self, databases):
        assert search("xylophone", reader).total == 0


class TestRanking:
    def test_it_reads_websearch_syntax(self, databases):
        for name in ("PostgreSQL", "MySQL"):
            databases[name].summary = f"{name} is an open source relational database."
            databases[name].save()

        assert names(search('"open source" -mysql', reader).topics) == ["PostgreSQL"]
        assert set(names(search("relational or duckdb", reader).topics)) == {
            "PostgreSQL",
            "MySQL",
            "DuckDB",
        }

    def test_stop_words_alone_find_nothing(self, databases):
        assert search("the and of", reader).total == 0

    def test_it_shows_the_first_results_of_a_common_word(self, databases):
        topic = databases["DuckDB"]
        Link.objects.bulk_create(
            Link(
                topic=topic,
                url=f"https://example.com/{number}",
                normalized_url=f"https://example.com/{number}",
                domain="example.com",
                title=f"Analytics notes {number}",
            )
            for number in range(MAX_RESULTS + 10)
        )

        results = search("analytics", reader)

        assert len(results.links) == MAX_RESULTS
        assert results.limited

    def test_the_links_of_a_common_word_are_ranked_titles_first(self, databases):
        # Created in an order that is not the ranking: title and description matches
        # alternate, and numbers sort differently as text.
        Link.objects.bulk_create(
            Link(
                topic=databases["DuckDB"],
                url=f"https://example.com/{number}",
                normalized_url=f"https://example.com/{number}",
                domain="example.com",
                **(
                    {"title": f"Analytics notes {number}"}
                    if number % 2
                    else {"title": f"Notes {number}", "description": "On analytics."}
                ),
            )
            for number in range(MAX_RESULTS + 50)
        )

        listed = [link.title for link in search("analytics", reader).links]

        def ranking(title):
            return ("analytics" not in title.lower(), title.lower())

        assert len(listed) == MAX_RESULTS
        assert listed == sorted(listed, key=ranking)
        assert listed[0].startswith("Analytics") and listed[-1].startswith("Notes")


class TestStoredVectors:
    def test_an_edit_is_found_at_once_and_the_old_words_are_not(self, databases):
        topic = databases["DuckDB"]
        topic.summary = "An embedded analytics engine, like a zeppelin for tables."
        topic.save()

        assert names(search("zeppelin", reader).topics) == ["DuckDB"]
        assert "DuckDB" not in names(search("stores", reader).topics)

    def test_search_aliases_are_in_the_vector_weighted_like_the_name(self, databases):
        Topic.objects.filter(name="Redis").update(search_aliases="keystore")
        databases["MySQL"].summary = "Not a keystore."
        databases["MySQL"].save()

        found = Topic.objects.filter(search_vector=SearchQuery("keystores", config="english"))
        ranked = found.annotate(rank=SearchRank("search_vector", "keystore")).order_by("-rank")
        assert names(ranked) == ["Redis", "MySQL"]

    def test_a_partial_save_updates_the_vector(self, databases):
        topic = databases["MySQL"]
        topic.summary = "Forked in 2009."
        topic.save(update_fields=["summary"])

        assert names(search("forked", reader).topics) == ["MySQL"]

    def test_a_queryset_update_updates_the_vector(self, databases):
        Link.objects.create(topic=databases["Redis"], url="https://r.example/", title="Old title")

        Link.objects.update(title="Sentinel failover")

        assert [link.title for link in search("sentinel", reader).links] == ["Sentinel failover"]
        assert search("old title", reader).links == []

    def test_bulk_created_rows_are_found(self, databases):
        topic = databases["SQLite"]
        Snippet.objects.bulk_create(
            Snippet(topic=topic, title=f"Pragma {n}", slug=f"p{n}", code="x", runtime="python")
            for n in range(3)
        )

        assert len(search("pragma", reader).snippets) == 3

    def test_rows_loaded_from_a_fixture_are_found(self, db, tmp_path):
        fixture = tmp_path / "airships.json"
        fixture.write_text(
            json.dumps(
                [
                    {
                        "model": "glossary.topic",
                        "fields": {"name": "ZeppelinDB", "slug": "zeppelindb", "summary": "x"},
                    },
                    {
                        "model": "glossary.link",
                        "fields": {
                            "topic": ["zeppelindb"],
                            "url": "https://zeppelin.example/",
                            "title": "Airship manual",
                        },
                    },
                    {
                        "model": "glossary.snippet",
                        "fields": {
                            "topic": ["zeppelindb"],
                            "title": "Hello",
                            "slug": "hello-zeppelin",
                            "code": "print('airship')",
                            "runtime": "python",
                        },
                    },
                ]
            )
        )

        call_command("loaddata", fixture, verbosity=0)

        results = search("airship", reader)
        assert [link.title for link in results.links] == ["Airship manual"]
        assert [snippet.slug for snippet in results.snippets] == ["hello-zeppelin"]
        assert names(search("zeppelindb", reader).topics) == ["ZeppelinDB"]

    def test_a_written_vector_is_replaced_by_the_computed_one(self, databases):
        Topic.objects.update(search_vector=SearchVector(Value("bogus")))

        assert search("bogus", reader).topics == []
        assert names(search("cassandra", reader).topics) == ["Cassandra"]


class TestHighlights:
    @pytest.fixture
    def hostile(self, databases):
        databases["Redis"].summary = "Keeps <script>alert(1)</script> data in memory."
        databases["Redis"].save()
        Link.objects.create(
            topic=databases["Redis"],
            url="https://redis.example/",
            title="Redis <b>memory</b> guide",
        )

    def test_matched_words_are_marked_and_markup_stays_escaped(self, client, hostile):
        response = client.get(reverse("glossary:search"), {"q": "memory"})

        html = response.content.decode()
        assert names(response.context["results"].topics) == ["Redis"]
        assert "<script>" not in html
        assert "Redis &lt;b&gt;<mark>memory</mark>&lt;/b&gt; guide" in html

    def test_markup_in_the_query_stays_escaped(self, client, hostile):
        response = client.get(reverse("glossary:search"), {"q": "<b>memory</b> <script>"})

        html = response.content.decode()
        assert response.status_code == 200
        assert "<b>" not in html
        assert "<script>" not in html


class TestIndexes:
    @pytest.fixture
    def plans(self, databases):
        """The plan of each search query, with sequential scans priced out so that
        any usable index is used on these small tables."""
        ContentRevision.current()  # read before: the results are cached under it
        with CaptureQueriesContext(connection) as captured:
            search("postgres", reader)
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL enable_seqscan = off")
            plans = []
            for query in captured.captured_queries:
                cursor.execute(f"EXPLAIN {query['sql']}")
                plans.append("\n".join(row[0] for row in cursor.fetchall()))
            cursor.execute("RESET enable_seqscan")
        return plans

    def test_there_are_three_queries(self, plans):
        assert len(plans) == 3

    def test_topics_use_the_full_text_and_trigram_indexes(self, plans):
        topic_plan = plans[0]
        assert "topic_search_vector_gin" in topic_plan
        assert "topic_name_trgm" in topic_plan
        assert "topic_aliases_trgm" in topic_plan
        assert "topic_search_aliases_trgm" in topic_plan

    def test_links_use_the_full_text_index(self, plans):
        assert "link_search_vector_gin" in plans[1]

    def test_snippets_use_the_full_text_index(self, plans):
        assert "snippet_search_vector_gin" in plans[2]

    def test_ranking_reads_the_stored_vectors(self, plans):
        assert all("to_tsvector" not in plan for plan in plans)
