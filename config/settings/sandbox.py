"""Settings for snippets that the runner executes with the Django runtime.

The sandbox holds no secrets and serves nothing: its database is a throwaway copy of the
seed data, deleted after each run. That is why a fixed SECRET_KEY is acceptable here, and
only here.
"""

from .base import *  # noqa: F403

DEBUG = False
SECRET_KEY = "sandbox-throwaway-key-not-a-secret"

# Serving apps are never used by a snippet, and importing them (Twisted above all) would
# add a quarter of a second to every run.
INSTALLED_APPS = [
    app
    for app in INSTALLED_APPS  # noqa: F405
    if app not in {"daphne", "channels", "django_extensions", "whitenoise.runserver_nostatic"}
]

# The content revision (readers' page cache) and the Mention table serve the site's pages,
# which the sandbox never serves: an example's SQL panel shows the example's queries only.
TRACK_CONTENT_CHANGES = False
