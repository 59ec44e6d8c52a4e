from django.db import migrations, models


def store_terms(apps, schema_editor):
    """Store today's names with the revision, as ContentRevision.bump() does from now on."""
    Topic = apps.get_model("glossary", "Topic")
    ContentRevision = apps.get_model("glossary", "ContentRevision")
    if Topic.objects.exists():
        fields = ("pk", "slug", "name", "aliases", "is_published")
        terms = [list(row) for row in Topic.objects.order_by("pk").values_list(*fields)]
        ContentRevision.objects.update_or_create(pk=1, defaults={"terms": terms})


class Migration(migrations.Migration):
    dependencies = [
        ("glossary", "0019_paths"),
    ]

    operations = [
        migrations.AddField(
            model_name="contentrevision",
            name="terms",
            field=models.JSONField(default=list, editable=False),
        ),
        migrations.RunPython(store_terms, migrations.RunPython.noop),
    ]
