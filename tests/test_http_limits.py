"""Requests too large for the server get an HTTP error from a real Daphne, not silence."""

import socket

import pytest

from tests.live_server import daphne, seeded_database, site_env


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    directory = tmp_path_factory.mktemp("site")
    env = site_env(DATABASE_URL=seeded_database(directory), REDIS_URL=None)
    with daphne(env, directory / "daphne.log") as process:
        yield process


def exchange(server, request):
    """Send request on a raw socket; the first line of the answer ('' if none)."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        try:
            sock.sendall(request)
        except ConnectionError:
            pass  # the server may answer and close before reading everything
        answer = b""
        while b"\r\n" not in answer:
            chunk = sock.recv(4096)
            if not chunk:
                break
            answer += chunk
    return answer.split(b"\r\n")[0].decode()


def get(path, headers=b""):
    return b"GET " + path + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n" + headers + b"\r\n"


@pytest.mark.parametrize("length", [20_000, 100_000, 2_000_000])
def test_a_request_line_too_long_gets_414(server, length):
    assert exchange(server, get(b"/?q=" + b"a" * length)) == "HTTP/1.1 414 URI Too Long"


def test_a_header_too_long_gets_431(server):
    answer = exchange(server, get(b"/", b"X-Padding: " + b"a" * 20_000 + b"\r\n"))

    assert answer == "HTTP/1.1 431 Request Header Fields Too Large"


def test_too_many_headers_get_400(server):
    answer = exchange(server, get(b"/", b"X-Padding: aaaaaaaaaaaaaaaaaaaaaaaa\r\n" * 1000))

    assert answer == "HTTP/1.1 400 Bad Request"


def test_a_long_request_line_within_the_limit_is_served(server):
    assert exchange(server, get(b"/?q=" + b"a" * 8_000)) == "HTTP/1.1 200 OK"
