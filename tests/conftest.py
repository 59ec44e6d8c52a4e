import os
import threading
import time
import traceback
import uuid
from pathlib import Path

import pytest
from asgiref.sync import SyncToAsync
from django.db import connection, connections
from django.db.backends.signals import connection_created

from glossary.models import ContentRevision, Link, LinkGroup, Snippet, Topic

IN_CI = os.environ.get("CI") == "true"


def require(condition, reason):
    """Skip when an optional part is missing locally; under CI=true it is a failure."""
    if condition:
        return
    if IN_CI:
        pytest.fail(f"{reason} (required under CI=true)")
    pytest.skip(reason)


# Who took each PostgreSQL session, so a session still open at the end can be named.
_takers = {}
ROOT = str(Path(__file__).resolve().parent.parent)


def _project_frames(stack):
    return [
        frame
        for frame in stack
        if frame.filename.startswith(ROOT) and "/.venv" not in frame.filename
    ][-8:]


def _remember_taker(sender, connection, **kwargs):
    if connection.vendor == "postgresql":
        _takers[connection.connection.info.backend_pid] = (
            threading.current_thread(),
            os.environ.get("PYTEST_CURRENT_TEST", "outside a test"),
            "".join(traceback.format_list(_project_frames(traceback.extract_stack()[:-1]))),
        )


connection_created.connect(_remember_taker)


def sessions_left_open(within=3):
    """Other sessions on the test database, after this thread and the pool let theirs go.

    A dropped client's backend may take a moment to exit, so wait up to `within` seconds.
    """
    connection.close()
    connection.close_pool()
    deadline = time.monotonic() + within
    while True:
        with connection._nodb_cursor() as cursor:
            cursor.execute(
                "SELECT pid, application_name, state, query FROM pg_stat_activity"
                " WHERE datname = %s AND pid <> pg_backend_pid()",
                [connection.settings_dict["NAME"]],
            )
            sessions = cursor.fetchall()
        if not sessions or time.monotonic() > deadline:
            return sessions
        time.sleep(0.1)


def describe_session(pid, application_name, state, query):
    thread, test, stack = _takers.get(pid, (None, "another process", ""))
    holder = f"thread {thread.name} ({'alive' if thread.is_alive() else 'ended'})" if thread else ""
    return (
        f"backend {pid} {application_name!r} {state}, last query {query[:200]!r}\n"
        f"  taken by {holder or 'no thread of this run'} in {test}\n{stack}"
    )


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, django_db_blocker):
    """On PostgreSQL, fail the run if a session on the test database outlives the tests:
    the database could not be dropped."""
    yield
    if connection.vendor != "postgresql":
        return
    with django_db_blocker.unblock():
        sessions = sessions_left_open()
        if sessions:
            with connection._nodb_cursor() as cursor:
                for pid, *_ in sessions:
                    cursor.execute("SELECT pg_terminate_backend(%s)", [pid])
            details = "\n".join(describe_session(*session) for session in sessions)
            pytest.fail(f"{len(sessions)} session(s) left open on the test database:\n{details}")


@pytest.fixture(autouse=True)
def async_thread_gives_its_connection_back():
    """Async views (the async test client) and async ORM calls run in asgiref's one sync
    thread. A server closes that thread's connection after each request; the test client
    does not (it must keep the test's own), so close it after each test, or it stays
    checked out of the pool until the test database is dropped."""
    yield
    SyncToAsync.single_thread_executor.submit(connections.close_all).result(timeout=10)


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


def make_links(topic, count, **kwargs):
    return [
        Link.objects.create(
            topic=topic,
            url=f"https://example.com/{topic.slug}/{number}",
            title=f"{topic.name} link {number}",
            **kwargs,
        )
        for number in range(count)
    ]


def make_snippets(topic, count, **kwargs):
    return [
        Snippet.objects.create(
            topic=topic,
            title=f"{topic.name} snippet {number}",
            slug=f"{topic.slug}-snippet-{number}",
            code=f"print({number})",
            runtime="python",
            **kwargs,
        )
        for number in range(count)
    ]


@pytest.fixture
def draft_topic(db):
    return Topic.objects.create(
        name="Secret store", slug="secret-store", summary="Not ready.", is_published=False
    )


@pytest.fixture
def busy_topic(topic):
    """A topic with enough related rows that an N+1 query would show."""
    make_links(topic, 20, group=LinkGroup.DOCS)
    make_snippets(topic, 10)
    for name in ("Psycopg", "pgvector"):
        Topic.objects.create(name=name, slug=name.lower(), parent=topic)
    topic.see_also.add(Topic.objects.create(name="MySQL", slug="mysql"))
    return topic


@pytest.fixture
def staff_client(client, django_user_model):
    user = django_user_model.objects.create_user(
        "curator", password="pw", is_staff=True, is_superuser=True
    )
    client.force_login(user)
    return client


CHROMIUM = "/usr/bin/chromium"


@pytest.fixture(scope="module")
def browser():
    """A real Chromium, driven by Playwright, for the sites tests/live_server.py serves."""
    require(os.path.exists(CHROMIUM), "Chromium is not installed (apt install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        yield browser
        browser.close()


@pytest.fixture
def new_page(browser):
    """Pages in contexts of their own (1280 × 900 unless options say otherwise), closed
    after the test; each keeps its console errors, CSP violations among them, in
    page.console_errors."""
    contexts = []

    def new_page(**options):
        context = browser.new_context(**{"viewport": {"width": 1280, "height": 900}, **options})
        contexts.append(context)
        page = context.new_page()
        page.console_errors = []
        page.on("console", lambda m: m.type == "error" and page.console_errors.append(m.text))
        return page

    yield new_page
    for context in contexts:
        context.close()


@pytest.fixture
def page(new_page):
    return new_page()
