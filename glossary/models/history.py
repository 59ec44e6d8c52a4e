"""The edit history of topics, links and snippets, as curators see it in the admin."""

from django.db.models.signals import post_save, pre_save
from django.dispatch import receiver
from simple_history import register

from .links import Link
from .snippets import Snippet
from .topics import Topic

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
