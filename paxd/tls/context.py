"""TLS contexts for the registry's listeners, built from ``http.tls``.

The certificate chain and key are read once at start-up (never per
handshake); the listener's factory is wrapped in TLS so that any endpoint
description, systemd sockets included, can serve HTTPS.
"""

from __future__ import annotations

from OpenSSL import SSL, crypto
from twisted.internet import ssl
from twisted.internet.interfaces import IProtocolFactory
from twisted.protocols.tls import TLSMemoryBIOFactory

from paxd.config import TLSConfig

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


class TLSSetupError(Exception):
    """The TLS files could not be used; the message names the file and the fix."""


def _read(path: str, key: str) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as e:
        raise TLSSetupError(f"http.tls.{key}: cannot read {path}: {e.strerror}") from None


def certificate_options(tls: TLSConfig) -> ssl.CertificateOptions:
    """Server TLS options from certificate and key files (chain in file order)."""
    if tls.letsencrypt is not None and not tls.certificate:
        raise TLSSetupError(
            "http.tls.letsencrypt: certificates from Let's Encrypt (ACME) are not implemented"
            " in this version of paxd; configure http.tls.certificate and http.tls.key"
        )
    if not tls.certificate or not tls.key:
        raise TLSSetupError("http.tls: both certificate and key must be set")
    chain_pem = _read(tls.certificate, "certificate")
    key_pem = _read(tls.key, "key")
    try:
        certs = [
            crypto.load_certificate(crypto.FILETYPE_PEM, block)
            for block in _pem_blocks(chain_pem, b"CERTIFICATE")
        ]
        if not certs:
            raise crypto.Error("no PEM certificate found")
    except crypto.Error as e:
        raise TLSSetupError(
            f"http.tls.certificate: {tls.certificate} is not a PEM certificate: {e}"
        ) from None
    try:
        key = crypto.load_privatekey(crypto.FILETYPE_PEM, key_pem)
    except crypto.Error as e:
        raise TLSSetupError(f"http.tls.key: {tls.key} is not a PEM private key: {e}") from None
    context = SSL.Context(SSL.TLS_METHOD)
    try:
        context.use_certificate(certs[0])
        context.use_privatekey(key)
        context.check_privatekey()
    except SSL.Error:
        raise TLSSetupError(
            f"http.tls.key: {tls.key} does not match the certificate in {tls.certificate}"
        ) from None
    minimum = _VERSIONS.get((tls.minimumtls or "tls1.2").lower())
    if minimum is None:
        raise TLSSetupError(
            f"http.tls.minimumtls: unknown version {tls.minimumtls!r}; use tls1.2 or tls1.3"
        )
    kwargs: dict[str, object] = {}
    if tls.clientcas:
        cas = [
            ssl.Certificate.loadPEM(block)
            for path in tls.clientcas
            for block in _pem_blocks(_read(path, "clientcas"), b"CERTIFICATE")
        ]
        kwargs["trustRoot"] = ssl.trustRootFromCertificates(cas)
        kwargs["verify"] = True
        kwargs["requireCertificate"] = True
    return ssl.CertificateOptions(
        privateKey=key.to_cryptography_key(),  # type: ignore[arg-type]
        certificate=certs[0].to_cryptography(),  # type: ignore[arg-type]
        extraCertChain=[c.to_cryptography() for c in certs[1:]],  # type: ignore[misc]
        raiseMinimumTo=minimum,
        **kwargs,  # type: ignore[arg-type]
    )


def _pem_blocks(data: bytes, kind: bytes) -> list[bytes]:
    begin, end = b"-----BEGIN " + kind + b"-----", b"-----END " + kind + b"-----"
    blocks = []
    start = data.find(begin)
    while start != -1:
        stop = data.find(end, start)
        if stop == -1:
            break
        blocks.append(data[start : stop + len(end)] + b"\n")
        start = data.find(begin, stop)
    return blocks


def wrap_tls(options: ssl.CertificateOptions | None, factory: IProtocolFactory) -> IProtocolFactory:
    """*factory* as it is, or wrapped in TLS when there are TLS *options*."""
    if options is None:
        return factory
    return TLSMemoryBIOFactory(options, False, factory)
