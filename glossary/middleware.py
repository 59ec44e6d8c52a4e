import time

from django.db import OperationalError
from django.http import HttpResponse
from django.template import loader

from .outages import Outage, database_failure

database = Outage("The database")


class DatabaseUnavailableMiddleware:
    """Readers get the site's 503 page, not a 500, while the database cannot be reached.

    The pool's timeout (DATABASE_POOL_TIMEOUT) bounds how long a request waits to find
    out. Then, for RETRY_SECONDS, other requests get the 503 at once rather than queueing
    up behind that wait one after another.
    """

    RETRY_SECONDS = 2

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if database.down and time.monotonic() - database.failed_at < self.RETRY_SECONDS:
            return self.unavailable()
        response = self.get_response(request)
        if response.status_code < 500:
            database.succeeded()
        return response

    def process_exception(self, request, exception):
        if not isinstance(exception, OperationalError):
            return None
        self.failed(exception)
        return self.unavailable()

    @staticmethod
    def failed(exception):
        """Records exception as the database's failure: for RETRY_SECONDS from now,
        requests get the 503 page at once."""
        database.failed(lambda: database_failure(exception))

    def unavailable(self):
        # No request context: its processors (the signed-in user) need the database.
        response = HttpResponse(loader.get_template("503.html").render(), status=503)
        response["Retry-After"] = 30
        return response
