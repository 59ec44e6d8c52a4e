"""Reader pages beside the topic pages (tests/test_topic_pages.py): the layout every page
shares, the home page, snippet pages, the link directory and the error pages."""

import re

import pytest
from django.template.loader import get_template
from django.urls import reverse

from glossary.models import Link, Snippet, Topic
from tests.conftest import make_links

pytestmark = pytest.mark.django_db


class TestBasePage:
    def test_it_has_landmarks_skip_link_and_a_nonced_script(self, client, topic):
        response = client.get(reverse("glossary:home"))

        html = response.content.decode()
        assert '<a class="skip-link" href="#main">' in html
        assert '<main id="main"' in html
        assert '<nav class="site-nav" aria-label="Main">' in html
        assert "<footer" in html
        nonce = re.search(r'<script src="[^"]*copy\.js" nonce="([^"]+)"', html).group(1)
        assert f"'nonce-{nonce}'" in response.headers["Content-Security-Policy"]

    @pytest.mark.parametrize("name", ["home", "link-list", "search"])
    def test_it_uses_no_inline_styles_or_scripts(self, client, busy_topic, name):
        html = client.get(reverse(f"glossary:{name}"), {"q": "post"}).content.decode()

        assert "style=" not in html
        assert "<style" not in html
        assert all("src=" in tag for tag in re.findall(r"<script[^>]*>", html))


class TestHome:
    def test_it_shows_every_letter_and_links_only_the_ones_with_topics(self, client, topic):
        response = client.get(reverse("glossary:home"))

        html = response.content.decode()
        letters = response.context["letters"]
        assert [item["letter"] for item in letters][-1] == "#"
        assert len(letters) == 27
        assert 'href="/letters/P/"' in html
        assert 'href="/letters/Q/"' not in html
        assert '<span class="letter-bar__letter">Q</span>' in html

    def test_it_shows_counts_and_recent_links(self, client, busy_topic):
        response = client.get(reverse("glossary:home"))

        assert response.context["topic_total"] == 4
        assert response.context["link_total"] == 20
        assert response.context["snippet_total"] == 10
        assert len(response.context["recent_links"]) == 6
        assert "PostgreSQL link 19" in response.content.decode()

    def test_it_says_what_the_site_is_in_one_line(self, client, db):
        html = client.get(reverse("glossary:home")).content.decode()

        lede = re.search(r'<p class="lede">(.*?)</p>', html).group(1)
        assert "Python developer" in lede
        assert len(lede) < 160

    def test_it_features_the_topics_curators_flag(self, client, busy_topic):
        Topic.objects.create(name="sqlite", slug="sqlite", is_featured=True)
        Topic.objects.create(name="ACID", slug="acid", is_featured=True)
        busy_topic.is_featured = True
        busy_topic.save()

        html = client.get(reverse("glossary:home")).content.decode()

        featured = html.split('id="featured-title"')[1].split("</section>")[0]
        names = re.findall(r'class="topic-card__title"><a href="[^"]+">([^<]+)</a>', featured)
        assert names == ["ACID", "PostgreSQL", "sqlite"]
        assert "20 links · 10 snippets" in featured
        assert "MySQL" not in featured

    def test_it_offers_a_snippet_of_a_featured_topic_to_run(self, client, topic, snippet):
        topic.is_featured = True
        topic.save()

        html = client.get(reverse("glossary:home")).content.decode()

        assert 'id="try-title"' in html
        assert 'data-snippet="hello" data-runnable="true"' in html
        assert 'class="run-panel" data-slug="hello"' in html

    def test_it_offers_no_snippet_when_no_featured_topic_has_one(self, client, snippet):
        assert 'id="try-title"' not in client.get(reverse("glossary:home")).content.decode()

    def test_it_lists_the_orm_lessons_in_reading_order(self, client, topic):
        for position, title in [(2, "Aggregation"), (1, "CRUD")]:
            Snippet.objects.create(
                topic=topic,
                title=title,
                slug=title.lower(),
                code="pass",
                runtime="django",
                position=position,
            )

        html = client.get(reverse("glossary:home")).content.decode()

        lessons = html.split('class="lesson-list"')[1].split("</ol>")[0]
        assert re.findall(r'<a href="/snippets/([^/]+)/">', lessons) == ["crud", "aggregation"]

    def test_it_stays_within_nine_queries(self, client, busy_topic, django_assert_max_num_queries):
        busy_topic.is_featured = True
        busy_topic.save()

        # One query per section: counts, featured topics, the snippet, lessons, paths, links.
        with django_assert_max_num_queries(9):
            response = client.get(reverse("glossary:home"))

        assert response.status_code == 200

    def test_it_hides_unpublished_content_from_readers(self, client, topic, draft_topic):
        make_links(draft_topic, 1)
        Link.objects.create(
            topic=topic, url="https://example.com/hidden", title="Hidden", is_published=False
        )

        response = client.get(reverse("glossary:home"))

        html = response.content.decode()
        assert response.context["topic_total"] == 1
        assert "Secret store link 0" not in html
        assert "Hidden" not in html
        assert 'href="/letters/S/"' not in html

    def test_it_shows_drafts_to_staff(self, staff_client, draft_topic):
        make_links(draft_topic, 1)

        html = staff_client.get(reverse("glossary:home")).content.decode()

        assert "Secret store link 0" in html
        assert 'href="/letters/S/"' in html
        assert "badge--draft" in html


class TestSnippetPage:
    def test_it_shows_the_snippet_and_its_topic(self, client, snippet):
        response = client.get(snippet.get_absolute_url())

        html = response.content.decode()
        assert response.status_code == 200
        assert '<h1 class="page-title">Hello' in html
        assert 'data-snippet="hello"' in html
        assert 'href="/topics/postgresql/"' in html

    def test_it_keeps_queries_constant(self, client, snippet, django_assert_num_queries):
        Topic.objects.create(name="MVCC", slug="mvcc")
        snippet.description = "Shows MVCC at work."  # a term link costs no query
        snippet.save()

        with django_assert_num_queries(2):  # the content revision (and names), the snippet
            response = client.get(snippet.get_absolute_url())

        assert '<a class="term-link" href="/topics/mvcc/">MVCC</a>' in response.text

    def test_it_hides_unpublished_snippets_from_readers(self, client, snippet):
        Snippet.objects.filter(pk=snippet.pk).update(is_published=False)

        assert client.get(snippet.get_absolute_url()).status_code == 404

    def test_it_hides_snippets_of_unpublished_topics_from_readers(self, client, snippet):
        Topic.objects.filter(pk=snippet.topic_id).update(is_published=False)

        assert client.get(snippet.get_absolute_url()).status_code == 404

    def test_it_shows_unpublished_snippets_to_staff(self, staff_client, snippet):
        Snippet.objects.filter(pk=snippet.pk).update(is_published=False)

        response = staff_client.get(snippet.get_absolute_url())

        assert response.status_code == 200
        assert "badge--draft" in response.content.decode()


class TestLinkDirectory:
    @pytest.fixture
    def links(self, topic):
        mysql = Topic.objects.create(name="MySQL", slug="mysql")
        Link.objects.create(topic=topic, url="https://psycopg.org/", title="Psycopg", group="sync")
        Link.objects.create(
            topic=topic, url="https://magicstack.github.io/", title="asyncpg", group="async"
        )
        Link.objects.create(
            topic=mysql, url="https://mysqlclient.example/", title="mysqlclient", group="sync"
        )

    def titles(self, response):
        return [link.title for link in response.context["link_list"]]

    def test_it_lists_all_published_links(self, client, links):
        response = client.get(reverse("glossary:link-list"))

        assert self.titles(response) == ["mysqlclient", "asyncpg", "Psycopg"]

    def test_it_filters_by_group_and_topic(self, client, links):
        response = client.get(
            reverse("glossary:link-list"), {"group": "sync", "topic": "postgresql"}
        )

        assert self.titles(response) == ["Psycopg"]
        assert "in <strong>Sync drivers</strong> for <strong>PostgreSQL</strong>" in (
            response.content.decode()
        )

    @pytest.mark.parametrize(
        ("params", "message"),
        [
            ({"group": "nope"}, "There is no link group “nope”"),
            ({"topic": "nope"}, "There is no topic “nope”"),
            ({"group": "<b>x</b>"}, "There is no link group “&lt;b&gt;x&lt;/b&gt;”"),
        ],
    )
    def test_it_ignores_bad_filters_and_says_so(self, client, links, params, message):
        response = client.get(reverse("glossary:link-list"), params)

        assert response.status_code == 200
        assert len(self.titles(response)) == 3
        assert message in response.content.decode()

    def test_it_does_not_filter_by_unpublished_topics_for_readers(self, client, links, draft_topic):
        response = client.get(reverse("glossary:link-list"), {"topic": draft_topic.slug})

        assert "There is no topic" in response.content.decode()

    def test_it_paginates_fifty_links_a_page(self, client, topic):
        make_links(topic, 51)

        first = client.get(reverse("glossary:link-list"))
        second = client.get(reverse("glossary:link-list"), {"page": 2})

        assert len(first.context["link_list"]) == 50
        assert len(second.context["link_list"]) == 1
        assert 'href="?page=2"' in first.content.decode()

    @pytest.mark.parametrize("page", ["abc", "0", "99", "-1", "1e9"])
    def test_it_404s_for_bad_page_numbers(self, client, links, page):
        assert client.get(reverse("glossary:link-list"), {"page": page}).status_code == 404

    def test_it_keeps_queries_constant(self, client, topic, django_assert_max_num_queries):
        make_links(topic, 60)

        with django_assert_max_num_queries(3):
            client.get(reverse("glossary:link-list"))

    def test_it_hides_unpublished_links_from_readers(self, client, topic, draft_topic):
        make_links(topic, 1, is_published=False)
        make_links(draft_topic, 1)

        response = client.get(reverse("glossary:link-list"))

        assert self.titles(response) == []

    def test_it_shows_unpublished_links_to_staff(self, staff_client, topic, draft_topic):
        make_links(topic, 1, is_published=False)
        make_links(draft_topic, 1)

        response = staff_client.get(reverse("glossary:link-list"))

        assert len(self.titles(response)) == 2


class TestErrorPages:
    def test_the_404_page_uses_the_site_layout(self, client, settings, db):
        settings.DEBUG = False

        response = client.get("/no/such/page/")

        html = response.content.decode()
        assert response.status_code == 404
        assert "Page not found" in html
        assert "css/site.css" in html
        assert '<nav class="site-nav" aria-label="Main">' in html

    def test_the_500_page_renders_without_a_request_or_database(self, django_assert_num_queries):
        with django_assert_num_queries(0):
            html = get_template("500.html").render()

        assert "Something went wrong" in html
        assert "css/site.css" in html
