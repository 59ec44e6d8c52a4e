from django.urls import path

from .consumers import SnippetRunConsumer

websocket_urlpatterns = [
    path("ws/snippets/<slug:slug>/", SnippetRunConsumer.as_asgi(), name="snippet-run"),
]
