from django.contrib.sitemaps import Sitemap
from django.urls import reverse

from .models import Exercise, Path, Snippet, Topic


class HomeSitemap(Sitemap):
    changefreq = "daily"
    priority = 1.0

    def items(self):
        return [
            "glossary:home",
            "glossary:topic-index",
            "glossary:link-list",
            "glossary:exercise-list",
            "glossary:path-list",
        ]

    def location(self, item):
        return reverse(item)


class LetterSitemap(Sitemap):
    """Letters that have at least one published topic."""

    changefreq = "weekly"

    def items(self):
        return sorted(Topic.objects.published().letter_counts(), key=lambda letter: letter == "#")

    def location(self, item):
        return reverse("glossary:letter-detail", args=[item])


class TopicSitemap(Sitemap):
    changefreq = "weekly"
    priority = 0.8

    def items(self):
        return Topic.objects.published().only("slug", "updated")

    def lastmod(self, topic):
        return topic.updated


class SnippetSitemap(Sitemap):
    changefreq = "monthly"

    def items(self):
        return Snippet.objects.published().only("slug", "updated")

    def lastmod(self, snippet):
        return snippet.updated


class ExerciseSitemap(Sitemap):
    changefreq = "monthly"

    def items(self):
        return Exercise.objects.published().only("slug")


class PathSitemap(Sitemap):
    changefreq = "monthly"

    def items(self):
        return Path.objects.published().only("slug")


SITEMAPS = {
    "pages": HomeSitemap,
    "letters": LetterSitemap,
    "topics": TopicSitemap,
    "snippets": SnippetSitemap,
    "exercises": ExerciseSitemap,
    "paths": PathSitemap,
}
