"""TLS for the registry's listeners: the policy from ``http.tls`` and a swappable server context.

:class:`ServerTLS` is what a listener's TLS factory (:mod:`paxd.tls.offload`) asks for
each new connection. It holds one OpenSSL context built from the current
:class:`~paxd.tls.certificates.CertificateBundle`; :meth:`ServerTLS.swap`
builds a new context from a new bundle and makes it current, so renewed or
replaced certificates take effect for the next handshake while connections
already open keep theirs. PEM is never read per handshake.

The policy is Mozilla's "intermediate" profile unless ``http.tls`` says
otherwise (:data:`MOZILLA_INTERMEDIATE`): TLS 1.2 with AEAD suites and
forward secrecy only (ECDHE with AES-GCM or ChaCha20-Poly1305), and TLS 1.3;
key exchange on X25519, P-256 or P-384.  ``ciphersuites`` replaces the TLS
1.2 list and ``minimumtls`` the lowest version (below TLS 1.2, without
``ciphersuites``, OpenSSL's defaults, which such clients need, with a
warning).  The profile's DHE suites are left out: they need Diffie-Hellman
parameters of the operator's, and every client that has them has ECDHE.

The context negotiates ALPN ``http/1.1`` only, and answers RFC 8737
TLS-ALPN-01 validation: a client that offers ``acme-tls/1`` for a name with a
pending challenge gets the challenge certificate instead of the normal one.
"""

from __future__ import annotations

from typing import Any, Protocol

import attrs
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes
from OpenSSL import SSL
from OpenSSL._util import lib as _openssl
from twisted.internet import ssl
from twisted.internet.interfaces import IOpenSSLServerConnectionCreator, IProtocolFactory
from twisted.logger import Logger
from zope.interface import implementer

from paxd.config import TLSConfig
from paxd.tls.certificates import CertificateBundle, TLSSetupError, read_file
from paxd.tls.offload import OffloadTLSFactory

__all__ = [
    "ACME_TLS_ALPN",
    "HTTP_ALPN",
    "MOZILLA_INTERMEDIATE",
    "ChallengeCertificates",
    "ServerTLS",
    "TLSPolicy",
    "TLSSetupError",
    "cipher_string",
    "policy_from_config",
    "wrap_tls",
]

log = Logger(namespace="paxd.tls")

#: RFC 8737's ALPN protocol for TLS-ALPN-01 validation
ACME_TLS_ALPN = b"acme-tls/1"
#: the one application protocol paxd speaks over TLS
HTTP_ALPN = b"http/1.1"
#: TLS 1.3 suites in the server's order of preference (Go's, with AES instructions)
TLS13_SUITES = b"TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256"

_VERSIONS = {
    "tls1.0": ssl.TLSVersion.TLSv1_0,
    "tls10": ssl.TLSVersion.TLSv1_0,
    "tls1.1": ssl.TLSVersion.TLSv1_1,
    "tls11": ssl.TLSVersion.TLSv1_1,
    "tls1.2": ssl.TLSVersion.TLSv1_2,
    "tls12": ssl.TLSVersion.TLSv1_2,
    "tls1.3": ssl.TLSVersion.TLSv1_3,
    "tls13": ssl.TLSVersion.TLSv1_3,
}

#: Go's (and so distribution's) TLS 1.2 cipher suite names → OpenSSL's names
_GO_CIPHERS = {
    "TLS_RSA_WITH_AES_128_CBC_SHA": "AES128-SHA",
    "TLS_RSA_WITH_AES_256_CBC_SHA": "AES256-SHA",
    "TLS_RSA_WITH_AES_128_CBC_SHA256": "AES128-SHA256",
    "TLS_RSA_WITH_AES_128_GCM_SHA256": "AES128-GCM-SHA256",
    "TLS_RSA_WITH_AES_256_GCM_SHA384": "AES256-GCM-SHA384",
    "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA": "ECDHE-ECDSA-AES128-SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA": "ECDHE-ECDSA-AES256-SHA",
    "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA": "ECDHE-RSA-AES128-SHA",
    "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA": "ECDHE-RSA-AES256-SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256": "ECDHE-ECDSA-AES128-SHA256",
    "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256": "ECDHE-RSA-AES128-SHA256",
    "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256": "ECDHE-RSA-AES128-GCM-SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256": "ECDHE-ECDSA-AES128-GCM-SHA256",
    "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384": "ECDHE-RSA-AES256-GCM-SHA384",
    "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384": "ECDHE-ECDSA-AES256-GCM-SHA384",
    "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256": "ECDHE-RSA-CHACHA20-POLY1305",
    "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256": "ECDHE-ECDSA-CHACHA20-POLY1305",
}
_GO_CIPHERS["TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305"] = _GO_CIPHERS[
    "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256"
]
_GO_CIPHERS["TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305"] = _GO_CIPHERS[
    "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256"
]
#: TLS 1.3 suites: Go accepts the names and ignores them (they are not configurable)
_TLS13_CIPHERS = (
    "TLS_AES_128_GCM_SHA256",
    "TLS_AES_256_GCM_SHA384",
    "TLS_CHACHA20_POLY1305_SHA256",
)

#: Mozilla's "intermediate" TLS 1.2 suites (guidelines 5.7), without DHE (module docstring)
MOZILLA_INTERMEDIATE = ":".join(
    [
        "ECDHE-ECDSA-AES128-GCM-SHA256",
        "ECDHE-RSA-AES128-GCM-SHA256",
        "ECDHE-ECDSA-AES256-GCM-SHA384",
        "ECDHE-RSA-AES256-GCM-SHA384",
        "ECDHE-ECDSA-CHACHA20-POLY1305",
        "ECDHE-RSA-CHACHA20-POLY1305",
    ]
)
#: the profile's key-exchange groups (OpenSSL would also offer X448 and P-521)
MOZILLA_GROUPS = b"X25519:P-256:P-384"


@attrs.frozen
class TLSPolicy:
    """How the TLS listener negotiates: minimum version, cipher list, client certificates."""

    minimum: ssl.TLSVersion = ssl.TLSVersion.TLSv1_2
    #: an OpenSSL cipher string for TLS 1.2 and older; ``None``: Twisted's defaults
    ciphers: str | None = MOZILLA_INTERMEDIATE
    #: key-exchange groups, as OpenSSL names them; ``None``: OpenSSL's defaults
    groups: bytes | None = MOZILLA_GROUPS
    #: CAs that sign acceptable client certificates; when set, a client certificate is required
    client_cas: tuple[x509.Certificate, ...] = ()


def cipher_string(names: tuple[str, ...]) -> str | None:
    """``http.tls.ciphersuites`` (Go names) as an OpenSSL cipher string; ``None`` if empty.

    :raises TLSSetupError: for a name Go does not know.
    """
    openssl = []
    for i, name in enumerate(names):
        if name.upper() in _TLS13_CIPHERS:
            continue
        mapped = _GO_CIPHERS.get(name.upper())
        if mapped is None:
            raise TLSSetupError(
                f"http.tls.ciphersuites.{i}: unknown cipher suite {name!r}; use Go's names,"
                " e.g. TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"
            )
        openssl.append(mapped)
    return ":".join(openssl) or None


def policy_from_config(tls: TLSConfig) -> TLSPolicy:
    """The :class:`TLSPolicy` of ``http.tls`` (reads the ``clientcas`` files: blocking).

    :raises TLSSetupError: an unknown version or cipher suite, an unusable CA file.
    """
    name = (tls.minimumtls or "tls1.2").lower()
    minimum = _VERSIONS.get(name)
    if minimum is None:
        raise TLSSetupError(
            f"http.tls.minimumtls: unknown version {tls.minimumtls!r}; use tls1.2 or tls1.3"
        )
    cas: list[x509.Certificate] = []
    for i, path in enumerate(tls.clientcas):
        key = f"http.tls.clientcas.{i}"
        data = read_file(path, key)
        try:
            cas.extend(x509.load_pem_x509_certificates(data))
        except ValueError:
            raise TLSSetupError(
                f"{key}: {path} holds no PEM CA certificate; list CA certificate files here"
            ) from None
    ciphers = cipher_string(tls.ciphersuites)
    if ciphers is None:
        if minimum < ssl.TLSVersion.TLSv1_2:
            # no AEAD suite exists below TLS 1.2: such clients need the old ones
            log.warn(
                "http.tls.minimumtls is {version}: offering OpenSSL's default cipher suites"
                " (CBC and SHA-1 included), not Mozilla's intermediate profile",
                version=name,
            )
        else:
            ciphers = MOZILLA_INTERMEDIATE
    return TLSPolicy(minimum=minimum, ciphers=ciphers, client_cas=tuple(cas))


class ChallengeCertificates(Protocol):
    """Where :class:`ServerTLS` finds TLS-ALPN-01 challenge certificates (the ACME responder)."""

    def certificate_for(self, server_name: str) -> tuple[x509.Certificate, PrivateKeyTypes] | None:
        """The challenge certificate and key for *server_name*, if a challenge is pending."""


class _NoChallenges:
    def certificate_for(self, server_name: str) -> tuple[x509.Certificate, PrivateKeyTypes] | None:
        return None


@implementer(IOpenSSLServerConnectionCreator)
class ServerTLS:
    """The TLS server side of every registry listener: one current context, swappable.

    :ivar bundle: the certificate being served to new connections.
    """

    def __init__(
        self,
        bundle: CertificateBundle,
        policy: TLSPolicy | None = None,
        challenges: ChallengeCertificates | None = None,
    ) -> None:
        self.policy = policy or TLSPolicy()
        self.challenges: ChallengeCertificates = challenges or _NoChallenges()
        self.bundle = bundle
        self._context = self._build(bundle)

    def swap(self, bundle: CertificateBundle) -> None:
        """Serve *bundle* to every new connection from now on (open connections keep theirs).

        :raises TLSSetupError: OpenSSL refuses the bundle; the current one stays.
        """
        context = self._build(bundle)
        self.bundle, self._context = bundle, context
        log.info(
            "now serving certificate serial {serial:x} for {names}, valid until {not_after}",
            serial=bundle.serial,
            names=", ".join([*bundle.names()[0], *map(str, bundle.names()[1])]) or "(no SAN)",
            not_after=bundle.not_after.isoformat(),
        )

    def serverConnectionForTLS(self, tlsProtocol: Any) -> SSL.Connection:
        """A connection on the current context (called once per accepted connection)."""
        return SSL.Connection(self._context, None)

    def _build(self, bundle: CertificateBundle) -> SSL.Context:
        policy = self.policy
        kwargs: dict[str, Any] = {}
        if policy.minimum < ssl.TLSVersion.TLSv1_2:
            kwargs["insecurelyLowerMinimumTo"] = policy.minimum
        else:
            kwargs["raiseMinimumTo"] = policy.minimum
        if policy.ciphers:
            kwargs["acceptableCiphers"] = ssl.AcceptableCiphers.fromOpenSSLCipherString(
                policy.ciphers
            )
        if policy.client_cas:
            kwargs["trustRoot"] = ssl.trustRootFromCertificates(
                [
                    ssl.Certificate.loadPEM(ca.public_bytes(serialization.Encoding.PEM))
                    for ca in policy.client_cas
                ]
            )
        try:
            options = ssl.CertificateOptions(
                privateKey=bundle.key,  # type: ignore[arg-type]
                certificate=bundle.leaf,  # type: ignore[arg-type]
                extraCertChain=list(bundle.chain[1:]),  # type: ignore[arg-type]
                **kwargs,
            )
            context = options.getContext()
        except (SSL.Error, ValueError) as e:
            raise TLSSetupError(
                f"http.tls: OpenSSL refuses the certificate or settings: {e}"
            ) from None
        if policy.groups is not None:
            _set_groups(context, policy.groups)
        # TLS 1.3: AES-128-GCM first, as Go's crypto/tls (so distribution) chooses on
        # machines with AES instructions; OpenSSL's default puts AES-256 first, which
        # costs both ends about 40% more per byte for no security a registry needs.
        context.set_tls13_ciphersuites(TLS13_SUITES)
        context.set_alpn_select_callback(self._select_alpn)
        return context

    def _select_alpn(self, connection: SSL.Connection, offered: list[bytes]) -> Any:
        """Pick ``http/1.1``, or answer a TLS-ALPN-01 validation with the challenge certificate."""
        if ACME_TLS_ALPN in offered:
            raw = connection.get_servername()
            name = raw.decode("ascii", "replace").lower() if raw else ""
            pair = self.challenges.certificate_for(name) if name else None
            if pair is not None:
                # The challenge key is P-256 like the ACME certificate's, so OpenSSL
                # swaps it into the slot it has already chosen for this handshake.
                certificate, key = pair
                connection.use_certificate(certificate)
                connection.use_privatekey(key)  # type: ignore[arg-type]
                log.info(
                    "answering a TLS-ALPN-01 validation for {name}",
                    name=name,
                )
                return ACME_TLS_ALPN
        if HTTP_ALPN in offered:
            return HTTP_ALPN
        return SSL.NO_OVERLAPPING_PROTOCOLS


def _set_groups(context: SSL.Context, groups: bytes) -> None:
    """Offer only *groups* for key exchange (pyOpenSSL has no public call for it)."""
    set_list = getattr(_openssl, "SSL_CTX_set1_curves_list", None)
    if set_list is None or not set_list(context._context, groups):
        # an OpenSSL without the call (or the names): P-256 alone is in the profile too
        context.set_tmp_ecdh(ec.SECP256R1())


def wrap_tls(
    creator: ServerTLS | None, factory: IProtocolFactory, clock: Any = None
) -> IProtocolFactory:
    """*factory* as it is, or wrapped in TLS when there is a *creator*."""
    if creator is None:
        return factory
    return OffloadTLSFactory(creator, False, factory, clock=clock)
