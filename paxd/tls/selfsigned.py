"""``cert self-signed``: a private CA and a server certificate with the right SANs.

Operators who run the registry without Let's Encrypt used to make a CN-only
certificate with ``openssl req -x509`` and then hit ``x509: certificate
relies on legacy Common Name field``, ``doesn't contain any IP SANs`` or
``certificate signed by unknown authority``. This writes a CA (reused if it
is already in the output directory, so clients that trust it keep trusting
it) and a server certificate for every ``--host`` and ``--ip``, then prints
what to configure and how each kind of client trusts the CA.

Exit codes: 0 written, 1 failure (a file exists, a directory is not
writable), 2 usage error.
"""

from __future__ import annotations

import argparse
import datetime
import ipaddress
import os
import sys
from collections.abc import Sequence

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from paxd.tls.certificates import utcnow

_IP = ipaddress.IPv4Address | ipaddress.IPv6Address

__all__ = ["main", "make_ca", "make_server_certificate"]

CA_CERT, CA_KEY, SERVER_CERT, SERVER_KEY = "ca.crt", "ca.key", "tls.crt", "tls.key"


def _new_key(kind: str) -> CertificateIssuerPrivateKeyTypes:
    if kind == "rsa":
        return rsa.generate_private_key(public_exponent=65537, key_size=3072)
    return ec.generate_private_key(ec.SECP256R1())


def make_ca(
    key: CertificateIssuerPrivateKeyTypes, name: str, now: datetime.datetime, days: int = 3650
) -> x509.Certificate:
    """A CA certificate that may sign server certificates only (path length 0)."""
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "paxd"),
            x509.NameAttribute(NameOID.COMMON_NAME, name[:64]),
        ]
    )
    public = key.public_key()
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .sign(key, hashes.SHA256())
    )


def make_server_certificate(
    key: CertificateIssuerPrivateKeyTypes,
    ca: x509.Certificate,
    ca_key: CertificateIssuerPrivateKeyTypes,
    hosts: Sequence[str],
    ips: Sequence[ipaddress.IPv4Address | ipaddress.IPv6Address],
    now: datetime.datetime,
    days: int = 825,
) -> x509.Certificate:
    """A server certificate for *hosts* and *ips* (all as subjectAltNames), signed by *ca*."""
    sans: list[x509.GeneralName] = [x509.DNSName(h) for h in hosts]
    sans += [x509.IPAddress(ip) for ip in ips]
    cn = hosts[0] if hosts else str(ips[0])
    public = key.public_key()
    return (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn[:64])]))
        .issuer_name(ca.subject)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(min(now + datetime.timedelta(days=days), ca.not_valid_after_utc))
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=isinstance(key, rsa.RSAPrivateKey),
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )


def _pem_key(key: CertificateIssuerPrivateKeyTypes) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _write(path: str, data: bytes, mode: int, force: bool) -> None:
    flags = os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if force else os.O_EXCL)
    fd = os.open(path, flags, mode)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.chmod(path, mode)


def _parser(prog: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Write a private CA and a server certificate whose subjectAltNames are"
        " every --host and --ip, and print how to configure paxd and trust the CA. An"
        " existing ca.crt/ca.key in the output directory is reused.",
        epilog="Exit codes: 0 written, 1 failure, 2 usage error.",
    )
    parser.add_argument(
        "--host",
        action="append",
        default=[],
        metavar="NAME",
        help="a DNS name clients use (repeatable)",
    )
    parser.add_argument(
        "--ip",
        action="append",
        default=[],
        metavar="ADDR",
        help="an IP address clients use (repeatable)",
    )
    parser.add_argument(
        "--out", "-o", default=".", metavar="DIR", help="output directory (default: .)"
    )
    parser.add_argument(
        "--days", type=int, default=825, help="server certificate validity (default 825)"
    )
    parser.add_argument(
        "--key-type", choices=("ec", "rsa"), default="ec", help="ec (P-256, default) or rsa"
    )
    parser.add_argument(
        "--force", action="store_true", help="overwrite an existing tls.crt and tls.key"
    )
    return parser


def _names(
    parser: argparse.ArgumentParser, args: argparse.Namespace
) -> tuple[list[str], list[_IP]]:
    """The DNS names and IP addresses asked for, checked (a bad one is a usage error)."""
    hosts: list[str] = []
    for host in args.host:
        name = host.strip().rstrip(".").lower()
        try:
            ipaddress.ip_address(name.strip("[]"))
        except ValueError:
            pass
        else:
            parser.error(f"--host {host}: an IP address; pass it with --ip")
        if not name or not all(c.isalnum() or c in "-.*" for c in name):
            parser.error(f"--host {host!r}: not a DNS name")
        hosts.append(name)
    ips = []
    for ip in args.ip:
        try:
            ips.append(ipaddress.ip_address(ip.strip("[]")))
        except ValueError:
            parser.error(f"--ip {ip!r}: not an IP address")
    if not hosts and not ips:
        parser.error("give at least one --host NAME or --ip ADDR (the names clients connect to)")
    if args.days < 1:
        parser.error("--days must be at least 1")
    return hosts, ips


def _issue(
    args: argparse.Namespace, paths: dict[str, str], hosts: list[str], ips: list[_IP]
) -> tuple[x509.Certificate, bool]:
    """Write the server key and certificate (and a CA unless one is there): (cert, CA reused)."""
    now = utcnow()
    if os.path.exists(paths[CA_CERT]) and os.path.exists(paths[CA_KEY]):
        with open(paths[CA_CERT], "rb") as f:
            ca = x509.load_pem_x509_certificate(f.read())
        with open(paths[CA_KEY], "rb") as f:
            loaded = serialization.load_pem_private_key(f.read(), password=None)
        if not isinstance(loaded, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
            raise ValueError(f"{paths[CA_KEY]}: not an EC or RSA key")
        ca_key: CertificateIssuerPrivateKeyTypes = loaded
        reused = True
    else:
        ca_key = _new_key(args.key_type)
        ca = make_ca(ca_key, f"paxd CA for {(hosts or [str(ips[0])])[0]}", now)
        _write(paths[CA_KEY], _pem_key(ca_key), 0o600, args.force)
        _write(paths[CA_CERT], ca.public_bytes(serialization.Encoding.PEM), 0o644, args.force)
        reused = False
    key = _new_key(args.key_type)
    cert = make_server_certificate(key, ca, ca_key, hosts, ips, now, args.days)
    _write(paths[SERVER_KEY], _pem_key(key), 0o600, True)
    _write(paths[SERVER_CERT], cert.public_bytes(serialization.Encoding.PEM), 0o644, True)
    return cert, reused


def _explain(
    paths: dict[str, str], hosts: list[str], ips: list[_IP], cert: x509.Certificate, reused: bool
) -> None:
    """Tell the operator what was written, how to configure paxd and how to trust the CA."""
    names = ", ".join([*hosts, *map(str, ips)])
    first = (hosts or [str(ips[0])])[0]
    server = f"[{first}]" if ":" in first else first
    print(f"{'Reused' if reused else 'Wrote'} CA {paths[CA_CERT]} (key {paths[CA_KEY]})")
    print(f"Wrote server certificate {paths[SERVER_CERT]} (key {paths[SERVER_KEY]}) for {names},")
    print(f"  valid until {cert.not_valid_after_utc:%Y-%m-%d}.")
    print()
    print("Configure paxd (config.yml):")
    print("  http:")
    print("    tls:")
    print(f"      certificate: {paths[SERVER_CERT]}")
    print(f"      key: {paths[SERVER_KEY]}")
    print()
    print(f"Trust the CA on each client ({paths[CA_CERT]} is public; keep ca.key secret):")
    print(f"  vendor tools:  /etc/spectro/certs.d/{server}/ca.crt")
    print(f"  docker:        /etc/docker/certs.d/{server}:PORT/ca.crt  (PORT omitted for 443)")
    print(
        "  Debian/Ubuntu: cp ca.crt /usr/local/share/ca-certificates/paxd-ca.crt &&"
        " update-ca-certificates"
    )
    print(
        "  RHEL/Fedora:   cp ca.crt /etc/pki/ca-trust/source/anchors/paxd-ca.crt && update-ca-trust"
    )
    print(f"  check:         curl --cacert {paths[CA_CERT]} https://{server}/health")


def main(argv: Sequence[str] | None = None, prog: str = "paxd cert self-signed") -> int:
    """``paxd cert self-signed`` / ``paxctl cert self-signed`` (*prog* names it in messages)."""
    parser = _parser(prog)
    args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
    hosts, ips = _names(parser, args)
    out = os.path.abspath(args.out)
    paths = {name: os.path.join(out, name) for name in (CA_CERT, CA_KEY, SERVER_CERT, SERVER_KEY)}
    try:
        os.makedirs(out, exist_ok=True)
        for name in (SERVER_CERT, SERVER_KEY):
            if os.path.exists(paths[name]) and not args.force:
                print(f"{prog}: {paths[name]} exists; pass --force to replace it", file=sys.stderr)
                return 1
        cert, reused = _issue(args, paths, hosts, ips)
    except (OSError, ValueError) as e:
        print(f"{prog}: {e}", file=sys.stderr)
        return 1
    _explain(paths, hosts, ips, cert, reused)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
