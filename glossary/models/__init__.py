import hashlib
import secrets
import time
from datetime import timedelta
from urllib.parse import urlsplit, urlunsplit

from django.conf import settings
from django.contrib.postgres.search import SearchVectorField
from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator, URLValidator
from django.db import models
from django.db.models import (
    Count,
    ExpressionWrapper,
    F,
    OuterRef,
    Prefetch,
    Q,
    StringAgg,
    Subquery,
    Value,
)
from django.db.models.functions import Cast, Concat, Lower
from django.db.models.signals import m2m_changed, post_delete, post_save, pre_save
from django.dispatch import receiver
from django.urls import reverse
from django.utils import timezone
from django.utils.text import slugify
from simple_history import register

from .. import termlinks
from ..rendering import highlight_code, render_markdown
from .choices import Language, Runtime
from .exercises import (  # noqa: F401  (glossary.models names every model of the app)
    Check,
    CheckKind,
    DataVariant,
    Exercise,
    ExerciseLanguage,
    Hint,
    WrongAnswer,
)
from .paths import Path, PathStep, StepKind  # noqa: F401

http_url_validator = URLValidator(schemes=["http", "https"])
# Separators of fields and records in text aggregated by the database (Topic.exercise_list).
UNIT, RECORD = "\x1f", "\x1e"

# Control characters have no place in a glossary, and a stored one breaks the XML feed.
# Multi-line text keeps its line breaks and tabs.
single_line_text = RegexValidator(
    r"[\x00-\x1f\x7f-\x9f]",
    inverse_match=True,
    message="Remove the control characters (such as tabs or line breaks) from this text.",
    code="control_characters",
)
multi_line_text = RegexValidator(
    r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]",
    inverse_match=True,
    message="Remove the control characters from this text; line breaks and tabs are fine.",
    code="control_characters",
)


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
    """Computes the model's derived_fields with derive_fields() on every save.

    derived_from names the fields they are computed from.
    """

    derived_fields = ()
    derived_from = ()

    def save(self, **kwargs):
        self.derive_fields()
        if (update_fields := kwargs.get("update_fields")) is not None:
            kwargs["update_fields"] = {*update_fields, *self.derived_fields}
        super().save(**kwargs)


# Fields whose change may change which topics a text mentions.
MENTION_SOURCES = {"name", "aliases", "unlinked_terms", "summary", "description", "topic"}


class DerivedFieldsQuerySet(models.QuerySet):
    """Bulk writes that skip save() still keep derived fields (sanitised HTML) and the
    Mention table in step."""

    def bulk_create(self, objs, *args, **kwargs):
        objs = list(objs)
        for obj in objs:
            obj.derive_fields()
        created = super().bulk_create(objs, *args, **kwargs)
        if settings.TRACK_CONTENT_CHANGES:
            termlinks.rebuild_mentions()
        return created

    def bulk_update(self, objs, fields, *args, **kwargs):
        objs = list(objs)
        if set(fields) & set(self.model.derived_from):
            for obj in objs:
                obj.derive_fields()
            fields = {*fields, *self.model.derived_fields}
        count = super().bulk_update(objs, fields, *args, **kwargs)
        if set(fields) & MENTION_SOURCES and settings.TRACK_CONTENT_CHANGES:
            termlinks.rebuild_mentions()
        return count

    def update(self, **kwargs):
        """Update, then derive again the rows whose sources changed (a query per row)."""
        if not set(kwargs) & (set(self.model.derived_from) | MENTION_SOURCES):
            return super().update(**kwargs)
        pks = list(self.values_list("pk", flat=True))
        count = super().update(**kwargs)
        for obj in self.model._base_manager.filter(pk__in=pks):
            obj.save(update_fields=self.model.derived_fields)
        if set(kwargs) & MENTION_SOURCES and settings.TRACK_CONTENT_CHANGES:
            termlinks.rebuild_mentions()
        return count

    update.alters_data = True


class TopicQuerySet(DerivedFieldsQuerySet):
    def published(self):
        return self.filter(is_published=True)

    def visible_to(self, user):
        """Readers see published topics; staff see drafts too."""
        return self if user.is_staff else self.published()

    def featured(self):
        return self.filter(is_featured=True)

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
        return (
            self.visible_to(user)
            .with_exercise_listing(user)
            .prefetch_related(
                Prefetch("links", queryset=links),
                Prefetch("snippets", queryset=snippets),
                Prefetch("mentions", queryset=Mention.objects.published().for_listing()),
            )
        )

    def with_exercise_listing(self, user):
        """Annotated with the exercises the user may see, for Topic.exercise_list.

        Text in the topic's own row, not a prefetch, so the topic page costs no extra
        query for them: "order, slug, title" per exercise, split by the ASCII unit and
        record separators (no JSON functions: SQLite would spend queries probing for them).
        """
        fields = (Cast("order", models.TextField()), Value(UNIT), "slug", Value(UNIT), "title")
        entry = Concat(*fields, output_field=models.TextField())
        listing = (
            Exercise.objects.visible_to(user)
            .filter(topic=OuterRef("pk"))
            .order_by()
            .values("topic")
            .annotate(listing=StringAgg(entry, delimiter=Value(RECORD)))
            .values("listing")
        )
        return self.annotate(exercise_listing=Subquery(listing))

    def related_to(self, topic):
        """The topic's parent, children and see-also topics, each once, marked with
        is_parent and is_child (one query). A parent left out of self is no parent."""
        see_also = Topic.see_also.through.objects.filter(from_topic=topic).values("to_topic")
        is_parent = ExpressionWrapper(Q(pk=topic.parent_id), output_field=models.BooleanField())
        is_child = ExpressionWrapper(Q(parent=topic), output_field=models.BooleanField())
        return (
            self.filter(Q(pk=topic.parent_id) | Q(parent=topic) | Q(pk__in=see_also))
            .annotate(is_parent=is_parent, is_child=is_child)
            .only("name", "slug", "parent")
        )

    def for_preview(self):
        """With the parent and the number of published children (one query)."""
        children = Count("children", filter=Q(children__is_published=True))
        return self.select_related("parent").annotate(child_count=children)

    def letter_counts(self):
        """Topic counts keyed by A–Z letter (or "#"); one query."""
        rows = self.order_by().values_list("letter").annotate(count=Count("pk"))
        return dict(rows)

    def by_alias(self, slug):
        """The topic one of whose aliases slugifies to slug, or None.

        Reads every topic's aliases (one query): meant for a slug that named no topic.
        """
        for topic in self.only("slug", "aliases"):
            if any(slugify(alias) == slug for alias in topic.alias_list):
                return topic
        return None

    def for_export(self):
        """Published topics with their published parent, see also, links and snippets.

        Five queries.
        """
        return self.published().prefetch_related(
            Prefetch("parent", queryset=Topic.objects.published().only("slug")),
            Prefetch("links", queryset=Link.objects.published()),
            Prefetch("snippets", queryset=Snippet.objects.published()),
            Prefetch("see_also", queryset=Topic.objects.published().only("slug")),
        )


class TopicManager(models.Manager.from_queryset(TopicQuerySet)):
    def get_queryset(self):
        # Meta.ordering is dropped from GROUP BY queries (annotate() with Count), so every
        # queryset starts explicitly ordered, and aggregated lists stay in A–Z order too.
        return super().get_queryset().order_by(*self.model._meta.ordering)

    def get_by_natural_key(self, slug):
        return self.get(slug=slug)


class Topic(DerivedFieldsMixin, models.Model):
    name = models.CharField(max_length=120, unique=True, validators=[single_line_text])
    slug = models.SlugField(max_length=120, unique=True)
    letter = models.CharField(max_length=1, editable=False, db_index=True)
    summary = models.TextField(
        blank=True, help_text="Markdown. Raw HTML is stripped.", validators=[multi_line_text]
    )
    summary_html = models.TextField(editable=False, blank=True)
    aliases = models.CharField(
        max_length=255,
        blank=True,
        help_text="Other names a person would say, separated by commas (e.g. Postgres, PG). "
        "Shown on the topic page as “Also known as”.",
        validators=[single_line_text],
    )
    search_aliases = models.CharField(
        max_length=255,
        blank=True,
        help_text="Search only, never shown: spellings, variants and related terms readers "
        "type, separated by commas (e.g. PostgresQL, pgsql).",
        validators=[single_line_text],
    )
    search_vector = SearchVectorField(null=True, editable=False)
    unlinked_terms = models.CharField(
        "don't link these terms",
        max_length=255,
        blank=True,
        validators=[single_line_text],
        help_text=(
            "Other topics' names or aliases that should stay plain text in this topic's "
            "summary, links and snippets, separated by commas (e.g. Index, SQL). Elsewhere "
            "the first mention of another topic links to it."
        ),
    )
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="children"
    )
    see_also = models.ManyToManyField("self", blank=True)
    is_published = models.BooleanField("published", default=True)
    is_featured = models.BooleanField(
        "featured", default=False, help_text="Shown on the front page."
    )
    created = models.DateTimeField(auto_now_add=True)
    updated = models.DateTimeField(auto_now=True)

    objects = TopicManager()

    class Meta:
        ordering = [Lower("name"), "name"]
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

    @classmethod
    def from_db(cls, db, field_names, values, **kwargs):
        topic = super().from_db(db, field_names, values, **kwargs)
        topic.loaded_terms = topic.terms()
        return topic

    def terms(self):
        """What other texts are matched against (None for a field not loaded)."""
        return tuple(self.__dict__.get(field) for field in ("name", "aliases", "unlinked_terms"))

    def terms_changed(self):
        return getattr(self, "loaded_terms", None) != self.terms()

    derived_fields = ("letter", "summary_html")
    derived_from = ("name", "summary")

    def derive_fields(self):
        self.letter = letter_for(self.name)
        self.summary_html = render_markdown(self.summary)

    def clean(self):
        if self.parent_id and self.parent_id == self.pk:
            raise ValidationError({"parent": "A topic cannot be its own parent."})

    @property
    def exercise_list(self):
        """The exercises of with_exercise_listing(), in order: dicts of slug and title."""
        records = filter(None, (self.exercise_listing or "").split(RECORD))
        fields = [record.split(UNIT, 2) for record in records]
        exercises = [(int(order), title, slug) for order, slug, title in fields]
        return [{"slug": slug, "title": title} for _, title, slug in sorted(exercises)]

    @property
    def alias_list(self):
        return [alias.strip() for alias in self.aliases.split(",") if alias.strip()]

    @property
    def kind(self):
        """Where the topic sits in the glossary, for previews; needs for_preview()."""
        if self.parent and self.parent.is_published:
            return f"Part of {self.parent.name}"
        if self.child_count:
            return f"Group of {self.child_count} topics"
        return "Topic"


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


class Verification(models.TextChoices):
    UNVERIFIED = "unverified", "Not verified"
    PASSING = "passing", "Passing"
    FAILING = "failing", "Failing"


class SnippetQuerySet(DerivedFieldsQuerySet):
    def published(self):
        return self.filter(is_published=True, topic__is_published=True)

    def visible_to(self, user):
        return self if user.is_staff else self.published()

    def runnable(self):
        return self.exclude(runtime="")

    def lessons(self):
        """The Django ORM examples, in reading order."""
        return self.filter(runtime=Runtime.DJANGO).order_by("position", "title")


class SnippetManager(models.Manager.from_queryset(SnippetQuerySet)):
    def get_by_natural_key(self, slug):
        return self.get(slug=slug)


class Snippet(DerivedFieldsMixin, models.Model):
    topic = models.ForeignKey(Topic, on_delete=models.CASCADE, related_name="snippets")
    title = models.CharField(max_length=200, validators=[single_line_text])
    slug = models.SlugField(max_length=120, unique=True)
    description = models.TextField(
        blank=True, help_text="Markdown. Raw HTML is stripped.", validators=[multi_line_text]
    )
    description_html = models.TextField(editable=False, blank=True)
    code = models.TextField(validators=[multi_line_text])
    highlighted = models.TextField(editable=False, blank=True)
    search_vector = SearchVectorField(null=True, editable=False)
    language = models.CharField(max_length=16, choices=Language, default=Language.PYTHON)
    runtime = models.CharField(max_length=16, choices=Runtime, blank=True)
    display_only_reason = models.CharField(
        max_length=200,
        blank=True,
        help_text="Why a display-only snippet cannot run here (e.g. it needs a MongoDB server).",
        validators=[single_line_text],
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
    derived_from = ("code", "language", "description")

    def derive_fields(self):
        self.highlighted = highlight_code(self.code, self.language, f"Code: {self.title}")
        self.description_html = render_markdown(self.description)

    @property
    def is_runnable(self):
        return bool(self.runtime)


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
