import time
from urllib.parse import urlsplit, urlunsplit

from django.contrib.postgres.search import SearchVectorField
from django.core.exceptions import ValidationError
from django.core.validators import URLValidator
from django.db import models
from django.db.models import Count, F, Prefetch, Q
from django.db.models.signals import m2m_changed, post_delete, post_save, pre_save
from django.dispatch import receiver
from django.urls import reverse
from django.utils import timezone
from django.utils.text import slugify
from simple_history import register

from .rendering import highlight_code, render_markdown

http_url_validator = URLValidator(schemes=["http", "https"])


def letter_for(name):
    """The A–Z bucket of a name: its first letter, or "#" for anything else."""
    first = slugify(name)[:1].upper()
    return first if "A" <= first <= "Z" else "#"


def normalize_url(url):
    """Lower-case scheme and host, drop the fragment and a trailing slash."""
    parts = urlsplit(url.strip())
    path = parts.path.rstrip("/")
    return urlunsplit((parts.scheme.lower(), parts.netloc.lower(), path, parts.query, ""))


class DerivedFieldsMixin:
    """Computes the model's derived_fields with derive_fields() on every save."""

    derived_fields = ()

    def save(self, **kwargs):
        self.derive_fields()
        if (update_fields := kwargs.get("update_fields")) is not None:
            kwargs["update_fields"] = {*update_fields, *self.derived_fields}
        super().save(**kwargs)


class TopicQuerySet(models.QuerySet):
    def published(self):
        return self.filter(is_published=True)

    def visible_to(self, user):
        """Readers see published topics; staff see drafts too."""
        return self if user.is_staff else self.published()

    def for_index(self):
        """Topics with their published link and snippet counts (one query)."""
        return self.annotate(
            link_count=Count("links", filter=Q(links__is_published=True), distinct=True),
            snippet_count=Count("snippets", filter=Q(snippets__is_published=True), distinct=True),
        )

    def for_detail(self, user):
        """Everything a topic page shows, in a fixed number of queries."""
        links = Link.objects.visible_to(user)
        snippets = Snippet.objects.visible_to(user)
        topics = Topic.objects.visible_to(user).only("name", "slug", "parent")
        return (
            self.visible_to(user)
            .select_related("parent")
            .prefetch_related(
                Prefetch("links", queryset=links),
                Prefetch("snippets", queryset=snippets),
                Prefetch("children", queryset=topics),
                Prefetch("see_also", queryset=topics),
            )
        )

    def letter_counts(self):
        """Topic counts keyed by A–Z letter (or "#"); one query."""
        rows = self.order_by().values_list("letter").annotate(count=Count("pk"))
        return dict(rows)

    def for_export(self):
        """Published topics with their published links and snippets, in four queries."""
        return (
            self.published()
            .select_related("parent")
            .prefetch_related(
                Prefetch("links", queryset=Link.objects.published()),
                Prefetch("snippets", queryset=Snippet.objects.published()),
                Prefetch("see_also", queryset=Topic.objects.published().only("slug")),
            )
        )


class TopicManager(models.Manager.from_queryset(TopicQuerySet)):
    def get_by_natural_key(self, slug):
        return self.get(slug=slug)


class Topic(DerivedFieldsMixin, models.Model):
    name = models.CharField(max_length=120, unique=True)
    slug = models.SlugField(max_length=120, unique=True)
    letter = models.CharField(max_length=1, editable=False, db_index=True)
    summary = models.TextField(blank=True, help_text="Markdown. Raw HTML is stripped.")
    summary_html = models.TextField(editable=False, blank=True)
    aliases = models.CharField(
        max_length=255,
        blank=True,
        help_text="Other names readers search for, separated by commas (e.g. Postgres, PG).",
    )
    search_vector = SearchVectorField(null=True, editable=False)
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="children"
    )
    see_also = models.ManyToManyField("self", blank=True)
    is_published = models.BooleanField("published", default=True)
    created = models.DateTimeField(auto_now_add=True)
    updated = models.DateTimeField(auto_now=True)

    objects = TopicManager()

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(condition=~Q(name=""), name="topic_name_not_empty"),
            models.CheckConstraint(condition=~Q(slug=""), name="topic_slug_not_empty"),
        ]

    def __str__(self):
        return self.name

    def get_absolute_url(self):
        return reverse("glossary:topic-detail", args=[self.slug])

    def natural_key(self):
        return (self.slug,)

    derived_fields = ("letter", "summary_html")

    def derive_fields(self):
        self.letter = letter_for(self.name)
        self.summary_html = render_markdown(self.summary)

    def clean(self):
        if self.parent_id and self.parent_id == self.pk:
            raise ValidationError({"parent": "A topic cannot be its own parent."})

    @property
    def alias_list(self):
        return [alias.strip() for alias in self.aliases.split(",") if alias.strip()]


class LinkGroup(models.TextChoices):
    SITE = "site", "Official site"
    DOCS = "docs", "Documentation"
    ARTICLE = "article", "Articles"
    LIBRARY = "library", "Libraries"
    SYNC = "sync", "Sync drivers"
    ASYNC = "async", "Async drivers"
    TOOL = "tool", "Tools"
    SERVICE = "service", "Hosted services"


class LinkQuerySet(models.QuerySet):
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
    title = models.CharField(max_length=200)
    description = models.TextField(blank=True)
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

    def derive_fields(self):
        self.normalized_url = normalize_url(self.url)
        self.domain = (urlsplit(self.normalized_url).hostname or "").removeprefix("www.")

    def clean(self):
        # Forms leave out the derived column, so Django skips the unique constraint there.
        self.normalized_url = normalize_url(self.url or "")
        others = Link.objects.filter(topic_id=self.topic_id, normalized_url=self.normalized_url)
        if self.topic_id and others.exclude(pk=self.pk).exists():
            raise ValidationError({"url": "This topic already has a link to this URL."})


class Language(models.TextChoices):
    PYTHON = "python", "Python"
    SQL = "sql", "SQL"
    SHELL = "shell", "Shell"
    JAVASCRIPT = "javascript", "JavaScript"
    TEXT = "text", "Plain text"


class Runtime(models.TextChoices):
    PYTHON = "python", "Python (standard library)"
    DJANGO = "django", "Django ORM"
    POSTGRESQL = "postgresql", "PostgreSQL"
    __empty__ = "Display only"


class Verification(models.TextChoices):
    UNVERIFIED = "unverified", "Not verified"
    PASSING = "passing", "Passing"
    FAILING = "failing", "Failing"


class SnippetQuerySet(models.QuerySet):
    def published(self):
        return self.filter(is_published=True, topic__is_published=True)

    def visible_to(self, user):
        return self if user.is_staff else self.published()

    def runnable(self):
        return self.exclude(runtime="")


class SnippetManager(models.Manager.from_queryset(SnippetQuerySet)):
    def get_by_natural_key(self, slug):
        return self.get(slug=slug)


class Snippet(DerivedFieldsMixin, models.Model):
    topic = models.ForeignKey(Topic, on_delete=models.CASCADE, related_name="snippets")
    title = models.CharField(max_length=200)
    slug = models.SlugField(max_length=120, unique=True)
    description = models.TextField(blank=True, help_text="Markdown. Raw HTML is stripped.")
    description_html = models.TextField(editable=False, blank=True)
    code = models.TextField()
    highlighted = models.TextField(editable=False, blank=True)
    search_vector = SearchVectorField(null=True, editable=False)
    language = models.CharField(max_length=16, choices=Language, default=Language.PYTHON)
    runtime = models.CharField(max_length=16, choices=Runtime, blank=True)
    display_only_reason = models.CharField(
        max_length=200,
        blank=True,
        help_text="Why a display-only snippet cannot run here (e.g. it needs a MongoDB server).",
    )
    position = models.PositiveIntegerField(default=0)
    is_published = models.BooleanField("published", default=True)
    verification = models.CharField(
        max_length=12, choices=Verification, default=Verification.UNVERIFIED, editable=False
    )
    verified_output = models.TextField(blank=True, editable=False)
    verified_at = models.DateTimeField(null=True, blank=True, editable=False)
    verified_wall_ms = models.PositiveIntegerField(null=True, blank=True, editable=False)
    verified_versions = models.CharField(max_length=200, blank=True, editable=False)
    created = models.DateTimeField(auto_now_add=True)
    updated = models.DateTimeField(auto_now=True)

    objects = SnippetManager()

    class Meta:
        ordering = ["topic", "position", "title"]
        constraints = [
            models.CheckConstraint(
                condition=~Q(runtime="") | ~Q(display_only_reason=""),
                name="snippet_display_only_has_reason",
                violation_error_message="A display-only snippet needs a reason it cannot run.",
            ),
            models.CheckConstraint(condition=~Q(code=""), name="snippet_code_not_empty"),
        ]

    def __str__(self):
        return self.title

    def get_absolute_url(self):
        return reverse("glossary:snippet-detail", args=[self.slug])

    def natural_key(self):
        return (self.slug,)

    derived_fields = ("highlighted", "description_html")

    def derive_fields(self):
        self.highlighted = highlight_code(self.code, self.language)
        self.description_html = render_markdown(self.description)

    @property
    def is_runnable(self):
        return bool(self.runtime)


class ContentRevision(models.Model):
    """A counter bumped whenever readers' content changes; cached pages are keyed on it.

    It lives in the database so every server process sees the same number. Each process
    reads it at most once every REUSE_SECONDS (a change made in the same process is seen
    at once; one made elsewhere within that time), so a cached page costs no query.
    """

    REUSE_SECONDS = 1.0

    number = models.PositiveBigIntegerField(default=0)

    _last_read = (-REUSE_SECONDS, 0)  # (time.monotonic() of the read, number)

    class Meta:
        ordering = ["pk"]

    def __str__(self):
        return f"Content revision {self.number}"

    @classmethod
    def current(cls):
        """The current revision number (a query at most once every REUSE_SECONDS)."""
        read_at, number = cls._last_read
        now = time.monotonic()
        if now - read_at >= cls.REUSE_SECONDS:
            number = cls.objects.filter(pk=1).values_list("number", flat=True).first() or 0
            cls._last_read = (now, number)
        return number

    @classmethod
    def bump(cls):
        if not cls.objects.filter(pk=1).update(number=F("number") + 1):
            cls.objects.get_or_create(pk=1, defaults={"number": 1})
        cls.forget()

    @classmethod
    def forget(cls):
        """Read the number afresh next time."""
        cls._last_read = (-cls.REUSE_SECONDS, 0)


@receiver([post_save, post_delete])
def bump_revision_on_change(sender, **kwargs):
    if sender in (Topic, Link, Snippet):
        ContentRevision.bump()


@receiver(m2m_changed, sender=Topic.see_also.through)
def bump_revision_on_see_also_change(sender, action, **kwargs):
    if action.startswith("post_"):
        ContentRevision.bump()


@receiver(pre_save)
def derive_fields_on_fixture_load(sender, instance, raw, **kwargs):
    """loaddata saves raw, skipping save(): derive the same fields and stamp new rows."""
    if raw and sender in (Topic, Link, Snippet):
        instance.derive_fields()
        instance.created = instance.created or timezone.now()
        instance.updated = instance.updated or instance.created


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


# Every edit of readers' content is kept with who and when (django-simple-history). Derived
# columns, verification results and link health are left out: they follow from the rest.
HISTORY_LEAVES_OUT = {
    Topic: {"letter", "summary_html", "search_vector"},
    Link: {"normalized_url", "domain", "search_vector", "broken_since"},
    Snippet: {
        "highlighted",
        "description_html",
        "search_vector",
        "verification",
        "verified_output",
        "verified_at",
        "verified_wall_ms",
        "verified_versions",
    },
}
for model, left_out in HISTORY_LEAVES_OUT.items():
    register(model, excluded_fields=sorted(left_out))


@receiver(pre_save)
def skip_history_of_untracked_saves(sender, instance, update_fields, **kwargs):
    """A save of only left-out columns (a verification run) is not an edit."""
    left_out = HISTORY_LEAVES_OUT.get(sender)
    if left_out and update_fields and set(update_fields) <= left_out | {"updated"}:
        instance.skip_history_when_saving = True


@receiver(post_save)
def forget_skipped_history(sender, instance, **kwargs):
    if sender in HISTORY_LEAVES_OUT:
        instance.__dict__.pop("skip_history_when_saving", None)
