"""Whole-page caching for readers that keeps each response's CSP nonce its own."""

import dataclasses
import functools
import hashlib
import time

from django.core.cache import cache
from django.http import HttpResponse
from django.middleware.csp import get_nonce
from django.utils.cache import get_conditional_response
from django.utils.http import http_date
from django.views.decorators.gzip import gzip_page

from .models import ContentRevision

# Stands in for the nonce in stored pages; each response gets its own nonce back.
NONCE_PLACEHOLDER = "__csp_nonce_placeholder__"
TIMEOUT = 60 * 60


@dataclasses.dataclass(frozen=True)
class StoredPage:
    """A reader's page as rendered for one content revision, with its validators."""

    html: str  # with NONCE_PLACEHOLDER for the nonce
    etag: str
    last_modified: int  # when it was rendered: nothing it shows changed since

    @classmethod
    def of(cls, response, nonce):
        html = response.content.decode().replace(nonce, NONCE_PLACEHOLDER)
        # Weak: the same page is sent compressed or not, each time with its own nonce.
        etag = f'W/"{hashlib.sha256(html.encode()).hexdigest()[:32]}"'
        return cls(html, etag, int(time.time()))


@gzip_page  # safe here: a reader's page holds no CSRF token or other secret
def serve(request, page, nonce):
    """The page, or 304 Not Modified if the reader's copy is still current."""
    response = get_conditional_response(
        request, etag=page.etag, last_modified=page.last_modified
    ) or HttpResponse(page.html.replace(NONCE_PLACEHOLDER, nonce))
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


def cache_page_for_readers(view):
    """Serve a reader the page rendered for the current content revision, if any.

    Staff see drafts, so their pages are never stored or served from the cache. Only
    successful pages are stored; the key changes whenever content does. Readers'
    browsers revalidate with ETag or Last-Modified and get 304 Not Modified, without
    rendering, while the page is unchanged.
    """

    @functools.wraps(view)
    def wrapper(request, *args, **kwargs):
        if request.method not in ("GET", "HEAD") or request.user.is_staff:
            return view(request, *args, **kwargs)
        path = hashlib.sha256(request.get_full_path().encode()).hexdigest()
        key = f"page:{ContentRevision.current()}:{path}"
        nonce = str(get_nonce(request))
        if (page := cache.get(key)) is None:
            response = view(request, *args, **kwargs)
            if hasattr(response, "render"):
                response.render()
            if response.status_code != 200:
                return response
            page = StoredPage.of(response, nonce)
            cache.set(key, page, TIMEOUT)
        return serve(request, page, nonce)

    return wrapper
