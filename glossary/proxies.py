"""The client's real address when Daphne sits behind reverse proxies (TRUSTED_PROXIES).

Each proxy appends the address it was connected from to X-Forwarded-For, so the list
reads left to right from the client to the last proxy; anything left of what a trusted
proxy appended may be the client's own invention. The client is therefore the right-most
address that is not a trusted proxy, and the peer itself when the peer is not one.
"""

import ipaddress

from django.conf import settings


def is_trusted(address):
    try:
        address = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(address in ipaddress.ip_network(n, strict=False) for n in settings.TRUSTED_PROXIES)


def client_address(peer, forwarded_for):
    """The client's address, given the peer's and the X-Forwarded-For header's value."""
    hops = [hop.strip() for hop in forwarded_for.split(",") if hop.strip()]
    address = peer
    while hops and is_trusted(address):
        address = hops.pop()
    return address


class TrustedProxiesMiddleware:
    """Sets an HTTP or WebSocket scope's client to the real client's address (port 0 when
    it came from X-Forwarded-For): what the run rate limit and REMOTE_ADDR then see.

    It replaces Daphne's --proxy-headers, which believes the left-most X-Forwarded-For
    from anyone.
    """

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] in ("http", "websocket") and scope.get("client"):
            peer = scope["client"][0]
            values = [value for name, value in scope["headers"] if name == b"x-forwarded-for"]
            address = client_address(peer, b",".join(values).decode("latin-1"))
            if address != peer:
                scope = {**scope, "client": [address, 0]}
        return await self.app(scope, receive, send)
