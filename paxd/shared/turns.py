"""Per-repository turns across processes: a Redis lock with a lease, renewal and fencing.

A tag change of repository *name* (and the parent tags it moves) runs while
this process holds ``<P>lock:<name>``: taken with ``SET NX PX`` under a
unique token, renewed every third of the lease while the change runs, and
released only by its holder.  Inside one process a
:class:`~twisted.internet.defer.DeferredLock` per repository queues the
turns first, so at most one request per process waits on Redis.

A holder that stalls past its lease (a frozen VM, a partition) can no
longer corrupt anything for good:

- *fencing*: the index writes of a turn carry its token and Redis refuses
  them once the lock has another holder (``write_pack`` returns LOST);
- *repair*: taking a turn records its token in ``<P>pending``; a clean end
  removes it.  Whoever takes the next turn and finds a token there (a
  process killed or stalled mid-change, or a change that failed half-way)
  first rebuilds that repository's parent tags and pack entry from storage.
  A holder that finds at release that its lease ran out marks the
  repository again and takes a repair turn itself; a watcher in every
  process repairs marked repositories nobody holds
  (:meth:`Turns.unfinished`).

Storage itself cannot check a token, so a stalled holder's late write to a
parent tag can land; it is repaired by the turn that follows it.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import TypeVar

import attrs
from twisted.internet.defer import Deferred, DeferredLock
from twisted.internet.interfaces import IReactorTime
from twisted.internet.task import LoopingCall, deferLater
from twisted.logger import Logger

from paxd.registry.errors import RegistryError
from paxd.shared.client import RedisClient, texts

__all__ = ["Turns", "new_token"]

log = Logger()

_T = TypeVar("_T")
Repair = Callable[[str], Awaitable[None]]


def new_token() -> str:
    """A token no other turn anywhere has."""
    return uuid.uuid4().hex


@attrs.define
class _Lease:
    """This process's hold on one repository's turn."""

    token: str
    #: the turn before did not finish cleanly: repair first
    unfinished: bool
    lost: bool = False
    renewer: LoopingCall | None = None


class Turns:
    """Turns of repositories, one at a time across every process sharing *client*.

    :param prefix: the key prefix of this registry's state.
    :param lease: seconds a turn stays held without renewal.
    :param max_wait: seconds to wait for a turn before answering UNAVAILABLE.
    """

    def __init__(
        self,
        client: RedisClient,
        clock: IReactorTime,
        prefix: str,
        *,
        lease: float = 10.0,
        max_wait: float = 60.0,
        make_token: Callable[[], str] = new_token,
    ) -> None:
        self._client = client
        self._clock = clock
        self._prefix = prefix
        self._lease = lease
        self._max_wait = max_wait
        self._make_token = make_token
        self._local: dict[str, DeferredLock] = {}
        self._held: dict[str, _Lease] = {}

    def token(self, name: str) -> str | None:
        """The token of this process's turn of *name*, if it holds one now."""
        lease = self._held.get(name)
        return lease.token if lease is not None else None

    def run(self, name: str, f: Callable[[], Awaitable[_T]], repair: Repair) -> Deferred[_T]:
        """Run *f* in *name*'s turn (after *repair* if the previous turn was left unfinished)."""
        return Deferred.fromCoroutine(self._queued(name, f, repair))

    async def _queued(self, name: str, f: Callable[[], Awaitable[_T]], repair: Repair) -> _T:
        lock = self._local.get(name)
        if lock is None:
            lock = self._local[name] = DeferredLock()
        await lock.acquire()
        try:
            return await self._in_turn(name, f, repair)
        finally:
            lock.release()
            if not lock.locked and not lock.waiting and self._local.get(name) is lock:
                del self._local[name]

    async def _in_turn(self, name: str, f: Callable[[], Awaitable[_T]], repair: Repair) -> _T:
        lease = await self._acquire(name)
        self._held[name] = lease
        lease.renewer = LoopingCall(self._renew, name, lease)
        lease.renewer.clock = self._clock
        lease.renewer.start(self._lease / 3, now=False).addErrback(
            lambda f: log.failure("renewing the turn of {name}", f, name=name)
        )
        clean = False
        try:
            if lease.unfinished:
                log.warn(
                    "{name}: the previous tag change was left unfinished (a paxd process was"
                    " killed or stalled in its turn): repairing its parent tags and packs"
                    " from storage",
                    name=name,
                )
                await repair(name)
            result = await f()
            clean = True
            return result
        finally:
            if lease.renewer.running:
                lease.renewer.stop()
            del self._held[name]
            await self._release(name, lease, clean, repair)

    async def _acquire(self, name: str) -> _Lease:
        token = self._make_token()
        deadline = self._clock.seconds() + self._max_wait
        delay = 0.005
        lease_ms = int(self._lease * 1000)
        while True:
            reply = await self._client.script("acquire", self._prefix, name, token, lease_ms)
            if int(reply[0]) == 1:
                return _Lease(token, unfinished=bool(texts(reply[1:])[0]))
            if self._clock.seconds() >= deadline:
                raise RegistryError(
                    "UNAVAILABLE",
                    f"repository {name} is busy: another paxd process has held its tag lock"
                    f" for {self._max_wait:.0f}s; try again",
                    detail={"name": name},
                )
            await deferLater(self._clock, delay)
            delay = min(delay * 2, 0.1)

    async def _renew(self, name: str, lease: _Lease) -> None:
        try:
            kept = await self._client.script(
                "renew", self._prefix, f"lock:{name}", lease.token, int(self._lease * 1000)
            )
        except RegistryError as e:
            log.warn("cannot renew the turn of {name}: {reason}", name=name, reason=e.message)
            return
        if not int(kept) and not lease.lost:
            lease.lost = True
            log.warn(
                "{name}: this process's turn ran out (it stalled for more than {lease:.0f}s);"
                " its index writes are refused and the repository will be repaired",
                name=name,
                lease=self._lease,
            )

    async def _release(self, name: str, lease: _Lease, clean: bool, repair: Repair) -> None:
        try:
            mine = await self._client.script(
                "release", self._prefix, name, lease.token, "1" if clean else "0"
            )
        except RegistryError as e:
            # the lease runs out by itself; the mark in pending makes the next turn repair
            log.warn("cannot release the turn of {name}: {reason}", name=name, reason=e.message)
            return
        if not int(mine):
            log.warn("{name}: a turn ended after its lease ran out: repairing", name=name)

            async def nothing() -> None:
                return None

            d = self.run(name, nothing, repair)
            d.addErrback(lambda f: log.failure("repairing {name}", f, name=name))

    def unfinished(self) -> Deferred[list[str]]:
        """Repositories whose last turn was left unfinished and that nobody holds now."""
        d = self._client.script("unfinished", self._prefix)
        d.addCallback(texts)
        return d
