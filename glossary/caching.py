"""Whole-page caching for readers that keeps each response's CSP nonce its own."""

import dataclasses
import functools
import hashlib
import struct
import time
import zlib

import redis
from django.conf import settings
from django.core.cache import cache
from django.db import OperationalError
from django.http import HttpResponse
from django.middleware.clickjacking import XFrameOptionsMiddleware
from django.middleware.common import CommonMiddleware
from django.middleware.csp import ContentSecurityPolicyMiddleware, get_nonce
from django.urls import Resolver404, resolve
from django.utils.cache import get_conditional_response, patch_vary_headers
from django.utils.http import http_date
from django.utils.regex_helper import _lazy_re_compile

from .middleware import DatabaseUnavailableMiddleware, database
from .models import ContentRevision
from .outages import Outage

TIMEOUT = 60 * 60
# Settings a reader's page shows (the editor or "turned off", the limits next to Run): a
# page is stored per their values, so a change shows at once, even in a shared Redis.
PAGE_SETTINGS = (
    "SNIPPET_READER_CODE",
    "SNIPPET_READER_LIMITS",
    "SNIPPET_LIMITS",
    "SNIPPET_RUNTIME_LIMITS",
)
ACCEPTS_GZIP = _lazy_re_compile(r"\bgzip\b")
# A gzip member's header (no name, no time) and a deflate stream's final, empty block.
GZIP_HEADER = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"
FINAL_BLOCK = zlib.compressobj(6, zlib.DEFLATED, -zlib.MAX_WBITS).flush()


def deflate(data):
    """data as raw deflate blocks that end on a byte boundary and finish no stream, so
    that such pieces, joined, are one stream (each refers back only within itself)."""
    compressor = zlib.compressobj(6, zlib.DEFLATED, -zlib.MAX_WBITS)
    return compressor.compress(data) + compressor.flush(zlib.Z_FULL_FLUSH)


@dataclasses.dataclass(frozen=True)
class StoredPage:
    """A reader's page as rendered for one content revision, with its validators.

    The page is kept as the pieces around its nonce, plain and compressed, so that each
    response puts its own nonce in without compressing the whole page again.
    """

    pieces: tuple  # the page's bytes, split where the nonce goes
    deflated: tuple  # each piece compressed on its own
    etag: str
    last_modified: int  # when it was rendered: nothing it shows changed since

    @classmethod
    def of(cls, response, nonce):
        pieces = tuple(response.content.split(nonce.encode()))
        # Weak: the same page is sent compressed or not, each time with its own nonce.
        etag = f'W/"{hashlib.sha256(b"".join(pieces)).hexdigest()[:32]}"'
        return cls(pieces, tuple(map(deflate, pieces)), etag, int(time.time()))

    def html(self, nonce):
        return nonce.encode().join(self.pieces)

    def gzipped(self, nonce):
        html = self.html(nonce)
        stream = deflate(nonce.encode()).join(self.deflated) + FINAL_BLOCK
        return GZIP_HEADER + stream + struct.pack("<II", zlib.crc32(html), len(html) % 2**32)


def serve(request, page, nonce):
    """The page, gzipped if the browser accepts it, or 304 Not Modified if the reader's
    copy is still current. Safe to compress: a reader's page holds no CSRF token or other
    secret, and its only varying part, the nonce, is new in every response."""
    response = get_conditional_response(request, etag=page.etag, last_modified=page.last_modified)
    if response is None:
        if ACCEPTS_GZIP.search(request.headers.get("Accept-Encoding", "")):
            response = HttpResponse(page.gzipped(nonce))
            response["Content-Encoding"] = "gzip"
        else:
            response = HttpResponse(page.html(nonce))
    # Staff, known by their session cookie, get other pages.
    patch_vary_headers(response, ("Accept-Encoding", "Cookie"))
    response["ETag"] = page.etag
    response["Last-Modified"] = http_date(page.last_modified)
    # Browsers keep the page but ask each time whether it changed: edits show at once.
    response["Cache-Control"] = "no-cache"
    if response.status_code == 304:
        # Caches merge a 304's headers into their copy (RFC 9111, 4.3.4): a new nonce in
        # the policy would no longer match the copy's scripts. An empty policy, as
        # @csp_override({}) sets, makes the middleware add none.
        response._csp_config = {}
    return response


outage = Outage("The page cache (Redis)")


def cache_page_for_readers(view=None, *, query=()):
    """Serve a reader the page rendered for the current content revision, if any.

    Staff see drafts, so their pages are never stored or served from the cache. Only
    successful pages are stored; the key changes whenever content or PAGE_SETTINGS do.
    The key holds the path and only the query parameters named in query (those the view
    reads), so made-up parameters cannot fill the cache with copies of one page. Readers'
    browsers revalidate with ETag or Last-Modified and get 304 Not Modified, without
    rendering, while the page is unchanged.

    If the cache cannot be reached the page is rendered as if nothing were cached.
    ReaderPagesMiddleware serves most readers these pages before the rest of the stack.
    """
    if view is None:
        return functools.partial(cache_page_for_readers, query=query)

    @functools.wraps(view)
    def wrapper(request, *args, **kwargs):
        if request.method not in ("GET", "HEAD") or request.user.is_staff:
            return view(request, *args, **kwargs)
        key = page_key(request, query)
        nonce = str(get_nonce(request))
        missed = getattr(request, "page_missed", None) == key  # looked up by the middleware
        if missed or (page := cached(cache.get, key)) is None:
            response = view(request, *args, **kwargs)
            if hasattr(response, "render"):
                response.render()
            if response.status_code != 200:
                return response
            page = StoredPage.of(response, nonce)
            cached(cache.set, key, page, TIMEOUT)
        return serve(request, page, nonce)

    wrapper.page_query = query
    return wrapper


def page_key(request, query):
    """The cache key of request's page: the content revision, the path, the query
    parameters named in query and the settings the page shows."""
    params = [(name, request.GET.getlist(name)) for name in query]
    shown = [getattr(settings, name) for name in PAGE_SETTINGS]
    path = hashlib.sha256(repr((request.path, params, shown)).encode()).hexdigest()
    return f"page:{ContentRevision.current()}:{path}"


class ReaderPagesMiddleware:
    """Serves a cached reader's page before sessions, authentication, CSRF and the rest.

    A request without a session cookie cannot be staff's, so a page stored by
    cache_page_for_readers is what it would get. Such a page still passes through the
    middleware below this one that checks a request (ALLOWED_HOSTS) or sets a reader's
    page headers (AROUND), and through all those above, so it is answered as if served
    the long way. Everything else (a session cookie, a page not stored yet, a view not
    cached, the cache unreachable, the database known to be down) goes down the stack.
    """

    # Below this one in MIDDLEWARE, what a reader's page needs, in the same order: the
    # Host check and Content-Length, X-Frame-Options, the CSP header and its nonce.
    AROUND = (CommonMiddleware, XFrameOptionsMiddleware, ContentSecurityPolicyMiddleware)

    def __init__(self, get_response):
        self.get_response = get_response
        self.serve_page = self.serve_stored
        for middleware in reversed(self.AROUND):
            self.serve_page = middleware(self.serve_page)

    def __call__(self, request):
        if (
            request.method not in ("GET", "HEAD")
            or settings.SESSION_COOKIE_NAME in request.COOKIES
            or database.down
            or (query := self.page_query(request)) is None
        ):
            return self.get_response(request)
        try:
            key = page_key(request, query)
        except OperationalError as error:  # reading the content revision
            DatabaseUnavailableMiddleware.failed(error)  # the long way answers 503 at once
            return self.get_response(request)
        if (page := cached(cache.get, key)) is None:
            request.page_missed = key
            return self.get_response(request)
        request.stored_page = page
        return self.serve_page(request)

    @staticmethod
    def serve_stored(request):
        return serve(request, request.stored_page, str(get_nonce(request)))

    @staticmethod
    def page_query(request):
        """The query parameters the view of request's path reads, if it is a cached
        reader's page; None otherwise."""
        try:
            match = resolve(request.path_info, getattr(request, "urlconf", None))
        except Resolver404:
            return None
        return getattr(match.func, "page_query", None)


def cached(operation, *args):
    """operation(*args) on the cache, or None while the cache is unreachable."""
    try:
        result = operation(*args)
    except redis.RedisError as error:
        outage.failed(functools.partial(str, error))
        return None
    outage.succeeded()
    return result


def count_this_hour(action, request):
    """How often this client has done action this hour, this time included; counted in
    the cache (shared by every process when it is Redis), 0 while it is unreachable."""
    key = f"hourly:{action}:{request.META.get('REMOTE_ADDR', '')}:{int(time.time() // 3600)}"
    cached(cache.add, key, 0, 60 * 60)
    try:
        return cached(cache.incr, key) or 0
    except ValueError:  # expired between add() and incr()
        return 0
