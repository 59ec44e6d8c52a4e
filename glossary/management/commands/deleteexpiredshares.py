from django.conf import settings
from django.core.management.base import BaseCommand

from glossary.models import Share


class Command(BaseCommand):
    help = "Delete shared code nobody has opened for SNIPPET_SHARE_EXPIRY_DAYS days."

    def handle(self, *args, **options):
        count, _ = Share.objects.expired().delete()
        self.stdout.write(
            f"Deleted {count} share(s) unopened for {settings.SNIPPET_SHARE_EXPIRY_DAYS} days."
        )
