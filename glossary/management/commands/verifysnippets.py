import asyncio
import platform
import sqlite3

import django
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from glossary import runner
from glossary.models import Snippet, Verification


async def collect(snippet):
    """Run a snippet to the end; return its exit event and everything it printed."""
    output, exit_event = [], {"reason": "error", "wall_ms": None}
    async for event in runner.run(snippet.code, snippet.runtime, language=snippet.language):
        if event["type"] in ("stdout", "stderr"):
            output.append(event["text"])
        elif event["type"] == "error":
            output.append(event["message"] + "\n")
        elif event["type"] == "exit":
            exit_event = event
    return exit_event, "".join(output)


class Command(BaseCommand):
    help = "Run every published runnable snippet (or those named) and record the result."

    def add_arguments(self, parser):
        parser.add_argument("slugs", nargs="*", help="Only these snippets (drafts included).")
        parser.add_argument(
            "--unverified", action="store_true", help="Only snippets never verified yet."
        )

    def handle(self, *args, slugs, unverified, **options):
        if slugs:
            snippets = Snippet.objects.runnable().filter(slug__in=slugs)
            if missing := set(slugs) - {s.slug for s in snippets}:
                raise CommandError(f"No runnable snippet called: {', '.join(sorted(missing))}")
        else:
            snippets = Snippet.objects.published().runnable()
        if unverified:
            snippets = snippets.filter(verification=Verification.UNVERIFIED)
        versions = (
            f"Python {platform.python_version()}, Django {django.get_version()}, "
            f"SQLite {sqlite3.sqlite_version}"
        )
        failing, skipped = [], 0
        for snippet in snippets:
            if reason := runner.unavailable(snippet.runtime):
                # Not a failure of the snippet: this machine lacks its server software.
                self.stdout.write(f"{self.style.WARNING('skip')} {snippet.slug} ({reason})")
                skipped += 1
                continue
            exit_event, output = asyncio.run(collect(snippet))
            passed = exit_event["reason"] == "ok"
            snippet.verification = Verification.PASSING if passed else Verification.FAILING
            snippet.verified_output = output
            snippet.verified_at = timezone.now()
            snippet.verified_wall_ms = exit_event["wall_ms"]
            snippet.verified_versions = versions
            snippet.save(
                update_fields=[
                    "verification",
                    "verified_output",
                    "verified_at",
                    "verified_wall_ms",
                    "verified_versions",
                ]
            )
            mark = self.style.SUCCESS("pass") if passed else self.style.ERROR("FAIL")
            self.stdout.write(f"{mark} {snippet.slug} ({exit_event['reason']})")
            if not passed:
                failing.append(snippet.slug)
        if failing:
            raise CommandError(f"{len(failing)} snippet(s) failing: {', '.join(failing)}")
        if skipped:
            ran = len(snippets) - skipped
            self.stdout.write(f"All {ran} runnable snippets pass; {skipped} skipped.")
        else:
            self.stdout.write(f"All {len(snippets)} runnable snippets pass.")
