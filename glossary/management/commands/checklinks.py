from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from glossary.linkcheck import check_links
from glossary.models import Link


class Command(BaseCommand):
    help = (
        "Visit every published link (or those given by id), store each check, and mark "
        "links broken after repeated failures over several days."
    )

    def add_arguments(self, parser):
        parser.add_argument("ids", nargs="*", type=int, help="Only these links (drafts too).")

    def handle(self, *args, ids, **options):
        if ids:
            links = list(Link.objects.filter(pk__in=ids))
            if missing := set(ids) - {link.pk for link in links}:
                raise CommandError(f"No link with id: {', '.join(map(str, sorted(missing)))}")
        else:
            links = list(Link.objects.published())
        checked = check_links(links, timezone.now())
        failing = redirected = archived = broken = 0
        for link, check in checked:
            failing += not check.ok
            redirected += bool(check.suggested_url)
            archived += check.archived
            broken += link.broken_since is not None
            if not check.ok:
                outcome = check.status or check.get_error_display()
                self.stdout.write(f"{self.style.ERROR('FAIL')} {link.url} ({outcome})")
            elif check.suggested_url:
                self.stdout.write(f"MOVED {link.url} -> {check.suggested_url}")
            if check.archived:
                self.stdout.write(f"ARCHIVED {link.url}")
        self.stdout.write(
            f"Checked {len(checked)} links: {len(checked) - failing} ok, {failing} failing, "
            f"{broken} broken, {redirected} moved permanently, {archived} archived."
        )
