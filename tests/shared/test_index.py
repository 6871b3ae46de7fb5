"""The registry index mixin against :class:`~paxd.shared.index.RedisIndex`, on a real redis-server.

The server is Debian's ``redis-server`` on loopback, started by the test run
(:mod:`tests.support.redis`); redis-py runs on the test's thread (a
synchronous runner), so Deferreds fire at once.  ``make_index`` is a fresh
registry state (its own key prefix); ``make_peer`` another process on the
same state (another RedisIndex, with locks of its own, on the same prefix).
"""

from __future__ import annotations

import json
from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from paxd.registry import layout
from paxd.registry.errors import RegistryError
from paxd.registry.index import IRegistryIndex
from paxd.registry.reference import Digest
from paxd.shared.index import RedisIndex
from paxd.storage.interface import IStorageDriver
from paxd.storage.memory import MemoryStorage
from tests.registry.index_mixin import RegistryIndexTestsMixin, summary
from tests.support.redis import RedisServer, new_prefix, shared_redis


class Recorder:
    """An :class:`~paxd.registry.index.IndexSource` that notes what it is asked to do."""

    def __init__(self, index: list[IRegistryIndex]) -> None:
        self.index = index
        self.filled: list[list[str]] = []
        self.repaired: list[str] = []

    async def fill(self, names: Any) -> None:
        self.filled.append(list(names))
        for name in names:
            await self.index[0].set_pack(name, {"1.0.0": summary(1)}, {})

    async def repair(self, name: str) -> None:
        self.repaired.append(name)
        await self.index[0].set_pack(name, {"9.0.0": summary(9)}, {})


class RedisIndexTestsMixin(RegistryIndexTestsMixin):
    """RedisIndex on the test process's redis-server."""

    def make_driver(self) -> IStorageDriver:
        return MemoryStorage()

    def setUp(self) -> None:
        self.server = shared_redis()
        self.clock = Clock()
        self.prefix = new_prefix()
        super().setUp()

    def redis_index(self, prefix: str | None = None, **kwargs: Any) -> RedisIndex:
        index = RedisIndex(
            self.server.client(),
            self.driver,
            self.clock,
            prefix=prefix or self.prefix,
            **kwargs,
        )
        self.addCleanup(index.stop)
        return index

    def make_index(self, parent_tags: bool = True) -> IRegistryIndex:
        # a fresh state: its own prefix, as a new Redis database would be
        return self.redis_index(
            new_prefix() if hasattr(self, "index") else None, parent_tags=parent_tags
        )

    def make_peer(self) -> IRegistryIndex:
        return self.redis_index()

    def raw(self) -> Any:
        return self.server.client().redis


class RedisIndexTests(RedisIndexTestsMixin, SynchronousTestCase):
    """The mixin, and what only a shared index does."""

    def test_peer_sees_new_repositories(self) -> None:
        peer = self.make_peer()
        self.ok(peer.load())
        self.ok(self.index.add_repository("from/one"))
        self.ok(peer.add_repository("from/two"))
        self.assertEqual(self.names(), ["from/one", "from/two"])
        self.assertEqual(self.names(peer), ["from/one", "from/two"])

    def test_peer_sees_packs_at_once(self) -> None:
        peer = self.make_peer()
        self.ok(peer.load())
        self.ok(self.index.update_pack("cni", [], ("1.0.0", summary(1)), {"1.x": "1.0.0"}))
        packs = self.packs(peer)
        self.assertEqual([t["parents"] for t in packs["cni"]["tags"]], [["1.x"]])

    def test_populated_index_is_not_rebuilt(self) -> None:
        """A process starting on a complete index serves it without walking storage."""
        digest = Digest.of(b"x")
        self.ok(
            self.driver.put_content(layout.layer_link("late", digest), layout.link_content(digest))
        )
        source = Recorder([self.index])
        peer = self.make_peer()
        self.ok(peer.load(source))
        self.assertEqual(source.filled, [])
        # "late" was written to storage behind the index's back: not walked for
        self.assertEqual(self.names(peer), [])

    def test_build_fills_from_the_source(self) -> None:
        for name in ["b", "a/b"]:
            digest = Digest.of(name.encode())
            self.ok(
                self.driver.put_content(
                    layout.layer_link(name, digest), layout.link_content(digest)
                )
            )
        holder: list[IRegistryIndex] = []
        source = Recorder(holder)
        index = self.make_index()
        holder.append(index)
        self.ok(index.load(source))
        self.assertEqual(source.filled, [["a/b", "b"]])
        self.assertEqual(list(self.packs(index)), ["a/b", "b"])

    def test_lost_data_is_rebuilt_and_never_served_partial(self) -> None:
        """Redis emptied (a restart without persistence): 503, then rebuilt by the watcher."""
        self.ok(self.index.add_repository("kept"))
        index = self.redis_index(ready_wait=0.5)
        self.ok(index.load())
        for key in self.raw().scan_iter(match=f"{self.prefix}*"):
            self.raw().delete(key)
        d = index.repositories(10, None)
        self.clock.pump([0.1] * 6)
        error = self.failureResultOf(d, RegistryError).value
        self.assertEqual(error.code, "UNAVAILABLE")
        self.assertIn(self.server.address, error.message)
        self.assertIn("being built from storage", error.message)
        # the watcher rebuilds from storage: "kept" has no files, so the catalog is empty
        self.ok(self.driver.put_content(layout.layer_link("stored", Digest.of(b"s")), b"x"))
        self.clock.advance(1.0)
        self.assertEqual(self.names(index), ["stored"])

    def test_stale_run_id_is_not_ready(self) -> None:
        """Data from another server run (an old snapshot) is never taken as complete."""
        gen = self.raw().get(f"{self.prefix}gen").decode()
        self.raw().set(f"{self.prefix}ready", f"{gen}:0000")
        index = self.redis_index(ready_wait=0.0)
        self.failureResultOf(index.repositories(10, None), RegistryError)

    def test_unfinished_turn_is_repaired_by_the_next(self) -> None:
        holder: list[IRegistryIndex] = []
        source = Recorder(holder)
        index = self.redis_index()
        holder.append(index)
        self.ok(index.load(source))

        async def fails() -> None:
            raise RuntimeError("storage failed half-way")

        self.failureResultOf(index.serialise("cni", fails), RuntimeError)
        self.assertEqual(source.repaired, [])

        async def works() -> str:
            return "pushed"

        self.assertEqual(self.ok(index.serialise("cni", works)), "pushed")
        self.assertEqual(source.repaired, ["cni"])
        self.assertEqual([t["tag"] for t in self.packs(index)["cni"]["tags"]], ["9.0.0"])
        # a clean turn leaves nothing to repair
        self.ok(index.serialise("cni", works))
        self.assertEqual(source.repaired, ["cni"])

    def test_killed_holder_is_repaired_by_the_watcher(self) -> None:
        """A process died in its turn: the lock expires, the watcher of another repairs."""
        holder: list[IRegistryIndex] = []
        source = Recorder(holder)
        index = self.redis_index()
        holder.append(index)
        self.ok(index.load(source))
        # what a killed process leaves: a pending mark, its lock gone with its lease
        self.raw().hset(f"{self.prefix}pending", "dead/one", "token-of-the-dead")
        self.clock.pump([1.0] * 5)
        self.assertEqual(source.repaired, ["dead/one"])
        self.assertEqual(self.raw().hgetall(f"{self.prefix}pending"), {})

    def test_stalled_holder_is_fenced(self) -> None:
        """Its lease ran out and another took the turn: its index writes are refused."""
        index = self.redis_index(lease=1.0)
        peer = self.redis_index(lease=1.0)
        self.ok(index.load())
        gate: Deferred[None] = Deferred()

        async def stalls() -> None:
            await gate
            await index.update_pack("cni", [], ("1.0.0", summary(1)), {})

        stalled = index.serialise("cni", stalls)
        # the stalled process's renewals stop reaching Redis: its lock expires
        self.raw().delete(f"{self.prefix}lock:cni")

        async def other() -> None:
            await peer.update_pack("cni", [], ("2.0.0", summary(2)), {})

        # another process takes the turn; the stalled one's token is pending: it repairs
        self.ok(peer.serialise("cni", other))
        gate.callback(None)
        error = self.failureResultOf(stalled, RegistryError).value
        self.assertIn("lost its turn", error.message)
        self.assertEqual([t["tag"] for t in self.packs(index)["cni"]["tags"]], ["2.0.0"])

    def test_turns_exclude_across_processes(self) -> None:
        peer = self.make_peer()
        gate: Deferred[None] = Deferred()
        order: list[str] = []

        async def first() -> None:
            order.append("first in")
            await gate
            order.append("first out")

        async def second() -> None:
            order.append("second in")

        one = self.index.serialise("a", first)
        two = peer.serialise("a", second)
        self.clock.pump([0.01] * 20)
        self.assertEqual(order, ["first in"])
        gate.callback(None)
        self.clock.pump([0.1] * 3)
        self.ok(one)
        self.ok(two)
        self.assertEqual(order, ["first in", "first out", "second in"])

    def test_old_generations_are_dropped(self) -> None:
        self.ok(self.index.update_pack("cni", [], ("1.0.0", summary(1)), {}))
        old = self.raw().get(f"{self.prefix}gen").decode()
        self.raw().delete(f"{self.prefix}ready")
        self.clock.advance(1.0)
        keys = {k.decode() for k in self.raw().scan_iter(match=f"{self.prefix}g*")}
        self.assertFalse(any(k.startswith(f"{self.prefix}g{old}:") for k in keys), keys)
        self.assertIn(f"{self.prefix}gen", keys)

    def test_documents_match_the_in_process_index(self) -> None:
        self.ok(
            self.index.update_pack(
                "cni", [], ("1.2.0", summary(2, "1.2.0")), {"1.x": "1.2.0", "1.2.x": "1.2.0"}
            )
        )
        page = self.ok(self.index.packs(10, None))
        self.assertEqual(json.loads(page.documents[0])["tags"][0]["parents"], ["1.x", "1.2.x"])


class RedisDownTests(SynchronousTestCase):
    """Redis stopped and started again under a running index."""

    def setUp(self) -> None:
        self.server = RedisServer().start()
        self.addCleanup(self.server.remove)
        self.clock = Clock()
        self.driver = MemoryStorage()
        self.index = RedisIndex(self.server.client(), self.driver, self.clock, ready_wait=0.0)
        self.addCleanup(self.index.stop)
        self.successResultOf(self.index.load())

    def test_unreachable_is_503_naming_redis_and_recovers(self) -> None:
        self.successResultOf(self.index.add_repository("a"))
        self.server.stop()
        for d in [
            self.index.repositories(10, None),
            self.index.packs(10, None),
            self.index.add_repository("b"),
            self.index.check(),
            self.index.serialise("a", lambda: Deferred.fromCoroutine(_nothing())),
        ]:
            error = self.failureResultOf(d, RegistryError).value
            self.assertEqual(error.code, "UNAVAILABLE")
            self.assertIn(f"Redis at {self.server.address}", error.message)
        self.clock.advance(1.0)  # the watcher notices, and logs once
        self.server.start()  # empty: its data went with the process
        self.successResultOf(self.index.check())
        self.clock.advance(1.0)  # the watcher rebuilds from storage
        self.assertEqual(self.successResultOf(self.index.repositories(10, None)).items, [])


async def _nothing() -> None:
    return None
