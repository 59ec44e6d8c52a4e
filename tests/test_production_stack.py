"""The production stack end to end: nginx in front of granian and Daphne (deploy/)."""

import gzip
import http.client
import json
import os
import re
import secrets
import shutil
import signal
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from glossary import runner
from tests.conftest import require
from tests.live_server import free_port, manage, seeded_database, shell, site_env, start

PASSWORD = secrets.token_urlsafe(16)
RUNS_PER_MINUTE = 4
LOGIN_FAILURE_LIMIT = 3
SETUP = f"""\
from django.contrib.auth.models import User
from glossary.models import Snippet, Topic
User.objects.create_superuser("curator", password={PASSWORD!r})
Snippet.objects.create(
    topic=Topic.objects.get(slug="transactions"), slug="stack-greeting", title="Greeting",
    runtime="python", code="import time\\nfor i in range(3):\\n    print(f'hello {{i}}')\\n",
)
"""


class NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


OPENER = urllib.request.build_opener(NoRedirects)


def fetch(url, data=None, headers=None):
    """(status, headers, body) for a request, whatever its status."""
    request = urllib.request.Request(url, data=data, headers=headers or {})
    try:
        with OPENER.open(request, timeout=10) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers, error.read()


def cookies_of(headers):
    """name -> value from Set-Cookie headers (the cookies are Secure: kept by hand)."""
    return dict(
        cookie.split(";", 1)[0].split("=", 1) for cookie in headers.get_all("Set-Cookie") or []
    )


def wait_until_serving(url, process, within=60):
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"The stack exited: {process.log.read_text()}")
        try:
            if fetch(url)[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"The stack did not answer at {url}")


def wait_until_said(process, words, within=60):
    deadline = time.monotonic() + within
    while words not in process.log.read_text():
        if process.poll() is not None:
            raise RuntimeError(f"The stack exited: {process.log.read_text()}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"The stack never said {words!r}")
        time.sleep(0.05)


HTTP_PORT = free_port()  # granian's
FIRST_ANSWER = {}  # the stack's answer to the first request, once it said it was serving


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    """deploy/stack.py with production settings, a seeded database and collected static."""
    require(runner.bubblewrap_works(), "bubblewrap with namespaces is not available")
    require(shutil.which("nginx") or Path("/usr/sbin/nginx").exists(), "nginx is not installed")
    here = tmp_path_factory.mktemp("stack")
    env = site_env(
        REDIS_URL=None,
        DJANGO_SETTINGS_MODULE="config.settings.production",
        SECRET_KEY=secrets.token_urlsafe(64),
        DATABASE_URL=seeded_database(here),
        STATIC_ROOT=str(here / "static"),
        # Plain HTTP on loopback: in production TLS ends at the proxy.
        SECURE_SSL_REDIRECT="false",
        ALLOWED_HOSTS="127.0.0.1,localhost",
        SNIPPET_RUNS_PER_MINUTE=str(RUNS_PER_MINUTE),
        ADMIN_LOGIN_FAILURE_LIMIT=str(LOGIN_FAILURE_LIMIT),
    )
    shell(SETUP, env)
    collected = manage("collectstatic", "--noinput", "-v0", env=env)
    assert collected.returncode == 0, collected.stderr
    port = free_port()
    argv = [
        sys.executable, "deploy/stack.py", "--port", str(port), "--run-dir", str(here / "run"),
        "--http-port", str(HTTP_PORT), "--workers", "2",
    ]  # fmt: skip
    process = start(argv, env, here / "stack.log")
    base_url = f"http://127.0.0.1:{port}"
    try:
        wait_until_said(process, "Serving the glossary at")
        FIRST_ANSWER["status"] = fetch(base_url + "/")[0]
        wait_until_serving(base_url + "/", process)
        yield base_url
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=20)


def test_the_stack_says_it_is_serving_once_its_pages_answer(stack):
    # Not nginx's 502 while granian or Daphne are still starting.
    assert FIRST_ANSWER["status"] == 200


def children(pid):
    return [
        int(child)
        for task in Path(f"/proc/{pid}/task").iterdir()
        for child in (task / "children").read_text().split()
    ]


def granian_workers():
    """(the granian server's pid, its workers' pids)."""
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                argv = (entry / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if any(arg.endswith(b"/granian") for arg in argv) and str(HTTP_PORT).encode() in argv:
                return int(entry.name), children(entry.name)
    raise AssertionError("no granian server is running")


def test_a_granian_worker_that_dies_is_started_again(stack):
    server, workers = granian_workers()
    assert len(workers) == 2
    os.kill(workers[0], signal.SIGKILL)

    # The other worker answers meanwhile.
    assert fetch(stack + "/topics/transactions/")[0] == 200
    deadline = time.monotonic() + 20
    while len(children(server)) < 2 or workers[0] in children(server):
        assert time.monotonic() < deadline, "the worker was not started again"
        time.sleep(0.2)
    assert all(fetch(stack + "/")[0] == 200 for _ in range(4))


def test_readers_pages_come_through_the_proxy(stack):
    for path in ("/", "/letters/A/", "/topics/transactions/", "/search/?q=index"):
        status, headers, body = fetch(stack + path)
        assert status == 200, path
        assert headers["Server"] == "nginx"
    assert b"Transactions" in fetch(stack + "/topics/transactions/")[2]


def test_an_unchanged_page_is_answered_304_through_the_proxy(stack):
    _, headers, _ = fetch(stack + "/topics/transactions/")

    status, again, body = fetch(
        stack + "/topics/transactions/", headers={"If-None-Match": headers["ETag"]}
    )

    assert status == 304
    assert body == b""


def test_pages_are_gzipped_through_the_proxy(stack):
    status, headers, body = fetch(stack + "/", headers={"Accept-Encoding": "gzip"})

    assert status == 200
    assert headers["Content-Encoding"] == "gzip"
    assert b"</html>" in gzip.decompress(body)


def test_nginx_serves_hashed_static_files_cached_for_a_year(stack):
    html = fetch(stack + "/")[2].decode()
    stylesheet = re.search(r'href="(/static/css/site\.[0-9a-f]{12}\.css)"', html).group(1)

    status, headers, body = fetch(stack + stylesheet, headers={"Accept-Encoding": "gzip"})

    assert status == 200
    assert headers["Cache-Control"] == "public, max-age=31536000, immutable"
    assert headers["Content-Encoding"] == "gzip"
    assert b"body" in gzip.decompress(body)


def test_a_curator_logs_in_to_the_admin_through_the_proxy(stack):
    _, headers, body = fetch(stack + "/admin/login/")
    cookies = cookies_of(headers)
    token = re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', body).group(1).decode()
    form = {"username": "curator", "password": PASSWORD, "csrfmiddlewaretoken": token}

    status, headers, _ = fetch(
        stack + "/admin/login/?next=/admin/",
        data=urllib.parse.urlencode(form).encode(),
        headers={
            "Cookie": f"csrftoken={cookies['csrftoken']}",
            "Origin": stack,
            "Content-Type": "application/x-www-form-urlencoded",
        },
    )
    assert status == 302
    session = cookies_of(headers)["sessionid"]

    status, _, body = fetch(stack + "/admin/", headers={"Cookie": f"sessionid={session}"})
    assert status == 200
    assert b"Site administration" in body


def log_in_from(stack, source, username, password, headers=None):
    """The status and body of an admin login from a client at source (a loopback
    address), with the CSRF token of a login page fetched from there."""
    connection = http.client.HTTPConnection(
        urllib.parse.urlsplit(stack).netloc, timeout=10, source_address=(source, 0)
    )
    try:
        connection.request("GET", "/admin/login/")
        response = connection.getresponse()
        cookies, body = cookies_of(response.headers), response.read()
        token = re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', body).group(1).decode()
        form = {"username": username, "password": password, "csrfmiddlewaretoken": token}
        connection.request(
            "POST",
            "/admin/login/",
            body=urllib.parse.urlencode(form),
            headers={
                "Cookie": f"csrftoken={cookies['csrftoken']}",
                "Origin": stack,
                "Content-Type": "application/x-www-form-urlencoded",
                **(headers or {}),
            },
        )
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def test_the_admin_login_throttle_counts_each_client_address_behind_the_proxy(stack):
    failures = [
        log_in_from(stack, "127.0.0.5", f"guess{attempt}", "wrong")[0]
        for attempt in range(LOGIN_FAILURE_LIMIT)
    ]
    # The form again with its error, then the lockout for the address (seen through the
    # proxy, not the proxy's own): each guess was for another username.
    assert failures == [200] * (LOGIN_FAILURE_LIMIT - 1) + [429]

    locked = log_in_from(stack, "127.0.0.5", "curator", PASSWORD)
    forged = log_in_from(stack, "127.0.0.5", "other", "wrong", {"X-Forwarded-For": "127.0.0.8"})
    other_reader = log_in_from(stack, "127.0.0.6", "curator", PASSWORD)

    assert locked[0] == 429 and b"Too many sign-in attempts" in locked[1]
    assert forged[0] == 429
    assert other_reader[0] == 302


def test_a_login_without_its_csrf_token_is_refused_through_the_proxy(stack):
    form = {"username": "curator", "password": PASSWORD}

    status, _, _ = fetch(
        stack + "/admin/login/", data=urllib.parse.urlencode(form).encode(), headers={}
    )

    assert status == 403


def run_through(stack, source="127.0.0.1", headers=None):
    """The events of one run of stack-greeting, from a client at source (a loopback
    address: Linux answers all of 127.0.0.0/8)."""
    from websockets.sync.client import connect

    ws_url = stack.replace("http://", "ws://") + "/ws/snippets/stack-greeting/"
    with connect(
        ws_url,
        origin=stack,
        open_timeout=10,
        source_address=(source, 0),
        additional_headers=headers,
    ) as socket:
        socket.send(json.dumps({"action": "run"}))
        events = []
        while not events or events[-1]["type"] not in ("exit", "error"):
            events.append(json.loads(socket.recv(timeout=20)))
    return events


def test_a_run_streams_over_the_websocket_through_the_proxy(stack):
    events = run_through(stack)

    output = "".join(event["text"] for event in events if event["type"] == "stdout")
    assert output == "hello 0\nhello 1\nhello 2\n"
    assert events[-1]["reason"] == "ok"


def test_the_run_rate_limit_counts_each_client_address_behind_the_proxy(stack):
    for _ in range(RUNS_PER_MINUTE):
        assert run_through(stack, "127.0.0.3")[-1]["type"] == "exit"

    # The proxy replaces what a client claims in X-Forwarded-For with its real address.
    forged = run_through(stack, "127.0.0.3", headers={"X-Forwarded-For": "127.0.0.9"})
    other_reader = run_through(stack, "127.0.0.4")

    assert forged[-1] == {
        "type": "error",
        "message": "Too many runs from your address; wait a minute.",
    }
    assert other_reader[-1]["type"] == "exit"


@pytest.mark.browser
def test_a_reader_runs_a_snippet_in_chromium_through_the_proxy_and_again_after_a_304(
    stack, new_page
):
    from playwright.sync_api import expect

    # localhost: Chromium counts it as a secure context, as HTTPS would be in production.
    url = stack.replace("127.0.0.1", "localhost") + "/snippets/stack-greeting/"
    page = new_page()
    # Chromium reports a revalidated page as its kept 200; a 304 shows as no body.
    bodies = []
    page.on("response", lambda r: r.url == url and bodies.append(r.request.sizes()))
    for _ in range(2):
        page.goto(url)
        panel = page.locator(".run-panel")
        panel.get_by_role("button", name="Run").click()
        expect(panel.locator(".run-output")).to_contain_text("hello 2")

    assert [sizes["responseBodySize"] > 0 for sizes in bodies] == [True, False]
    assert page.console_errors == []
