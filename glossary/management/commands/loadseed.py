from django.core.management import call_command
from django.core.management.base import BaseCommand

from glossary.models import Topic


class Command(BaseCommand):
    help = "Load the seed glossary, unless the database already has topics (use --force)."

    def add_arguments(self, parser):
        parser.add_argument(
            "--force", action="store_true", help="Load even if topics exist (updates them)."
        )

    def handle(self, *args, force=False, **options):
        if Topic.objects.exists() and not force:
            self.stdout.write("The glossary already has content; seed not loaded.")
            return
        call_command("loaddata", "glossary", verbosity=options["verbosity"])
        call_command("rebuildmentions", verbosity=options["verbosity"])
