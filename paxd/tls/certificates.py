"""Certificate chains and keys: loading, the start-up checks, and the operator's warnings.

A :class:`CertificateBundle` is what a TLS listener serves: a private key and
the chain that goes with it (server certificate first). Bundles come from the
``http.tls`` files, from the ACME store, or are made on the spot (the
temporary self-signed certificate served until Let's Encrypt answers).

Everything that stops the daemon is a :class:`TLSSetupError` with a one-line
message naming the file, what is wrong and what to do about it; everything
that should merely worry the operator is a warning string from
:func:`bundle_warnings`.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
from collections.abc import Iterable, Sequence

import attrs
from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.types import (
    CertificateIssuerPrivateKeyTypes,
    PrivateKeyTypes,
)
from cryptography.x509.oid import ExtensionOID, NameOID

__all__ = [
    "EXPIRY_WARNING",
    "CertificateBundle",
    "TLSSetupError",
    "bundle_warnings",
    "check_bundle",
    "describe_name",
    "load_bundle",
    "parse_bundle",
    "read_file",
    "temporary_bundle",
    "utcnow",
]

#: warn when the certificate expires sooner than this
EXPIRY_WARNING = datetime.timedelta(days=14)

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class TLSSetupError(Exception):
    """The TLS files or settings cannot be used; the message is one line naming the fix."""

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(message.split()))


def utcnow() -> datetime.datetime:
    """The current time, timezone-aware (UTC)."""
    return datetime.datetime.now(datetime.UTC)


def describe_name(certificate: x509.Certificate) -> str:
    """A short human name for *certificate*: its subject CN, or the whole subject."""
    cns = certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    if cns:
        return f"CN={cns[0].value!s}"
    return certificate.subject.rfc4514_string() or "(empty subject)"


def _spki(key: PrivateKeyTypes) -> bytes:
    return key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


@attrs.frozen(eq=False)
class CertificateBundle:
    """A private key and its certificate chain (the server certificate first)."""

    key: PrivateKeyTypes
    chain: tuple[x509.Certificate, ...]

    @property
    def leaf(self) -> x509.Certificate:
        """The server certificate."""
        return self.chain[0]

    @property
    def not_after(self) -> datetime.datetime:
        """When the server certificate expires (UTC)."""
        return self.leaf.not_valid_after_utc

    @property
    def serial(self) -> int:
        """The server certificate's serial number (tests tell certificates apart by it)."""
        return self.leaf.serial_number

    def names(self) -> tuple[list[str], list[IPAddress]]:
        """The server certificate's subjectAltName DNS names and IP addresses."""
        try:
            san = self.leaf.extensions.get_extension_for_oid(
                ExtensionOID.SUBJECT_ALTERNATIVE_NAME
            ).value
        except x509.ExtensionNotFound:
            return [], []
        assert isinstance(san, x509.SubjectAlternativeName)
        ips = [ip for ip in san.get_values_for_type(x509.IPAddress) if isinstance(ip, IPAddress)]
        return san.get_values_for_type(x509.DNSName), ips

    def has_san(self) -> bool:
        """True if the server certificate has a subjectAltName extension."""
        dns, ips = self.names()
        return bool(dns or ips)

    def covers(self, host: str) -> bool:
        """True if a client checking *host* (a name or an IP address) accepts the certificate."""
        dns, ips = self.names()
        try:
            ip = ipaddress.ip_address(host.strip("[]"))
        except ValueError:
            return any(_dns_matches(pattern, host) for pattern in dns)
        return ip in ips

    def chain_pem(self) -> bytes:
        """The chain, PEM, server certificate first."""
        return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in self.chain)

    def key_pem(self) -> bytes:
        """The private key, unencrypted PKCS#8 PEM."""
        return self.key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )


def _dns_matches(pattern: str, host: str) -> bool:
    pattern, host = pattern.lower().rstrip("."), host.lower().rstrip(".")
    if pattern.startswith("*."):
        head, _, rest = host.partition(".")
        return bool(head) and rest == pattern[2:]
    return pattern == host


def read_file(path: str, key: str) -> bytes:
    """The bytes of *path*; an unreadable file is a :class:`TLSSetupError` naming config *key*."""
    try:
        with open(path, "rb") as f:
            return f.read()
    except FileNotFoundError:
        raise TLSSetupError(
            f"{key}: {path} does not exist; create it or correct the path"
        ) from None
    except IsADirectoryError:
        raise TLSSetupError(f"{key}: {path} is a directory; name the PEM file itself") from None
    except OSError as e:
        raise TLSSetupError(
            f"{key}: cannot read {path}: {e.strerror}; make it readable by the user paxd runs"
            f" as (uid {os.getuid()}), e.g. group-readable by its group"
        ) from None


def parse_bundle(
    chain_pem: bytes,
    key_pem: bytes,
    *,
    certificate_label: str = "certificate",
    key_label: str = "key",
) -> CertificateBundle:
    """A bundle from PEM text; the labels name the sources in messages.

    :raises TLSSetupError: no certificate, garbage, or a key that is not a PEM private key.
    """
    if b"-----BEGIN CERTIFICATE-----" not in chain_pem:
        hint = (
            " (it holds a private key: are certificate and key swapped?)"
            if b"PRIVATE KEY-----" in chain_pem
            else ""
        )
        raise TLSSetupError(
            f"{certificate_label}: no PEM certificate found{hint}; the file must hold"
            " '-----BEGIN CERTIFICATE-----' blocks, the server certificate first"
        )
    try:
        chain = tuple(x509.load_pem_x509_certificates(chain_pem))
    except ValueError as e:
        raise TLSSetupError(
            f"{certificate_label}: not a valid PEM certificate chain ({e});"
            " check the file is not truncated or mangled"
        ) from None
    if b"PRIVATE KEY-----" not in key_pem:
        hint = (
            " (it holds a certificate: are certificate and key swapped?)"
            if b"-----BEGIN CERTIFICATE-----" in key_pem
            else ""
        )
        raise TLSSetupError(
            f"{key_label}: no PEM private key found{hint}; the file must hold a"
            " '-----BEGIN PRIVATE KEY-----' (or RSA/EC PRIVATE KEY) block"
        )
    try:
        key = serialization.load_pem_private_key(key_pem, password=None)
    except TypeError:
        raise TLSSetupError(
            f"{key_label}: the private key is encrypted; paxd needs it unencrypted"
            " (openssl pkey -in KEY -out KEY.plain, then keep KEY.plain readable only by paxd)"
        ) from None
    except (ValueError, UnsupportedAlgorithm) as e:
        raise TLSSetupError(
            f"{key_label}: not a valid PEM private key ({e}); check the file is not truncated"
        ) from None
    return CertificateBundle(key=key, chain=chain)


def check_bundle(
    bundle: CertificateBundle,
    now: datetime.datetime,
    *,
    certificate_label: str = "certificate",
    key_label: str = "key",
) -> None:
    """Refuse a bundle a client could never accept.

    :raises TLSSetupError: the key does not match the server certificate, the
        server certificate has expired or is not yet valid, or the chain is out of order.
    """
    leaf = bundle.leaf
    if _spki(bundle.key) != leaf.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    ):
        others = [i for i, c in enumerate(bundle.chain) if i and _matches(bundle.key, c)]
        if others:
            raise TLSSetupError(
                f"{certificate_label}: the chain is out of order: the key in {key_label} belongs"
                f" to certificate {others[0] + 1} ({describe_name(bundle.chain[others[0]])});"
                " put the server certificate first, then each issuer in turn"
            )
        raise TLSSetupError(
            f"{key_label}: the private key does not match the certificate in"
            f" {certificate_label} ({describe_name(leaf)}); use the key the certificate was"
            " issued for"
        )
    if now < leaf.not_valid_before_utc:
        raise TLSSetupError(
            f"{certificate_label}: the certificate ({describe_name(leaf)}) is not valid before"
            f" {leaf.not_valid_before_utc:%Y-%m-%d %H:%M} UTC; check the clock, or wait"
        )
    if now >= leaf.not_valid_after_utc:
        raise TLSSetupError(
            f"{certificate_label}: the certificate ({describe_name(leaf)}) expired on"
            f" {leaf.not_valid_after_utc:%Y-%m-%d %H:%M} UTC; renew it"
            " (paxd cert self-signed makes a new one)"
        )
    for i, (cert, issuer) in enumerate(zip(bundle.chain, bundle.chain[1:], strict=False)):
        if cert.issuer != issuer.subject or not _signed_by(cert, issuer):
            raise TLSSetupError(
                f"{certificate_label}: the chain is out of order: certificate {i + 2}"
                f" ({describe_name(issuer)}) did not issue certificate {i + 1}"
                f" ({describe_name(cert)}); put the server certificate first, then each"
                " issuer in turn"
            )


def _matches(key: PrivateKeyTypes, certificate: x509.Certificate) -> bool:
    return _spki(key) == certificate.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _signed_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    try:
        cert.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm):
        return False
    return True


def load_bundle(
    certificate_path: str,
    key_path: str,
    now: datetime.datetime,
    *,
    certificate_key: str = "http.tls.certificate",
    key_key: str = "http.tls.key",
) -> CertificateBundle:
    """Read, parse and check the certificate and key files (blocking: call it in a thread).

    :raises TLSSetupError: with one line naming the file and the fix.
    """
    chain_pem = read_file(certificate_path, certificate_key)
    key_pem = read_file(key_path, key_key)
    labels = {
        "certificate_label": f"{certificate_key}: {certificate_path}",
        "key_label": f"{key_key}: {key_path}",
    }
    bundle = parse_bundle(chain_pem, key_pem, **labels)
    check_bundle(bundle, now, **labels)
    return bundle


def bundle_warnings(
    bundle: CertificateBundle,
    now: datetime.datetime,
    *,
    hosts: Iterable[str] = (),
    label: str = "http.tls.certificate",
) -> list[str]:
    """What an operator should fix before clients start failing (nothing here stops paxd).

    *hosts* are names and IP addresses clients are expected to use: ``http.host``'s
    host, the listeners' specific IP addresses.
    """
    warnings = []
    leaf = bundle.leaf
    if not bundle.has_san():
        warnings.append(
            f"{label}: the certificate ({describe_name(leaf)}) has no subjectAltName, so Go"
            " clients (docker, skopeo, the vendor's tools) and browsers reject it whatever its"
            " CN; make one with SANs, e.g. 'paxd cert self-signed --host NAME --ip ADDR'"
        )
    else:
        for host in dict.fromkeys(hosts):
            if not bundle.covers(host):
                kind = "IP" if _is_ip(host) else "DNS"
                warnings.append(
                    f"{label}: {host} is not among the certificate's subjectAltNames"
                    f" ({_describe_sans(bundle)}), so clients connecting to {host} fail"
                    f" ('doesn't contain any IP SANs' or 'x509: certificate is valid for ...');"
                    f" add {kind}:{host} to the certificate"
                )
    left = leaf.not_valid_after_utc - now
    if left < EXPIRY_WARNING:
        warnings.append(
            f"{label}: the certificate ({describe_name(leaf)}) expires in {_days(left)}, on"
            f" {leaf.not_valid_after_utc:%Y-%m-%d %H:%M} UTC; renew it (replacing the files"
            " takes effect without a restart)"
        )
    return warnings


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


def _describe_sans(bundle: CertificateBundle) -> str:
    dns, ips = bundle.names()
    return ", ".join([f"DNS:{d}" for d in dns] + [f"IP:{ip}" for ip in ips])


def _days(delta: datetime.timedelta) -> str:
    if delta.days >= 1:
        return f"{delta.days} day{'s' if delta.days != 1 else ''}"
    hours = max(0, int(delta.total_seconds() // 3600))
    return f"{hours} hour{'s' if hours != 1 else ''}"


def temporary_bundle(
    hosts: Sequence[str],
    now: datetime.datetime,
    validity: datetime.timedelta = datetime.timedelta(days=7),
) -> CertificateBundle:
    """A throw-away self-signed certificate for *hosts*, served until a real one is issued.

    ECDSA P-256, like the ACME certificates, so that the TLS-ALPN-01 challenge
    certificate (also P-256) can replace it within a handshake.
    """
    key = ec.generate_private_key(ec.SECP256R1())
    return CertificateBundle(key=key, chain=(self_signed(key, hosts, now, validity),))


def self_signed(
    key: CertificateIssuerPrivateKeyTypes,
    hosts: Sequence[str],
    now: datetime.datetime,
    validity: datetime.timedelta,
    *,
    extensions: Sequence[x509.Extension[x509.ExtensionType]] = (),
    common_name: str | None = None,
) -> x509.Certificate:
    """A self-signed server certificate for *hosts* (names and IP addresses) as SANs."""
    sans: list[x509.GeneralName] = []
    for host in hosts:
        try:
            sans.append(x509.IPAddress(ipaddress.ip_address(host.strip("[]"))))
        except ValueError:
            sans.append(x509.DNSName(host))
    cn = common_name or (hosts[0] if hosts else "paxd")
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn[:64])])
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + validity)
    )
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    for extension in extensions:
        builder = builder.add_extension(extension.value, critical=extension.critical)
    return builder.sign(key, hashes.SHA256())
