import asyncio
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from glossary import runner
from glossary.models import Snippet


class Command(BaseCommand):
    help = (
        "Run a snippet (by slug, drafts included) or a code file in the sandbox and print "
        "each event as a JSON line. Exits 0 only when the run ends ok."
    )

    def add_arguments(self, parser):
        parser.add_argument("slug", nargs="?", help="A snippet's slug.")
        parser.add_argument("--code-file", type=Path, help="Run this file instead.")
        parser.add_argument(
            "--runtime",
            help=f"Runtime for --code-file: {', '.join(runner.RUNTIMES)} (default python).",
        )
        parser.add_argument(
            "--language",
            choices=runner.LANGUAGES,
            help="Language of --code-file (default: sql for a .sql file, else python).",
        )

    def handle(self, *args, slug, code_file, runtime, language, **options):
        code, runtime, language = self.code_runtime_language(slug, code_file, runtime, language)
        try:
            reason = asyncio.run(self.stream(code, runtime, language))
        except KeyboardInterrupt:
            # asyncio.run() cancelled the run, which killed its processes.
            raise CommandError("Cancelled.") from None
        if reason != "ok":
            raise CommandError(f"The run ended with reason {reason!r}.")

    def code_runtime_language(self, slug, code_file, runtime, language):
        if (slug is None) == (code_file is None):
            raise CommandError("Give either a snippet slug or --code-file, not both or neither.")
        if code_file is None:
            if runtime is not None or language is not None:
                raise CommandError(
                    "--runtime and --language go with --code-file; a snippet has its own."
                )
            snippet = Snippet.objects.filter(slug=slug).first()
            if snippet is None:
                raise CommandError(f"There is no snippet called {slug!r}.")
            if not snippet.is_runnable:
                raise CommandError(
                    f"Snippet {slug!r} is display-only: {snippet.display_only_reason}"
                )
            return snippet.code, snippet.runtime, snippet.language
        runtime = runtime or "python"
        language = language or ("sql" if code_file.suffix.lower() == ".sql" else "python")
        if runtime not in runner.RUNTIMES:
            raise CommandError(f"Unknown runtime {runtime!r}; use {', '.join(runner.RUNTIMES)}.")
        try:
            return code_file.read_text(encoding="utf-8"), runtime, language
        except (OSError, UnicodeDecodeError) as error:
            raise CommandError(f"Cannot read {code_file}: {error}") from None

    async def stream(self, code, runtime, language):
        """Print events as they arrive; return the exit reason (None if nothing ran)."""
        reason = None
        async for event in runner.run(code, runtime, language=language):
            self.stdout.write(runner.encode(event))
            self.stdout.flush()
            if event["type"] == "exit":
                reason = event["reason"]
        return reason
