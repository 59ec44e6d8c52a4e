"""Settings shared by every environment, read from the environment with safe defaults.

Development defaults: a SQLite file and the in-memory channel layer. Set DATABASE_URL
(postgres://…) and REDIS_URL (redis://…) to use PostgreSQL and Redis.
"""

import os
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured
from django.utils.csp import CSP

from .env import env_bool, env_int, env_list

BASE_DIR = Path(__file__).resolve().parent.parent.parent

DEBUG = env_bool("DEBUG", False)
SECRET_KEY = os.environ.get("SECRET_KEY", "")
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost"])

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.sitemaps",
    "django.contrib.postgres",
    "django_extensions",
    "channels",
    "glossary",
    "examples",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django.middleware.csp.ContentSecurityPolicyMiddleware",
]

ROOT_URLCONF = "config.urls"
ASGI_APPLICATION = "config.asgi.application"
WSGI_APPLICATION = None

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.csp",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASE_URL = os.environ.get("DATABASE_URL") or f"sqlite:///{BASE_DIR / 'db.sqlite3'}"
try:
    DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=0)}
except ValueError as error:
    raise ImproperlyConfigured(f"DATABASE_URL is not a database URL: {error}") from None
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    DATABASES["default"]["OPTIONS"] = {"pool": True}

REDIS_URL = os.environ.get("REDIS_URL", "")
if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {
                # redis-py 8 gives up on a read after 5 s, as long as channels_redis waits
                # for a message: idle sockets would fail (django/channels_redis#422; this
                # can go once a fixed channels_redis is out).
                "hosts": [{"address": REDIS_URL, "socket_timeout": 15}],
                # Several sites (or test runs) can share one Redis under different prefixes.
                "prefix": os.environ.get("CHANNELS_PREFIX") or "asgi",
                # All sockets of one Daphne process share one list of this many messages;
                # a run sends a batch every 50 ms at most, 16 KiB at most each.
                "capacity": 1000,
                # Under load a Daphne process may read its messages seconds late: a run's
                # output waits this long (the default) rather than being dropped.
                "expiry": 60,
            },
        }
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

# Cached pages are keyed on the content revision, so a per-process memory cache is
# never stale; Redis lets all processes share what one has rendered.
if REDIS_URL:
    CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}
    }

# "local": each Daphne process runs snippets itself. "workers": Daphne hands runs to
# `manage.py runworker snippet-runs` processes over Redis (glossary/workers.py).
RUNNER_MODE = os.environ.get("RUNNER_MODE") or "local"
if RUNNER_MODE not in ("local", "workers"):
    raise ImproperlyConfigured(f"RUNNER_MODE must be 'local' or 'workers', not {RUNNER_MODE!r}.")
if RUNNER_MODE == "workers" and not REDIS_URL:
    raise ImproperlyConfigured(
        "RUNNER_MODE=workers needs REDIS_URL: runs travel to the run workers over Redis, "
        "and the in-memory channel layer does not cross processes."
    )

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = os.environ.get("STATIC_ROOT") or None  # where collectstatic writes
STATICFILES_DIRS = [BASE_DIR / "static"]

ADMIN_URL = os.environ.get("ADMIN_URL", "admin/")
if not ADMIN_URL.endswith("/") or ADMIN_URL.startswith("/"):
    raise ImproperlyConfigured("ADMIN_URL must look like 'admin/': no leading slash, one trailing.")

SECURE_CSP = {
    "default-src": [CSP.SELF],
    "script-src": [CSP.SELF, CSP.NONCE],
    "style-src": [CSP.SELF],
    "img-src": [CSP.SELF, "data:"],
    "connect-src": [CSP.SELF],
    "frame-ancestors": [CSP.NONE],
    "form-action": [CSP.SELF],
    "base-uri": [CSP.NONE],
    "object-src": [CSP.NONE],
}

# Snippet runs: limits shown to readers next to the Run button.
SNIPPET_LIMITS = {
    "wall_seconds": env_int("SNIPPET_WALL_SECONDS", 10),
    "cpu_seconds": env_int("SNIPPET_CPU_SECONDS", 5),
    "memory_mb": env_int("SNIPPET_MEMORY_MB", 256),
    "processes": env_int("SNIPPET_PROCESSES", 32),
    "file_size_kb": env_int("SNIPPET_FILE_SIZE_KB", 1024),
    "open_files": env_int("SNIPPET_OPEN_FILES", 64),
    "output_kb": env_int("SNIPPET_OUTPUT_KB", 64),
}
SNIPPET_RUN_SLOTS = env_int("SNIPPET_RUN_SLOTS", 2 * (os.cpu_count() or 1))
SNIPPET_QUEUE_SIZE = env_int("SNIPPET_QUEUE_SIZE", 50)
SNIPPET_RUNS_PER_MINUTE = env_int("SNIPPET_RUNS_PER_MINUTE", 30)
# Sandboxed processes kept started, per runtime, so a run only hands its code over.
SNIPPET_WARM_POOL = env_int("SNIPPET_WARM_POOL", 2)
# Without a sandbox (macOS, no user namespaces) runs are refused unless this is on
# and DEBUG is on too.
SNIPPET_ALLOW_UNSAFE_LOCAL = env_bool("SNIPPET_ALLOW_UNSAFE_LOCAL", False)
# postgresql runtime: an admin URL that creates and drops a database and role per run.
SNIPPET_POSTGRES_URL = os.environ.get("SNIPPET_POSTGRES_URL", "")
# Templates built once for runs (databases, server data directories); private (0700).
SNIPPET_CACHE_DIR = Path(os.environ.get("SNIPPET_CACHE_DIR") or BASE_DIR / ".cache")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": "INFO"},
    "loggers": {"django.db.backends": {"level": "INFO"}},
}
