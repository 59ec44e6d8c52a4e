"""Benchmark settings: the development settings with DEBUG off and a bare view added."""

from config.settings.development import *  # noqa: F403

ROOT_URLCONF = "bench.urls"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
