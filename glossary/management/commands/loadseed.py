import warnings

from django.core.management import call_command
from django.core.management.base import BaseCommand
from django.db import transaction

from glossary.models import Snippet, Topic

# The seed: topics, links and snippets, then the ORM examples (examples/).
SEED_FIXTURES = ("glossary", "examples")
# Loaded after the seed, whose topics they name. Left out of the Django runtime's
# database: a reader's code there could read the hidden data sets.
EXERCISE_FIXTURES = ("exercises", "paths")
# What a verification result depends on, and the fields that hold it.
VERIFIED_INPUTS = ("code", "runtime")
VERIFICATION_FIELDS = (
    "verification",
    "verified_output",
    "verified_at",
    "verified_wall_ms",
    "verified_versions",
)


class Command(BaseCommand):
    help = "Load the seed glossary, unless the database already has topics (use --force)."

    def add_arguments(self, parser):
        parser.add_argument(
            "--force",
            action="store_true",
            help="Load even if topics exist (updates them; unchanged snippets stay verified).",
        )
        parser.add_argument(
            "--without-exercises",
            action="store_true",
            help="Leave out the exercises (and what names them).",
        )

    def handle(self, *args, force=False, without_exercises=False, **options):
        if Topic.objects.exists() and not force:
            self.stdout.write("The glossary already has content; seed not loaded.")
            return
        with transaction.atomic():
            # The fixture carries no verification, so loading it would reset every snippet.
            before = {snippet.slug: snippet for snippet in Snippet.objects.all()}
            fixtures = SEED_FIXTURES if without_exercises else SEED_FIXTURES + EXERCISE_FIXTURES
            with warnings.catch_warnings():
                # A fixture without exercises yet is valid, not a broken file.
                warnings.filterwarnings("ignore", "No fixture data found", RuntimeWarning)
                call_command("loaddata", *fixtures, verbosity=options["verbosity"])
            call_command("rebuildmentions", verbosity=options["verbosity"])
            kept = [
                snippet
                for snippet in Snippet.objects.filter(slug__in=before)
                if inputs(snippet) == inputs(before[snippet.slug])
            ]
            for snippet in kept:
                for field in VERIFICATION_FIELDS:
                    setattr(snippet, field, getattr(before[snippet.slug], field))
            Snippet.objects.bulk_update(kept, VERIFICATION_FIELDS)


def inputs(snippet):
    return [getattr(snippet, field) for field in VERIFIED_INPUTS]
