"""Topics: the glossary's entries, A to Z."""

from django.contrib.postgres.search import SearchVectorField
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import (
    Count,
    ExpressionWrapper,
    OuterRef,
    Prefetch,
    Q,
    StringAgg,
    Subquery,
    Value,
)
from django.db.models.functions import Cast, Concat, Lower
from django.urls import reverse
from django.utils.text import slugify

from ..rendering import render_markdown
from .derived import DerivedFieldsMixin, DerivedFieldsQuerySet
from .exercises import Exercise
from .validators import multi_line_text, single_line_text

# Separators of fields and records in text aggregated by the database (Topic.exercise_list).
UNIT, RECORD = "\x1f", "\x1e"


def letter_for(name):
    """The A–Z bucket of a name: its first letter, or "#" for anything else."""
    first = slugify(name)[:1].upper()
    return first if "A" <= first <= "Z" else "#"


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
        from . import Link, Mention, Snippet  # their modules import Topic

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
        from . import Link, Snippet  # their modules import Topic

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
