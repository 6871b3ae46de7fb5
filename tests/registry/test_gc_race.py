"""Pushes racing the garbage collector, over many rounds: no tag ever loses its content.

Every storage call goes through :class:`Jittery`, which delivers each result
after a random delay on a ``task.Clock``, so that pushes, tag deletes and a
collection interleave differently at every step.  Each round pushes images
whose layers are fresh or are old blobs just made unreferenced (the case
that breaks a naive mark and sweep), deletes manifests, and collects at the
same time with no grace window; afterwards every tag of every repository
must give its manifest and every blob it references, byte for byte.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable
from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.task import Clock
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase
from zope.interface import implementer

from paxd.registry import manifests
from paxd.registry.errors import RegistryError
from paxd.registry.gc import Collector, GCOptions, GCReport
from paxd.registry.gcmark import references
from paxd.registry.lease import Lease
from paxd.registry.reference import Digest
from paxd.registry.registry import Registry
from paxd.storage.filesystem import FilesystemStorage
from paxd.storage.interface import IStorageDriver
from paxd.storage.memory import MemoryStorage
from paxd.storage.readers import BytesReader
from paxd.threadpool import SynchronousRunner
from tests.support.rgw import rgw

REPOSITORIES = ("race/a", "race/b")
TAGS = ("t0", "t1", "t2")


def descriptor(media_type: str, data: bytes) -> dict[str, Any]:
    return {"mediaType": media_type, "digest": str(Digest.of(data)), "size": len(data)}


@implementer(IStorageDriver)
class Jittery:
    """Passes every call on at once, and delivers its result after a random delay."""

    def __init__(self, inner: IStorageDriver, clock: Clock, rng: random.Random) -> None:
        self._inner = inner
        self._clock = clock
        self._rng = rng
        self.name = inner.name

    def __getattr__(self, method: str) -> Callable[..., Deferred[Any]]:
        target = getattr(self._inner, method)

        def call(*args: Any, **kwargs: Any) -> Deferred[Any]:
            delayed: Deferred[Any] = Deferred()

            def later(result: Any) -> None:
                when = self._rng.choice((0.0, 0.001, 0.002, 0.005))
                self._clock.callLater(when, delayed.callback, result)

            def later_failure(f: Failure) -> None:
                self._clock.callLater(self._rng.choice((0.0, 0.001)), delayed.errback, f)

            target(*args, **kwargs).addCallbacks(later, later_failure)
            return delayed

        return call


class RaceMixin:
    """Rounds of pushes, deletes and collection over ``make_driver()``."""

    rounds = 30
    pushers = 6

    def make_driver(self, clock: Clock) -> IStorageDriver:
        raise NotImplementedError

    def setUp(self) -> None:
        self.clock = Clock()
        # after the real time: files' real mtimes are all old, so only intents protect
        self.clock.advance(time.time() + 60)
        self.rng = random.Random(1234)
        self.inner = self.make_driver(self.clock)
        self.driver = Jittery(self.inner, self.clock, self.rng)
        self.registry = Registry(
            self.driver,
            delete_enabled=True,
            parent_tags=False,
            now=self.clock.seconds,
            record_intents=True,
        )
        self.settle(self.registry.start())
        #: blobs pushed once: later pushes reuse them (after they became garbage)
        self.layers: list[bytes] = []
        self.outcomes = {"pushed": 0, "refused": 0, "collected": 0}

    def settle(self, *ds: Deferred[Any]) -> list[Any]:
        """Advance the clock until every Deferred has fired; their results."""
        results: list[Any] = [None] * len(ds)
        done = [False] * len(ds)
        for i, d in enumerate(ds):

            def fired(result: Any, i: int = i) -> None:
                results[i], done[i] = result, True

            d.addBoth(fired)
        for _ in range(1_000_000):
            if all(done):
                break
            self.clock.advance(0.001)
        assert all(done), "the round never finished"
        for result in results:
            if isinstance(result, Failure):
                result.raiseException()
        return results

    # -- a client ------------------------------------------------------------------------
    async def push_blob(self, name: str, data: bytes) -> None:
        repository = self.registry.repository(name)
        try:
            await repository.blobs.stat(str(Digest.of(data)))
            return  # "already there": skipped, as clients do
        except RegistryError:
            pass
        await repository.uploads.push(str(Digest.of(data)), BytesReader(data))

    async def push_image(self, name: str, tag: str, n: int) -> None:
        config = b'{"architecture": "amd64"}'
        if self.layers and self.rng.random() < 0.6:
            layer = self.rng.choice(self.layers)  # an old blob, maybe garbage by now
        else:
            layer = f"layer {n} {self.rng.random()}".encode()
            self.layers.append(layer)
        doc = {
            "schemaVersion": 2,
            "mediaType": manifests.OCI_MANIFEST,
            "config": descriptor("application/json", config),
            "layers": [descriptor("application/octet-stream", layer)],
        }
        content = json.dumps(doc).encode()
        repository = self.registry.repository(name)
        for _attempt in range(3):
            await self.push_blob(name, config)
            await self.push_blob(name, layer)
            try:
                await repository.manifests.put(tag, BytesReader(content), manifests.OCI_MANIFEST)
            except RegistryError as e:
                if e.code != "MANIFEST_BLOB_UNKNOWN":
                    raise
                self.outcomes["refused"] += 1  # collected meanwhile: push it again
                continue
            self.outcomes["pushed"] += 1
            return

    async def delete_some(self, name: str) -> None:
        repository = self.registry.repository(name)
        for tag in TAGS:
            if self.rng.random() < 0.5:
                try:
                    info = await repository.manifests.get(tag)
                    await repository.manifests.delete(str(info.digest))
                except RegistryError:
                    pass

    async def collect(self, delete_untagged: bool) -> GCReport:
        lease = Lease(self.driver, self.clock.seconds)
        options = GCOptions(grace=0.0, delete_untagged=delete_untagged)
        report: GCReport = await Collector(self.driver, self.clock, options, lease=lease).run()
        self.outcomes["collected"] += report.blobs_deleted
        return report

    # -- the check -----------------------------------------------------------------------
    async def check_every_tag(self) -> int:
        checked = 0
        for name in REPOSITORIES:
            repository = self.registry.repository(name)
            for tag in await repository.tags.names():
                info = await repository.manifests.get(tag)
                refs = references(info.content)
                assert refs is not None
                for blob in refs.blobs:
                    opened = await repository.blobs.open(str(blob))
                    data = b""
                    while chunk := await opened.reader.read(1 << 20):
                        data += chunk
                    await opened.reader.close()
                    assert blob.matches(data), f"{name}:{tag} blob {blob} is corrupt"
                checked += 1
        return checked

    def test_pushes_racing_collection_never_lose_a_tag(self) -> None:
        for round_ in range(self.rounds):
            work = [Deferred.fromCoroutine(self.collect(delete_untagged=round_ % 2 == 1))]
            for i in range(self.pushers):
                name = REPOSITORIES[i % len(REPOSITORIES)]
                tag = self.rng.choice(TAGS)
                work.append(Deferred.fromCoroutine(self.push_image(name, tag, round_ * 100 + i)))
            work += [Deferred.fromCoroutine(self.delete_some(n)) for n in REPOSITORIES]
            self.rng.shuffle(work)
            self.settle(*work)
            (checked,) = self.settle(Deferred.fromCoroutine(self.check_every_tag()))
            self.assertGreater(checked + round_, 0)
        # the race was real: content was collected and pushes got through
        self.assertGreater(self.outcomes["collected"], self.rounds)
        self.assertGreater(self.outcomes["pushed"], self.rounds * self.pushers // 2)


class RaceOnMemory(RaceMixin, SynchronousTestCase):
    """On MemoryStorage."""

    def make_driver(self, clock: Clock) -> IStorageDriver:
        return MemoryStorage(now=clock.seconds)


class RaceOnFilesystem(RaceMixin, SynchronousTestCase):
    """On FilesystemStorage."""

    rounds = 8

    def make_driver(self, clock: Clock) -> IStorageDriver:
        return FilesystemStorage(self.mktemp(), SynchronousRunner())


class RaceOnS3(RaceMixin, SynchronousTestCase):
    """On the S3 driver against a RADOS Gateway."""

    rounds = 6
    pushers = 4

    def make_driver(self, clock: Clock) -> IStorageDriver:
        return rgw().driver()
