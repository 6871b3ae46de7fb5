"""Refuse a TLS handshake on a plain-HTTP listener at once, as Go's net/http does.

Clients such as skopeo and docker try HTTPS first even with ``--insecure``.
A plain Twisted HTTP channel would wait for a request line that never comes,
so every such client would sit out its handshake timeout before falling back
to HTTP.  Answering the ClientHello with a 400 and closing fails the
handshake in an instant instead.
"""

from __future__ import annotations

from twisted.internet.interfaces import IProtocolFactory
from twisted.protocols.policies import ProtocolWrapper, WrappingFactory

#: the first byte of every TLS record carrying a handshake
TLS_HANDSHAKE = 0x16
REFUSAL = b"HTTP/1.0 400 Bad Request\r\n\r\nClient sent an HTTP request to an HTTPS server.\n"


class _RefuseTLSProtocol(ProtocolWrapper):
    """Looks at the first byte of a connection, then gets out of the way."""

    _checked = False
    #: paxd.web.direct may write to the socket below (nothing is added to the stream)
    direct_passthrough = True

    def dataReceived(self, data: bytes) -> None:
        if not self._checked and data:
            self._checked = True
            if data[0] == TLS_HANDSHAKE and self.transport is not None:
                self.transport.write(REFUSAL)
                self.transport.loseConnection()
                return
        super().dataReceived(data)


class RefuseTLSFactory(WrappingFactory):
    """Wraps an HTTP factory so that TLS handshakes on its port fail fast."""

    protocol = _RefuseTLSProtocol

    def __init__(self, wrapped: IProtocolFactory) -> None:
        super().__init__(wrapped)
