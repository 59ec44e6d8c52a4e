import os
import uuid

import pytest

from glossary.models import ContentRevision, Link, Snippet, Topic

IN_CI = os.environ.get("CI") == "true"


def require(condition, reason):
    """Skip when an optional part is missing locally; under CI=true it is a failure."""
    if condition:
        return
    if IN_CI:
        pytest.fail(f"{reason} (required under CI=true)")
    pytest.skip(reason)


@pytest.fixture(autouse=True)
def cache_of_its_own(settings):
    """Each test gets an empty cache: revision numbers repeat after rollbacks."""
    settings.CACHES = {
        name: {**config, "KEY_PREFIX": uuid.uuid4().hex} for name, config in settings.CACHES.items()
    }
    ContentRevision.forget()


@pytest.fixture
def topic(db):
    return Topic.objects.create(name="PostgreSQL", slug="postgresql", summary="An RDBMS.")


@pytest.fixture
def link(topic):
    return Link.objects.create(
        topic=topic, url="https://www.postgresql.org/docs/", title="PostgreSQL docs"
    )


@pytest.fixture
def snippet(topic):
    return Snippet.objects.create(
        topic=topic, title="Hello", slug="hello", code="print('hello')", runtime="python"
    )


@pytest.fixture
def staff_client(client, django_user_model):
    user = django_user_model.objects.create_user(
        "curator", password="pw", is_staff=True, is_superuser=True
    )
    client.force_login(user)
    return client
