import hashlib

from django.db import migrations, models


def digest_with_language(apps, schema_editor):
    """Shares are now looked up by runtime, language and code: as Share.digest_of() does."""
    Share = apps.get_model("glossary", "Share")
    for share in Share.objects.all():
        text = f"{share.runtime}\0{share.language}\0{share.code}"
        share.digest = hashlib.sha256(text.encode()).hexdigest()
        share.save(update_fields=["digest"])


class Migration(migrations.Migration):
    dependencies = [
        ("glossary", "0020_content_revision_terms"),
    ]

    operations = [
        migrations.AddField(
            model_name="share",
            name="language",
            field=models.CharField(
                choices=[
                    ("python", "Python"),
                    ("sql", "SQL"),
                    ("shell", "Shell"),
                    ("javascript", "JavaScript"),
                    ("text", "Plain text"),
                ],
                default="python",
                max_length=16,
            ),
        ),
        migrations.RunPython(digest_with_language, migrations.RunPython.noop),
    ]
