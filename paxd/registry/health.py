"""The storage check behind ``GET /health``: one at a time, its result shared for about a second.

``/health`` needs no credentials, so anyone may send it as often as they
like; and load balancers send it from many places at once.  A check writes
one small file and reads it back (in read-only mode it only looks at the
storage root).  :class:`HealthCheck` makes sure that:

- probes arriving while a check runs wait for that check and share its
  answer (never two checks at once in a process);
- a result, good or bad, answers every probe for :data:`REUSE` seconds: a
  flood of probes costs the disk at most one write and one read a second;
- a probe never fails for another's sake: each check writes its own content
  (this process's token and a count), and content read back that is another
  probe's (another paxd process on the same storage checked in between) is
  as good a sign of working storage as our own.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable

import attrs
from twisted.internet.defer import Deferred, fail, succeed
from twisted.logger import Logger
from twisted.python.failure import Failure

from paxd.registry import layout
from paxd.registry.context import rfc3339
from paxd.registry.errors import RegistryError
from paxd.storage.interface import IStorageDriver, PathNotFound, StorageError

log = Logger()

#: seconds a check's result answers the probes that follow it
REUSE = 1.0
#: what a probe file holds: when, and which check of which process wrote it
PROBE = re.compile(rb"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ [0-9a-f]{16} \d+$")


@attrs.frozen
class Outcome:
    """How a health check ended: storage works (no failure), or the failure saying why not."""

    failure: Failure | None = None


class HealthCheck:
    """Checks that *driver* is usable, on behalf of every concurrent probe (module docstring).

    :param now: the clock (seconds; the registry's).
    :param readonly: maintenance mode: only read.
    :param also: checked after the storage (the registry's index: Redis, when shared),
        failing with RegistryError UNAVAILABLE.
    """

    def __init__(
        self,
        driver: IStorageDriver,
        now: Callable[[], float],
        *,
        readonly: bool = False,
        also: Callable[[], Deferred[None]] | None = None,
    ) -> None:
        self._driver = driver
        self._also = also
        self._now = now
        self._readonly = readonly
        self._token = secrets.token_hex(8)
        self._count = 0
        #: when the last check ended, and its result (None: storage works)
        self._last: tuple[float, Failure | None] | None = None
        self._waiting: list[Deferred[None]] | None = None
        #: checks made (for tests and metrics)
        self.checks = 0

    def recent(self) -> Outcome | None:
        """The outcome of a check that ended less than :data:`REUSE` seconds ago, if any.

        Lets ``/health`` answer a flood at once, without a Deferred; None: ask
        :meth:`check`.
        """
        if self._waiting is not None or self._last is None:
            return None
        ended, failure = self._last
        if 0 <= self._now() - ended < REUSE:
            return Outcome(failure)
        return None

    def check(self) -> Deferred[None]:
        """Succeed if storage is usable; else fail with RegistryError UNAVAILABLE naming why."""
        if self._waiting is not None:
            waiter: Deferred[None] = Deferred()
            self._waiting.append(waiter)
            return waiter
        recent = self.recent()
        if recent is not None:
            return succeed(None) if recent.failure is None else fail(recent.failure)
        self._waiting = []
        self.checks += 1
        d = Deferred.fromCoroutine(self._probe())
        d.addBoth(self._settle)
        return d

    def _settle(self, result: Failure | None) -> Failure | None:
        failure = result if isinstance(result, Failure) else None
        self._last = (self._now(), failure)
        waiting, self._waiting = self._waiting or [], None
        for waiter in waiting:
            if failure is None:
                waiter.callback(None)
            else:
                waiter.errback(failure)
        return result

    async def _probe(self) -> None:
        await self._probe_storage()
        if self._also is not None:
            await self._also()

    async def _probe_storage(self) -> None:
        driver = self._driver
        try:
            if self._readonly:
                # maintenance mode may sit on a read-only mount: only read
                try:
                    await driver.stat(layout.ROOT)
                except PathNotFound:
                    pass
                return
            self._count += 1
            probe = f"{rfc3339(self._now())} {self._token} {self._count}".encode("ascii")
            await driver.put_content(layout.HEALTH_PROBE, probe)
            found = await driver.get_content(layout.HEALTH_PROBE)
            if found != probe and not PROBE.match(found):
                raise StorageError("the health probe read back different content")
        except Exception as e:
            log.error("storage health check failed: {reason}", reason=str(e))
            raise RegistryError(
                "UNAVAILABLE", f"storage is not usable: {e}", detail={"driver": driver.name}
            ) from e
