"""Link health: `manage.py checklinks` against real HTTP servers started by the tests."""

import asyncio
import ipaddress
import threading
import time
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.core.management import call_command
from django.urls import reverse

from glossary.linkcheck import check_links, check_urls, is_public
from glossary.models import CheckError, Link, LinkCheck

ARCHIVED_PAGE = (
    b"<html><body><div class='flash flash-warn'>This repository was archived by the owner "
    b"on Jan 5, 2024. It is now read-only.</div><h1>owner/old</h1></body></html>"
)
LIVE_PAGE = b"<html><body><h1>owner/live</h1><p>A maintained repository.</p></body></html>"


class Handler(BaseHTTPRequestHandler):
    """Routes that imitate the web's ways of answering; records what it was sent."""

    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_HEAD(self):
        self.respond()

    def do_GET(self):
        self.respond()

    def respond(self):
        server = self.server
        with server.lock:
            server.requests.append((self.command, self.path, self.headers.get("User-Agent")))
            server.in_flight += 1
            server.most_in_flight = max(server.most_in_flight, server.in_flight)
        try:
            self.route()
        except (BrokenPipeError, ConnectionResetError):
            pass
        finally:
            with server.lock:
                server.in_flight -= 1

    def send(self, status, body=b"", headers=()):
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command == "GET":
            self.wfile.write(body)

    def route(self):
        path = self.path.partition("?")[0]
        if path == "/ok":
            self.send(200, b"fine")
        elif path.startswith("/status/"):
            self.send(int(path.removeprefix("/status/")), b"error page")
        elif path == "/no-head":
            if self.command == "HEAD":
                self.send(405)
            else:
                self.send(200, b"only GET here")
        elif path.startswith("/moved/"):  # /moved/301/302/ok: one hop per status
            statuses, _, rest = path.removeprefix("/moved/").partition("/")
            target = f"/moved/{rest}" if "/" in rest else f"/{rest}"
            self.send(int(statuses), headers=[("Location", target)])
        elif path == "/loop":
            self.send(302, headers=[("Location", "/loop")])
        elif path.startswith("/to/"):  # /to/<absolute URL>
            self.send(301, headers=[("Location", path.removeprefix("/to/"))])
        elif path == "/slow-headers":
            time.sleep(3)
            self.send(200)
        elif path == "/slow":
            time.sleep(0.3)
            self.send(200)
        elif path == "/owner/old":
            self.send(200, ARCHIVED_PAGE)
        elif path == "/owner/live":
            self.send(200, LIVE_PAGE)
        elif path in ("/owner/huge", "/huge"):
            self.send_response(200)
            self.send_header("Content-Length", str(10**10))
            self.end_headers()
            if self.command == "GET":
                while True:
                    self.wfile.write(b"x" * 65536)
        elif path == "/owner/trickle":
            self.send_response(200)
            self.send_header("Content-Length", "100000")
            self.end_headers()
            for _ in range(100):
                self.wfile.write(b"x")
                self.wfile.flush()
                time.sleep(0.1)
        else:
            self.send(404, b"not here")


@pytest.fixture
def serve():
    """Start real HTTP servers on loopback addresses; returns start(host) -> base URL."""
    servers = []

    def start(host="127.0.0.1"):
        server = ThreadingHTTPServer((host, 0), Handler)
        server.daemon_threads = True
        server.lock = threading.Lock()
        server.requests, server.in_flight, server.most_in_flight = [], 0, 0
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        server.url = f"http://{host}:{server.server_port}"
        return server

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


@pytest.fixture
def server(serve, settings):
    settings.LINKCHECK_ALLOW_PRIVATE = True
    settings.LINKCHECK_TIMEOUT_SECONDS = 1
    return serve()


def check(url, **kwargs):
    return asyncio.run(check_urls([url], **kwargs))[url]


def test_a_working_link_is_ok_with_its_status(server):
    result = check(f"{server.url}/ok")

    assert result.ok and result.status == 200 and result.error == CheckError.NONE
    assert result.final_url == f"{server.url}/ok"


def test_it_asks_with_head_and_an_honest_user_agent(server, settings):
    check(f"{server.url}/ok")

    assert server.requests == [("HEAD", "/ok", settings.LINKCHECK_USER_AGENT)]
    assert "LinkChecker" in settings.LINKCHECK_USER_AGENT


def test_it_falls_back_to_get_when_head_is_refused(server):
    result = check(f"{server.url}/no-head")

    assert result.ok and result.status == 200
    assert [method for method, *_ in server.requests] == ["HEAD", "GET"]


@pytest.mark.parametrize("status", [404, 410, 500, 503])
def test_error_statuses_fail(server, status):
    result = check(f"{server.url}/status/{status}")

    assert not result.ok and result.status == status and result.error == CheckError.HTTP


def test_it_follows_redirects_and_records_the_chain(server):
    result = check(f"{server.url}/moved/302/301/ok")

    assert result.ok and result.final_url == f"{server.url}/ok"
    assert result.redirect_chain == [
        [302, f"{server.url}/moved/302/301/ok"],
        [301, f"{server.url}/moved/301/ok"],
        [200, f"{server.url}/ok"],
    ]
    assert result.suggested_url == ""  # a temporary hop: keep the old URL


def test_a_permanent_redirect_suggests_the_new_url(server):
    result = check(f"{server.url}/moved/301/308/ok")

    assert result.ok and result.suggested_url == f"{server.url}/ok"


def test_a_redirect_loop_fails_without_hanging(server):
    result = check(f"{server.url}/loop")

    assert not result.ok and result.error == CheckError.REDIRECTS
    assert len(server.requests) <= 12


def test_a_server_that_never_answers_times_out(server):
    started = time.monotonic()
    result = check(f"{server.url}/slow-headers")

    assert result.error == CheckError.TIMEOUT and not result.ok
    assert time.monotonic() - started < 2.5


def test_a_body_that_trickles_in_times_out_at_the_deadline(server, settings):
    settings.LINKCHECK_GITHUB_HOSTS = ["127.0.0.1"]  # repository pages are read
    started = time.monotonic()
    result = check(f"{server.url}/owner/trickle")

    assert result.error == CheckError.TIMEOUT
    assert time.monotonic() - started < 2.5


@pytest.mark.parametrize("path", ["/huge", "/owner/huge"])
def test_a_huge_body_is_not_read_past_the_cap(server, settings, path):
    settings.LINKCHECK_GITHUB_HOSTS = ["127.0.0.1"]
    settings.LINKCHECK_MAX_BYTES = 256 * 1024
    result = check(f"{server.url}{path}")

    assert result.ok and result.status == 200  # well within the 1 s deadline


def test_a_closed_port_is_a_connection_error(server):
    server.shutdown()
    server.server_close()
    result = check(f"{server.url}/ok")

    assert result.error == CheckError.CONNECT


def test_an_unknown_host_is_a_name_error(settings):
    settings.LINKCHECK_TIMEOUT_SECONDS = 15  # a slow resolver still answers
    result = check("http://no-such-host.invalid/")

    assert result.error == CheckError.DNS


def test_it_caps_concurrent_requests_per_host(server, settings):
    settings.LINKCHECK_PER_HOST = 2
    urls = [f"{server.url}/slow?{n}" for n in range(6)]
    settings.LINKCHECK_TIMEOUT_SECONDS = 5

    results = asyncio.run(check_urls(urls))

    assert all(result.ok for result in results.values())
    assert server.most_in_flight == 2


def test_archived_github_repositories_are_flagged(server, settings):
    settings.LINKCHECK_GITHUB_HOSTS = ["127.0.0.1"]

    archived = check(f"{server.url}/owner/old")
    live = check(f"{server.url}/owner/live")

    assert archived.ok and archived.archived
    assert live.ok and not live.archived


def test_pages_elsewhere_are_not_read_for_the_banner(server):
    result = check(f"{server.url}/owner/old")  # 127.0.0.1 is not a GitHub host here

    assert result.ok and not result.archived
    assert [method for method, *_ in server.requests] == ["HEAD"]


@pytest.mark.parametrize(
    "address",
    ["127.0.0.1", "10.1.2.3", "172.16.0.1", "192.168.1.1", "169.254.169.254", "100.64.0.1",
     "0.0.0.0", "::1", "fe80::1", "fc00::1", "::ffff:10.0.0.1", "224.0.0.1"],
)  # fmt: skip
def test_non_public_addresses_are_refused(address):
    assert not is_public(ipaddress.ip_address(address))


@pytest.mark.parametrize("address", ["93.184.215.14", "2606:2800:21f:cb07:6820:80da:af6b:8b2c"])
def test_public_addresses_are_allowed(address):
    assert is_public(ipaddress.ip_address(address))


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_loopback_is_refused_by_address_and_by_name(serve, settings, host):
    settings.LINKCHECK_ALLOW_PRIVATE = False
    target = serve("127.0.0.1")
    result = check(f"http://{host}:{target.server_port}/ok")

    assert result.error == CheckError.FORBIDDEN and not result.ok
    assert target.requests == []


def test_a_private_address_is_refused_before_connecting(settings):
    settings.LINKCHECK_ALLOW_PRIVATE = False
    settings.LINKCHECK_TIMEOUT_SECONDS = 5
    started = time.monotonic()
    result = check("http://10.20.30.40/")

    assert result.error == CheckError.FORBIDDEN
    assert time.monotonic() - started < 2  # no connection attempt waiting out the 5 s


def only_public_and(entry_point):
    """The production policy, plus one test server standing in for a public site."""
    return lambda address: is_public(address) or address == ipaddress.ip_address(entry_point)


def test_a_redirect_to_loopback_is_refused(serve, settings):
    settings.LINKCHECK_ALLOW_PRIVATE = False
    entry, inside = serve("127.0.0.2"), serve("127.0.0.1")
    url = f"{entry.url}/to/{inside.url}/ok"

    result = check(url, address_allowed=only_public_and("127.0.0.2"))

    assert result.error == CheckError.FORBIDDEN
    assert len(entry.requests) == 1 and inside.requests == []


def test_a_redirect_to_a_private_network_is_refused_before_connecting(serve, settings):
    settings.LINKCHECK_ALLOW_PRIVATE = False
    settings.LINKCHECK_TIMEOUT_SECONDS = 5
    entry = serve("127.0.0.2")
    started = time.monotonic()

    result = check(
        f"{entry.url}/to/http://10.0.0.7/admin", address_allowed=only_public_and("127.0.0.2")
    )

    assert result.error == CheckError.FORBIDDEN and "10.0.0.7" in result.detail
    assert time.monotonic() - started < 2


def days(n):
    return datetime(2026, 3, 1, 3, 0, tzinfo=UTC) + timedelta(days=n, minutes=n)


@pytest.fixture
def failing_link(server, topic):
    return Link.objects.create(topic=topic, url=f"{server.url}/status/404", title="Gone")


def test_a_link_is_broken_only_after_three_failures_over_two_days(failing_link):
    for day in (0, 1):
        check_links([failing_link], days(day))
        failing_link.refresh_from_db()
        assert failing_link.broken_since is None

    check_links([failing_link], days(2))

    failing_link.refresh_from_db()
    assert failing_link.broken_since == days(0)
    assert failing_link.checks.count() == 3


def test_three_failures_in_one_night_do_not_break_a_link(failing_link):
    for hour in range(3):
        check_links([failing_link], days(0) + timedelta(hours=hour))

    failing_link.refresh_from_db()
    assert failing_link.broken_since is None


def test_one_success_clears_a_broken_link(failing_link, server):
    for day in range(3):
        check_links([failing_link], days(day))
    failing_link.url = f"{server.url}/ok"
    failing_link.save()

    check_links([failing_link], days(3))

    failing_link.refresh_from_db()
    assert failing_link.broken_since is None


def test_the_thresholds_are_settings(failing_link, settings):
    settings.LINKCHECK_BROKEN_AFTER, settings.LINKCHECK_BROKEN_DAYS = 1, 0

    check_links([failing_link], days(0))

    failing_link.refresh_from_db()
    assert failing_link.broken_since == days(0)


def test_the_command_checks_published_links_and_reports(server, topic, capsys):
    Link.objects.create(topic=topic, url=f"{server.url}/ok", title="Fine")
    Link.objects.create(topic=topic, url=f"{server.url}/status/410", title="Gone")
    Link.objects.create(topic=topic, url=f"{server.url}/moved/301/ok", title="Moved")
    Link.objects.create(
        topic=topic, url=f"{server.url}/status/500", title="Draft", is_published=False
    )

    call_command("checklinks")

    out = capsys.readouterr().out
    assert f"FAIL {server.url}/status/410 (410)" in out
    assert f"MOVED {server.url}/moved/301/ok -> {server.url}/ok" in out
    assert "Checked 3 links: 2 ok, 1 failing, 0 broken, 1 moved permanently, 0 archived." in out
    check = LinkCheck.objects.get(link__title="Moved")
    assert check.redirect_chain[0] == [301, f"{server.url}/moved/301/ok"]


def test_the_command_refuses_unknown_link_ids(db):
    with pytest.raises(Exception, match="No link with id: 999"):
        call_command("checklinks", "999")


def test_readers_see_a_quiet_note_on_a_broken_link(client, link, topic):
    Link.objects.filter(pk=link.pk).update(broken_since=days(0))
    Link.objects.create(topic=topic, url="https://example.com/fine", title="Fine")

    page = client.get(topic.get_absolute_url()).text

    assert page.count("may be broken") == 1


@pytest.fixture
def links_in_each_state(topic):
    def make(title, **check):
        link = Link.objects.create(topic=topic, url=f"https://example.com/{title}", title=title)
        if check:
            LinkCheck.objects.create(link=link, ok=True, status=200, **check)
        return link

    broken = make("broken", archived=False)
    Link.objects.filter(pk=broken.pk).update(broken_since=days(0))
    return {
        "broken": broken,
        "redirected": make("redirected", suggested_url="https://example.org/new"),
        "archived": make("archived", archived=True),
        "never": make("never"),
        "fine": make("fine", final_url="https://example.com/fine"),
    }


@pytest.mark.parametrize("state", ["broken", "redirected", "archived", "never"])
def test_the_admin_filters_links_by_health(staff_client, links_in_each_state, state):
    url = reverse("admin:glossary_link_changelist")

    page = staff_client.get(url, {"health": state}).text

    shown = {title for title in links_in_each_state if f">{title}</a>" in page}
    assert shown == {state}


def test_check_now_checks_the_selected_links(staff_client, server, topic):
    link = Link.objects.create(topic=topic, url=f"{server.url}/status/404", title="Gone")
    url = reverse("admin:glossary_link_changelist")

    response = staff_client.post(
        url, {"action": "check_now", "_selected_action": [link.pk]}, follow=True
    )

    assert "Checked 1 link: 1 failing." in response.text
    assert link.checks.get().status == 404


def test_the_change_page_shows_the_check_history(staff_client, link):
    LinkCheck.objects.create(
        link=link, ok=False, status=None, error=CheckError.TIMEOUT, detail="No answer within 20 s"
    )

    page = staff_client.get(reverse("admin:glossary_link_change", args=[link.pk])).text

    assert "Check history" in page and "No answer within 20 s" in page


def test_a_moved_link_takes_its_new_url_in_one_click(staff_client, links_in_each_state):
    link = links_in_each_state["redirected"]
    change_page = reverse("admin:glossary_link_change", args=[link.pk])
    accept = reverse("admin:glossary_link_use_suggested_url", args=[link.pk])
    assert f'formaction="{accept}"' in staff_client.get(change_page).text

    response = staff_client.post(accept, follow=True)

    link.refresh_from_db()
    assert link.url == "https://example.org/new"
    assert "now links to https://example.org/new" in response.text
    change = link.history.first()
    assert change.history_user.username == "curator"
    assert change.history_change_reason == "Moved permanently: took the new URL."


def test_a_new_url_the_topic_already_has_is_refused(staff_client, links_in_each_state, topic):
    Link.objects.create(topic=topic, url="https://example.org/new", title="Already here")
    link = links_in_each_state["redirected"]

    response = staff_client.post(
        reverse("admin:glossary_link_use_suggested_url", args=[link.pk]), follow=True
    )

    link.refresh_from_db()
    assert link.url == "https://example.com/redirected"
    assert "This topic already has a link to this URL." in response.text


def test_a_links_history_keeps_its_newest_checks(failing_link, settings):
    settings.LINKCHECK_KEEP_CHECKS, settings.LINKCHECK_BROKEN_AFTER = 2, 1
    for day in range(4):
        check_links([failing_link], days(day))

    kept = [check.checked_at for check in failing_link.checks.all()]
    assert kept == [days(3), days(2)]
