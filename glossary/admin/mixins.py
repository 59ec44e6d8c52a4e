"""What every curator's page shares: publish actions, drafts by default, Markdown
previews and a code editor."""

from django.contrib import admin, messages
from django.contrib.admin.models import CHANGE, LogEntry
from django.db import models
from django.utils import timezone
from simple_history.utils import bulk_update_with_history

from ..forms import CodeTextarea, MarkdownTextarea
from ..models import ContentRevision


def counted(number, model):
    """ "1 link", "3 links"."""
    names = model._meta.verbose_name if number == 1 else model._meta.verbose_name_plural
    return f"{number} {names}"


class PublishActionsMixin:
    actions = ["publish", "unpublish"]

    @admin.action(description="Publish selected items")
    def publish(self, request, queryset):
        self.set_published(request, queryset, True)

    @admin.action(description="Unpublish selected items")
    def unpublish(self, request, queryset):
        self.set_published(request, queryset, False)

    def set_published(self, request, queryset, published):
        """Change only what needs it, log each change, and say what happened."""
        verb = "Published" if published else "Unpublished"
        reason = f"{verb} with a bulk action."
        changing = list(queryset.exclude(is_published=published))
        unchanged = queryset.count() - len(changing)
        now = timezone.now()
        for obj in changing:
            obj.is_published, obj.updated = published, now
        bulk_update_with_history(
            changing,
            self.model,
            ["is_published", "updated"],
            default_user=request.user,
            default_change_reason=reason,
        )
        ContentRevision.bump()  # bulk updates send no signals
        if changing:
            LogEntry.objects.log_actions(request.user.pk, changing, CHANGE, reason)
        message = f"{verb} {counted(len(changing), self.model)}"
        if unchanged:
            was = "was" if unchanged == 1 else "were"
            message += f"; {unchanged} {was} already {verb.lower()}"
        self.message_user(request, f"{message}.", messages.SUCCESS)


MARKDOWN_FIELDS = ("summary", "description", "prompt", "explanation", "text")
CODE_FIELDS = ("setup", "starter_code", "solution", "code")


class CuratorFormsMixin:
    """New objects made in the admin start unpublished (the model default stays True);
    Markdown fields get a preview and code a monospace editor."""

    class Media:
        css = {"all": ["css/admin.css"]}
        js = ["js/markdown_preview.js"]

    def formfield_for_dbfield(self, db_field, request, **kwargs):
        field = super().formfield_for_dbfield(db_field, request, **kwargs)
        if db_field.name == "is_published":
            field.initial = False
        elif db_field.name in MARKDOWN_FIELDS and "Markdown" in db_field.help_text:
            field.widget = MarkdownTextarea()
        elif db_field.name in CODE_FIELDS and isinstance(db_field, models.TextField):
            field.widget = CodeTextarea({"rows": 10})
        return field
