"""Telling operators, once and in one line, that a service the site needs is down."""

import logging
import time

import psycopg
from django.db import connections

logger = logging.getLogger(__name__)


def database_failure(error):
    """One line naming the database, where it is expected, and why it cannot be used.

    The connection pool only says it timed out, so for PostgreSQL one direct connection
    attempt finds the reason (refused, no such database, bad password...).
    """
    connection = connections["default"]
    settings = connection.settings_dict
    if connection.vendor == "postgresql":
        try:
            psycopg.connect(**connection.get_connection_params()).close()
        except psycopg.Error as direct:
            error = direct
    reason = (str(error).strip().splitlines() or [type(error).__name__])[0]
    # libpq repeats the address before the cause: "connection to server at ... failed: X".
    reason = reason.rsplit(" failed: ", 1)[-1].removeprefix("FATAL:").strip()
    if connection.vendor == "sqlite":
        return f"Cannot use the SQLite database {settings['NAME']}: {reason}"
    where = f"{settings['HOST'] or 'localhost'}:{settings['PORT'] or 5432}"
    return f"Cannot use the database {settings['NAME']!r} on {where}: {reason}"


class Outage:
    """Logs a warning when a service stops answering and again when it is back.

    Readers keep being served meanwhile, so one line per outage is enough, not one per
    request.
    """

    def __init__(self, service):
        self.service = service
        self.down = False
        self.failed_at = 0.0

    def failed(self, describe):
        """Record a failure; describe() gives the reason, asked once per outage."""
        self.failed_at = time.monotonic()
        if not self.down:
            self.down = True
            logger.warning("%s is unavailable: %s", self.service, describe())

    def succeeded(self):
        if self.down:
            self.down = False
            logger.warning("%s is available again.", self.service)
