"""Threads give their pooled PostgreSQL connections back.

A connection that a thread keeps checked out of the pool stays open after the pool is
closed: the pool runs dry under load, and the test run cannot drop its database at the
end ("database ... is being accessed by other users"). The async ORM (sync_to_async)
keeps its thread's connection; database_sync_to_async gives it back.
"""

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.db import connection

from config.asgi import application
from glossary import runner
from glossary.models import Snippet, Topic
from tests.conftest import require

pytestmark = [pytest.mark.asyncio, pytest.mark.django_db(transaction=True)]


def checked_out():
    stats = connection.pool.get_stats()
    return stats["pool_size"] - stats["pool_available"]


@pytest.fixture(autouse=True)
def pooled_postgresql():
    if connection.vendor != "postgresql" or connection.pool is None:
        pytest.skip("Pooled connections: set DATABASE_URL to a PostgreSQL database")


@database_sync_to_async
def make_snippet():
    topic = Topic.objects.create(name="Demo", slug="demo-topic")
    Snippet.objects.create(
        topic=topic, slug="demo", title="Demo", code="print(1)", runtime="python"
    )
    return checked_out()


@database_sync_to_async
def curators_session(django_user_model):
    from django.test import Client

    curator = django_user_model.objects.create_user("curator", password="pw", is_staff=True)
    client = Client()
    client.force_login(curator)
    return client.cookies["sessionid"].value


async def test_a_run_over_the_websocket_gives_every_connection_back(django_user_model):
    require(runner.bubblewrap_works(), "bubblewrap with namespaces is not available")
    session = await curators_session(django_user_model)
    await make_snippet()
    before = checked_out()
    communicator = WebsocketCommunicator(
        application,
        "/ws/snippets/demo/",
        headers=[
            (b"origin", b"http://127.0.0.1:8000"),
            (b"cookie", f"sessionid={session}".encode()),
        ],
    )
    assert (await communicator.connect())[0]
    await communicator.send_json_to({"action": "run"})
    while (await communicator.receive_json_from(timeout=15))["type"] not in ("exit", "error"):
        pass
    await communicator.disconnect()

    assert checked_out() == before
