"""The registry index of several paxd processes, in Redis: catalog, ``_packs``, turns.

:class:`RedisIndex` provides :class:`~paxd.registry.index.IRegistryIndex`
over one Redis database (key layout: :mod:`paxd.shared.scripts`).  Nothing
is cached in the process: every listing is read from Redis, so a push
through any process is listed by every other as soon as its turn ends.
Every step is one Lua script, atomic on the server.

- Reads check that the data is *complete*: built from storage to the end, on
  the Redis server now running (its ``run_id``).  While it is not (the first
  start, a Redis restart that lost or rewound the data), a listing waits a
  few seconds for it and then answers UNAVAILABLE (503) naming Redis; it is
  never answered from partial data.
- Building (:mod:`paxd.shared.build`) is done by one process at a time
  under a lease; the others serve what does not need the index meanwhile.
- Writes happen in the repository's turn (:mod:`paxd.shared.turns`) and are
  fenced by its token.  A repository whose turn was left unfinished is
  rebuilt from storage by the next turn, or by the watcher of any process.
- Redis unreachable: every method fails with UNAVAILABLE; pulls, tag
  listings and everything else read from storage go on.  Service comes back
  by itself when Redis does (rebuilt first if its data was lost).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, TypeVar

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorTime
from twisted.internet.task import deferLater
from zope.interface import implementer

from paxd.registry.catalog import catalog_key
from paxd.registry.errors import RegistryError
from paxd.registry.index import IndexSource, IRegistryIndex, PackPage, Page
from paxd.registry.packindex import PackIndex, PackSummary
from paxd.shared import state
from paxd.shared.build import Builder
from paxd.shared.client import RedisClient, texts, unavailable
from paxd.shared.turns import Turns, new_token
from paxd.storage.interface import IStorageDriver

__all__ = ["RedisIndex"]

_T = TypeVar("_T")

#: what a page's start is when there is no ``last``
_FROM_START = "-"


def _start(last: str | None) -> str:
    return _FROM_START if last is None else "(" + catalog_key(last)


def _name(member: bytes) -> str:
    return member.decode("utf-8").replace("\x00", "/")


@implementer(IRegistryIndex)
class RedisIndex:
    """See the module docstring.

    :param client: the process's Redis client.
    :param driver: the storage (walked when the index is built).
    :param clock: timers (lease renewal, waits, the watcher).
    :param parent_tags: ``packs.parenttags``.
    :param prefix: the keys' prefix (one registry per prefix).
    :param lease: seconds a turn or a build stays held without renewal.
    :param ready_wait: seconds a listing waits for the index to be complete.
    :param watch_interval: seconds between checks for a lost index and unfinished turns.
    """

    def __init__(
        self,
        client: RedisClient,
        driver: IStorageDriver,
        clock: IReactorTime,
        *,
        parent_tags: bool = True,
        prefix: str = "paxd:",
        lease: float = 10.0,
        ready_wait: float = 5.0,
        watch_interval: float = 1.0,
        make_token: Callable[[], str] = new_token,
    ) -> None:
        self._client = client
        self._clock = clock
        self._prefix = prefix
        self._parent_tags = parent_tags
        self._ready_wait = ready_wait
        self._source: IndexSource | None = None
        self._turns = Turns(client, clock, prefix, lease=lease, make_token=make_token)
        self._builder = Builder(
            client,
            driver,
            clock,
            prefix,
            lease=lease,
            interval=watch_interval,
            make_token=make_token,
            repair=self._repair_unfinished,
            unfinished=self._turns.unfinished,
        )

    @property
    def address(self) -> str:
        """The Redis server's ``HOST:PORT``."""
        return self._client.address

    # -- start-up and health --------------------------------------------------------
    def load(self, source: IndexSource | None = None) -> Deferred[None]:
        self._source = source
        return self._builder.start(source)

    def stop(self) -> None:
        """Stop the watcher and the renewals (at shutdown)."""
        self._builder.stop()

    def check(self) -> Deferred[None]:
        async def check() -> None:
            await self._client.ping()

        return Deferred.fromCoroutine(check())

    # -- the catalog -------------------------------------------------------------------
    def add_repository(self, name: str) -> Deferred[None]:
        d = self._client.script("add_repositories", self._prefix, catalog_key(name))
        d.addCallback(lambda _: None)
        return d

    def repositories(self, n: int, last: str | None) -> Deferred[Page]:
        async def page() -> Page:
            reply = await self._when_ready(lambda: self._read("read_catalog", n, last))
            members = reply[1]
            return Page([_name(m) for m in members[:n]], n > 0 and len(members) > n)

        return Deferred.fromCoroutine(page())

    def packs(self, n: int, last: str | None) -> Deferred[PackPage]:
        async def page() -> PackPage:
            reply = await self._when_ready(lambda: self._read("read_packs", n, last))
            members, documents = reply[1][:n], texts(reply[2])
            # a document is never missing for a listed pack (one script writes both)
            return PackPage([_name(m) for m in members], documents, n > 0 and len(reply[1]) > n)

        return Deferred.fromCoroutine(page())

    def _read(self, script: str, n: int, last: str | None) -> Deferred[Any]:
        return self._client.script(script, self._prefix, _start(last), n)

    async def _when_ready(self, read: Callable[[], Deferred[Any]]) -> Any:
        """*read*'s reply once the index is complete; UNAVAILABLE after ``ready_wait``."""
        deadline = self._clock.seconds() + self._ready_wait
        while True:
            reply = await read()
            if int(reply[0]) == 1:
                return reply
            if self._clock.seconds() >= deadline:
                raise unavailable(
                    self.address,
                    "holds no complete index yet: it is being built from storage (first start,"
                    " or Redis restarted and lost it); try again shortly",
                )
            await deferLater(self._clock, 0.1)

    # -- the pack index ----------------------------------------------------------------
    def set_pack(
        self, name: str, tags: Mapping[str, PackSummary | None], parents: Mapping[str, str]
    ) -> Deferred[None]:
        return self._write(name, lambda index: index.replace(name, tags, parents))

    def update_pack(
        self,
        name: str,
        removed: Sequence[str],
        pushed: tuple[str, PackSummary | None] | None,
        parents: Mapping[str, str | None],
    ) -> Deferred[None]:
        def change(index: PackIndex) -> None:
            index.remove_tags(name, removed)
            if pushed is not None:
                index.put_tag(name, *pushed)
            if parents:
                index.set_parents(name, parents)

        return self._write(name, change)

    def _write(self, name: str, change: Callable[[PackIndex], None]) -> Deferred[None]:
        """Apply *change* to *name*'s entry, in its turn (this one, or one taken for it)."""
        token = self._turns.token(name)
        if token is not None:
            return Deferred.fromCoroutine(self._write_in_turn(name, change, token))

        async def in_own_turn() -> None:
            token = self._turns.token(name)
            assert token is not None
            await self._write_in_turn(name, change, token)

        return self.serialise(name, in_own_turn)

    async def _write_in_turn(
        self, name: str, change: Callable[[PackIndex], None], token: str
    ) -> None:
        for _ in range(3):
            generation, stored = texts(await self._client.script("read_state", self._prefix, name))
            entry, document = state.apply(name, stored, self._parent_tags, change)
            result = await self._client.script(
                "write_pack", self._prefix, name, catalog_key(name), token, generation, entry,
                document,
            )  # fmt: skip
            outcome = result.decode() if isinstance(result, bytes) else str(result)
            if outcome == "OK":
                return
            if outcome == "LOST":
                raise RegistryError(
                    "UNAVAILABLE",
                    f"this paxd process lost its turn on {name} (it stalled longer than the"
                    " lease); the repository is repaired from storage: push again",
                    detail={"name": name},
                )
            # "GEN": a rebuild began between the read and the write: read again
        raise unavailable(self.address, "is rebuilding the index; try again shortly")

    # -- turns -----------------------------------------------------------------------------
    def serialise(self, name: str, f: Callable[[], Awaitable[_T]]) -> Deferred[_T]:
        return self._turns.run(name, f, self._repair)

    async def _repair(self, name: str) -> None:
        if self._source is not None:
            await self._source.repair(name)

    def _repair_unfinished(self, name: str) -> Deferred[None]:
        """Take *name*'s turn for nothing: taking it repairs the unfinished one (watcher)."""

        async def nothing() -> None:
            return None

        return self.serialise(name, nothing)
