"""``cert self-signed``: a CA and a server certificate that clients accept."""

from __future__ import annotations

import io
import ipaddress
import os
import stat
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID
from twisted.trial.unittest import SynchronousTestCase

from paxd.tls.certificates import bundle_warnings, load_bundle, utcnow
from paxd.tls.selfsigned import main


class SelfSignedTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.out = Path(self.mktemp())

    def run_main(self, *args: str) -> tuple[int, str, str]:
        stdout, stderr = io.StringIO(), io.StringIO()
        with redirect_stdout(stdout), redirect_stderr(stderr):
            try:
                code = main([*args, "--out", str(self.out)])
            except SystemExit as e:
                code = int(e.code or 0)
        return code, stdout.getvalue(), stderr.getvalue()

    def test_writes(self) -> None:
        code, out, _ = self.run_main("--host", "registry.example", "--ip", "10.0.0.5")
        self.assertEqual(code, 0)
        ca = x509.load_pem_x509_certificate((self.out / "ca.crt").read_bytes())
        bundle = load_bundle(str(self.out / "tls.crt"), str(self.out / "tls.key"), utcnow())
        bundle.leaf.verify_directly_issued_by(ca)
        dns, ips = bundle.names()
        self.assertEqual((dns, ips), (["registry.example"], [ipaddress.ip_address("10.0.0.5")]))
        eku = bundle.leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        self.assertIn(ExtendedKeyUsageOID.SERVER_AUTH, list(eku))
        basic = bundle.leaf.extensions.get_extension_for_class(x509.BasicConstraints).value
        self.assertFalse(basic.ca)
        self.assertEqual(
            bundle_warnings(bundle, utcnow(), hosts=["registry.example", "10.0.0.5"]), []
        )
        for name, mode in (("ca.key", 0o600), ("tls.key", 0o600), ("ca.crt", 0o644)):
            self.assertEqual(stat.S_IMODE(os.stat(self.out / name).st_mode), mode, name)
        # how to configure and trust it
        self.assertIn(f"certificate: {self.out.absolute() / 'tls.crt'}", out)
        self.assertIn("/etc/spectro/certs.d/registry.example/ca.crt", out)
        self.assertIn("update-ca-certificates", out)

    def test_reuses_ca(self) -> None:
        self.run_main("--host", "a.example")
        ca = (self.out / "ca.crt").read_bytes()
        code, out, _ = self.run_main("--host", "b.example", "--force")
        self.assertEqual(code, 0)
        self.assertEqual((self.out / "ca.crt").read_bytes(), ca)
        self.assertIn("Reused CA", out)
        bundle = load_bundle(str(self.out / "tls.crt"), str(self.out / "tls.key"), utcnow())
        self.assertEqual(bundle.names()[0], ["b.example"])
        bundle.leaf.verify_directly_issued_by(x509.load_pem_x509_certificate(ca))

    def test_refuses_overwrite(self) -> None:
        self.run_main("--host", "a.example")
        before = (self.out / "tls.crt").read_bytes()
        code, _, err = self.run_main("--host", "a.example")
        self.assertEqual(code, 1)
        self.assertIn("exists; pass --force", err)
        self.assertEqual((self.out / "tls.crt").read_bytes(), before)

    def test_rsa(self) -> None:
        code, _, _ = self.run_main("--ip", "127.0.0.1", "--key-type", "rsa")
        self.assertEqual(code, 0)
        load_bundle(str(self.out / "tls.crt"), str(self.out / "tls.key"), utcnow())

    def test_usage(self) -> None:
        for args, text in (
            ((), "at least one --host"),
            (("--host", "10.0.0.1"), "pass it with --ip"),
            (("--ip", "registry"), "not an IP address"),
            (("--host", "a b"), "not a DNS name"),
        ):
            code, _, err = self.run_main(*args)
            self.assertEqual(code, 2, args)
            self.assertIn(text, err)
        self.assertFalse(self.out.exists())
