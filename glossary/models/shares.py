"""Code readers share from the playground."""

import hashlib
import secrets
from datetime import timedelta

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone

from .choices import Language, Runtime


def new_share_id():
    """A random id: a share's address says nothing about its code and cannot be guessed."""
    return secrets.token_urlsafe(9)


class ShareQuerySet(models.QuerySet):
    def expired(self):
        """Shares nobody has opened for SNIPPET_SHARE_EXPIRY_DAYS."""
        cutoff = timezone.now() - timedelta(days=settings.SNIPPET_SHARE_EXPIRY_DAYS)
        return self.filter(last_viewed__lt=cutoff)


class Share(models.Model):
    """Code a reader shared from the playground, opened again at /play/<id>/."""

    id = models.CharField(primary_key=True, max_length=16, default=new_share_id, editable=False)
    runtime = models.CharField(max_length=16, choices=Runtime)
    language = models.CharField(max_length=16, choices=Language, default=Language.PYTHON)
    code = models.TextField()
    # The same code in the same runtime and language shared twice is one share: looked up
    # by this digest.
    digest = models.CharField(max_length=64, unique=True, editable=False)
    created = models.DateTimeField(auto_now_add=True)
    last_viewed = models.DateTimeField(default=timezone.now, editable=False)
    views = models.PositiveIntegerField(default=0, editable=False)

    objects = ShareQuerySet.as_manager()

    class Meta:
        ordering = ["-created"]
        constraints = [
            models.CheckConstraint(condition=~Q(code=""), name="share_code_not_empty"),
            models.CheckConstraint(condition=~Q(runtime=""), name="share_has_runtime"),
        ]

    def __str__(self):
        return f"{self.get_runtime_display()}: {self.code[:60]}"

    def save(self, **kwargs):
        self.digest = self.digest_of(self.runtime, self.language, self.code)
        super().save(**kwargs)

    def get_absolute_url(self):
        return reverse("glossary:play-share", args=[self.pk])

    @staticmethod
    def digest_of(runtime, language, code):
        return hashlib.sha256(f"{runtime}\0{language}\0{code}".encode()).hexdigest()
