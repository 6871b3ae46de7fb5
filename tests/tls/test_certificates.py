"""Certificate files: parsing, the start-up checks, the warnings."""

from __future__ import annotations

import datetime
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from twisted.trial.unittest import SynchronousTestCase

from paxd.tls.certificates import (
    CertificateBundle,
    TLSSetupError,
    bundle_warnings,
    check_bundle,
    load_bundle,
    parse_bundle,
    temporary_bundle,
    utcnow,
)
from tests.tls.support import TestCA, pem_cert, pem_key, self_signed_bundle


def cn_only_bundle(now: datetime.datetime) -> CertificateBundle:
    """What the seed's ``openssl req -x509 -subj /CN=localhost`` makes: no subjectAltName."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1825))
        .sign(key, hashes.SHA256())
    )
    return CertificateBundle(key=key, chain=(cert,))


class LoadTests(SynchronousTestCase):
    """:func:`load_bundle`: the files as the operator wrote them."""

    def setUp(self) -> None:
        self.dir = Path(self.mktemp())
        self.dir.mkdir()
        self.ca = TestCA()
        self.bundle = self.ca.server()
        self.crt, self.key = self.ca.write(self.dir, self.bundle)

    def load_error(self) -> str:
        with self.assertRaises(TLSSetupError) as caught:
            load_bundle(self.crt, self.key, utcnow())
        message = str(caught.exception)
        self.assertNotIn("\n", message)
        return message

    def test_good_files(self) -> None:
        """The chain (server first) and key load as written."""
        loaded = load_bundle(self.crt, self.key, utcnow())
        self.assertEqual(loaded.serial, self.bundle.serial)
        self.assertEqual(len(loaded.chain), 2)
        self.assertEqual(loaded.key_pem(), self.bundle.key_pem())
        self.assertEqual(bundle_warnings(loaded, utcnow(), hosts=["localhost", "127.0.0.1"]), [])

    def test_missing_file(self) -> None:
        Path(self.key).unlink()
        message = self.load_error()
        self.assertIn("http.tls.key", message)
        self.assertIn(self.key, message)
        self.assertIn("does not exist", message)

    def test_garbage_certificate(self) -> None:
        Path(self.crt).write_bytes(b"hello\n")
        message = self.load_error()
        self.assertIn("http.tls.certificate", message)
        self.assertIn("no PEM certificate", message)

    def test_truncated_certificate(self) -> None:
        pem = Path(self.crt).read_bytes()
        Path(self.crt).write_bytes(pem[:200] + b"\n-----END CERTIFICATE-----\n")
        message = self.load_error()
        self.assertIn("not a valid PEM certificate chain", message)

    def test_swapped_files(self) -> None:
        """Certificate and key swapped: the message says so."""
        message = self.assertRaises(TLSSetupError, load_bundle, self.key, self.crt, utcnow()).args[
            0
        ]
        self.assertIn("swapped", message)

    def test_garbage_key(self) -> None:
        Path(self.key).write_bytes(
            b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"
        )
        message = self.load_error()
        self.assertIn("http.tls.key", message)
        self.assertIn("not a valid PEM private key", message)

    def test_encrypted_key(self) -> None:
        Path(self.key).write_bytes(
            self.bundle.key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.BestAvailableEncryption(b"secret"),
            )
        )
        self.assertIn("encrypted", self.load_error())

    def test_mismatched_key(self) -> None:
        Path(self.key).write_bytes(pem_key(ec.generate_private_key(ec.SECP256R1())))
        message = self.load_error()
        self.assertIn("does not match the certificate", message)
        self.assertIn("CN=localhost", message)

    def test_chain_out_of_order(self) -> None:
        """The CA first and the server certificate second."""
        Path(self.crt).write_bytes(pem_cert(self.ca.cert) + pem_cert(self.bundle.leaf))
        message = self.load_error()
        self.assertIn("out of order", message)
        self.assertIn("server certificate first", message)

    def test_wrong_intermediate(self) -> None:
        """A second certificate that did not issue the first."""
        other = TestCA("some other CA")
        Path(self.crt).write_bytes(pem_cert(self.bundle.leaf) + pem_cert(other.cert))
        message = self.load_error()
        self.assertIn("certificate 2 (CN=some other CA) did not issue certificate 1", message)

    def test_expired(self) -> None:
        old = self.ca.server(now=utcnow() - datetime.timedelta(days=100), days=30)
        self.ca.write(self.dir, old)
        self.assertIn("expired on", self.load_error())

    def test_not_yet_valid(self) -> None:
        future = self.ca.server(now=utcnow() + datetime.timedelta(days=3))
        self.ca.write(self.dir, future)
        self.assertIn("not valid before", self.load_error())


class WarningTests(SynchronousTestCase):
    """:func:`bundle_warnings`: what is accepted but will hurt."""

    def test_no_san(self) -> None:
        now = utcnow()
        warnings = bundle_warnings(cn_only_bundle(now), now, hosts=["127.0.0.1"])
        self.assertEqual(len(warnings), 1)
        self.assertIn("no subjectAltName", warnings[0])
        self.assertIn("paxd cert self-signed", warnings[0])

    def test_host_not_covered(self) -> None:
        """The seed's 'doesn't contain any IP SANs' case, named before a client hits it."""
        now = utcnow()
        bundle = TestCA().server(hosts=("registry.example",), ips=())
        warnings = bundle_warnings(bundle, now, hosts=["10.1.2.3", "registry.example"])
        self.assertEqual(len(warnings), 1)
        self.assertIn("10.1.2.3 is not among the certificate's subjectAltNames", warnings[0])
        self.assertIn("add IP:10.1.2.3", warnings[0])

    def test_expires_soon(self) -> None:
        now = utcnow()
        bundle = self_signed_bundle(["localhost"], now=now, days=10)
        (warning,) = bundle_warnings(bundle, now, hosts=["localhost"])
        self.assertIn("expires in 9 days", warning)

    def test_expiry_far(self) -> None:
        now = utcnow()
        bundle = self_signed_bundle(["localhost"], now=now, days=15)
        self.assertEqual(bundle_warnings(bundle, now, hosts=["localhost"]), [])


class BundleTests(SynchronousTestCase):
    """:class:`CertificateBundle` itself."""

    def test_covers(self) -> None:
        bundle = self_signed_bundle(["*.example.com", "example.com", "10.0.0.1", "::1"])
        for host in ("a.example.com", "EXAMPLE.com", "10.0.0.1", "[::1]", "::1"):
            self.assertTrue(bundle.covers(host), host)
        for host in ("a.b.example.com", "example.org", "10.0.0.2", ".example.com"):
            self.assertFalse(bundle.covers(host), host)

    def test_round_trip(self) -> None:
        bundle = TestCA().server()
        again = parse_bundle(bundle.chain_pem(), bundle.key_pem())
        self.assertEqual(
            [c.serial_number for c in again.chain], [c.serial_number for c in bundle.chain]
        )
        check_bundle(again, utcnow())

    def test_temporary(self) -> None:
        """The stand-in served before Let's Encrypt answers: valid now, the hosts as SANs."""
        now = utcnow()
        bundle = temporary_bundle(["registry.example", "127.0.0.1"], now)
        check_bundle(bundle, now)
        self.assertTrue(bundle.covers("registry.example"))
        self.assertTrue(bundle.covers("127.0.0.1"))
        self.assertIsInstance(bundle.key, ec.EllipticCurvePrivateKey)
