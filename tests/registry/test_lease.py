"""Tests for :mod:`paxd.registry.lease`: one holder among many claimants, on every driver."""

from __future__ import annotations

import random
from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from paxd.registry.lease import ROTATE_LINES, Claim, Lease, LeaseHeld, replay
from paxd.storage.filesystem import FilesystemStorage
from paxd.storage.interface import IStorageDriver
from paxd.storage.memory import MemoryStorage
from paxd.threadpool import SynchronousRunner
from tests.registry.test_gc_race import Jittery
from tests.support.rgw import rgw


def lines(*claims: Claim) -> bytes:
    return b"".join(c.line() + b"\n" for c in claims)


class ReplayTests(SynchronousTestCase):
    """Everyone who reads the same journal agrees on its holder."""

    def test_rules(self) -> None:
        a, b = "host:1:a", "host:2:b"
        state = replay(lines(Claim("acquire", a, 100, 60), Claim("acquire", b, 120, 60)))
        self.assertEqual((state.holder, state.expiry), (a, 160))
        state = replay(lines(Claim("acquire", a, 100, 60), Claim("acquire", b, 161, 60)))
        self.assertEqual((state.holder, state.expiry), (b, 221))
        # a renewal after the holder's time is up counts for nothing
        state = replay(lines(Claim("acquire", a, 100, 60), Claim("renew", a, 170, 60)))
        self.assertEqual(state.expiry, 160)
        state = replay(lines(Claim("acquire", a, 100, 60), Claim("renew", a, 150, 60)))
        self.assertEqual(state.expiry, 210)
        # only the holder releases
        state = replay(lines(Claim("acquire", a, 100, 60), Claim("release", b, 110, 0)))
        self.assertEqual(state.holder, a)
        state = replay(
            lines(
                Claim("acquire", a, 100, 60),
                Claim("release", a, 110, 0),
                Claim("acquire", b, 111, 60),
            )
        )
        self.assertEqual(state.holder, b)

    def test_rotation_ends_a_generation(self) -> None:
        a, b = "host:1:a", "host:2:b"
        state = replay(
            lines(
                Claim("acquire", a, 100, 60),
                Claim("rotate", a, 110, 0),
                Claim("acquire", b, 111, 60),
            )
        )
        self.assertTrue(state.rotated)
        self.assertIsNone(state.holder)

    def test_torn_and_foreign_lines_are_ignored(self) -> None:
        a = "host:1:a"
        content = lines(Claim("acquire", a, 100, 60)) + b"nonsense here\nacquire x 1"
        self.assertEqual(replay(content).holder, a)


class LeaseTestsMixin:
    """Claimants over ``make_driver()``; their storage calls interleave at random."""

    def make_driver(self) -> IStorageDriver:
        raise NotImplementedError

    def setUp(self) -> None:
        self.clock = Clock()
        self.clock.advance(1_700_000_000)
        self.inner = self.make_driver()

    def settle(self, d: Deferred[Any]) -> Any:
        result: list[Any] = []
        d.addBoth(result.append)
        for _ in range(100_000):
            if result:
                break
            self.clock.advance(0.001)
        return result[0]

    def test_many_claimants_one_holder(self) -> None:
        rng = random.Random(7)
        driver = Jittery(self.inner, self.clock, rng)
        leases = [Lease(driver, self.clock.seconds, owner=f"host:{i}:x") for i in range(6)]
        outcomes: list[Any] = [None] * len(leases)
        ds = []
        for i, lease in enumerate(leases):
            d = Deferred.fromCoroutine(lease.acquire())
            d.addBoth(lambda r, i=i: outcomes.__setitem__(i, r))
            ds.append(d)
        for _ in range(100_000):
            if all(o is not None or ds[i].called for i, o in enumerate(outcomes)) and all(
                d.called for d in ds
            ):
                break
            self.clock.advance(0.001)
        winners = [i for i, lease in enumerate(leases) if lease.valid()]
        self.assertEqual(len(winners), 1, outcomes)
        losers = [o for i, o in enumerate(outcomes) if i not in winners]
        self.assertTrue(all(o.check(LeaseHeld) for o in losers), losers)  # type: ignore[union-attr]
        holder = self.settle(Deferred.fromCoroutine(leases[0].holder()))
        self.assertEqual(holder.holder, f"host:{winners[0]}:x")

    def test_renew_and_lose(self) -> None:
        mine = Lease(self.inner, self.clock.seconds, owner="host:1:me", ttl=60)
        self.settle(Deferred.fromCoroutine(mine.acquire()))
        self.clock.advance(30)
        self.assertTrue(self.settle(Deferred.fromCoroutine(mine.renew())))
        self.clock.advance(30)  # 60 s after taking it, 30 after renewing: still mine
        self.assertTrue(mine.valid())
        self.clock.advance(15)  # within the last third: no longer counted on
        self.assertFalse(mine.valid())
        self.clock.advance(30)  # past the end: another takes it; renewing now fails
        self.assertFalse(mine.valid())
        other = Lease(self.inner, self.clock.seconds, owner="host:2:other")
        self.settle(Deferred.fromCoroutine(other.acquire()))
        self.assertFalse(self.settle(Deferred.fromCoroutine(mine.renew())))
        self.assertTrue(other.valid())

    def test_long_journals_rotate(self) -> None:
        lease = Lease(self.inner, self.clock.seconds, owner="host:1:me")
        for _ in range(ROTATE_LINES // 2 + 3):
            self.settle(Deferred.fromCoroutine(lease.acquire()))
            self.clock.advance(1)
            self.settle(Deferred.fromCoroutine(lease.release()))
        for _ in range(ROTATE_LINES // 2 + 3):
            self.settle(Deferred.fromCoroutine(lease.acquire()))
            self.settle(Deferred.fromCoroutine(lease.release()))
        names = self.settle(self.inner.children(lease.path))
        self.assertLessEqual(len(names), 2, names)
        self.assertNotIn("0.journal", names)
        other = Lease(self.inner, self.clock.seconds, owner="host:2:other")
        self.settle(Deferred.fromCoroutine(other.acquire()))
        self.assertTrue(other.valid())
        self.assertIsInstance(self.settle(Deferred.fromCoroutine(lease.acquire())).value, LeaseHeld)


class LeaseOnMemory(LeaseTestsMixin, SynchronousTestCase):
    def make_driver(self) -> IStorageDriver:
        return MemoryStorage()


class LeaseOnFilesystem(LeaseTestsMixin, SynchronousTestCase):
    def make_driver(self) -> IStorageDriver:
        return FilesystemStorage(self.mktemp(), SynchronousRunner())


class LeaseOnS3(LeaseTestsMixin, SynchronousTestCase):
    def make_driver(self) -> IStorageDriver:
        return rgw().driver()
