"""Snippets: code shown on a topic's page, run live or display-only."""

from django.contrib.postgres.search import SearchVectorField
from django.db import models
from django.db.models import Q
from django.urls import reverse

from ..rendering import highlight_code, render_markdown
from .choices import Language, Runtime
from .derived import DerivedFieldsMixin, DerivedFieldsQuerySet
from .topics import Topic
from .validators import multi_line_text, single_line_text


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
