"""ACME challenge responders: HTTP-01 on the plain port, TLS-ALPN-01 on the TLS listener.

Both are shaped like txacme's responders: the issuing service calls
``start_responding(name, token, key_authorization)`` before it tells the ACME
server the challenge is ready, and ``stop_responding`` once the authorization
is settled. Everything here runs on the reactor except :func:`alpn_challenge`,
which generates a key and is meant for the ACME thread pool.
"""

from __future__ import annotations

import datetime
import hashlib
from typing import Any, Protocol

from acme import challenges
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes
from twisted.logger import Logger
from twisted.web.resource import IResource, NoResource, Resource
from twisted.web.server import Request

from paxd.tls.certificates import self_signed, utcnow

__all__ = [
    "ACME_IDENTIFIER_OID",
    "TLSALPN01",
    "HTTP01Responder",
    "IResponder",
    "TLSALPN01Responder",
    "alpn_challenge",
]

log = Logger(namespace="paxd.tls")

#: RFC 8737 id-pe-acmeIdentifier
ACME_IDENTIFIER_OID = x509.ObjectIdentifier("1.3.6.1.5.5.7.1.31")


class TLSALPN01Response(challenges.KeyAuthorizationChallengeResponse):
    """ACME tls-alpn-01 challenge response (the ``acme`` library no longer ships one)."""

    typ = "tls-alpn-01"


class TLSALPN01(challenges.KeyAuthorizationChallenge):
    """ACME tls-alpn-01 challenge (RFC 8737)."""

    response_cls = TLSALPN01Response
    typ = response_cls.typ

    def validation(self, account_key: Any, **unused_kwargs: Any) -> str:
        """The key authorization; the certificate is made from it by :func:`alpn_challenge`."""
        return self.key_authorization(account_key)


# Register with the acme library unless a version of it already knows the type.
if TLSALPN01.typ not in challenges.Challenge.TYPES:
    challenges.ChallengeResponse.register(TLSALPN01Response)
    challenges.Challenge.register(TLSALPN01)


class IResponder(Protocol):
    """A challenge responder the issuing service drives."""

    #: the ACME challenge type it answers, e.g. ``http-01``
    challenge_type: str

    def start_responding(self, name: str, token: str, key_authorization: str) -> None:
        """Answer the challenge *token* for host *name* from now on."""

    def stop_responding(self, name: str, token: str) -> None:
        """Stop answering it."""


def alpn_challenge(
    name: str, key_authorization: str, now: datetime.datetime | None = None
) -> tuple[x509.Certificate, PrivateKeyTypes]:
    """RFC 8737's validation certificate for *name* (blocking: generates a key).

    Self-signed, the one SAN *name*, and the critical acmeIdentifier extension
    holding the SHA-256 of the key authorization as an ASN.1 OCTET STRING.
    """
    digest = hashlib.sha256(key_authorization.encode("ascii")).digest()
    extension = x509.Extension(
        ACME_IDENTIFIER_OID,
        True,
        x509.UnrecognizedExtension(ACME_IDENTIFIER_OID, b"\x04\x20" + digest),
    )
    key = ec.generate_private_key(ec.SECP256R1())
    certificate = self_signed(
        key, [name], now or utcnow(), datetime.timedelta(days=7), extensions=[extension]
    )
    return certificate, key


class TLSALPN01Responder:
    """Pending TLS-ALPN-01 challenges, looked up by :class:`~paxd.tls.context.ServerTLS`.

    The certificates are made in the ACME thread (:func:`alpn_challenge`) and
    handed over with :meth:`add`; :meth:`start_responding` is for callers that
    can afford the key generation where they are (tests).
    """

    challenge_type = TLSALPN01.typ

    def __init__(self) -> None:
        self._pending: dict[str, tuple[x509.Certificate, PrivateKeyTypes]] = {}

    def add(self, name: str, certificate: x509.Certificate, key: PrivateKeyTypes) -> None:
        """Serve *certificate* to ``acme-tls/1`` clients asking for *name*."""
        self._pending[name.lower()] = (certificate, key)

    def start_responding(self, name: str, token: str, key_authorization: str) -> None:
        """Make the validation certificate here and serve it."""
        self.add(name, *alpn_challenge(name, key_authorization))

    def stop_responding(self, name: str, token: str) -> None:
        """Forget the challenge for *name*."""
        self._pending.pop(name.lower(), None)

    def certificate_for(self, server_name: str) -> tuple[x509.Certificate, PrivateKeyTypes] | None:
        """The challenge certificate and key for *server_name*, if one is pending."""
        return self._pending.get(server_name.lower())


class _KeyAuthorization(Resource):
    isLeaf = True

    def __init__(self, key_authorization: str) -> None:
        super().__init__()
        self.body = key_authorization.encode("ascii")

    def render_GET(self, request: Request) -> bytes:
        request.setHeader(b"content-type", b"text/plain")
        return self.body

    def render_HEAD(self, request: Request) -> bytes:
        request.setHeader(b"content-type", b"text/plain")
        request.setHeader(b"content-length", str(len(self.body)).encode())
        return b""


class HTTP01Responder(Resource):
    """``/.well-known/acme-challenge/``: the key authorization of each pending token."""

    challenge_type = challenges.HTTP01.typ

    def __init__(self) -> None:
        super().__init__()
        self._tokens: dict[str, str] = {}

    def start_responding(self, name: str, token: str, key_authorization: str) -> None:
        """Serve *key_authorization* at ``/.well-known/acme-challenge/<token>``."""
        self._tokens[token] = key_authorization

    def stop_responding(self, name: str, token: str) -> None:
        """Stop serving *token*."""
        self._tokens.pop(token, None)

    def getChild(self, path: bytes, request: Request) -> IResource:
        key_authorization = self._tokens.get(path.decode("ascii", "replace"))
        if key_authorization is None or request.postpath:
            return NoResource("No such ACME challenge.")
        log.info("answering an HTTP-01 validation for token {token}", token=path.decode())
        return _KeyAuthorization(key_authorization)

    def render(self, request: Request) -> bytes:
        return NoResource("No such ACME challenge.").render(request)
