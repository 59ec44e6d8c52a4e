import ast
import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

import examples

FIXTURE = examples.DIRECTORY / "fixtures" / "examples.json"
STAMP = "2025-01-01T00:00:00Z"
FIRST_POSITION = 10  # after the hand-written snippets of a topic


def example_snippets():
    """One fixture entry per example: {slug: (example name, entry)}."""
    snippets = {}
    for position, name in enumerate(examples.names(), start=FIRST_POSITION):
        docstring = ast.get_docstring(ast.parse(examples.path(name).read_text(encoding="utf-8")))
        if not docstring:
            raise CommandError(f"examples/{name}.py has no module docstring to title it.")
        title, _, description = docstring.partition("\n")
        slug = "orm-" + name.replace("_", "-")
        snippets[slug] = (
            name,
            {
                "model": "glossary.snippet",
                "fields": {
                    "topic": [examples.TOPICS.get(name, examples.DEFAULT_TOPIC)],
                    "title": title.strip(),
                    "slug": slug,
                    "description": description.strip(),
                    "code": examples.code(name),
                    "language": "python",
                    "runtime": "django",
                    "display_only_reason": "",
                    "position": position,
                    "is_published": True,
                    "created": STAMP,
                    "updated": STAMP,
                },
            },
        )
    return snippets


class Command(BaseCommand):
    help = (
        "Write the ORM examples (examples.LESSONS) into examples/fixtures/examples.json as "
        "Django-runtime snippets, which `loadseed` then loads with the seed."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--check",
            action="store_true",
            help="Write nothing; fail naming every example whose fixture copy differs.",
        )
        parser.add_argument("--fixture", type=Path, default=FIXTURE, help="The fixture file.")

    def handle(self, *args, check, fixture, **options):
        snippets = example_snippets()
        if check:
            stale = self.stale(snippets, fixture)
            if stale:
                raise CommandError(
                    f"The fixture copy differs from the file for: {', '.join(stale)}. "
                    "Run `manage.py syncexamples` and commit the fixture."
                )
            self.stdout.write(f"{len(snippets)} examples match {fixture.name}.")
            return
        entries = [entry for _, entry in snippets.values()]
        fixture.parent.mkdir(exist_ok=True)
        text = json.dumps(entries, indent=2, ensure_ascii=False) + "\n"
        fixture.write_text(text, encoding="utf-8")
        self.stdout.write(f"Wrote {len(entries)} examples to {fixture}.")

    def stale(self, snippets, fixture):
        """Example names (or slugs no longer backed by a file) that differ from the fixture."""
        try:
            entries = json.loads(fixture.read_text(encoding="utf-8"))
        except FileNotFoundError:
            entries = []
        copies = {entry["fields"]["slug"]: entry for entry in entries}
        stale = [name for slug, (name, entry) in snippets.items() if copies.get(slug) != entry]
        return stale + sorted(set(copies) - set(snippets))
