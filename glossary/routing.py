from django.urls import path

from .consumers import PlaygroundRunConsumer, SnippetRunConsumer

websocket_urlpatterns = [
    path("ws/snippets/<slug:slug>/", SnippetRunConsumer.as_asgi(), name="snippet-run"),
    path("ws/play/<slug:runtime>/", PlaygroundRunConsumer.as_asgi(), name="play-run"),
]
