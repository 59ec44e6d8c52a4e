"""The content revision: the number cached pages are keyed on, bumped on every change."""

import time

from django.conf import settings
from django.db import models
from django.db.models import F
from django.db.models.signals import m2m_changed, post_delete, post_save
from django.dispatch import receiver

from .. import termlinks
from .exercises import Check, DataVariant, Exercise, Hint, WrongAnswer
from .links import Link
from .paths import Path, PathStep
from .snippets import Snippet
from .topics import Topic


class ContentRevision(models.Model):
    """A counter bumped whenever readers' content changes; cached pages are keyed on it.

    It lives in the database so every server process sees the same number. Each process
    reads it at most once every REUSE_SECONDS (a change made in the same process is seen
    at once; one made elsewhere within that time), so a cached page costs no query.
    Every topic's names are stored with it, for term links: a page reads them for free.
    """

    REUSE_SECONDS = 1.0

    number = models.PositiveBigIntegerField(default=0)
    # termlinks.topic_terms() as it was at this revision.
    terms = models.JSONField(default=list, editable=False)

    _last_read = (-REUSE_SECONDS, 0, [])  # (time.monotonic() of the read, number, terms)

    class Meta:
        ordering = ["pk"]

    def __str__(self):
        return f"Content revision {self.number}"

    @classmethod
    def current(cls):
        """The current revision number (a query at most once every REUSE_SECONDS)."""
        return cls._read()[1]

    @classmethod
    def current_terms(cls):
        """Every topic's names at the current revision, read with its number."""
        return cls._read()[2]

    @classmethod
    def _read(cls):
        read_at, *_ = cls._last_read
        now = time.monotonic()
        if now - read_at >= cls.REUSE_SECONDS:
            row = cls.objects.filter(pk=1).values_list("number", "terms").first() or (0, [])
            cls._last_read = (now, *row)
        return cls._last_read

    @classmethod
    def bump(cls):
        """A new revision, with the topics' names as they are now (two more queries)."""
        # The number first: its row lock keeps concurrent bumps from storing older names.
        if not cls.objects.filter(pk=1).update(number=F("number") + 1):
            cls.objects.get_or_create(pk=1, defaults={"number": 1})
        cls.objects.filter(pk=1).update(terms=termlinks.topic_terms())
        cls.forget()

    @classmethod
    def forget(cls):
        """Read the number afresh next time."""
        cls._last_read = (-cls.REUSE_SECONDS, 0, [])


# What cached pages show.
READERS_CONTENT = (
    Topic,
    Link,
    Snippet,
    Exercise,
    Hint,
    DataVariant,
    Check,
    WrongAnswer,
    Path,
    PathStep,
)


@receiver([post_save, post_delete])
def bump_revision_on_change(sender, **kwargs):
    if sender in READERS_CONTENT and settings.TRACK_CONTENT_CHANGES:
        ContentRevision.bump()


@receiver(m2m_changed, sender=Topic.see_also.through)
def bump_revision_on_see_also_change(sender, action, **kwargs):
    if action.startswith("post_") and settings.TRACK_CONTENT_CHANGES:
        ContentRevision.bump()
