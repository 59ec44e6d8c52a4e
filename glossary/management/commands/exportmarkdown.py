from pathlib import Path

from django.core.management.base import BaseCommand

from glossary.markdown_io import export


class Command(BaseCommand):
    help = "Write the published topics and links as awesome-list style Markdown."

    def add_arguments(self, parser):
        parser.add_argument("--output", "-o", type=Path, help="A file (default: stdout).")

    def handle(self, *args, output, **options):
        text = export()
        if output:
            output.write_text(text, encoding="utf-8")
        else:
            self.stdout.write(text, ending="")
