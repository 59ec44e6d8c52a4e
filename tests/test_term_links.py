import itertools
import re

import pytest
from django.core.management import call_command
from django.db import connection
from django.urls import reverse

from glossary.models import ContentRevision, Link, Snippet, Topic
from glossary.termlinks import TermIndex, link_terms, topic_terms

pytestmark = pytest.mark.django_db
owner_numbers = itertools.count()


def make_topic(name, summary="", **kwargs):
    slug = kwargs.pop("slug", name.lower().replace(" ", "-"))
    return Topic.objects.create(name=name, slug=slug, summary=summary, **kwargs)


def term_links(html):
    """(href, text) of each term link in a page or fragment."""
    return re.findall(r'<a class="term-link" href="([^"]+)">([^<]+)</a>', html)


def summary_of(client, topic):
    html = client.get(topic.get_absolute_url()).content.decode()
    return re.search(r'<div class="prose topic__summary">(.*?)</div>', html, re.DOTALL).group(1)


def linked(summary, *, unlinked_terms=""):
    """The summary of a new topic, rendered with links to the topics that exist."""
    owner = make_topic(f"Owner {next(owner_numbers)}", summary, unlinked_terms=unlinked_terms)
    html, _ = link_terms(owner.summary_html, owner, TermIndex.from_database())
    return html


@pytest.fixture
def postgresql(db):
    return make_topic("PostgreSQL", "An RDBMS.", aliases="Postgres, PG")


class TestOnTopicPages:
    def test_a_summary_links_the_first_mention_of_another_topic(self, client, postgresql):
        topic = make_topic("MVCC", "PostgreSQL keeps row versions; PostgreSQL vacuums them.")

        assert term_links(summary_of(client, topic)) == [("/topics/postgresql/", "PostgreSQL")]

    def test_an_alias_links_to_its_topic(self, client, postgresql):
        topic = make_topic("MVCC", "Postgres keeps old row versions.")

        assert term_links(summary_of(client, topic)) == [("/topics/postgresql/", "Postgres")]

    def test_snippet_and_link_descriptions_link_too(self, client, postgresql):
        topic = make_topic("MVCC", "Row versions.")
        Snippet.objects.create(
            topic=topic,
            title="Versions",
            slug="versions",
            code="print(1)",
            runtime="python",
            description="Shows what *Postgres* keeps.",
        )
        Link.objects.create(
            topic=topic,
            url="https://example.com/mvcc",
            title="MVCC explained",
            description="How PostgreSQL & <friends> keep versions.",
        )

        html = client.get(topic.get_absolute_url()).content.decode()

        assert 'Shows what <em><a class="term-link" href="/topics/postgresql/">Postgres</a>' in html
        assert (
            'How <a class="term-link" href="/topics/postgresql/">PostgreSQL</a>'
            " &amp; &lt;friends&gt; keep versions." in html
        )

    def test_a_snippet_page_links_its_description(self, client, postgresql):
        topic = make_topic("MVCC")
        snippet = Snippet.objects.create(
            topic=topic,
            title="Versions",
            slug="versions",
            code="print(1)",
            runtime="python",
            description="Runs on PostgreSQL.",
        )

        html = client.get(snippet.get_absolute_url()).content.decode()

        assert ("/topics/postgresql/", "PostgreSQL") in term_links(html)

    def test_a_topic_never_links_to_itself(self, client, postgresql):
        postgresql.summary = "PostgreSQL, or Postgres, is an RDBMS."
        postgresql.save()

        assert term_links(summary_of(client, postgresql)) == []

    def test_drafts_are_never_linked(self, client):
        make_topic("Secret store", is_published=False)
        topic = make_topic("Vault", "Keys live in a secret store.")

        assert term_links(summary_of(client, topic)) == []

    def test_a_new_topic_links_in_texts_that_were_not_edited(self, client):
        topic = make_topic("MVCC", "Used by PostgreSQL.")
        assert term_links(summary_of(client, topic)) == []

        make_topic("PostgreSQL")

        assert term_links(summary_of(client, topic)) == [("/topics/postgresql/", "PostgreSQL")]

    def test_a_bulk_unpublished_topic_stops_being_linked(self, client, postgresql):
        topic = make_topic("MVCC", "Used by PostgreSQL.")
        assert term_links(summary_of(client, topic)) != []

        # As the admin's bulk action does: update() sends no signals, then a bump.
        Topic.objects.filter(pk=postgresql.pk).update(is_published=False)
        ContentRevision.bump()

        assert term_links(summary_of(client, topic)) == []

    def test_a_renamed_topic_is_linked_by_its_new_name(self, client, postgresql):
        topic = make_topic("MVCC", "Used by Postgres and by PostgresPro.")
        postgresql.aliases = "PostgresPro"
        postgresql.save()

        assert term_links(summary_of(client, topic)) == [("/topics/postgresql/", "PostgresPro")]

    def test_topics_loaded_from_a_fixture_are_linked(self, client, tmp_path):
        fixture = tmp_path / "topics.json"
        fixture.write_text(
            '[{"model": "glossary.topic", "pk": 7, "fields": {"name": "MVCC", "slug": "mvcc",'
            ' "summary": "Used by PostgreSQL."}},'
            ' {"model": "glossary.topic", "pk": 8, "fields": {"name": "PostgreSQL",'
            ' "slug": "postgresql"}}]'
        )
        call_command("loaddata", fixture, verbosity=0)

        topic = Topic.objects.get(slug="mvcc")
        assert term_links(summary_of(client, topic)) == [("/topics/postgresql/", "PostgreSQL")]

    def test_another_processs_rename_is_linked_once_its_revision_is_read(
        self, client, postgresql, monkeypatch
    ):
        topic = make_topic("MVCC", "Used by PostgresPro.")
        monkeypatch.setattr(ContentRevision, "REUSE_SECONDS", 60)
        assert term_links(summary_of(client, topic)) == []
        # As another process would: a rename and a bump, this process's signals never fire.
        with connection.cursor() as cursor:
            cursor.execute(
                "UPDATE glossary_topic SET aliases = 'PostgresPro' WHERE id = %s", [postgresql.pk]
            )
        ContentRevision.objects.filter(pk=1).update(number=99, terms=topic_terms())

        assert term_links(summary_of(client, topic)) == []
        monkeypatch.setattr(ContentRevision, "REUSE_SECONDS", 0)
        assert term_links(summary_of(client, topic)) == [("/topics/postgresql/", "PostgresPro")]

    def test_a_curator_keeps_a_term_plain_with_unlinked_terms(self, client, postgresql):
        topic = make_topic("MVCC", "Postgres, that is PostgreSQL.", unlinked_terms="postgres")

        assert term_links(summary_of(client, topic)) == [("/topics/postgresql/", "PostgreSQL")]

    def test_link_previews_need_javascript_the_page_loads_it_with_a_nonce(self, client, postgresql):
        html = client.get(postgresql.get_absolute_url()).content.decode()

        assert re.search(r'<script src="[^"]*preview\.js" nonce="[^"]+" defer>', html)
        assert "term-preview" not in html


class TestMatching:
    def test_the_longest_name_wins(self, db):
        make_topic("Pool")
        make_topic("Connection pool")

        html = linked("Use a connection pool.")

        assert term_links(html) == [("/topics/connection-pool/", "connection pool")]

    def test_matching_ignores_case(self, postgresql):
        assert term_links(linked("We run postgresql.")) == [("/topics/postgresql/", "postgresql")]

    def test_matching_needs_word_boundaries(self, postgresql):
        make_topic("Tree")

        assert term_links(linked("PGBouncer, PG2 and B-tree indexes.")) == []
        assert term_links(linked("PostgreSQL's planner.")) == [
            ("/topics/postgresql/", "PostgreSQL")
        ]

    def test_names_in_capitals_match_only_in_capitals(self, db):
        make_topic("Common table expressions", aliases="WITH, CTE")

        assert term_links(linked("Pools with a limit.")) == []
        assert term_links(linked("A WITH query.")) == [
            ("/topics/common-table-expressions/", "WITH")
        ]

    def test_code_pre_links_and_headings_are_left_alone(self, postgresql):
        summary = (
            "## PostgreSQL\n\n"
            "Run `PostgreSQL` or [PostgreSQL](https://www.postgresql.org/).\n\n"
            "```\nPostgreSQL\n```\n\n"
            "Then PostgreSQL."
        )

        html = linked(summary)

        assert term_links(html) == [("/topics/postgresql/", "PostgreSQL")]
        assert "<h2>PostgreSQL</h2>" in html
        assert "<code>PostgreSQL</code>" in html
        assert html.endswith(
            '<p>Then <a class="term-link" href="/topics/postgresql/">PostgreSQL</a>.</p>'
        )

    def test_escaped_text_stays_escaped(self, postgresql):
        html = linked("A < B & C on PostgreSQL, not &lt;script&gt;")

        assert html == (
            '<p>A &lt; B &amp; C on <a class="term-link" href="/topics/postgresql/">PostgreSQL</a>'
            ", not &lt;script&gt;</p>"
        )

    def test_each_topic_is_linked_once_per_text(self, postgresql):
        make_topic("MySQL")

        html = linked("PostgreSQL and MySQL; later Postgres and MySQL again.")

        assert term_links(html) == [
            ("/topics/postgresql/", "PostgreSQL"),
            ("/topics/mysql/", "MySQL"),
        ]

    def test_the_preview_endpoint_exists_for_every_linked_term(self, client, postgresql):
        html = linked("On PostgreSQL.")
        (href, _), *_ = term_links(html)

        assert client.get(href + "preview/").status_code == 200
        assert reverse("glossary:topic-preview", args=["postgresql"]) == href + "preview/"


class TestPreviewFragment:
    def test_it_shows_the_name_kind_and_first_two_sentences(self, client, postgresql):
        make_topic("Relational database")
        postgresql.parent = Topic.objects.get(slug="relational-database")
        postgresql.summary = "It is an RDBMS. It uses MVCC! It has extensions.\n\nMore."
        postgresql.save()

        html = client.get(reverse("glossary:topic-preview", args=["postgresql"])).content.decode()

        assert '<p class="term-preview__kind">Part of Relational database</p>' in html
        assert '<p class="term-preview__title">PostgreSQL</p>' in html
        assert '<p class="term-preview__lead">It is an RDBMS. It uses MVCC!</p>' in html
        assert "<html" not in html

    def test_a_group_says_how_many_published_topics_it_holds(self, client, db):
        group = make_topic("NoSQL")
        make_topic("MongoDB", parent=group)
        make_topic("Redis", parent=group)
        make_topic("Hidden", parent=group, is_published=False)

        html = client.get(reverse("glossary:topic-preview", args=["nosql"])).content.decode()

        assert '<p class="term-preview__kind">Group of 2 topics</p>' in html

    def test_a_draft_parent_is_not_named(self, client, postgresql):
        postgresql.parent = make_topic("Secret group", is_published=False)
        postgresql.save()

        html = client.get(reverse("glossary:topic-preview", args=["postgresql"])).content.decode()

        assert "Secret group" not in html
        assert '<p class="term-preview__kind">Topic</p>' in html

    def test_drafts_have_no_preview_even_for_staff(self, staff_client):
        make_topic("Secret store", is_published=False)

        url = reverse("glossary:topic-preview", args=["secret-store"])
        assert staff_client.get(url).status_code == 404

    def test_it_is_cached_until_content_changes(
        self, client, postgresql, django_assert_num_queries
    ):
        url = reverse("glossary:topic-preview", args=["postgresql"])
        client.get(url)

        with django_assert_num_queries(0):
            assert "An RDBMS." in client.get(url).content.decode()

        postgresql.summary = "A database server."
        postgresql.save()

        assert "A database server." in client.get(url).content.decode()
