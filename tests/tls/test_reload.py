"""Hot reload of the certificate files, on the timer and on SIGHUP."""

from __future__ import annotations

import os
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from paxd.threadpool import SynchronousRunner
from paxd.tls.certificates import load_bundle, utcnow
from paxd.tls.context import ServerTLS
from paxd.tls.reload import CertificateFiles, SighupService
from tests.tls.support import CapturedLogs, TestCA, pem_key


class CertificateFilesTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.dir = Path(self.mktemp())
        self.dir.mkdir()
        self.ca = TestCA()
        self.crt, self.key = self.ca.write(self.dir, self.ca.server())
        self.tls = ServerTLS(load_bundle(self.crt, self.key, utcnow()))
        self.clock = Clock()
        self.files = CertificateFiles(
            self.tls, self.crt, self.key, SynchronousRunner(), self.clock, interval=60
        )
        self.files.startService()
        self.addCleanup(self.files.stopService)
        self.logs = CapturedLogs(self)

    def replace(self) -> int:
        bundle = self.ca.server()
        # A new inode and mtime, as an operator's cp/mv or certbot's deploy hook makes.
        for path, data in ((self.crt, bundle.chain_pem()), (self.key, bundle.key_pem())):
            Path(path + ".new").write_bytes(data)
            os.replace(path + ".new", path)
        return bundle.serial

    def test_unchanged(self) -> None:
        before = self.tls.bundle
        self.clock.advance(60)
        self.assertIs(self.tls.bundle, before)

    def test_timer(self) -> None:
        """Replaced files are served after the next check, without a restart."""
        serial = self.replace()
        self.clock.advance(59)
        self.assertNotEqual(self.tls.bundle.serial, serial)
        self.clock.advance(1)
        self.assertEqual(self.tls.bundle.serial, serial)

    def test_bad_replacement(self) -> None:
        """A key that does not match: reported, and the current certificate stays."""
        before = self.tls.bundle
        Path(self.key).write_bytes(pem_key(ec.generate_private_key(ec.SECP256R1())))
        os.utime(self.key, ns=(1, 1))
        self.clock.advance(60)
        self.assertIs(self.tls.bundle, before)
        (error,) = self.logs.messages("error")
        self.assertIn("does not match the certificate", error)
        self.assertIn("still serving the previous certificate", error)

    def test_half_written(self) -> None:
        """The certificate replaced before the key: refused until both are there."""
        before = self.tls.bundle
        bundle = self.ca.server()
        Path(self.crt).write_bytes(bundle.chain_pem())
        os.utime(self.crt, ns=(2, 2))
        self.clock.advance(60)
        self.assertIs(self.tls.bundle, before)
        Path(self.key).write_bytes(bundle.key_pem())
        os.utime(self.key, ns=(3, 3))
        self.clock.advance(60)
        self.assertEqual(self.tls.bundle.serial, bundle.serial)

    def test_reload(self) -> None:
        """reload() (SIGHUP) does not wait for the timer."""
        serial = self.replace()
        self.assertTrue(self.successResultOf(self.files.reload()))
        self.assertEqual(self.tls.bundle.serial, serial)


class _Reactor:
    def __init__(self) -> None:
        self.calls: list[Callable[[], Any]] = []

    def callFromThread(self, f: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        self.calls.append(lambda: f(*args, **kwargs))


class SighupTests(SynchronousTestCase):
    def test_sighup(self) -> None:
        """SIGHUP reaches the callback through the reactor; stop restores the old handler."""
        previous = signal.getsignal(signal.SIGHUP)
        reactor = _Reactor()
        called: list[bool] = []
        service = SighupService(reactor, lambda: called.append(True))  # type: ignore[arg-type]
        service.startService()
        try:
            os.kill(os.getpid(), signal.SIGHUP)
            self.assertEqual(called, [])  # not in the signal handler itself
            self.assertEqual(len(reactor.calls), 1)
            reactor.calls[0]()
            self.assertEqual(called, [True])
        finally:
            service.stopService()
        self.assertEqual(signal.getsignal(signal.SIGHUP), previous)
