"""Whole-page caching for readers that keeps each response's CSP nonce its own."""

import functools
import hashlib

from django.core.cache import cache
from django.http import HttpResponse
from django.middleware.csp import get_nonce

from .models import ContentRevision

# Stands in for the nonce in stored pages; each response gets its own nonce back.
NONCE_PLACEHOLDER = "__csp_nonce_placeholder__"
TIMEOUT = 60 * 60


def cache_page_for_readers(view):
    """Serve a reader the page rendered for the current content revision, if any.

    Staff see drafts, so their pages are never stored or served from the cache. Only
    successful pages are stored; the key changes whenever content does.
    """

    @functools.wraps(view)
    def wrapper(request, *args, **kwargs):
        if request.method not in ("GET", "HEAD") or request.user.is_staff:
            return view(request, *args, **kwargs)
        path = hashlib.sha256(request.get_full_path().encode()).hexdigest()
        key = f"page:{ContentRevision.current()}:{path}"
        nonce = str(get_nonce(request))
        if (html := cache.get(key)) is not None:
            return HttpResponse(html.replace(NONCE_PLACEHOLDER, nonce))
        response = view(request, *args, **kwargs)
        if hasattr(response, "render"):
            response.render()
        if response.status_code == 200:
            cache.set(key, response.content.decode().replace(nonce, NONCE_PLACEHOLDER), TIMEOUT)
        return response

    return wrapper
