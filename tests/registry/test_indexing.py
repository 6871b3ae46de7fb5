"""Start-up indexing (:mod:`paxd.registry.indexing`) over MemoryStorage.

``Registry.start()`` computes parent tags for a directory that lacks them,
repairs stale ones (not in read-only mode), indexes packs, and a ``_packs``
listing asked for meanwhile waits for the whole index.
"""

from __future__ import annotations

import random
from typing import Any

from twisted.internet.task import Clock

from paxd.registry import layout
from paxd.registry.index import PackPage
from paxd.registry.reference import parse_digest
from paxd.registry.registry import Registry
from paxd.storage.memory import MemoryStorage
from tests.registry.test_packindex import (
    RegistryHelpers,
    write_tag,
)
from tests.registry.test_tags import ShuffledStorage


class StartupTests(RegistryHelpers):
    """``Registry.start()`` computes parent tags for a directory that lacks them."""

    def setUp(self) -> None:
        self.storage = MemoryStorage()
        # a registry with parent tags off writes what Docker distribution would
        self.plain = Registry(self.storage, delete_enabled=True, parent_tags=False)
        self.result(self.plain.start())

    def restart(self, **kw: Any) -> Registry:
        self.registry = Registry(self.storage, delete_enabled=True, **kw)
        self.result(self.registry.start())
        return self.registry

    def test_distribution_directory_gets_parents(self) -> None:
        digests = {
            tag: self.push_pack("cni", tag, registry=self.plain)
            for tag in ["1.2.3", "1.10.0", "lts__1.2.0", "latest"]
        }
        self.push_pack("other", "0.1.0-rc.1", registry=self.plain)
        self.assertEqual(self.tags("cni", self.plain), ["1.10.0", "1.2.3", "latest", "lts__1.2.0"])
        self.restart()
        self.assertEqual(
            self.parents_of("cni"),
            {
                "1.x": digests["1.10.0"],
                "1.10.x": digests["1.10.0"],
                "1.2.x": digests["1.2.3"],
                "lts__1.x": digests["lts__1.2.0"],
                "lts__1.2.x": digests["lts__1.2.0"],
            },
        )
        self.assertEqual(sorted(self.parents_of("other")), ["0.1.x", "0.x"])
        # and the index knows them at once
        cni = self.packs()["cni"]
        self.assertEqual(
            {t["tag"]: t["parents"] for t in cni["tags"]},
            {
                "1.2.3": ["1.2.x"],
                "1.10.0": ["1.x", "1.10.x"],
                "latest": [],
                "lts__1.2.0": ["lts__1.x", "lts__1.2.x"],
            },
        )

    def test_stale_and_orphan_parents_repaired(self) -> None:
        old = self.push_pack("cni", "1.0.0", registry=self.plain)
        new = self.push_pack("cni", "1.1.0", registry=self.plain)
        write_tag(self.storage, "cni", "1.x", old)  # stale: 1.1.0 is newer
        write_tag(self.storage, "cni", "3.x", old)  # orphan: no 3.* version
        self.storage.put_content(layout.tag_current_link("cni", "1.1.x"), b"garbage")
        self.restart()
        self.assertEqual(self.parents_of("cni"), {"1.x": new, "1.0.x": old, "1.1.x": new})
        self.assertNotIn("3.x", self.result(self.storage.children(layout.tags("cni"))))

    def test_readonly_does_not_write(self) -> None:
        self.push_pack("cni", "1.0.0", registry=self.plain)
        self.restart(readonly=True)
        self.assertEqual(self.tags("cni"), ["1.0.0"])
        # the index still says where the parents belong
        self.assertEqual(self.packs()["cni"]["tags"][0]["parents"], ["1.x", "1.0.x"])

    def test_index_skips_broken_tags(self) -> None:
        self.push_pack("cni", "1.0.0", registry=self.plain)
        write_tag(self.storage, "cni", "ghost", parse_digest("sha256:" + "f" * 64))
        self.storage.put_content(layout.tag_current_link("cni", "junk"), b"not a digest")
        self.restart()
        self.assertEqual([t["tag"] for t in self.packs()["cni"]["tags"]], ["1.0.0"])

    def test_restart_keeps_state(self) -> None:
        self.restart()
        self.push_pack("cni", "2.0.0")
        d = self.push_pack("cni", "2.1.0")
        self.restart()
        self.assertEqual(
            self.parents_of("cni"), {"2.x": d, "2.0.x": self.points_at("cni", "2.0.0"), "2.1.x": d}
        )
        self.assertEqual(len(self.packs()["cni"]["tags"]), 2)


class StartupConcurrencyTests(RegistryHelpers):
    """Start-up indexing while storage answers in random order."""

    def test_packs_during_startup_waits_for_the_index(self) -> None:
        clock = Clock()
        storage = ShuffledStorage(clock, random.Random(1))
        writer = Registry(storage.inner)
        self.successResultOf(writer.start())
        self.storage, self.registry = storage.inner, writer
        self.push_pack("cni", "1.0.0")
        self.push_pack("csi", "2.0.0")
        registry = Registry(storage)
        started = registry.start()
        page = registry.packs(None, None)
        self.assertNoResult(page)
        self.run_all(clock, [started])
        result: PackPage = self.successResultOf(page)
        self.assertEqual(result.names, ["cni", "csi"])
        # once started, an answer is immediate
        self.assertEqual(self.successResultOf(registry.packs(1, None)).names, ["cni"])
