"""A worker that is not the ACME issuer: it serves the certificates worker 0 stores.

With ``paxd serve --workers N`` and ``http.tls.letsencrypt``, worker 0 runs
the :class:`~paxd.tls.issuing.IssuingService` and keeps the certificate in
the cache directory; every other worker reads the cache on a timer (in the
ACME pool) and swaps a new certificate into its listeners, so all serve the
same one within :data:`INTERVAL` of its issue.
"""

from __future__ import annotations

from twisted.application.service import Service
from twisted.internet.interfaces import IReactorTime
from twisted.internet.task import LoopingCall
from twisted.logger import Logger

from paxd.tls.certificates import CertificateBundle
from paxd.tls.context import ServerTLS
from paxd.tls.store import ICertificateStore

__all__ = ["INTERVAL", "StoredCertificates"]

log = Logger(namespace="paxd.tls")

#: seconds between two reads of the cache
INTERVAL = 10.0


class StoredCertificates(Service):
    """Swaps the certificate stored under *name* into *tls* whenever it changes."""

    def __init__(
        self,
        name: str,
        store: ICertificateStore,
        tls: ServerTLS,
        clock: IReactorTime,
        interval: float = INTERVAL,
    ) -> None:
        self.store_name = name
        self.store = store
        self.tls = tls
        self.current: CertificateBundle | None = None
        self._loop = LoopingCall(self._read)
        self._loop.clock = clock
        self.interval = interval

    def startService(self) -> None:
        super().startService()
        self._loop.start(self.interval, now=True)

    def stopService(self) -> None:
        super().stopService()
        if self._loop.running:
            self._loop.stop()

    async def _read(self) -> None:
        try:
            bundle = await self.store.get(self.store_name)
        except Exception as e:  # a half-written file: the next read gets it whole
            log.warn("cannot read the stored certificate: {why}", why=str(e))
            return
        if bundle is None or (self.current is not None and bundle.serial == self.current.serial):
            return
        self.current = bundle
        self.tls.swap(bundle)
        log.info(
            "serving the certificate worker 0 stored, valid until {not_after}",
            not_after=bundle.not_after.isoformat(),
        )
