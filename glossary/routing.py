from django.urls import path, re_path

from .consumers import (
    ExerciseConsumer,
    PlaygroundRunConsumer,
    SnippetRunConsumer,
    UnknownPathConsumer,
)
from .workers.protocol import RUNS_CHANNEL
from .workers.worker import RunWorkerConsumer

websocket_urlpatterns = [
    path("ws/snippets/<slug:slug>/", SnippetRunConsumer.as_asgi(), name="snippet-run"),
    path("ws/play/<slug:runtime>/", PlaygroundRunConsumer.as_asgi(), name="play-run"),
    path("ws/exercises/<slug:slug>/", ExerciseConsumer.as_asgi(), name="exercise-run"),
    # Last: any other path is refused at the handshake, not an error in the server's log.
    re_path(r"", UnknownPathConsumer.as_asgi()),
]

# `manage.py runworker snippet-runs`: the run workers (glossary/workers/).
channel_routes = {RUNS_CHANNEL: RunWorkerConsumer.as_asgi()}
