from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from glossary.markdown_io import MarkdownError, apply, parse, plan


class Command(BaseCommand):
    help = (
        "Add topics and links from an awesome-list style Markdown file (headings are topics, "
        "'- [title](url) - description' items are links). New ones arrive as drafts; nothing "
        "is deleted. A file with any problem imports nothing."
    )

    def add_arguments(self, parser):
        parser.add_argument("file", type=Path)
        parser.add_argument(
            "--dry-run", action="store_true", help="Print what would change; write nothing."
        )

    def handle(self, *args, file, dry_run, **options):
        try:
            text = file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as error:
            raise CommandError(f"Cannot read {file}: {error}") from None
        try:
            topics = parse(text)
        except MarkdownError as error:
            for problem in error.problems:
                self.stderr.write(f"{file}: {problem}")
            count = len(error.problems)
            raise CommandError(f"{count} problem(s) in {file}; nothing imported.") from None
        changes = plan(topics)
        visible = [change.text for change in changes if change.text]
        for text in visible:
            self.stdout.write(text)
        if dry_run:
            self.stdout.write(f"{len(visible)} change(s) would be made (dry run: nothing written).")
            return
        apply(changes)
        self.stdout.write(f"{len(visible)} change(s) made.")
