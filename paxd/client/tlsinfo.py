"""Certificates as an operator needs to read them: who issued them, for which names, until when.

The standard library verifies certificates but cannot show an unverified
chain, so the chain is fetched with pyOpenSSL and read with ``cryptography``
when they are installed (they are paxd's own dependencies); without them,
paxctl still works and its diagnoses are only less specific.
"""

from __future__ import annotations

import ipaddress
import select
import socket
import ssl
from datetime import UTC, datetime

import attrs


@attrs.frozen
class CertInfo:
    """The parts of a certificate a diagnosis talks about."""

    subject: str
    issuer: str
    dns_names: tuple[str, ...]
    ip_addresses: tuple[str, ...]
    not_before: datetime
    not_after: datetime
    is_ca: bool

    @property
    def self_issued(self) -> bool:
        """Issued by itself: a root, or a lone self-signed certificate."""
        return self.subject == self.issuer

    def names(self) -> str:
        """Its SANs, for a message."""
        listed = [*self.dns_names, *self.ip_addresses]
        return ", ".join(listed) if listed else "no names at all"


def is_ip(host: str) -> bool:
    """True if *host* is an IPv4 or IPv6 literal."""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def describe(der: bytes) -> CertInfo | None:
    """Read a DER certificate; ``None`` if ``cryptography`` is missing or it does not parse."""
    try:
        from cryptography import x509
    except ImportError:  # pragma: no cover - cryptography comes with paxd
        return None
    try:
        cert = x509.load_der_x509_certificate(der)
    except ValueError:
        return None
    dns: list[str] = []
    ips: list[str] = []
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        dns = [str(n) for n in san.get_values_for_type(x509.DNSName)]
        ips = [str(n) for n in san.get_values_for_type(x509.IPAddress)]
    except x509.ExtensionNotFound:
        pass
    try:
        is_ca = cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    except x509.ExtensionNotFound:
        is_ca = False
    return CertInfo(
        subject=cert.subject.rfc4514_string() or "(empty subject)",
        issuer=cert.issuer.rfc4514_string() or "(empty issuer)",
        dns_names=tuple(dns),
        ip_addresses=tuple(ips),
        not_before=cert.not_valid_before_utc,
        not_after=cert.not_valid_after_utc,
        is_ca=is_ca,
    )


def name_matches(info: CertInfo, host: str) -> bool:
    """True if *host* is one of the certificate's SANs (one wildcard label allowed)."""
    if is_ip(host):
        wanted = ipaddress.ip_address(host)
        return any(ipaddress.ip_address(ip) == wanted for ip in info.ip_addresses)
    host = host.lower().rstrip(".")
    for name in info.dns_names:
        name = name.lower().rstrip(".")
        if name == host:
            return True
        if name.startswith("*.") and "." in host and host.split(".", 1)[1] == name[2:]:
            return True
    return False


def expired(info: CertInfo, now: datetime | None = None) -> bool:
    """True if *info* is outside its validity period at *now*."""
    now = now or datetime.now(UTC)
    return not (info.not_before <= now <= info.not_after)


def fetch_chain(host: str, port: int, timeout: float) -> list[bytes]:
    """The certificates the server presents (leaf first, DER), without verifying anything."""
    try:
        from OpenSSL import SSL
    except ImportError:  # pragma: no cover - pyOpenSSL comes with paxd
        return _fetch_leaf(host, port, timeout)
    ctx = SSL.Context(SSL.TLS_CLIENT_METHOD)
    ctx.set_verify(SSL.VERIFY_NONE, lambda *args: True)
    sock = socket.create_connection((host, port), timeout=timeout)
    try:
        conn = SSL.Connection(ctx, sock)
        if not is_ip(host):
            conn.set_tlsext_host_name(host.encode("idna"))
        conn.set_connect_state()
        while True:
            try:
                conn.do_handshake()
                break
            except SSL.WantReadError:
                # The socket has a timeout, so it is non-blocking underneath.
                if not select.select([sock], [], [], timeout)[0]:
                    raise TimeoutError("TLS handshake timed out") from None
            except SSL.Error as e:
                raise ssl.SSLError(f"TLS handshake failed: {e}") from None
        chain = conn.get_peer_cert_chain(as_cryptography=True) or []
        from cryptography.hazmat.primitives.serialization import Encoding

        return [c.public_bytes(Encoding.DER) for c in chain]
    finally:
        sock.close()


def _fetch_leaf(host: str, port: int, timeout: float) -> list[bytes]:
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with (
        socket.create_connection((host, port), timeout=timeout) as sock,
        ctx.wrap_socket(sock, server_hostname=None if is_ip(host) else host) as tls,
    ):
        der = tls.getpeercert(binary_form=True)
    return [der] if der else []


def leaf_info(host: str, port: int, timeout: float) -> CertInfo | None:
    """The server's own certificate, read without verification; ``None`` if unavailable."""
    try:
        chain = fetch_chain(host, port, timeout)
    except (OSError, ssl.SSLError):
        return None
    return describe(chain[0]) if chain else None


#: OpenSSL verify codes (X509_V_ERR_*) a diagnosis distinguishes
UNKNOWN_AUTHORITY = frozenset((2, 18, 19, 20, 21))
EXPIRED = 10
NOT_YET_VALID = 9
HOSTNAME_MISMATCH = 62
IP_MISMATCH = 64


def _name_diagnosis(info: CertInfo | None, host: str) -> str:
    if is_ip(host) and (info is None or not info.ip_addresses):
        return (
            f"x509: certificate has no IP SAN for {host}: regenerate it with an IP SAN"
            f" (paxctl cert self-signed --ip {host}) or use a DNS name"
        )
    names = info.names() if info else "other names"
    return (
        f"x509: certificate is valid for {names}, not {host}: connect with one of those"
        f" names or regenerate the certificate with a SAN for {host}"
    )


def diagnose(
    err: ssl.SSLCertVerificationError, host: str, port: int, key: str, timeout: float
) -> str:
    """What went wrong verifying *host*'s certificate, and what to do about it, in one line."""
    code = err.verify_code
    info = leaf_info(host, port, timeout)
    if code in (HOSTNAME_MISMATCH, IP_MISMATCH):
        return _name_diagnosis(info, host)
    if code in UNKNOWN_AUTHORITY:
        issuer = f" (issued by {info.issuer})" if info else ""
        message = (
            f"x509: certificate signed by unknown authority{issuer}: trust its CA with"
            f" --ca-cert FILE, or place it at /etc/spectro/certs.d/{key}/ca.crt or"
            f" ~/.spectro/certs.d/{key}/ca.crt (HOME/certs.d with --home); --insecure skips"
            " verification"
        )
        # Both faults are common together (a self-signed certificate made for an IP).
        if info is not None and not name_matches(info, host):
            message += "; and " + _name_diagnosis(info, host).removeprefix("x509: ")
        return message
    if code == EXPIRED:
        when = f" on {info.not_after:%Y-%m-%d}" if info else ""
        return f"x509: certificate expired{when}: renew the registry's certificate"
    if code == NOT_YET_VALID:
        return "x509: certificate is not valid yet: check the clocks of this machine and the server"
    return f"x509: {err.verify_message or err.reason}: the certificate of {key} cannot be trusted"
