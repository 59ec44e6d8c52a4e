"""The admin, one module per part of the glossary; importing it registers them all."""

from . import exercises, links, paths, reports, shares, snippets, topics  # noqa: F401
