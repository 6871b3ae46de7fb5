"""Plain HTTP sent to the TLS port: a 400 saying so, as Go's ``net/http`` answers.

A client that speaks ``http://`` to an ``https://`` port would otherwise get a
failed handshake and an empty reply ("the server broke off the exchange").
Go's servers (Docker distribution among them) look at the first record header
instead: when its five bytes look like an HTTP request line, they write
``HTTP/1.0 400 Bad Request`` with the body "Client sent an HTTP request to an
HTTPS server." and close. :class:`RefusePlainHTTPFactory` does the same in
front of the TLS factory; anything else (a TLS handshake starts with byte
0x16) goes on to TLS untouched. (:mod:`paxd.web.plainport` is the reverse: a
TLS handshake sent to a plain-HTTP port.)
"""

from __future__ import annotations

from twisted.internet.interfaces import IProtocolFactory
from twisted.protocols.policies import ProtocolWrapper, WrappingFactory

__all__ = ["REFUSAL", "RefusePlainHTTPFactory", "looks_like_http"]

#: Go's answer, byte for byte (net/http's server.go)
REFUSAL = b"HTTP/1.0 400 Bad Request\r\n\r\nClient sent an HTTP request to an HTTPS server.\n"
#: how many bytes Go looks at: a TLS record header
_HEADER = 5
#: the starts of request lines Go recognises, and the rest of the registry's methods
_STARTS = (b"GET /", b"HEAD ", b"POST ", b"PUT /", b"OPTIO", b"PATCH", b"DELET", b"CONNE", b"TRACE")
#: the first byte of a TLS handshake record
_TLS_HANDSHAKE = 0x16


def looks_like_http(header: bytes) -> bool:
    """Whether the first bytes of a connection are the start of an HTTP request line."""
    return any(start.startswith(header[:_HEADER]) for start in _STARTS) if header else False


class _RefusePlainHTTPProtocol(ProtocolWrapper):
    """Holds the first few bytes until they tell TLS from HTTP, then steps aside."""

    _decided = False
    _refused = False
    _held = b""
    #: writes pass straight through to the socket below (paxd.web.direct may write there)
    direct_passthrough = True

    def dataReceived(self, data: bytes) -> None:
        if self._refused:
            return  # the rest of a plain request: already answered
        if self._decided:
            super().dataReceived(data)
            return
        held = self._held + data
        if held[:1] != bytes([_TLS_HANDSHAKE]) and looks_like_http(held):
            if len(held) < _HEADER:
                self._held = held  # "GE": wait for the rest of the header
                return
            self._refused = True
            if self.transport is not None:
                self.transport.write(REFUSAL)
                self.transport.loseConnection()
            return
        self._decided = True
        self._held = b""
        super().dataReceived(held)


class RefusePlainHTTPFactory(WrappingFactory):
    """Wraps the TLS factory of an https listener so that plain HTTP gets Go's 400."""

    protocol = _RefusePlainHTTPProtocol

    def __init__(self, wrapped: IProtocolFactory) -> None:
        super().__init__(wrapped)
