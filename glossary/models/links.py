"""Links: a topic's reading list, and the checks that find broken or moved links."""

from urllib.parse import urlsplit, urlunsplit

from django.contrib.postgres.search import SearchVectorField
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.utils import timezone

from .derived import DerivedFieldsMixin, DerivedFieldsQuerySet
from .topics import Topic
from .validators import http_url_validator, multi_line_text, single_line_text


def normalize_url(url):
    """Lower-case scheme and host, drop the fragment and a trailing slash."""
    parts = urlsplit(url.strip())
    path = parts.path.rstrip("/")
    return urlunsplit((parts.scheme.lower(), parts.netloc.lower(), path, parts.query, ""))


class LinkGroup(models.TextChoices):
    SITE = "site", "Official site"
    DOCS = "docs", "Documentation"
    ARTICLE = "article", "Articles"
    LIBRARY = "library", "Libraries"
    SYNC = "sync", "Sync drivers"
    ASYNC = "async", "Async drivers"
    TOOL = "tool", "Tools"
    SERVICE = "service", "Hosted services"


class LinkQuerySet(DerivedFieldsQuerySet):
    def published(self):
        return self.filter(is_published=True, topic__is_published=True)

    def visible_to(self, user):
        return self if user.is_staff else self.published()

    def newest_first(self):
        return self.select_related("topic").order_by("-created", "-pk")


class LinkManager(models.Manager.from_queryset(LinkQuerySet)):
    def get_by_natural_key(self, topic_slug, url):
        return self.get(topic__slug=topic_slug, url=url)


class Link(DerivedFieldsMixin, models.Model):
    topic = models.ForeignKey(Topic, on_delete=models.CASCADE, related_name="links")
    url = models.URLField("URL", max_length=500, validators=[http_url_validator])
    normalized_url = models.CharField(max_length=500, editable=False)
    domain = models.CharField(max_length=255, editable=False)
    title = models.CharField(max_length=200, validators=[single_line_text])
    description = models.TextField(blank=True, validators=[multi_line_text])
    search_vector = SearchVectorField(null=True, editable=False)
    group = models.CharField(max_length=16, choices=LinkGroup, default=LinkGroup.DOCS)
    position = models.PositiveIntegerField(default=0)
    is_published = models.BooleanField("published", default=True)
    created = models.DateTimeField(auto_now_add=True)
    updated = models.DateTimeField(auto_now=True)
    broken_since = models.DateTimeField(null=True, blank=True, editable=False)  # see LinkCheck

    objects = LinkManager()

    class Meta:
        ordering = ["topic", "group", "position", "title"]
        indexes = [models.Index(fields=["-created", "-id"], name="link_newest_idx")]
        constraints = [
            models.UniqueConstraint(
                fields=["topic", "normalized_url"],
                name="link_unique_url_per_topic",
                violation_error_message="This topic already has a link to this URL.",
            ),
            models.CheckConstraint(
                condition=Q(url__startswith="http://") | Q(url__startswith="https://"),
                name="link_url_http_or_https",
                violation_error_message="Links must use http:// or https://.",
            ),
            models.CheckConstraint(condition=~Q(title=""), name="link_title_not_empty"),
        ]

    def __str__(self):
        return self.title

    def natural_key(self):
        return (*self.topic.natural_key(), self.url)

    natural_key.dependencies = ["glossary.topic"]

    derived_fields = ("normalized_url", "domain")
    derived_from = ("url",)

    def derive_fields(self):
        self.normalized_url = normalize_url(self.url)
        self.domain = (urlsplit(self.normalized_url).hostname or "").removeprefix("www.")

    def clean(self):
        # Forms leave out the derived column, so Django skips the unique constraint there.
        self.normalized_url = normalize_url(self.url or "")
        others = Link.objects.filter(topic_id=self.topic_id, normalized_url=self.normalized_url)
        if self.topic_id and others.exclude(pk=self.pk).exists():
            raise ValidationError({"url": "This topic already has a link to this URL."})


class CheckError(models.TextChoices):
    NONE = "", "None"
    HTTP = "http", "HTTP error status"
    TIMEOUT = "timeout", "Timed out"
    DNS = "dns", "Name not found"
    CONNECT = "connect", "Connection failed"
    FORBIDDEN = "forbidden", "Non-public address refused"
    REDIRECTS = "redirects", "Too many redirects"
    PROTOCOL = "protocol", "Broken HTTP response"
    INVALID = "invalid", "Unsupported URL"


class LinkCheck(models.Model):
    """One visit of a link by `manage.py checklinks`; the link's history in the admin.

    A link is broken (Link.broken_since) only after LINKCHECK_BROKEN_AFTER failed checks
    in a row spread over LINKCHECK_BROKEN_DAYS calendar days; one success clears it.
    """

    link = models.ForeignKey(Link, on_delete=models.CASCADE, related_name="checks")
    checked_at = models.DateTimeField(default=timezone.now, db_index=True)
    ok = models.BooleanField()
    status = models.PositiveSmallIntegerField(null=True, blank=True)
    error = models.CharField(max_length=16, choices=CheckError, blank=True)
    detail = models.CharField(max_length=300, blank=True)
    final_url = models.URLField(max_length=500, blank=True)
    redirect_chain = models.JSONField(default=list, blank=True)  # [[status, url], ...]
    suggested_url = models.URLField(
        max_length=500, blank=True, help_text="Where a permanent redirect leads."
    )
    archived = models.BooleanField(default=False, help_text="An archived GitHub repository.")
    elapsed_ms = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-checked_at", "-pk"]
        get_latest_by = "checked_at"

    def __str__(self):
        return f"Check of {self.checked_at:%Y-%m-%d %H:%M}"
