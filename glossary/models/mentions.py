"""Mentions: which topics a text names, kept current as topics and texts change."""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.db.models.signals import post_save
from django.dispatch import receiver

from .. import termlinks
from .links import Link
from .snippets import Snippet
from .topics import Topic


class MentionQuerySet(models.QuerySet):
    def published(self):
        """Mentions in published texts of published topics."""
        return self.filter(
            Q(snippet=None) | Q(snippet__is_published=True),
            Q(link=None) | Q(link__is_published=True),
            target__is_published=True,
            topic__is_published=True,
        )

    def for_listing(self):
        return self.select_related("topic", "snippet", "link")


class Mention(models.Model):
    """A topic's summary, or one of its snippets or links, mentions another topic.

    Derived from the texts by glossary.termlinks: kept current on save, rebuilt by
    `manage.py rebuildmentions`. Drafts are recorded too and filtered out when listed, so
    publishing or unpublishing (even in bulk) needs no rebuild.
    """

    target = models.ForeignKey(Topic, on_delete=models.CASCADE, related_name="mentions")
    topic = models.ForeignKey(Topic, on_delete=models.CASCADE, related_name="mentions_made")
    snippet = models.ForeignKey(Snippet, null=True, blank=True, on_delete=models.CASCADE)
    link = models.ForeignKey(Link, null=True, blank=True, on_delete=models.CASCADE)

    objects = MentionQuerySet.as_manager()

    class Meta:
        ordering = ["topic__name", "pk"]
        constraints = [
            models.CheckConstraint(
                condition=Q(snippet=None) | Q(link=None),
                name="mention_in_one_text",
                violation_error_message="A mention is in a topic, a snippet or a link.",
            ),
        ]

    def __str__(self):
        return f"{self.source} mentions {self.target}"

    @property
    def source(self):
        """The text's owner: the snippet, the link, or else the topic."""
        return self.snippet or self.link or self.topic


def changed_fields(instance, created, update_fields):
    """The fields a save may have changed (all of them for a new row or a full save)."""
    if created or update_fields is None:
        return {field.name for field in instance._meta.concrete_fields}
    return set(update_fields)


@receiver(post_save, sender=Topic)
def update_mentions_on_topic_save(sender, instance, created, update_fields, raw, **kwargs):
    """New names change what every text mentions; a new summary only its own mentions.

    Fixture loads save raw: loadseed rebuilds once at the end instead.
    """
    if raw or not settings.TRACK_CONTENT_CHANGES:
        return
    changed = changed_fields(instance, created, update_fields)
    if changed & {"name", "aliases", "unlinked_terms"} and instance.terms_changed():
        termlinks.rebuild_mentions()
        instance.loaded_terms = instance.terms()
    elif "summary" in changed:
        termlinks.refresh_mentions(instance)


@receiver(post_save, sender=Snippet)
@receiver(post_save, sender=Link)
def update_mentions_on_text_save(sender, instance, created, update_fields, raw, **kwargs):
    if raw or not settings.TRACK_CONTENT_CHANGES:
        return
    if changed_fields(instance, created, update_fields) & {"description", "topic"}:
        termlinks.refresh_mentions(instance)
