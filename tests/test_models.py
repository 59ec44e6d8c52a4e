import pytest
from django.core import serializers
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from glossary.models import Link, Snippet, Topic


def test_topic_derives_its_letter_and_renders_safe_markdown(db):
    topic = Topic.objects.create(
        name="ACID",
        slug="acid",
        summary="**Atomic** <script>alert(1)</script> [x](javascript:alert(1))",
    )
    assert topic.letter == "A"
    assert "<strong>Atomic</strong>" in topic.summary_html
    assert "<script" not in topic.summary_html
    assert "javascript:" not in topic.summary_html


def test_topics_not_starting_with_a_letter_go_under_hash(db):
    assert Topic.objects.create(name="2PC", slug="2pc").letter == "#"
    assert Topic.objects.create(name="μMongo", slug="umongo").letter == "M"


def test_partial_save_keeps_derived_fields_in_step(topic):
    topic.name = "Redis"
    topic.summary = "*fast*"
    topic.save(update_fields=["name", "summary"])
    topic.refresh_from_db()
    assert topic.letter == "R"
    assert "<em>fast</em>" in topic.summary_html


def test_the_database_refuses_a_javascript_url(topic):
    with pytest.raises(IntegrityError), transaction.atomic():
        Link.objects.create(topic=topic, url="javascript:alert(1)", title="Evil")


def test_the_database_refuses_the_same_url_twice_in_a_topic(link):
    duplicate = "HTTPS://WWW.postgresql.org/docs#intro"
    with pytest.raises(IntegrityError), transaction.atomic():
        Link.objects.create(topic=link.topic, url=duplicate, title="Again")


def test_the_same_url_may_appear_under_two_topics(link):
    other = Topic.objects.create(name="SQL", slug="sql")
    Link.objects.create(topic=other, url=link.url, title="Docs")
    assert Link.objects.filter(url=link.url).count() == 2


def test_link_validation_explains_a_duplicate_and_a_bad_scheme(link):
    duplicate = Link(topic=link.topic, url="https://www.postgresql.org/docs/", title="Again")
    with pytest.raises(ValidationError, match="already has a link to this URL"):
        duplicate.full_clean()
    ftp = Link(topic=link.topic, url="ftp://example.com/file", title="FTP")
    with pytest.raises(ValidationError) as error:
        ftp.full_clean()
    assert "url" in error.value.message_dict


def test_link_shows_its_domain_without_www(link):
    assert link.domain == "postgresql.org"


def test_display_only_snippet_needs_a_reason(topic):
    with pytest.raises(IntegrityError), transaction.atomic():
        Snippet.objects.create(topic=topic, title="Mongo", slug="mongo", code="x", runtime="")
    snippet = Snippet(topic=topic, title="Mongo", slug="mongo", code="x", runtime="")
    with pytest.raises(ValidationError, match="needs a reason"):
        snippet.full_clean()


def test_snippet_code_is_highlighted_on_save(snippet):
    assert 'class="highlight"' in snippet.highlighted
    assert "hello" in snippet.highlighted


def test_unpublished_topic_hides_its_links_and_snippets(link, snippet):
    topic = link.topic
    topic.is_published = False
    topic.save()
    assert not Link.objects.published().exists()
    assert not Snippet.objects.published().exists()


@pytest.mark.parametrize("model", [Topic, Link, Snippet])
def test_fixtures_name_rows_by_natural_key(model, link, snippet):
    data = serializers.serialize(
        "json", model.objects.all(), use_natural_foreign_keys=True, use_natural_primary_keys=True
    )
    assert '"pk"' not in data
    (loaded,) = serializers.deserialize("json", data)
    assert loaded.object.pk == model.objects.get().pk
