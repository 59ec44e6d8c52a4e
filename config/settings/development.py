"""Local development: DEBUG on unless said otherwise, a generated secret kept on disk."""

from django.core.management.utils import get_random_secret_key

from .base import *  # noqa: F403
from .base import BASE_DIR, env_bool

DEBUG = env_bool("DEBUG", True)
# Serve static files straight from static/ without collectstatic.
WHITENOISE_USE_FINDERS = True

if not SECRET_KEY:  # noqa: F405
    # Each checkout gets its own key, created once and never committed.
    key_file = BASE_DIR / ".secret_key"
    if not key_file.exists():
        key_file.write_text(get_random_secret_key())
    SECRET_KEY = key_file.read_text().strip()
