"""Settings shared by every environment, read from the environment with safe defaults.

Development defaults: a SQLite file and the in-memory channel layer. Set DATABASE_URL
(postgres://…) and REDIS_URL (redis://…) to use PostgreSQL and Redis.
"""

import os
from datetime import timedelta
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured
from django.utils.csp import CSP

from .env import env_bool, env_int, env_list, env_networks

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
    # Before channels: glossary's runworker (a worker that balances runs) replaces its own.
    "glossary",
    "channels",
    "examples",
    "axes",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # Readers without a session get cached pages here, before the rest of the stack.
    "glossary.caching.ReaderPagesMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django.middleware.csp.ContentSecurityPolicyMiddleware",
    "glossary.middleware.DatabaseUnavailableMiddleware",
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "config.urls"
ASGI_APPLICATION = "config.asgi.application"
WSGI_APPLICATION = "config.wsgi.application"

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
    DATABASES["default"]["OPTIONS"] = {
        # When the database is down, a reader waits this long for a 503 page and a
        # command this long for its error, instead of the pool's default 30 s.
        "pool": {"timeout": env_int("DATABASE_POOL_TIMEOUT", 3, minimum=1)},
        # 0 would mean no timeout at all.
        "connect_timeout": env_int("DATABASE_CONNECT_TIMEOUT", 3, minimum=1),
    }

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
# never stale; Redis lets all processes share what one has rendered. Both are bounded:
# memory by an entry count, Redis by each page's timeout (glossary/caching.py).
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            # Several sites (or test runs) can share one Redis, like CHANNELS_PREFIX.
            "KEY_PREFIX": os.environ.get("CACHE_KEY_PREFIX", ""),
            # Pages render without the cache when Redis is down; a hung Redis must not
            # hang them either.
            "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1},
        }
    }
else:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
            "OPTIONS": {"MAX_ENTRIES": 500},
        }
    }

# "local": each Daphne process runs snippets itself. "workers": Daphne hands runs to
# `manage.py runworker snippet-runs` processes over Redis (glossary/workers/).
RUNNER_MODE = os.environ.get("RUNNER_MODE") or "local"
if RUNNER_MODE not in ("local", "workers"):
    raise ImproperlyConfigured(f"RUNNER_MODE must be 'local' or 'workers', not {RUNNER_MODE!r}.")
if RUNNER_MODE == "workers" and not REDIS_URL:
    raise ImproperlyConfigured(
        "RUNNER_MODE=workers needs REDIS_URL: runs travel to the run workers over Redis, "
        "and the in-memory channel layer does not cross processes."
    )
# Who runs a snippet: a class whose run(code, runtime, client, language, limits) gives
# the run's events (an async generator).
SNIPPET_RUN_BACKEND = {
    "local": "glossary.runner.LocalRuns",
    "workers": "glossary.workers.client.WorkerRuns",
}[RUNNER_MODE]

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# The admin login is throttled (django-axes): after AXES_FAILURE_LIMIT wrong passwords from
# one address, or for one username, that address or username is locked out for
# AXES_COOLOFF_TIME, even with the right password. The address is REMOTE_ADDR: the peer,
# or with Daphne's --proxy-headers what the proxy forwarded (django-ipware, which would
# read headers itself, is not installed).
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = env_int("ADMIN_LOGIN_FAILURE_LIMIT", 5, minimum=1)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("ADMIN_LOGIN_LOCKOUT_MINUTES", 15, minimum=1))
AXES_LOCKOUT_PARAMETERS = ["ip_address", "username"]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "locked_out.html"
# Logs name the address; a username may be a password typed in the wrong box.
AXES_SENSITIVE_PARAMETERS = ["username"]

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
    # The nonce lets the code editor (CodeMirror) add its own style elements.
    "style-src": [CSP.SELF, CSP.NONCE],
    "img-src": [CSP.SELF, "data:"],
    "connect-src": [CSP.SELF],
    "frame-ancestors": [CSP.NONE],
    "form-action": [CSP.SELF],
    "base-uri": [CSP.NONE],
    "object-src": [CSP.NONE],
}

# Every write to a topic, link or snippet bumps the content revision (readers' page cache)
# and keeps the Mention table current; config/settings/sandbox.py turns it off.
TRACK_CONTENT_CHANGES = True

# Snippet runs: limits shown to readers next to the Run button.
SNIPPET_LIMITS = {
    "wall_seconds": env_int("SNIPPET_WALL_SECONDS", 10, minimum=1),
    "cpu_seconds": env_int("SNIPPET_CPU_SECONDS", 5, minimum=1),
    "memory_mb": env_int("SNIPPET_MEMORY_MB", 256, minimum=1),
    "processes": env_int("SNIPPET_PROCESSES", 32, minimum=1),
    "file_size_kb": env_int("SNIPPET_FILE_SIZE_KB", 1024, minimum=1),
    "open_files": env_int("SNIPPET_OPEN_FILES", 64, minimum=1),
    "output_kb": env_int("SNIPPET_OUTPUT_KB", 64, minimum=1),
}
# What a run of a runtime with a server of its own gets instead: the server's processes
# share the run's process count, and each of them has the memory limit.
SERVER_LIMITS = {"memory_mb": 512, "processes": 64, "open_files": 256}
SNIPPET_RUNTIME_LIMITS = {
    "postgresql": {**SERVER_LIMITS, "file_size_kb": 16384},
    "redis": SERVER_LIMITS,
    "mysql": {**SERVER_LIMITS, "file_size_kb": 65536},
}
SNIPPET_RUN_SLOTS = env_int("SNIPPET_RUN_SLOTS", 2 * (os.cpu_count() or 1), minimum=1)
SNIPPET_QUEUE_SIZE = env_int("SNIPPET_QUEUE_SIZE", 50)
SNIPPET_RUNS_PER_MINUTE = env_int("SNIPPET_RUNS_PER_MINUTE", 30, minimum=1)
# Each client's fair share of the slots and the queue, so one cannot take them all.
SNIPPET_RUNS_PER_CLIENT = env_int(
    "SNIPPET_RUNS_PER_CLIENT", max(1, SNIPPET_RUN_SLOTS // 2), minimum=1
)
SNIPPET_QUEUED_PER_CLIENT = env_int("SNIPPET_QUEUED_PER_CLIENT", 2)
# Addresses or networks of the reverse proxies in front of Daphne: only from these is
# X-Forwarded-For believed (glossary/proxies.py). None by default.
TRUSTED_PROXIES = env_networks("TRUSTED_PROXIES")
# Sandboxed processes kept started, per runtime, so a run only hands its code over.
SNIPPET_WARM_POOL = env_int("SNIPPET_WARM_POOL", 2)
# ... as long as the idle ones hold less memory than this (a warm PostgreSQL run: ~95 MB).
SNIPPET_WARM_POOL_MB = env_int("SNIPPET_WARM_POOL_MB", 1024)
# Fork warm runs from a fork server per runtime (glossary/runner/forkserver.py; root only),
# instead of starting a bubblewrap sandbox for each.
SNIPPET_FORK_SERVERS = env_bool("SNIPPET_FORK_SERVERS", True)
# Without a sandbox (macOS, no user namespaces) runs are refused unless this is on
# and DEBUG is on too.
SNIPPET_ALLOW_UNSAFE_LOCAL = env_bool("SNIPPET_ALLOW_UNSAFE_LOCAL", False)
# Templates built once for runs (the Django runtime's database, server data directories);
# private to the server's user (0700), never a shared place such as /tmp that another
# local user could prepare.
SNIPPET_CACHE_DIR = Path(os.environ.get("SNIPPET_CACHE_DIR") or BASE_DIR / ".cache")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": "INFO"},
    "loggers": {
        "django.db.backends": {"level": "INFO"},
        # The pool logs every failed reconnection attempt; the site reports an outage
        # once instead (glossary.outages).
        "psycopg.pool": {"level": "ERROR"},
        # Lockouts are warnings; each attempt and start-up would be noise at INFO.
        "axes": {"level": "WARNING"},
    },
}

# Link checking (`manage.py checklinks`, glossary/linkcheck.py).
# Development and tests only: lets the checker reach loopback and private addresses.
LINKCHECK_ALLOW_PRIVATE = env_bool("LINKCHECK_ALLOW_PRIVATE", False)
LINKCHECK_TIMEOUT_SECONDS = env_int("LINKCHECK_TIMEOUT_SECONDS", 20)  # per link, redirects too
LINKCHECK_CONCURRENCY = env_int("LINKCHECK_CONCURRENCY", 16)
LINKCHECK_PER_HOST = env_int("LINKCHECK_PER_HOST", 2)
LINKCHECK_MAX_BYTES = env_int("LINKCHECK_MAX_KB", 1024) * 1024  # of a body it reads
LINKCHECK_USER_AGENT = os.environ.get("LINKCHECK_USER_AGENT") or (
    "DBGlossaryLinkChecker/1.0 (checks the links of a database glossary once a day)"
)
# A link is broken after this many failed checks in a row over at least this many days.
LINKCHECK_BROKEN_AFTER = env_int("LINKCHECK_BROKEN_AFTER", 3)
LINKCHECK_BROKEN_DAYS = env_int("LINKCHECK_BROKEN_DAYS", 2)
LINKCHECK_KEEP_CHECKS = env_int("LINKCHECK_KEEP_CHECKS", 60)  # per link, newest first
# Hosts whose repository pages are read for the "archived" banner (GitHub Enterprise too).
LINKCHECK_GITHUB_HOSTS = env_list("LINKCHECK_GITHUB_HOSTS", ["github.com"])
LOGGING["loggers"]["httpx"] = {"level": "WARNING"}  # not a line per link checked

# History of topics, links and snippets (django-simple-history): who changed what, when.
INSTALLED_APPS += ["simple_history"]
MIDDLEWARE += ["simple_history.middleware.HistoryRequestMiddleware"]

# Readers' problem reports and link suggestions (no account): this many per address an hour.
READER_REPORTS_PER_HOUR = env_int("READER_REPORTS_PER_HOUR", 5)

# Readers' own code: the editor on snippet pages and the playground (/play/).
# Off: pages show the code read-only and the playground says edited runs are off.
SNIPPET_READER_CODE = env_bool("SNIPPET_READER_CODE", True)
# Limits for readers' code: SNIPPET_READER_WALL_SECONDS and so on, each, where set, makes
# the runtime's own limit stricter. Such runs start cold (no warm pool).
SNIPPET_READER_LIMITS = {
    name: env_int(f"SNIPPET_READER_{name.upper()}", value)
    for name, value in SNIPPET_LIMITS.items()
    if os.environ.get(f"SNIPPET_READER_{name.upper()}")
}
# Shared code (/play/<id>/): at most this size (also the largest code a run may carry),
# this many shares an hour per client, deleted after this many days without a view
# (`manage.py deleteexpiredshares`).
SNIPPET_SHARE_MAX_BYTES = env_int("SNIPPET_SHARE_MAX_KB", 64, minimum=1) * 1024
SNIPPET_SHARES_PER_HOUR = env_int("SNIPPET_SHARES_PER_HOUR", 30, minimum=1)
SNIPPET_SHARE_EXPIRY_DAYS = env_int("SNIPPET_SHARE_EXPIRY_DAYS", 90, minimum=1)
