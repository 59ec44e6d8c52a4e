"""Learning paths: an ordered list of steps, each a topic, a snippet or an exercise."""

from django.db import models
from django.db.models import Prefetch, Q
from django.db.models.signals import pre_save
from django.dispatch import receiver
from django.urls import reverse

from ..rendering import render_markdown


class PathQuerySet(models.QuerySet):
    def published(self):
        return self.filter(is_published=True)

    def visible_to(self, user):
        """Readers see published paths; staff see drafts too."""
        return self if user.is_staff else self.published()

    def with_steps(self, user):
        """With the steps the user may see and what each shows (two queries)."""
        steps = PathStep.objects.visible_to(user).select_related(
            "topic", "snippet__topic", "exercise"
        )
        return self.prefetch_related(Prefetch("steps", queryset=steps))


class PathManager(models.Manager.from_queryset(PathQuerySet)):
    def get_by_natural_key(self, slug):
        return self.get(slug=slug)


class Path(models.Model):
    slug = models.SlugField(max_length=120, unique=True)
    title = models.CharField(max_length=200)
    summary = models.TextField(blank=True, help_text="Markdown. Raw HTML is stripped.")
    summary_html = models.TextField(editable=False, blank=True)
    order = models.PositiveIntegerField(default=0)
    is_published = models.BooleanField("published", default=True)

    objects = PathManager()

    class Meta:
        ordering = ["order", "title"]
        constraints = [
            models.CheckConstraint(condition=~Q(slug=""), name="path_slug_not_empty"),
            models.CheckConstraint(condition=~Q(title=""), name="path_title_not_empty"),
        ]

    def __str__(self):
        return self.title

    def save(self, **kwargs):
        self.derive_fields()
        if (update_fields := kwargs.get("update_fields")) is not None:
            kwargs["update_fields"] = {*update_fields, "summary_html"}
        super().save(**kwargs)

    def get_absolute_url(self):
        return reverse("glossary:path-detail", args=[self.slug])

    def natural_key(self):
        return (self.slug,)

    def derive_fields(self):
        self.summary_html = render_markdown(self.summary)


class StepKind(models.TextChoices):
    TOPIC = "topic", "Topic"
    SNIPPET = "snippet", "Snippet"
    EXERCISE = "exercise", "Exercise"


class PathStepQuerySet(models.QuerySet):
    def visible_to(self, user):
        """Steps whose topic, snippet or exercise the user may see: a step whose content
        is a draft is left out for readers, and the others close up behind it."""
        if user.is_staff:
            return self
        return self.filter(
            Q(topic__is_published=True)
            | Q(snippet__is_published=True, snippet__topic__is_published=True)
            | Q(exercise__is_published=True, exercise__topic__is_published=True)
        )


class PathStepManager(models.Manager.from_queryset(PathStepQuerySet)):
    def get_by_natural_key(self, path_slug, order):
        return self.get(path__slug=path_slug, order=order)


class PathStep(models.Model):
    path = models.ForeignKey(Path, on_delete=models.CASCADE, related_name="steps")
    order = models.PositiveIntegerField(default=0)
    topic = models.ForeignKey(
        "glossary.Topic", null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    snippet = models.ForeignKey(
        "glossary.Snippet", null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    exercise = models.ForeignKey(
        "glossary.Exercise", null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    note = models.CharField(
        max_length=200, blank=True, help_text="Why this step, in a line (shown on the path)."
    )

    objects = PathStepManager()

    class Meta:
        ordering = ["path", "order", "pk"]
        constraints = [
            models.CheckConstraint(
                condition=(
                    Q(topic__isnull=False, snippet=None, exercise=None)
                    | Q(topic=None, snippet__isnull=False, exercise=None)
                    | Q(topic=None, snippet=None, exercise__isnull=False)
                ),
                name="path_step_shows_one_thing",
                violation_error_message="A step shows exactly one topic, snippet or exercise.",
            ),
            models.UniqueConstraint(
                fields=["path", "order"], name="path_step_unique_order_per_path"
            ),
        ]

    def __str__(self):
        return f"{self.get_kind_display()}: {self.item}"

    def natural_key(self):
        return (*self.path.natural_key(), self.order)

    natural_key.dependencies = ["glossary.path", "glossary.topic", "glossary.exercise"]

    @property
    def item(self):
        """The topic, snippet or exercise the step shows."""
        return self.topic or self.snippet or self.exercise

    @property
    def title(self):
        return self.topic.name if self.topic_id else self.item.title

    @property
    def kind(self):
        if self.topic_id:
            return StepKind.TOPIC
        return StepKind.SNIPPET if self.snippet_id else StepKind.EXERCISE

    def get_kind_display(self):
        return StepKind(self.kind).label

    @property
    def progress_key(self):
        """How the reader's browser names the step's content in its progress."""
        return f"{self.kind}:{self.item.slug}"


@receiver(pre_save, sender=Path)
def derive_fields_on_fixture_load(sender, instance, raw, **kwargs):
    """loaddata saves raw, skipping save(): derive the HTML all the same."""
    if raw:
        instance.derive_fields()
