import re

import pytest
from django.core.management import call_command

from glossary.models import Link, Mention, Snippet, Topic

pytestmark = pytest.mark.django_db


def make_topic(name, summary="", **kwargs):
    return Topic.objects.create(name=name, slug=name.lower(), summary=summary, **kwargs)


def mentioned_in(client, topic):
    """The "Mentioned in" entries of a topic page as (link text, where) pairs."""
    html = client.get(topic.get_absolute_url()).content.decode()
    section = re.search(r'<section class="section mentioned-in".*?</section>', html, re.DOTALL)
    if section is None:
        return []
    items = re.findall(
        r'<a href="[^"]+">([^<]+)</a>\s*<span class="mention-list__where">([^<]+)</span>',
        section.group(0),
    )
    return items


@pytest.fixture
def redis(db):
    return make_topic("Redis", "An in-memory data store.")


class TestMentionedIn:
    def test_it_lists_topics_snippets_and_links_that_mention_a_topic(self, client, redis):
        celery = make_topic("Celery", "Often uses Redis as its broker.")
        Snippet.objects.create(
            topic=celery,
            title="A task queue",
            slug="task-queue",
            code="print(1)",
            runtime="python",
            description="Queues work in redis.",
        )
        Link.objects.create(
            topic=celery,
            url="https://example.com/celery",
            title="Celery guide",
            description="Brokers: Redis or RabbitMQ.",
        )

        assert mentioned_in(client, redis) == [
            ("Celery", "topic"),
            ("A task queue", "snippet in Celery"),
            ("Celery guide", "link in Celery"),
        ]

    def test_bulk_writes_keep_the_list_current(self, client, redis):
        celery = make_topic("Celery", "A task queue.")
        Topic.objects.filter(pk=celery.pk).update(summary="Often uses Redis as its broker.")
        Link.objects.bulk_create(
            [Link(topic=celery, url="https://example.com/c", title="Guide", description="Redis.")]
        )

        assert mentioned_in(client, redis) == [("Celery", "topic"), ("Guide", "link in Celery")]

        Topic.objects.filter(pk=celery.pk).update(summary="A task queue.")

        assert mentioned_in(client, redis) == [("Guide", "link in Celery")]

    def test_it_has_no_section_when_nothing_mentions_the_topic(self, client, redis):
        html = client.get(redis.get_absolute_url()).content.decode()

        assert "Mentioned in" not in html

    def test_drafts_are_never_listed(self, client, redis):
        make_topic("Celery", "Uses Redis.", is_published=False)
        rq = make_topic("RQ", "Built on Redis.")
        Snippet.objects.create(
            topic=rq,
            title="Draft",
            slug="draft",
            code="print(1)",
            runtime="python",
            description="Redis again.",
            is_published=False,
        )
        Link.objects.create(
            topic=rq,
            url="https://example.com/rq",
            title="Draft link",
            description="Redis.",
            is_published=False,
        )

        assert mentioned_in(client, redis) == [("RQ", "topic")]

    def test_an_edited_text_updates_the_list(self, client, redis):
        celery = make_topic("Celery", "Uses Redis.")
        assert mentioned_in(client, redis) == [("Celery", "topic")]

        celery.summary = "Uses RabbitMQ."
        celery.save()

        assert mentioned_in(client, redis) == []

    def test_a_partial_save_of_a_description_updates_the_list(self, client, redis):
        celery = make_topic("Celery")
        snippet = Snippet.objects.create(
            topic=celery, title="Queue", slug="queue", code="print(1)", runtime="python"
        )
        assert mentioned_in(client, redis) == []

        snippet.description = "Queues in Redis."
        snippet.save(update_fields=["description"])

        assert mentioned_in(client, redis) == [("Queue", "snippet in Celery")]

    def test_a_new_topic_is_found_in_texts_written_before_it(self, client):
        make_topic("Celery", "Uses Redis.")

        redis = make_topic("Redis")

        assert mentioned_in(client, redis) == [("Celery", "topic")]

    def test_a_renamed_topic_is_found_by_its_new_name(self, client, redis):
        make_topic("Celery", "Uses Valkey.")
        redis = Topic.objects.get(pk=redis.pk)

        redis.aliases = "Valkey"
        redis.save()

        assert mentioned_in(client, redis) == [("Celery", "topic")]

    def test_unlinked_terms_drop_the_mention(self, client, redis):
        celery = make_topic("Celery", "Uses Redis.")
        celery = Topic.objects.get(pk=celery.pk)

        celery.unlinked_terms = "redis"
        celery.save()

        assert mentioned_in(client, redis) == []

    def test_a_bulk_published_source_appears_without_a_rebuild(self, client, redis):
        celery = make_topic("Celery", "Uses Redis.", is_published=False)

        Topic.objects.filter(pk=celery.pk).update(is_published=True)

        assert mentioned_in(client, redis) == [("Celery", "topic")]

    def test_the_page_lists_many_mentions_in_constant_queries(
        self, client, redis, django_assert_max_num_queries
    ):
        for number in range(15):
            topic = make_topic(f"Broker{number}", "Uses Redis.")
            Snippet.objects.create(
                topic=topic,
                title=f"Snippet {number}",
                slug=f"snippet-{number}",
                code="print(1)",
                runtime="python",
                description="Redis.",
            )

        with django_assert_max_num_queries(8):
            entries = mentioned_in(client, redis)

        assert len(entries) == 30


class TestRebuildMentions:
    def test_it_restores_the_mentions_that_saving_records(self, redis):
        celery = make_topic("Celery", "Uses Redis.")
        Snippet.objects.create(
            topic=celery,
            title="Queue",
            slug="queue",
            code="print(1)",
            runtime="python",
            description="Redis.",
        )
        saved = set(Mention.objects.values_list("target", "topic", "snippet", "link"))
        Mention.objects.all().delete()

        call_command("rebuildmentions", verbosity=0)

        rebuilt = set(Mention.objects.values_list("target", "topic", "snippet", "link"))
        assert rebuilt == saved
        assert len(rebuilt) == 2

    def test_loadseed_records_the_seed_contents_mentions(self, client):
        call_command("loadseed", verbosity=0)

        postgresql = Topic.objects.get(slug="postgresql")
        assert len(mentioned_in(client, postgresql)) > 10
