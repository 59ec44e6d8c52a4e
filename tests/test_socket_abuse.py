"""Hostile clients on the WebSocket: floods, forged X-Forwarded-For, a client taking every
run slot, a socket outliving its curator's session, unknown paths.

Most tests talk to a real Daphne over real sockets; each site is a Daphne process on a
SQLite database of its own.
"""

import asyncio
import base64
import json
import os
import socket
import time
import urllib.request
from contextlib import contextmanager

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from websockets.asyncio.client import connect as websocket_connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from config.asgi import application
from glossary import consumers, proxies, runner
from glossary.models import Snippet, Topic
from tests.conftest import require
from tests.live_server import daphne, manage, migrated_database, shell, site_env

SLEEPER = "import time\nprint('ready', flush=True)\ntime.sleep(30)\n"
# 8 MiB of a character JSON writes as six ("\u0001"): 48 MiB of events to send.
LOUD = "import sys\nsys.stdout.write(chr(1) * 8 * 1024 * 1024)\n"
FLOOD_BYTES = 5 * 1024 * 1024
# What Daphne may grow by while a client floods it: a few of its 64 KiB reads, queued.
FLOOD_RSS_BOUND_MB = 20
RUNS_PER_MINUTE = 4

SITE_SNIPPETS = """\
from glossary.models import Snippet, Topic
topic = Topic.objects.create(name="Abuse", slug="abuse")
for slug, code in {snippets!r}.items():
    Snippet.objects.create(topic=topic, slug=slug, title=slug, runtime="python", code=code)
"""


class Site:
    """A Daphne process serving the site, as these tests talk to it and watch it."""

    def __init__(self, process):
        self.process = process
        self.port = process.port
        self.log = process.log

    def rss_mb(self):
        with open(f"/proc/{self.process.pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
        raise AssertionError("no VmRSS")

    @property
    def origin(self):
        return f"http://127.0.0.1:{self.port}"

    def url(self, path):
        return f"ws://127.0.0.1:{self.port}{path}"

    def connect(self, slug, forwarded_for=None):
        headers = {"X-Forwarded-For": forwarded_for} if forwarded_for else None
        return websocket_connect(
            self.url(f"/ws/snippets/{slug}/"), origin=self.origin, additional_headers=headers
        )


@contextmanager
def serving(tmp_path_factory, **env):
    """A Site on a database of its own with these environment settings."""
    require(runner.bubblewrap_works(), "bubblewrap with namespaces is not available")
    directory = tmp_path_factory.mktemp("abuse-site")
    env = site_env(
        DATABASE_URL=migrated_database(directory), RUNNER_MODE="local", REDIS_URL="", **env
    )
    snippets = {"hello": "print('hello')", "sleeper": SLEEPER, "loud": LOUD}
    shell(SITE_SNIPPETS.format(snippets=snippets), env)
    with daphne(env, directory / "daphne.log") as process:
        yield Site(process)


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    with serving(tmp_path_factory, SNIPPET_RUNS_PER_MINUTE="1") as site:
        yield site


@pytest.fixture(scope="module")
def site_behind_a_proxy(tmp_path_factory):
    with serving(
        tmp_path_factory,
        TRUSTED_PROXIES="127.0.0.1",
        SNIPPET_RUNS_PER_MINUTE=str(RUNS_PER_MINUTE),
        SNIPPET_RUN_SLOTS="3",
        SNIPPET_RUNS_PER_CLIENT="2",
        SNIPPET_QUEUED_PER_CLIENT="1",
    ) as site:
        yield site


async def next_event(socket, timeout=10):
    return json.loads(await asyncio.wait_for(socket.recv(), timeout))


async def run_until_end(socket):
    await socket.send(json.dumps({"action": "run"}))
    events = [await next_event(socket)]
    while events[-1]["type"] not in ("exit", "error"):
        events.append(await next_event(socket))
    return events


# Floods --------------------------------------------------------------------------------


def masked_frame(payload):
    """A client's WebSocket text frame (clients must mask what they send)."""
    mask = os.urandom(4)
    masked = bytes(byte ^ mask[i % 4] for i, byte in enumerate(payload))
    return bytes([0x81, 0x80 | len(payload)]) + mask + masked


def open_raw_socket(site, slug="hello"):
    """A WebSocket that reads nothing after the handshake: a tiny receive buffer, no reads."""
    sock = socket.create_connection(("127.0.0.1", site.port))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    key = base64.b64encode(os.urandom(16)).decode()
    handshake = (
        f"GET /ws/snippets/{slug}/ HTTP/1.1\r\nHost: 127.0.0.1:{site.port}\r\n"
        "Upgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
        f"Origin: {site.origin}\r\n\r\n"
    )
    sock.sendall(handshake.encode())
    assert sock.recv(4096).startswith(b"HTTP/1.1 101")
    return sock


def flood(sock, payloads, total):
    """Send total bytes of these messages, or until the server stops taking them."""
    frames = b"".join(masked_frame(payload) for payload in payloads)
    chunk = frames * (64 * 1024 // len(frames))
    sent = 0
    sock.settimeout(5)
    try:
        while sent < total:
            sock.sendall(chunk)
            sent += len(chunk)
    except OSError:  # reset (or a send that stalls: the server stopped reading)
        pass
    return sent


@pytest.mark.parametrize(
    "payloads",
    [[b"x"], [b'{"action": "run"}', b'{"action": "cancel"}'], [b"{}", b"[]", b'"run"']],
    ids=["invalid", "valid", "mixed"],
)
def test_a_flood_from_a_client_that_never_reads_leaves_daphne_memory_bounded(site, payloads):
    before = site.rss_mb()
    sock = open_raw_socket(site)

    sent = flood(sock, payloads, FLOOD_BYTES)
    time.sleep(1)
    after = site.rss_mb()
    sock.close()

    print(f"\nflood: {sent / 2**20:.1f} MB sent, Daphne RSS {before:.0f} -> {after:.0f} MB")
    assert after - before < FLOOD_RSS_BOUND_MB
    assert "Traceback" not in site.log.read_text()
    # Still serving others.
    with urllib.request.urlopen(f"http://127.0.0.1:{site.port}/", timeout=5) as response:
        assert response.status == 200


@pytest.fixture(scope="module")
def site_with_loud_runs(tmp_path_factory):
    with serving(tmp_path_factory, SNIPPET_OUTPUT_KB=str(8 * 1024 + 1)) as site:
        yield site


def test_output_a_client_never_reads_is_not_held_by_daphne(site_with_loud_runs):
    site = site_with_loud_runs
    logged_before = site.log.read_text()
    before = peak = site.rss_mb()
    sock = open_raw_socket(site, "loud")

    sock.sendall(masked_frame(b'{"action": "run"}'))
    deadline = time.monotonic() + 12
    while time.monotonic() < deadline:
        peak = max(peak, site.rss_mb())
        time.sleep(0.1)
    sock.close()

    print(f"\nunread output: Daphne RSS {before:.0f} -> peak {peak:.0f} MB")
    assert peak - before < FLOOD_RSS_BOUND_MB
    assert "Traceback" not in site.log.read_text()[len(logged_before) :]


@pytest.mark.asyncio
async def test_a_socket_that_keeps_sending_bad_messages_is_closed_with_a_policy_code(site):
    async with site.connect("hello") as socket:
        replies = 0
        with pytest.raises(ConnectionClosed) as closed:
            for _ in range(100):
                await socket.send("not json")
                await next_event(socket)
                replies += 1

    assert closed.value.rcvd.code == consumers.POLICY_VIOLATION
    assert replies == consumers.ERROR_BURST


@pytest.mark.asyncio
async def test_a_reader_pressing_run_and_stop_is_never_closed(site):
    async with site.connect("hello") as socket:
        # Even a few presses of Stop with nothing running, each answered with an error.
        for _ in range(consumers.ERROR_BURST // 2):
            await socket.send(json.dumps({"action": "cancel"}))
            assert (await next_event(socket))["type"] == "error"


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
async def test_many_runs_in_a_row_on_one_socket_are_all_served(settings):
    require(runner.bubblewrap_works(), "bubblewrap with namespaces is not available")
    settings.SNIPPET_RUNS_PER_MINUTE = 1000
    await database_sync_to_async(make_snippet)("print('again')")
    communicator = WebsocketCommunicator(
        application, "/ws/snippets/again/", headers=[(b"origin", b"http://127.0.0.1:8000")]
    )
    assert (await communicator.connect())[0]
    reasons = []
    for _ in range(3 * consumers.ERROR_BURST):
        await communicator.send_json_to({"action": "run"})
        while (event := await communicator.receive_json_from(timeout=15))["type"] != "exit":
            assert event["type"] != "error", event
        reasons.append(event["reason"])
    await communicator.disconnect()

    assert reasons == ["ok"] * 3 * consumers.ERROR_BURST


def make_snippet(code):
    topic = Topic.objects.create(name="Again", slug="again")
    Snippet.objects.create(topic=topic, slug="again", title="Again", code=code, runtime="python")


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
async def test_a_flooding_socket_is_closed_with_a_policy_code():
    """In-process: the backlog guard sees Daphne's queue fill before the consumer reads."""
    communicator = WebsocketCommunicator(
        application, "/ws/snippets/none/", headers=[(b"origin", b"http://127.0.0.1:8000")]
    )
    assert (await communicator.connect())[0]
    for _ in range(consumers.MAX_BACKLOG + 1):
        await communicator.send_to(text_data='{"action": "cancel"}')

    messages = []
    while (message := await communicator.output_queue.get())["type"] != "websocket.close":
        messages.append(message)
    await communicator.disconnect()

    assert message["code"] == consumers.POLICY_VIOLATION
    assert len(messages) < consumers.MAX_BACKLOG


# Unknown paths -------------------------------------------------------------------------


@pytest.mark.asyncio
@pytest.mark.parametrize("path", ["/ws/nowhere/", "/ws/snippets/", "/ws/snippets/a/b/", "/"])
async def test_an_unknown_websocket_path_is_refused_without_an_error_in_the_log(site, path):
    logged_before = site.log.read_text()

    with pytest.raises(InvalidStatus) as refused:
        async with websocket_connect(site.url(path), origin=site.origin):
            pass

    assert refused.value.response.status_code == 403
    logged = site.log.read_text()[len(logged_before) :]
    assert "Traceback" not in logged
    assert "No route found" not in logged


# X-Forwarded-For -----------------------------------------------------------------------


@pytest.mark.asyncio
async def test_without_trusted_proxies_a_forged_forwarded_for_does_not_escape_the_limit(site):
    async with site.connect("hello", forwarded_for="198.51.100.1") as first:
        await run_until_end(first)
    async with site.connect("hello", forwarded_for="198.51.100.2") as second:
        events = await run_until_end(second)

    assert events == [{"type": "error", "message": events[0]["message"]}]
    assert "Too many runs" in events[0]["message"]


@pytest.mark.parametrize(
    ("trusted", "peer", "forwarded_for", "client"),
    [
        ([], "203.0.113.9", "198.51.100.1", "203.0.113.9"),
        (["10.0.0.1"], "203.0.113.9", "198.51.100.1", "203.0.113.9"),
        (["10.0.0.1"], "10.0.0.1", "198.51.100.1", "198.51.100.1"),
        (["10.0.0.1"], "10.0.0.1", "6.6.6.6, 198.51.100.1", "198.51.100.1"),
        (["10.0.0.0/8"], "10.0.0.1", "6.6.6.6, 198.51.100.1, 10.0.0.2", "198.51.100.1"),
        (["10.0.0.1"], "10.0.0.1", "", "10.0.0.1"),
        (["10.0.0.1"], "10.0.0.1", "junk", "junk"),
        (["2001:db8::/32"], "2001:db8::1", "2001:db8::2, 198.51.100.1", "198.51.100.1"),
    ],
)
def test_the_client_is_the_right_most_address_no_trusted_proxy_added(
    settings, trusted, peer, forwarded_for, client
):
    settings.TRUSTED_PROXIES = trusted

    assert proxies.client_address(peer, forwarded_for) == client


@pytest.mark.asyncio
async def test_behind_a_trusted_proxy_runs_are_counted_per_real_client(site_behind_a_proxy):
    site = site_behind_a_proxy
    outcomes = []
    # The proxy appends the address it saw; what the client wrote stays on the left.
    for n in range(RUNS_PER_MINUTE + 1):
        async with site.connect("hello", forwarded_for=f"6.6.6.{n}, 198.51.100.7") as socket:
            outcomes.append((await run_until_end(socket))[-1])
    async with site.connect("hello", forwarded_for="6.6.6.0, 198.51.100.8") as socket:
        other = (await run_until_end(socket))[-1]

    assert [event.get("reason") for event in outcomes[:-1]] == ["ok"] * RUNS_PER_MINUTE
    assert "Too many runs" in outcomes[-1]["message"]
    assert other["reason"] == "ok"


def test_a_malformed_trusted_proxies_setting_is_refused_with_a_clear_message():
    env = {**os.environ, "TRUSTED_PROXIES": "10.0.0.1, proxy.example"}

    result = manage("check", env=env)

    assert result.returncode != 0
    assert "TRUSTED_PROXIES must list IP addresses or networks" in result.stderr
    assert "'proxy.example'" in result.stderr


def test_the_rate_limiter_forgets_idle_clients(settings):
    settings.SNIPPET_RUNS_PER_MINUTE = 5
    limiter = consumers.RateLimiter(window=0.05)
    for n in range(1000):
        limiter.allow(f"198.51.{n // 256}.{n % 256}")

    time.sleep(0.1)
    limiter.allow("203.0.113.1")

    assert list(limiter.starts) == ["203.0.113.1"]


@pytest.mark.parametrize(
    ("address", "key"),
    [
        ("198.51.100.7", "198.51.100.7"),
        ("2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"),
        ("::ffff:198.51.100.7", "198.51.100.7"),
    ],
)
def test_ipv6_clients_are_counted_by_their_network(address, key):
    assert consumers.client_key({"client": [address, 0]}) == key


# Fair share ----------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_one_client_filling_its_share_does_not_keep_another_waiting(site_behind_a_proxy):
    site = site_behind_a_proxy
    flooder = [site.connect("sleeper", forwarded_for="198.51.100.1") for _ in range(4)]
    sockets = [await connection for connection in flooder]
    try:
        for socket in sockets:
            await socket.send(json.dumps({"action": "run"}))
            await asyncio.sleep(0.2)
        firsts = [await next_event(socket) for socket in sockets]

        started = time.monotonic()
        async with site.connect("hello", forwarded_for="198.51.100.2") as other:
            events = await run_until_end(other)
        waited = time.monotonic() - started
    finally:
        for socket in sockets:
            await socket.close()

    print(f"\nfair share: the other client's run ended {waited:.2f} s after it connected")
    assert sorted(event["type"] for event in firsts) == ["error", "queued", "start", "start"]
    assert "your share" in next(e["message"] for e in firsts if e["type"] == "error")
    assert events[0]["type"] == "start"
    assert events[-1]["reason"] == "ok"
    assert waited < 5


def test_a_free_slot_goes_to_the_client_with_the_fewest_runs():
    slots = runner.RunSlots(slots=2, queue_size=10, client_runs=2, client_queued=5)
    a1, a2 = slots.hold("a"), slots.hold("a")
    a3 = slots.hold("a")
    b1 = slots.hold("b")  # queued after a3

    asyncio.run(a1.__aexit__(None, None, None))

    assert a2.granted and b1.granted
    assert not a3.granted


# Staff rights ----------------------------------------------------------------------------


@database_sync_to_async
def draft_and_curator_session(django_user_model):
    topic = Topic.objects.create(name="Drafts", slug="drafts")
    Snippet.objects.create(
        topic=topic,
        slug="draft",
        title="Draft",
        code="print('draft ran')",
        runtime="python",
        is_published=False,
    )
    curator = django_user_model.objects.create_user("curator", password="pw", is_staff=True)
    from django.test import Client

    client = Client()
    client.force_login(curator)
    return client.cookies["sessionid"].value, client


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
async def test_a_staff_socket_loses_its_rights_when_the_curator_logs_out(
    django_user_model, settings
):
    require(runner.bubblewrap_works(), "bubblewrap with namespaces is not available")
    settings.SNIPPET_RUNS_PER_MINUTE = 1000
    session, browser = await draft_and_curator_session(django_user_model)
    communicator = WebsocketCommunicator(
        application,
        "/ws/snippets/draft/",
        headers=[
            (b"origin", b"http://127.0.0.1:8000"),
            (b"cookie", f"sessionid={session}".encode()),
        ],
    )
    assert (await communicator.connect())[0]
    await communicator.send_json_to({"action": "run"})
    while (before := await communicator.receive_json_from(timeout=15))["type"] not in (
        "exit",
        "error",
    ):
        pass

    await database_sync_to_async(browser.logout)()
    await communicator.send_json_to({"action": "run"})
    after = await communicator.receive_json_from(timeout=5)
    await communicator.disconnect()

    assert before["type"] == "exit" and before["reason"] == "ok"
    assert after == {"type": "error", "message": "There is no snippet called 'draft'."}


def test_a_client_waits_in_the_queue_only_up_to_its_share():
    slots = runner.RunSlots(slots=1, queue_size=10, client_runs=2, client_queued=1)
    slots.hold("b")  # the only slot
    slots.hold("a")

    with pytest.raises(runner.Busy, match="your share"):
        slots.hold("a")
    slots.hold("c")
