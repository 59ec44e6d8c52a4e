from django.contrib.sitemaps.views import sitemap
from django.urls import path, register_converter

from . import views
from .caching import cache_page_for_readers as cached
from .feeds import NewLinksFeed
from .sitemaps import SITEMAPS


class LetterConverter:
    """One letter (either case; the view redirects lower case) or "#" (sent as %23)."""

    regex = "[A-Za-z#]"

    def to_python(self, value):
        return value

    def to_url(self, value):
        return value


register_converter(LetterConverter, "letter")

app_name = "glossary"
urlpatterns = [
    path("", cached(views.home), name="home"),
    path("topics/", cached(views.TopicIndexView.as_view()), name="topic-index"),
    path("letters/<letter:letter>/", cached(views.LetterView.as_view()), name="letter-detail"),
    path("topics/<slug:slug>/", cached(views.TopicDetailView.as_view()), name="topic-detail"),
    path("links/", views.LinkListView.as_view(), name="link-list"),
    path("snippets/<slug:slug>/", cached(views.SnippetDetailView.as_view()), name="snippet-detail"),
    path("search/", views.search, name="search"),
    path("about/", views.AboutView.as_view(), name="about"),
    path("feeds/links/", NewLinksFeed(), name="link-feed"),
    path("export.json", views.export_json, name="export"),
    path("sitemap.xml", sitemap, {"sitemaps": SITEMAPS}, name="sitemap"),
    path("topics/<slug:slug>/preview/", cached(views.topic_preview), name="topic-preview"),
    path("feedback/", views.report, name="report"),
    path("play/", views.playground_page, name="playground"),
    path("play/share/", views.share_code, name="play-share-create"),
    path("play/<slug:share_id>/", views.playground_page, name="play-share"),
    path("exercises/", cached(views.ExerciseListView.as_view()), name="exercise-list"),
    path(
        "exercises/<slug:slug>/", cached(views.ExerciseDetailView.as_view()), name="exercise-detail"
    ),
    path("paths/", cached(views.PathListView.as_view()), name="path-list"),
    path("paths/<slug:slug>/", cached(views.PathDetailView.as_view()), name="path-detail"),
    path("paths/<slug:slug>/<int:number>/", cached(views.path_step), name="path-step"),
]
