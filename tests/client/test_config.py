"""Registry addresses, the credentials file and trusted CAs."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

from twisted.trial.unittest import SynchronousTestCase

from paxd.client.config import (
    AuthEntry,
    Credentials,
    CredentialStore,
    parse_server,
)
from paxd.client.errors import PaxctlError, UsageError


class ParseServerTests(SynchronousTestCase):
    def test_forms(self) -> None:
        cases = {
            "registry.example.com": ("registry.example.com", "registry.example.com", None, None),
            "10.0.0.5:5000": ("10.0.0.5:5000", "10.0.0.5", 5000, None),
            "https://Reg.Example.com:8443/": (
                "reg.example.com:8443",
                "reg.example.com",
                8443,
                "https",
            ),
            "http://127.0.0.1:5000": ("127.0.0.1:5000", "127.0.0.1", 5000, "http"),
            "[::1]:5000": ("[::1]:5000", "::1", 5000, None),
        }
        for text, (key, host, port, scheme) in cases.items():
            s = parse_server(text)
            self.assertEqual((s.key, s.host, s.port, s.scheme), (key, host, port, scheme), text)

    def test_default_ports(self) -> None:
        s = parse_server("example.com")
        self.assertEqual((s.port_for("https"), s.port_for("http")), (443, 80))

    def test_bad(self) -> None:
        for text in ("", "ftp://x", "x:notaport", "x:70000", "host/path", "user@host"):
            self.assertRaises(UsageError, parse_server, text)


class CredentialsTests(SynchronousTestCase):
    def test_round_trip(self) -> None:
        c = Credentials("admin", "p:ss wörd")
        self.assertEqual(Credentials.decode(c.encode()), c)
        self.assertIsNone(Credentials.decode("!!!"))
        self.assertIsNone(Credentials.decode("bm9jb2xvbg=="))  # "nocolon"


class StoreTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.home = Path(self.mktemp())
        self.path = self.home / ".config" / "paxctl" / "config.json"
        self.vendor = self.home / ".spectro" / "config.json"
        self.store = CredentialStore(self.path, self.vendor)

    def test_save_shape_and_mode(self) -> None:
        """The vendor CLI's shape, mode 0600, and the first server becomes the default."""
        self.store.save("r:5000", AuthEntry(Credentials("admin", "pw"), insecure=True), False)
        data = json.loads(self.path.read_text())
        self.assertEqual(
            data,
            {
                "auths": {
                    "r:5000": {"auth": Credentials("admin", "pw").encode(), "insecure": True}
                },
                "defaultRegistry": "r:5000",
            },
        )
        self.assertEqual(stat.S_IMODE(os.stat(self.path).st_mode), 0o600)
        self.assertEqual(stat.S_IMODE(os.stat(self.path.parent).st_mode), 0o700)

    def test_default_moves_only_when_asked(self) -> None:
        self.store.save("a", AuthEntry(None), False)
        self.store.save("b", AuthEntry(None), False)
        self.assertEqual(self.store.default(), "a")
        self.store.save("b", AuthEntry(None), True)
        self.assertEqual(self.store.default(), "b")

    def test_remove(self) -> None:
        self.store.save("a", AuthEntry(Credentials("u", "p")), True)
        self.assertTrue(self.store.remove("a"))
        self.assertFalse(self.store.remove("a"))
        self.assertIsNone(self.store.get("a"))
        self.assertIsNone(self.store.default())

    def test_vendor_file_is_a_fallback(self) -> None:
        self.vendor.parent.mkdir(parents=True)
        self.vendor.write_text(
            json.dumps(
                {
                    "auths": {
                        "v:443": {"auth": Credentials("spectro", "x").encode(), "insecure": True}
                    },
                    "defaultRegistry": "v:443",
                }
            )
        )
        entry = self.store.get("v:443")
        self.assertEqual(entry, AuthEntry(Credentials("spectro", "x"), insecure=True))
        self.assertEqual(self.store.default(), "v:443")
        self.store.save("mine", AuthEntry(None), True)
        self.assertEqual(self.store.default(), "mine")

    def test_unreadable_file(self) -> None:
        self.path.parent.mkdir(parents=True)
        self.path.write_text("{not json")
        with self.assertRaises(PaxctlError) as caught:
            self.store.get("x")
        self.assertIn(str(self.path), str(caught.exception))

    def test_ca_files(self) -> None:
        server = parse_server("reg:5000")
        self.assertEqual(self.store.ca_files(server), [])
        self.home.mkdir()
        ca = self.home / "ca.pem"
        ca.write_text("-----BEGIN CERTIFICATE-----\n")
        installed = self.store.install_ca(server, ca)
        self.assertEqual(installed, self.path.parent / "certs.d" / "reg:5000" / "ca.crt")
        self.assertEqual(self.store.ca_files(server), [installed])


class HomeTests(SynchronousTestCase):
    """``-s/--home``: ~/.spectro by default; what paxctl 0.x wrote is still read."""

    def setUp(self) -> None:
        self.home = Path(self.mktemp()).resolve()
        self.home.mkdir()
        self.patch(os, "environ", {**os.environ, "HOME": str(self.home)})
        os.environ.pop("XDG_CONFIG_HOME", None)
        self.legacy = self.home / ".config" / "paxctl" / "config.json"

    def write_legacy(self) -> None:
        self.legacy.parent.mkdir(parents=True)
        self.legacy.write_text(
            json.dumps(
                {
                    "auths": {"old:5000": {"auth": Credentials("admin", "pw").encode()}},
                    "defaultRegistry": "old:5000",
                }
            )
        )

    def test_default_home_writes_the_vendor_file(self) -> None:
        store = CredentialStore.for_home(None)
        self.assertEqual(store.path, self.home / ".spectro" / "config.json")
        store.save("r:5000", AuthEntry(Credentials("u", "p")), False)
        self.assertEqual(stat.S_IMODE(os.stat(store.path).st_mode), 0o600)
        self.assertEqual(store.get("r:5000"), AuthEntry(Credentials("u", "p")))

    def test_paxctl_0x_logins_still_work(self) -> None:
        self.write_legacy()
        store = CredentialStore.for_home(None)
        self.assertEqual(store.get("old:5000"), AuthEntry(Credentials("admin", "pw")))
        self.assertEqual(store.default(), "old:5000")
        # a logout forgets it there too
        self.assertTrue(store.remove("old:5000"))
        self.assertIsNone(store.get("old:5000"))
        self.assertNotIn("old:5000", json.loads(self.legacy.read_text())["auths"])

    def test_explicit_home_is_read_alone(self) -> None:
        self.write_legacy()
        mine = self.home / "elsewhere"
        store = CredentialStore.for_home(mine)
        self.assertIsNone(store.get("old:5000"))
        self.assertIsNone(store.default())
        store.save("r:1", AuthEntry(None), True)
        self.assertTrue((mine / "config.json").is_file())
        self.assertFalse((self.home / ".spectro").exists())

    def test_certs_d_of_the_home_and_of_paxctl_0x(self) -> None:
        server = parse_server("reg:5000")
        old = self.home / ".config" / "paxctl" / "certs.d" / "reg:5000" / "ca.crt"
        old.parent.mkdir(parents=True)
        old.write_text("-----BEGIN CERTIFICATE-----\n")
        store = CredentialStore.for_home(None)
        self.assertEqual(store.ca_files(server), [old])
        ca = self.home / "ca.pem"
        ca.write_text("-----BEGIN CERTIFICATE-----\n")
        installed = store.install_ca(server, ca)
        self.assertEqual(installed, self.home / ".spectro" / "certs.d" / "reg:5000" / "ca.crt")
        self.assertEqual(store.ca_files(server), [installed, old])
        self.assertEqual(CredentialStore.for_home(self.home / "x").ca_files(server), [])
