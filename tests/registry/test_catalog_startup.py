"""The catalog while start-up still walks storage: it waits, never answers partly.

Docker distribution walks storage on every catalog request, so its answer is
always complete; paxd walks once at start-up, and a request arriving before
the walk ends must wait for it (or, while storage does not answer, get 503),
not be told the registry is empty.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import Deferred, fail
from twisted.trial.unittest import SynchronousTestCase

from paxd.registry.errors import RegistryError
from paxd.registry.registry import Registry
from paxd.storage.interface import StorageUnavailable
from paxd.storage.memory import MemoryStorage


class HeldWalks(MemoryStorage):
    """MemoryStorage whose directory walks wait until released (or fail)."""

    def __init__(self) -> None:
        super().__init__()
        self.held: list[tuple[Deferred[Any], Deferred[Any]]] = []
        self.hold = False
        self.failure: Exception | None = None

    def walk_dirs(self, *args: Any, **kwargs: Any) -> Deferred[Any]:
        if self.failure is not None:
            return fail(self.failure)
        inner = super().walk_dirs(*args, **kwargs)
        if not self.hold:
            return inner
        outer: Deferred[Any] = Deferred()
        self.held.append((inner, outer))
        return outer

    def release(self) -> None:
        held, self.held = self.held, []
        for inner, outer in held:
            inner.chainDeferred(outer)


class CatalogDuringStartupTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.storage = HeldWalks()
        seed = Registry(self.storage, delete_enabled=True)
        self.successResultOf(seed.start())
        for name in ("lib/a", "lib/b"):
            upload = self.successResultOf(seed.repository(name).uploads.start())
            self.assertIsNotNone(upload)
        self.successResultOf(
            self.storage.put_content(
                "/docker/registry/v2/repositories/lib/a/_layers/sha256/" + "a" * 64 + "/link",
                b"sha256:" + b"a" * 64,
            )
        )
        self.successResultOf(
            self.storage.put_content(
                "/docker/registry/v2/repositories/lib/b/_layers/sha256/" + "b" * 64 + "/link",
                b"sha256:" + b"b" * 64,
            )
        )

    def test_a_catalog_asked_during_the_walk_waits_for_it(self) -> None:
        registry = Registry(self.storage, delete_enabled=True)
        self.storage.hold = True
        started = registry.start()
        page = registry.catalog(None, None)
        self.assertNoResult(page)  # not an empty answer
        self.storage.release()
        self.successResultOf(started)
        self.assertEqual(list(self.successResultOf(page).items), ["lib/a", "lib/b"])

    def test_a_catalog_while_storage_does_not_answer_is_unavailable(self) -> None:
        registry = Registry(self.storage, delete_enabled=True)
        self.storage.failure = StorageUnavailable("S3 bucket b", "timed out")
        self.failureResultOf(registry.start(), StorageUnavailable)
        failure = self.failureResultOf(registry.catalog(None, None), RegistryError)
        self.assertEqual(failure.value.code, "UNAVAILABLE")
        # start-up tries again once storage answers: then the catalog is whole
        self.storage.failure = None
        self.successResultOf(registry.start())
        self.assertEqual(
            list(self.successResultOf(registry.catalog(None, None)).items), ["lib/a", "lib/b"]
        )
