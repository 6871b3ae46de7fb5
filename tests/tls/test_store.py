"""The ACME certificate stores: one behaviour, checked against the directory and the fake."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import TYPE_CHECKING

from twisted.trial.unittest import SynchronousTestCase
from zope.interface.verify import verifyObject

from paxd.threadpool import SynchronousRunner
from paxd.tls.certificates import TLSSetupError
from paxd.tls.store import (
    ACCOUNT_KEY,
    DirectoryStore,
    ICertificateStore,
    MemoryStore,
    prepare_directory,
)
from tests.tls.support import TestCA, self_signed_bundle

if TYPE_CHECKING:
    _Base = SynchronousTestCase
else:
    _Base = object


class StoreMixin(_Base):
    """Tests every :class:`ICertificateStore` passes."""

    store: ICertificateStore

    def test_interface(self) -> None:
        self.assertTrue(verifyObject(ICertificateStore, self.store))

    def test_empty(self) -> None:
        self.assertIsNone(self.successResultOf(self.store.get("registry.example")))
        self.assertEqual(self.successResultOf(self.store.as_dict()), {})
        self.assertIsNone(self.successResultOf(self.store.get_account_key()))

    def test_round_trip(self) -> None:
        bundle = TestCA().server(hosts=("registry.example",), ips=())
        self.successResultOf(self.store.store("Registry.Example", bundle))
        got = self.successResultOf(self.store.get("registry.example"))
        assert got is not None
        self.assertEqual(got.chain_pem(), bundle.chain_pem())
        self.assertEqual(got.key_pem(), bundle.key_pem())
        everything = self.successResultOf(self.store.as_dict())
        self.assertEqual(list(everything), ["registry.example"])

    def test_replace(self) -> None:
        first, second = self_signed_bundle(["a.example"]), self_signed_bundle(["a.example"])
        self.successResultOf(self.store.store("a.example", first))
        self.successResultOf(self.store.store("a.example", second))
        got = self.successResultOf(self.store.get("a.example"))
        assert got is not None
        self.assertEqual(got.serial, second.serial)

    def test_account_key(self) -> None:
        self.successResultOf(self.store.store_account_key(b"-----BEGIN PRIVATE KEY-----\n"))
        self.assertEqual(
            self.successResultOf(self.store.get_account_key()), b"-----BEGIN PRIVATE KEY-----\n"
        )
        self.assertEqual(self.successResultOf(self.store.as_dict()), {})

    def test_bad_name(self) -> None:
        """A name that could escape the directory is refused."""
        for name in ("../etc/passwd", "a/b", ""):
            self.failureResultOf(self.store.get(name), ValueError)
            self.failureResultOf(self.store.store(name, self_signed_bundle(["x"])), ValueError)


class MemoryStoreTests(StoreMixin, SynchronousTestCase):
    def setUp(self) -> None:
        self.store = MemoryStore()


class DirectoryStoreTests(StoreMixin, SynchronousTestCase):
    def setUp(self) -> None:
        self.path = Path(self.mktemp()) / "acme"
        self.store = DirectoryStore(str(self.path), SynchronousRunner())

    def test_permissions(self) -> None:
        """The directory is 0700 and the files 0600: they all hold private keys."""
        self.successResultOf(self.store.store("a.example", self_signed_bundle(["a.example"])))
        self.successResultOf(self.store.store_account_key(b"key"))
        self.assertEqual(stat.S_IMODE(os.stat(self.path).st_mode), 0o700)
        for name in ("a.example", ACCOUNT_KEY):
            self.assertEqual(stat.S_IMODE(os.stat(self.path / name).st_mode), 0o600, name)
        self.assertEqual(sorted(os.listdir(self.path)), sorted(["a.example", ACCOUNT_KEY]))

    def test_autocert_layout(self) -> None:
        """Distribution's cache (Go autocert): key first, then the chain, in a file per host."""
        bundle = TestCA().server(hosts=("a.example",), ips=())
        self.path.mkdir(parents=True)
        (self.path / "a.example").write_bytes(bundle.key_pem() + bundle.chain_pem())
        got = self.successResultOf(self.store.get("a.example"))
        assert got is not None
        self.assertEqual(got.serial, bundle.serial)
        self.assertTrue((self.path / "a.example").read_bytes().startswith(b"-----BEGIN"))

    def test_damaged_file(self) -> None:
        """A damaged certificate file is reported by get, skipped by as_dict."""
        self.path.mkdir(parents=True)
        (self.path / "a.example").write_bytes(b"garbage")
        self.failureResultOf(self.store.get("a.example"), TLSSetupError)
        self.assertEqual(self.successResultOf(self.store.as_dict()), {})

    def test_tightens_directory(self) -> None:
        self.path.mkdir(parents=True, mode=0o755)
        os.chmod(self.path, 0o755)
        prepare_directory(str(self.path))
        self.assertEqual(stat.S_IMODE(os.stat(self.path).st_mode), 0o700)

    def test_file_in_the_way(self) -> None:
        self.path.parent.mkdir(parents=True)
        self.path.write_text("x")
        error = self.assertRaises(TLSSetupError, prepare_directory, str(self.path))
        self.assertIn("http.tls.letsencrypt.cachefile", str(error))
        self.assertIn("must be a directory", str(error))
