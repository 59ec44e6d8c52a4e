"""Readers' problem reports and link suggestions."""

from django.db import models

from .links import Link
from .snippets import Snippet
from .topics import Topic
from .validators import http_url_validator


class ReportKind(models.TextChoices):
    PROBLEM = "problem", "Problem report"
    LINK = "link", "Suggested link"


class ReportStatus(models.TextChoices):
    NEW = "new", "New"
    ACCEPTED = "accepted", "Accepted"
    DISMISSED = "dismissed", "Dismissed"


class ReaderReport(models.Model):
    """A reader's problem report or link suggestion, waiting in the admin's queue."""

    kind = models.CharField(max_length=8, choices=ReportKind)
    topic = models.ForeignKey(Topic, null=True, blank=True, on_delete=models.SET_NULL)
    snippet = models.ForeignKey(Snippet, null=True, blank=True, on_delete=models.SET_NULL)
    url = models.URLField("URL", max_length=500, blank=True, validators=[http_url_validator])
    title = models.CharField(max_length=200, blank=True)
    message = models.TextField(blank=True)
    status = models.CharField(max_length=9, choices=ReportStatus, default=ReportStatus.NEW)
    created_link = models.ForeignKey(
        Link, null=True, blank=True, on_delete=models.SET_NULL, editable=False
    )
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created", "-pk"]

    def __str__(self):
        about = self.snippet or self.topic or "the glossary"
        return f"{self.get_kind_display()} about {about}"
