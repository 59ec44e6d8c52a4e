"""Over-long requests get an HTTP error from Daphne instead of a silently closed socket.

Daphne parses HTTP with Twisted's HTTPChannel, a LineReceiver that drops the connection
without a word when a line passes 16 KiB (twisted/twisted#4229), and whose 400 for a
request over its header limit is often lost: the socket closes with the client's bytes
unread, so the client gets a reset instead. This can go once Twisted answers 414/431
itself and drains what it does not read.
"""

from twisted.internet import reactor
from twisted.web import http

# How long a refused client may go on sending before the connection is cut.
DRAIN_SECONDS = 2


def refuse(channel, status):
    """Answer status, close our side, and read (and drop) the rest for a moment."""
    if getattr(channel, "refused", False):
        return
    channel.refused = True
    channel.transport.write(
        b"HTTP/1.1 " + status + b"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )
    # Lines already read in this chunk would still be handed to lineReceived.
    channel.dataReceived = channel.lineReceived = lambda data: None
    channel.transport.loseWriteConnection()
    reactor.callLater(DRAIN_SECONDS, channel.transport.abortConnection)


def line_length_exceeded(channel, line):
    # The first line is the request line; any later one is a header.
    if channel._HTTPChannel__first_line:
        refuse(channel, b"414 URI Too Long")
    else:
        refuse(channel, b"431 Request Header Fields Too Large")


def respond_to_bad_request(channel):
    refuse(channel, b"400 Bad Request")


def install():
    http.HTTPChannel.lineLengthExceeded = line_length_exceeded
    http.HTTPChannel._respondToBadRequestAndDisconnect = respond_to_bad_request
