import os
from urllib.parse import urlsplit

import psycopg
from django.core.management.base import BaseCommand, CommandError
from psycopg import sql

from examples import orm

PREFIX = "examples_template_"


class Command(BaseCommand):
    help = (
        "Drop the template databases that the ORM examples built on the DATABASE_URL "
        "PostgreSQL server for older migrations or fixtures (with --all, every one)."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--all", action="store_true", help="Drop the current template too (rebuilt on use)."
        )

    def handle(self, *args, all=False, **options):
        url = os.environ.get("DATABASE_URL", "")
        if urlsplit(url).scheme not in orm.POSTGRES_SCHEMES:
            raise CommandError("Set DATABASE_URL to the PostgreSQL server the examples use.")
        current = PREFIX + orm.template_digest()
        with psycopg.connect(orm.maintenance_url(url), autocommit=True) as admin:
            names = admin.execute(
                "SELECT datname FROM pg_database WHERE starts_with(datname, %s) ORDER BY 1",
                [PREFIX],
            ).fetchall()
            stale = [name for (name,) in names if all or name != current]
            for name in stale:
                # A template left half-built by a killed process holds no sessions worth
                # keeping either.
                admin.execute(
                    sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
                )
                self.stdout.write(f"Dropped {name}")
        if not stale:
            self.stdout.write("No stale example templates.")
