from django.core.management.base import BaseCommand

from glossary.termlinks import rebuild_mentions


class Command(BaseCommand):
    help = (
        "Recompute which topics each topic, snippet and link mentions (the Mentioned in "
        "lists), e.g. after loaddata, which skips the updates saving makes."
    )

    def handle(self, *args, **options):
        count = rebuild_mentions()
        if options["verbosity"]:
            self.stdout.write(f"Recorded {count} mention(s).")
