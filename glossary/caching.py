"""Whole-page caching for readers that keeps each response's CSP nonce its own."""

import functools
import hashlib
import time

import redis
from django.core.cache import cache
from django.http import HttpResponse
from django.middleware.csp import get_nonce

from .models import ContentRevision
from .outages import Outage

# Stands in for the nonce in stored pages; each response gets its own nonce back.
NONCE_PLACEHOLDER = "__csp_nonce_placeholder__"
TIMEOUT = 60 * 60

outage = Outage("The page cache (Redis)")


def cache_page_for_readers(view=None, *, query=()):
    """Serve a reader the page rendered for the current content revision, if any.

    Staff see drafts, so their pages are never stored or served from the cache. Only
    successful pages are stored; the key changes whenever content does. The key holds
    the path and only the query parameters named in query (those the view reads), so
    made-up parameters cannot fill the cache with copies of one page.

    If the cache cannot be reached the page is rendered as if nothing were cached.
    """
    if view is None:
        return functools.partial(cache_page_for_readers, query=query)

    @functools.wraps(view)
    def wrapper(request, *args, **kwargs):
        if request.method not in ("GET", "HEAD") or request.user.is_staff:
            return view(request, *args, **kwargs)
        params = [(name, request.GET.getlist(name)) for name in query]
        page = hashlib.sha256(repr((request.path, params)).encode()).hexdigest()
        key = f"page:{ContentRevision.current()}:{page}"
        nonce = str(get_nonce(request))
        if (html := cached(cache.get, key)) is not None:
            return HttpResponse(html.replace(NONCE_PLACEHOLDER, nonce))
        response = view(request, *args, **kwargs)
        if hasattr(response, "render"):
            response.render()
        if response.status_code == 200:
            html = response.content.decode().replace(nonce, NONCE_PLACEHOLDER)
            cached(cache.set, key, html, TIMEOUT)
        return response

    return wrapper


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
