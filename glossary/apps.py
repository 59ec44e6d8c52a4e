import sys

from django.apps import AppConfig


class GlossaryConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "glossary"

    def ready(self):
        # Only when serving with Daphne: other processes (snippet runs above all) would pay
        # for importing Twisted.
        if "twisted.web.http" in sys.modules:
            from . import http_limits

            http_limits.install()
