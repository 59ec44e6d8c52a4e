import pytest
from django.urls import reverse

from glossary.models import Link, Snippet, Topic

pytestmark = pytest.mark.django_db


@pytest.fixture
def hidden(topic, draft_topic):
    """One unpublished thing of each kind, plus published children of a draft topic."""
    Link.objects.create(
        topic=topic, url="https://hidden.example/", title="Hidden link", is_published=False
    )
    Snippet.objects.create(
        topic=topic,
        title="Hidden snippet",
        slug="hidden-snippet",
        code="x",
        runtime="python",
        is_published=False,
    )
    Link.objects.create(topic=draft_topic, url="https://draft.example/", title="Draft topic link")
    Snippet.objects.create(
        topic=draft_topic,
        title="Draft topic snippet",
        slug="draft-snippet",
        code="x",
        runtime="python",
    )


class TestSitemap:
    def test_it_lists_home_letters_topics_and_snippets(self, client, link, snippet):
        Topic.objects.create(name="2PC", slug="2pc")

        response = client.get(reverse("glossary:sitemap"))

        xml = response.content.decode()
        assert response.status_code == 200
        assert "<loc>http://testserver/</loc>" in xml
        assert "<loc>http://testserver/letters/P/</loc>" in xml
        assert "<loc>http://testserver/letters/%23/</loc>" in xml
        assert "<loc>http://testserver/topics/postgresql/</loc>" in xml
        assert "<loc>http://testserver/snippets/hello/</loc>" in xml
        assert "/letters/Q/" not in xml

    def test_it_leaves_out_unpublished_content_even_for_staff(self, staff_client, hidden):
        xml = staff_client.get(reverse("glossary:sitemap")).content.decode()

        assert "secret-store" not in xml
        assert "/letters/S/" not in xml
        assert "hidden-snippet" not in xml
        assert "draft-snippet" not in xml


class TestLinkFeed:
    def test_it_is_an_atom_feed_of_new_links(self, client, link):
        response = client.get(reverse("glossary:link-feed"))

        xml = response.content.decode()
        assert response.status_code == 200
        assert response.headers["Content-Type"].startswith("application/atom+xml")
        assert 'xmlns="http://www.w3.org/2005/Atom"' in xml
        assert "<title>PostgreSQL: PostgreSQL docs</title>" in xml
        assert 'href="https://www.postgresql.org/docs/"' in xml
        assert f"<id>urn:db-glossary:link:{link.pk}</id>" in xml

    def test_it_lists_the_newest_first(self, client, topic):
        for number in range(3):
            Link.objects.create(topic=topic, url=f"https://e.example/{number}", title=f"L{number}")

        xml = client.get(reverse("glossary:link-feed")).content.decode()

        assert (
            xml.index("PostgreSQL: L2") < xml.index("PostgreSQL: L1") < xml.index("PostgreSQL: L0")
        )

    def test_it_leaves_out_unpublished_links(self, client, link, hidden):
        xml = client.get(reverse("glossary:link-feed")).content.decode()

        assert "PostgreSQL docs" in xml
        assert "Hidden link" not in xml
        assert "Draft topic link" not in xml


class TestExport:
    def test_it_exports_topics_with_links_and_snippets(self, client, link, snippet):
        response = client.get(reverse("glossary:export"))

        data = response.json()
        assert response.headers["Content-Type"] == "application/json"
        [topic] = data["topics"]
        assert topic["slug"] == "postgresql"
        assert topic["url"] == "http://testserver/topics/postgresql/"
        assert topic["links"] == [
            {
                "title": "PostgreSQL docs",
                "url": "https://www.postgresql.org/docs/",
                "description": "",
                "group": "docs",
            }
        ]
        assert topic["snippets"][0]["slug"] == "hello"
        assert topic["snippets"][0]["code"] == "print('hello')"

    def test_it_leaves_out_unpublished_content_even_for_staff(self, staff_client, link, hidden):
        data = staff_client.get(reverse("glossary:export")).json()

        [topic] = data["topics"]
        assert [link["title"] for link in topic["links"]] == ["PostgreSQL docs"]
        assert topic["snippets"] == []

    def test_it_names_only_published_relations(self, client, topic, draft_topic):
        child = Topic.objects.create(name="Psycopg", slug="psycopg", parent=draft_topic)
        child.see_also.add(topic, draft_topic)

        data = client.get(reverse("glossary:export")).json()

        exported = {item["slug"]: item for item in data["topics"]}
        assert exported["psycopg"]["parent"] is None
        assert exported["psycopg"]["see_also"] == ["postgresql"]

    def test_it_keeps_queries_constant(self, client, topic, django_assert_num_queries):
        for number in range(10):
            other = Topic.objects.create(name=f"Topic {number}", slug=f"topic-{number}")
            Link.objects.create(topic=other, url="https://e.example/", title="E")
            Snippet.objects.create(
                topic=other, title="S", slug=f"s-{number}", code="x", runtime="python"
            )
            other.see_also.add(topic)

        with django_assert_num_queries(4):
            response = client.get(reverse("glossary:export"))

        assert len(response.json()["topics"]) == 11
