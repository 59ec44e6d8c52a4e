"""Derived fields (sanitised HTML, a link's domain, a topic's letter), kept in step with
their sources on every kind of write: save(), bulk writes and fixture loads."""

from django.conf import settings
from django.db import models
from django.db.models.signals import pre_save
from django.dispatch import receiver
from django.utils import timezone

from .. import termlinks


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


@receiver(pre_save)
def derive_fields_on_fixture_load(sender, instance, raw, **kwargs):
    """loaddata saves raw, skipping save(): derive the same fields and stamp new rows."""
    if raw and issubclass(sender, DerivedFieldsMixin):
        instance.derive_fields()
        instance.created = instance.created or timezone.now()
        instance.updated = instance.updated or instance.created
