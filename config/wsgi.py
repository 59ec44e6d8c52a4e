"""HTTP for the production stack (granian behind nginx); WebSockets go to config/asgi.py."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.production")

django_wsgi_app = get_wsgi_application()

from glossary.proxies import client_address  # noqa: E402


def application(environ, start_response):
    """Django, seeing the client's address as REMOTE_ADDR when a trusted proxy passed it on."""
    peer = environ.get("REMOTE_ADDR", "")
    address = client_address(peer, environ.get("HTTP_X_FORWARDED_FOR", ""))
    if address != peer:
        environ["REMOTE_ADDR"] = address
    return django_wsgi_app(environ, start_response)
