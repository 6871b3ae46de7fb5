"""Hot reload of ``http.tls.certificate`` and ``http.tls.key``: on a timer and on SIGHUP.

The files are stat'ed on a timer (in the disk pool); when either changed
they are read, parsed and checked there too, and the new bundle is swapped
into the running listener. A bad replacement (half-copied file, wrong key)
is reported with the same one-line message as at start-up, and the current
certificate stays in service.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable, Sequence
from types import FrameType
from typing import Any

from twisted.application.service import Service
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorFromThreads, IReactorTime
from twisted.internet.task import LoopingCall
from twisted.logger import Logger

from paxd.threadpool import PoolRunner, SynchronousRunner
from paxd.tls.certificates import (
    CertificateBundle,
    TLSSetupError,
    bundle_warnings,
    load_bundle,
    utcnow,
)
from paxd.tls.context import ServerTLS

__all__ = ["CertificateFiles", "SighupService"]

log = Logger(namespace="paxd.tls")

Stamp = tuple[tuple[int, int, int, int] | None, ...]


def _stamp(paths: Sequence[str]) -> Stamp:
    stamps: list[tuple[int, int, int, int] | None] = []
    for path in paths:
        try:
            st = os.stat(path)
        except OSError:
            stamps.append(None)
        else:
            stamps.append((st.st_mtime_ns, st.st_size, st.st_ino, st.st_dev))
    return tuple(stamps)


class CertificateFiles(Service):
    """Watches the certificate and key files and swaps changes into *tls*."""

    def __init__(
        self,
        tls: ServerTLS,
        certificate: str,
        key: str,
        runner: PoolRunner | SynchronousRunner,
        clock: IReactorTime,
        *,
        interval: float = 60.0,
        hosts: Sequence[str] = (),
    ) -> None:
        self.tls = tls
        self.paths = (certificate, key)
        self.runner = runner
        self.clock = clock
        self.interval = interval
        self.hosts = tuple(hosts)
        self._stamp: Stamp | None = None
        self._loop: LoopingCall | None = None
        self._busy = False

    def startService(self) -> None:
        super().startService()
        # The files were read at start-up (in postOptions); remember what they looked like.
        d = self.runner.run(_stamp, self.paths)
        d.addCallback(self._remember)
        loop = self._loop = LoopingCall(self.check)
        loop.clock = self.clock
        loop.start(self.interval, now=False).addErrback(
            lambda f: log.failure("certificate file watcher stopped", f)
        )

    def _remember(self, stamp: Stamp) -> None:
        if self._stamp is None:
            self._stamp = stamp

    def stopService(self) -> None:
        super().stopService()
        if self._loop is not None and self._loop.running:
            self._loop.stop()
        self._loop = None

    def check(self) -> Deferred[bool]:
        """Reload if the files changed; fires with whether a new certificate is served."""
        return Deferred.fromCoroutine(self._check(force=False))

    def reload(self) -> Deferred[bool]:
        """Reload now, changed or not (SIGHUP)."""
        return Deferred.fromCoroutine(self._check(force=True))

    async def _check(self, force: bool) -> bool:
        if self._busy:
            return False
        self._busy = True
        try:
            stamp = await self.runner.run(_stamp, self.paths)
            if not force and stamp == self._stamp:
                return False
            self._stamp = stamp
            try:
                bundle: CertificateBundle = await self.runner.run(
                    load_bundle, self.paths[0], self.paths[1], utcnow()
                )
            except TLSSetupError as e:
                log.error(
                    "{why}; still serving the previous certificate (serial {serial:x})",
                    why=str(e),
                    serial=self.tls.bundle.serial,
                )
                return False
            if bundle.chain_pem() == self.tls.bundle.chain_pem() and not force:
                return False
            try:
                self.tls.swap(bundle)
            except TLSSetupError as e:
                log.error("{why}; still serving the previous certificate", why=str(e))
                return False
            for warning in bundle_warnings(bundle, utcnow(), hosts=self.hosts):
                log.warn("{warning}", warning=warning)
            return True
        except Exception:
            log.failure("could not reload the TLS certificate")
            return False
        finally:
            self._busy = False


class SighupService(Service):
    """Calls *callback* on the reactor thread when the process gets SIGHUP.

    Installed only when started from the main thread (signal handlers must be);
    the previous handler is restored at stop.
    """

    def __init__(self, reactor: IReactorFromThreads, callback: Callable[[], Any]) -> None:
        self.reactor = reactor
        self.callback = callback
        self._previous: Any = None
        self._installed = False

    def _handler(self, signum: int, frame: FrameType | None) -> None:
        # A signal handler may run between any two bytecodes: only hand over to the reactor.
        self.reactor.callFromThread(self._run)

    def _run(self) -> None:
        log.info("SIGHUP: reloading the TLS certificate")
        self.callback()

    def startService(self) -> None:
        super().startService()
        if threading.current_thread() is threading.main_thread() and hasattr(signal, "SIGHUP"):
            self._previous = signal.signal(signal.SIGHUP, self._handler)
            self._installed = True

    def stopService(self) -> None:
        super().stopService()
        if self._installed:
            signal.signal(signal.SIGHUP, self._previous or signal.SIG_DFL)
            self._installed = False
