"""Building the shared index from storage, and watching that it stays built.

The first paxd process to find the index incomplete (no other process
building it) takes the build lease, starts a new *generation* (an empty key
space, so nothing of an older or half-written index is ever read), walks the
storage for repositories, has the registry fill each one's pack entry in its
turn (:class:`~paxd.registry.index.IndexSource`), and marks the generation
complete on the Redis server it ran on.  Writes that happen meanwhile (other
processes' pushes) go into the new generation, in their repositories'
turns, so nothing is lost.  Older generations are then deleted.

Every process runs the watcher: once a second it checks the index is
complete (and builds it if nobody does: after a Redis restart that lost it),
and every few seconds it repairs repositories whose last turn was left
unfinished by a process that died.
"""

from __future__ import annotations

from collections.abc import Callable

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorTime
from twisted.internet.task import LoopingCall
from twisted.logger import Logger

from paxd.registry.catalog import catalog_key, walk_repositories
from paxd.registry.errors import RegistryError
from paxd.registry.index import IndexSource
from paxd.shared.client import RedisClient
from paxd.storage.interface import IStorageDriver

__all__ = ["Builder"]

log = Logger()

#: repository names sent to Redis in one script call
_BATCH = 1000
#: watcher ticks between two looks for unfinished turns
_UNFINISHED_EVERY = 5


class Builder:
    """Builds the index when it must be, and watches it (see the module docstring).

    :param repair: takes the turn of a repository whose last turn was left
        unfinished (which repairs it).
    :param unfinished: the repositories whose last turn was left unfinished.
    """

    def __init__(
        self,
        client: RedisClient,
        driver: IStorageDriver,
        clock: IReactorTime,
        prefix: str,
        *,
        lease: float,
        interval: float,
        make_token: Callable[[], str],
        repair: Callable[[str], Deferred[None]],
        unfinished: Callable[[], Deferred[list[str]]],
    ) -> None:
        self._client = client
        self._driver = driver
        self._clock = clock
        self._prefix = prefix
        self._lease = lease
        self._interval = interval
        self._make_token = make_token
        self._repair = repair
        self._unfinished = unfinished
        self._source: IndexSource | None = None
        self._watcher: LoopingCall | None = None
        self._building = False
        self._ticks = 0
        #: the reason Redis could not be reached at the last look, until it can again
        self._down: str | None = None

    def start(self, source: IndexSource | None) -> Deferred[None]:
        """At start-up: build the index if it is incomplete and nobody builds it; watch it."""
        self._source = source

        async def start() -> None:
            await self._look()
            self._watcher = LoopingCall(self._tick)
            self._watcher.clock = self._clock
            self._watcher.start(self._interval, now=False).addErrback(
                lambda f: log.failure("the shared index watcher stopped", f)
            )

        return Deferred.fromCoroutine(start())

    def stop(self) -> None:
        """Stop watching."""
        if self._watcher is not None and self._watcher.running:
            self._watcher.stop()

    async def _tick(self) -> None:
        self._ticks += 1
        await self._look()
        if self._source is not None and self._ticks % _UNFINISHED_EVERY == 0 and not self._down:
            await self._repair_unfinished()

    async def _look(self) -> None:
        """Check the index is complete; build it if not and nobody else is."""
        try:
            ready, building, _ = await self._client.script("status", self._prefix)
        except RegistryError as e:
            if self._down is None:
                log.error("{reason}; listings answer 503 until it is back", reason=e.message)
            self._down = e.message
            return
        if self._down is not None:
            log.info("Redis at {address} is reachable again", address=self._client.address)
            self._down = None
        if not int(ready) and not int(building) and not self._building:
            await self._build()

    async def _build(self) -> None:
        self._building = True
        token = self._make_token()
        renewer: LoopingCall | None = None
        try:
            generation = await self._client.script(
                "build_begin", self._prefix, token, int(self._lease * 1000)
            )
            if not generation:
                return  # another process took the build
            renewer = LoopingCall(self._renew, token)
            renewer.clock = self._clock
            renewer.start(self._lease / 3, now=False).addErrback(lambda f: None)
            await self._fill(int(generation), token)
        except RegistryError as e:
            log.error("could not build the shared index: {reason}", reason=e.message)
        except Exception:  # storage failing the walk: logged, and the watcher tries again
            log.failure("could not build the shared index")
        finally:
            if renewer is not None and renewer.running:
                renewer.stop()
            self._building = False

    async def _fill(self, generation: int, token: str) -> None:
        log.info(
            "building the shared index in Redis at {address} from storage (generation"
            " {generation})",
            address=self._client.address,
            generation=generation,
        )
        names = sorted(await walk_repositories(self._driver), key=catalog_key)
        for i in range(0, len(names), _BATCH):
            members = [catalog_key(name) for name in names[i : i + _BATCH]]
            await self._client.script("add_repositories", self._prefix, *members)
        if self._source is not None:
            await self._source.fill(names)
        if not int(await self._client.script("build_end", self._prefix, token)):
            log.warn(
                "the shared index build was overtaken (Redis restarted, or this process"
                " stalled past its lease); it is built again"
            )
            return
        log.info("shared index ready: {count} repositories", count=len(names))
        dropped = await self._client.delete_matching(
            f"{self._prefix}g*", lambda key: self._keep(key, generation)
        )
        if dropped:
            log.info("dropped {count} keys of older index generations", count=dropped)

    def _keep(self, key: str, generation: int) -> bool:
        """A key of another generation's data is dropped; every other key is kept."""
        part = key[len(self._prefix) + 1 :].split(":", 1)[0]
        return not part.isdigit() or int(part) >= generation

    async def _renew(self, token: str) -> None:
        try:
            kept = await self._client.script(
                "renew", self._prefix, "build", token, int(self._lease * 1000)
            )
        except RegistryError:
            return
        if not int(kept):
            log.warn("this process lost the shared index build lease; another process rebuilds")

    async def _repair_unfinished(self) -> None:
        try:
            names = await self._unfinished()
        except RegistryError:
            return
        for name in names:
            try:
                await self._repair(name)
            except Exception as e:  # logged; the next look tries again
                log.warn("could not repair {name}: {reason}", name=name, reason=str(e))
