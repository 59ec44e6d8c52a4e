"""Link health: visit links politely and record what happened.

`check_urls()` visits URLs concurrently (a cap overall and per host, a deadline per link,
HEAD falling back to GET, a cap on the bytes read) and never connects to a non-public
address: every connection resolves the host name itself, refuses loopback, private,
link-local and other non-global addresses, and connects to the address it checked, so
neither DNS nor a redirect can steer it inside the network. `record()` stores a check
and decides whether the link is broken.
"""

import asyncio
import ipaddress
import re
import socket
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import timedelta
from urllib.parse import urlsplit

import httpcore
import httpx
from django.conf import settings
from django.db import transaction

from .models import CheckError, ContentRevision, Link, LinkCheck, normalize_url

PERMANENT_REDIRECTS = {301, 308}
MAX_REDIRECTS = 10
# GitHub's banner on an archived repository's page ("This repository was archived by
# the owner on Jan 5, 2024. It is now read-only."); older pages said "has been".
ARCHIVED_BANNER = re.compile(rb"This repository (?:was|has been) archived by the owner", re.I)


class ForbiddenAddress(Exception):
    """The host resolves to no public address (and private ones are not allowed)."""


class NameNotFound(Exception):
    pass


def is_public(address):
    """Whether an IP address is globally routable unicast (not loopback, private…)."""
    if address.version == 6 and address.ipv4_mapped:
        address = address.ipv4_mapped
    return address.is_global and not address.is_multicast


def address_policy():
    """The address check the settings ask for."""
    return (lambda address: True) if settings.LINKCHECK_ALLOW_PRIVATE else is_public


class PublicAddressBackend(httpcore.AsyncNetworkBackend):
    """Resolves each host itself and connects only to addresses the policy allows.

    The allowed address is the one connected to (TLS still verifies the host name), so a
    second DNS answer cannot swap in a private address between the check and the connect.
    """

    def __init__(self, address_allowed):
        self.address_allowed = address_allowed
        self.backend = httpcore.AnyIOBackend()

    async def connect_tcp(self, host, port, timeout=None, local_address=None, socket_options=None):
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(
                host, port, type=socket.SOCK_STREAM
            )
        except socket.gaierror as error:
            raise NameNotFound(f"{host}: {error.strerror}") from None
        addresses = list(dict.fromkeys(ipaddress.ip_address(info[4][0]) for info in infos))
        allowed = [address for address in addresses if self.address_allowed(address)]
        if not allowed:
            refused = ", ".join(str(address) for address in addresses)
            raise ForbiddenAddress(f"{host} is not a public address ({refused})")
        for address in allowed:
            try:
                return await self.backend.connect_tcp(
                    str(address), port, timeout, local_address, socket_options
                )
            except httpcore.ConnectError as error:
                last_error = error
        raise last_error

    async def connect_unix_socket(self, path, timeout=None, socket_options=None):
        raise ForbiddenAddress("Unix sockets are not links")

    async def sleep(self, seconds):
        await self.backend.sleep(seconds)


class PublicAddressTransport(httpx.AsyncHTTPTransport):
    def __init__(self, address_allowed):
        super().__init__(retries=0, trust_env=False)
        # httpx 0.28 takes no network backend (encode/httpx#3749 would add one): swap the
        # pool it built for one that uses ours; this can go once a release has it.
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=httpx.create_ssl_context(trust_env=False),
            network_backend=PublicAddressBackend(address_allowed),
        )


@dataclass
class Result:
    """What one visit of a URL found."""

    url: str
    ok: bool = False
    status: int | None = None
    error: str = CheckError.NONE
    detail: str = ""
    final_url: str = ""
    redirect_chain: list = field(default_factory=list)
    suggested_url: str = ""
    archived: bool = False
    elapsed_ms: int = 0


def is_repository_page(url):
    """A GitHub repository's home page: https://github.com/owner/name."""
    parts = urlsplit(str(url))
    return parts.hostname in settings.LINKCHECK_GITHUB_HOSTS and (
        len([part for part in parts.path.split("/") if part]) == 2
    )


async def read_capped(response, limit):
    body = bytearray()
    async for chunk in response.aiter_bytes():
        body += chunk
        if len(body) >= limit:
            break
    return bytes(body)


class Checker:
    def __init__(self, address_allowed=None):
        self.timeout = settings.LINKCHECK_TIMEOUT_SECONDS
        self.max_bytes = settings.LINKCHECK_MAX_BYTES
        self.per_host = defaultdict(lambda: asyncio.Semaphore(settings.LINKCHECK_PER_HOST))
        self.overall = asyncio.Semaphore(settings.LINKCHECK_CONCURRENCY)
        self.client = httpx.AsyncClient(
            transport=PublicAddressTransport(address_allowed or address_policy()),
            headers={"User-Agent": settings.LINKCHECK_USER_AGENT},
            follow_redirects=True,
            max_redirects=MAX_REDIRECTS,
            timeout=self.timeout,
            trust_env=False,
        )

    async def check(self, url):
        result = Result(url)
        started = time.monotonic()
        host = urlsplit(url).hostname or ""
        try:
            async with self.overall, self.per_host[host], asyncio.timeout(self.timeout):
                await self.visit(url, result)
        except (TimeoutError, httpx.TimeoutException):
            result.error, result.detail = CheckError.TIMEOUT, f"No answer within {self.timeout} s"
        except NameNotFound as error:
            result.error, result.detail = CheckError.DNS, str(error)
        except ForbiddenAddress as error:
            result.error, result.detail = CheckError.FORBIDDEN, str(error)
        except httpx.TooManyRedirects:
            result.error = CheckError.REDIRECTS
            result.detail = f"More than {MAX_REDIRECTS} redirects (a loop?)"
        except (httpx.UnsupportedProtocol, httpx.InvalidURL) as error:
            result.error, result.detail = CheckError.INVALID, str(error)
        except httpx.ConnectError as error:
            result.error, result.detail = CheckError.CONNECT, str(error) or "Connection failed"
        except httpx.HTTPError as error:
            result.error, result.detail = CheckError.PROTOCOL, str(error) or type(error).__name__
        result.detail = result.detail[:300]
        result.elapsed_ms = round((time.monotonic() - started) * 1000)
        return result

    async def visit(self, url, result):
        # Repository pages are read for the archived banner; other links only need the
        # status, and some servers answer HEAD wrongly, so an error status falls back to GET.
        wants_body = is_repository_page(url)
        if not wants_body:
            response = await self.client.head(url)
            if response.status_code < 400:
                return self.describe(response, result)
        async with self.client.stream("GET", url) as response:
            if wants_body and response.status_code < 400 and is_repository_page(response.url):
                body = await read_capped(response, self.max_bytes)
                result.archived = bool(ARCHIVED_BANNER.search(body))
            return self.describe(response, result)

    def describe(self, response, result):
        result.status = response.status_code
        result.ok = response.status_code < 400
        result.error = CheckError.NONE if result.ok else CheckError.HTTP
        result.final_url = str(response.url)
        hops = [*response.history, response]
        result.redirect_chain = [[hop.status_code, str(hop.url)] for hop in hops]
        if (
            result.ok
            and response.history
            and all(hop.status_code in PERMANENT_REDIRECTS for hop in response.history)
            and normalize_url(result.final_url) != normalize_url(result.url)
        ):
            result.suggested_url = result.final_url

    async def close(self):
        await self.client.aclose()


async def check_urls(urls, address_allowed=None):
    """Visit each URL once; returns {url: Result}."""
    checker = Checker(address_allowed)
    try:
        unique = list(dict.fromkeys(urls))
        results = await asyncio.gather(*(checker.check(url) for url in unique))
    finally:
        await checker.close()
    return dict(zip(unique, results, strict=True))


def is_broken(recent_checks):
    """Broken: the last N checks all failed, on dates at least D days apart (newest first)."""
    needed, days = settings.LINKCHECK_BROKEN_AFTER, settings.LINKCHECK_BROKEN_DAYS
    streak = recent_checks[:needed]
    if len(streak) < needed or any(check.ok for check in streak):
        return False
    return streak[0].checked_at.date() - streak[-1].checked_at.date() >= timedelta(days=days)


@transaction.atomic
def record(link, result, now):
    """Store one check and update the link's broken state; returns the LinkCheck."""
    check = LinkCheck.objects.create(
        link=link,
        checked_at=now,
        ok=result.ok,
        status=result.status,
        error=result.error,
        detail=result.detail,
        final_url=result.final_url[:500],
        redirect_chain=result.redirect_chain,
        suggested_url=result.suggested_url[:500],
        archived=result.archived,
        elapsed_ms=result.elapsed_ms,
    )
    newest = link.checks.order_by("-checked_at", "-pk")
    keep = max(settings.LINKCHECK_KEEP_CHECKS, settings.LINKCHECK_BROKEN_AFTER)
    link.checks.exclude(pk__in=newest.values("pk")[:keep]).delete()
    recent = list(newest[: settings.LINKCHECK_BROKEN_AFTER])
    broken = is_broken(recent)
    if broken and not link.broken_since:
        broken_since = recent[-1].checked_at
    elif broken:
        broken_since = link.broken_since
    else:
        broken_since = None
    if broken_since != link.broken_since:
        # A plain update: the check is not an edit, so `updated` and the history keep still.
        Link.objects.filter(pk=link.pk).update(broken_since=broken_since)
        link.broken_since = broken_since
        ContentRevision.bump()  # readers' pages show the "may be broken" note
    return check


def check_links(links, now, address_allowed=None):
    """Check links (a list) and record each result; returns [(link, LinkCheck)]."""
    results = asyncio.run(check_urls([link.url for link in links], address_allowed))
    return [(link, record(link, results[link.url], now)) for link in links]
