from django.urls import path, re_path

from .consumers import PlaygroundRunConsumer, SnippetRunConsumer, UnknownPathConsumer

websocket_urlpatterns = [
    path("ws/snippets/<slug:slug>/", SnippetRunConsumer.as_asgi(), name="snippet-run"),
    path("ws/play/<slug:runtime>/", PlaygroundRunConsumer.as_asgi(), name="play-run"),
    # Last: any other path is refused at the handshake, not an error in the server's log.
    re_path(r"", UnknownPathConsumer.as_asgi()),
]
