"""Choices shared by several models."""

from django.db import models


class Language(models.TextChoices):
    PYTHON = "python", "Python"
    SQL = "sql", "SQL"
    SHELL = "shell", "Shell"
    JAVASCRIPT = "javascript", "JavaScript"
    TEXT = "text", "Plain text"


class Runtime(models.TextChoices):
    PYTHON = "python", "Python (standard library)"
    DJANGO = "django", "Django ORM"
    POSTGRESQL = "postgresql", "PostgreSQL"
    REDIS = "redis", "Redis"
    MYSQL = "mysql", "MariaDB (MySQL)"
    __empty__ = "Display only"
