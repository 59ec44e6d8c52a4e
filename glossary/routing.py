from django.urls import path, re_path

from .consumers import SnippetRunConsumer, UnknownPathConsumer

websocket_urlpatterns = [
    path("ws/snippets/<slug:slug>/", SnippetRunConsumer.as_asgi(), name="snippet-run"),
    # Last: any other path is refused at the handshake, not an error in the server's log.
    re_path(r"", UnknownPathConsumer.as_asgi()),
]
