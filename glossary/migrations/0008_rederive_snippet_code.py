from django.db import migrations


def rederive_highlighted_code(apps, schema_editor):
    """Numbered, keyboard-scrollable code: the stored HTML of every snippet is rendered
    again (the current renderer: this is what saving each snippet would do)."""
    from glossary.rendering import highlight_code

    Snippet = apps.get_model("glossary", "Snippet")
    for snippet in Snippet.objects.only("code", "language", "title"):
        snippet.highlighted = highlight_code(
            snippet.code, snippet.language, f"Code: {snippet.title}"
        )
        snippet.save(update_fields=["highlighted"])


class Migration(migrations.Migration):
    dependencies = [("glossary", "0007_mention")]

    operations = [migrations.RunPython(rederive_highlighted_code, migrations.RunPython.noop)]
