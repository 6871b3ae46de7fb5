"""How fast the catalogue's pages are at 1,000 packs: ``python -m bench.catalogue_pages``.

Writes the same registry as :mod:`bench.packs_sync` (1,000 packs x 20
versions, in Docker distribution's layout) into in-memory storage (a list
page reads no storage, and the machine's disk would only add noise to the
rest), starts paxd's registry on it in this process with the catalogue on a
real socket, then times, over one keep-alive connection as a browser would:

- ``GET /`` (the first page of cards), a filtered list, a later page;
- ``GET /packs/<name>`` (a pack page reads its manifest, values.yaml and the
  push date of each of its 20 tags from storage);

and, without HTTP, the list page alone: first with every pack's document to
parse (as after a restart; parsed in the pages pool, so the reactor's longest
stall is shown too), then as it usually is: reading the index, filtering,
paging and flattening the template, in wall-clock and in CPU time (the
latter stays true on a busy machine).  The issue's target: a list page at
1,000 packs in milliseconds.
"""

from __future__ import annotations

import argparse
import hashlib
import http.client
import json
import os
import statistics
import sys
import time
from typing import Any

from twisted.internet.defer import Deferred, ensureDeferred
from twisted.internet.task import LoopingCall, react
from twisted.internet.threads import deferToThreadPool

from bench.packs_sync import LAYERS, versions
from paxd.access import OPEN_ACCESS
from paxd.client.packdir.artifact import Blob, build_manifest, summary_annotations
from paxd.oci import Descriptor, sha256_digest, titled
from paxd.packs.format import ARCHIVE_MEDIA_TYPE, CONFIG_MEDIA_TYPE, DOCUMENT_MEDIA_TYPES
from paxd.registry import layout
from paxd.registry.reference import parse_digest
from paxd.registry.registry import Registry
from paxd.storage.memory import MemoryStorage
from paxd.threadpool import PoolRunner, make_pool
from paxd.web.catalogue.layout import Frame, Page, render_page
from paxd.web.catalogue.listpage import ListContent, ListModel, all_packs
from paxd.web.catalogue.resources import Catalogue
from paxd.web.catalogue.view import Filters
from paxd.web.request import RegistrySite
from paxd.web.root import RegistryRoot

BROWSER = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}
PAGES = {
    "list, first page": "/",
    "list, filtered (?q=pack-09&layer=cni)": "/?q=pack-09&layer=cni",
    "list, page 10": "/?page=10",
    "pack page": "/packs/pack-0500",
}


def fetch_all(port: int, rounds: int) -> dict[str, list[float]]:
    """Each page *rounds* times over one connection; seconds per request, by page."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    timings: dict[str, list[float]] = {label: [] for label in PAGES}
    try:
        for _ in range(rounds):
            for label, path in PAGES.items():
                started = time.perf_counter()
                conn.request("GET", path, headers=BROWSER)
                response = conn.getresponse()
                body = response.read()
                timings[label].append(time.perf_counter() - started)
                if response.status != 200 or not body.startswith(b"<!DOCTYPE html>"):
                    raise RuntimeError(f"GET {path}: {response.status} {body[:200]!r}")
    finally:
        conn.close()
    return timings


def _summary(label: str, seconds: list[float], size: int | None = None) -> str:
    ms = sorted(s * 1000 for s in seconds)
    extra = f", {size / 1024:.0f} KiB" if size is not None else ""
    return (
        f"{label:42s} median {statistics.median(ms):6.1f} ms, min {ms[0]:6.1f} ms,"
        f" max {ms[-1]:6.1f} ms ({len(ms)} requests{extra})"
    )


async def time_render(catalogue: Catalogue, rounds: int) -> tuple[list[float], list[float], int]:
    """The list page without HTTP: index pages, views, filter, page, flatten.

    :returns: wall-clock seconds, CPU seconds, the page's size.
    """
    wall, cpu = [], []
    size = 0
    for _ in range(rounds):
        started, started_cpu = time.perf_counter(), time.process_time()
        packs = await all_packs(catalogue.registry, catalogue.views, catalogue.runner)
        model = ListModel.of(packs, Filters(), 1)
        body = await render_page(Page(Frame("Packs", "bench", OPEN_ACCESS), ListContent(model)))
        wall.append(time.perf_counter() - started)
        cpu.append(time.process_time() - started_cpu)
        size = len(body)
    return wall, cpu, size


def _blob(media_type: str, data: bytes, title: str | None) -> Blob:
    return Blob(
        Descriptor(media_type, sha256_digest(data), len(data), annotations=titled(title)), data=data
    )


def write_registry(storage: MemoryStorage, packs: int, per_pack: int) -> int:
    """:func:`bench.packs_sync.write_registry`'s registry, into memory; the tags written."""
    files: dict[str, bytes] = {}
    for p in range(packs):
        name = f"pack-{p:04d}"
        logo = _blob("image/png", b"\x89PNG\r\n\x1a\n" + name.encode(), "logo.png")
        values = _blob(DOCUMENT_MEDIA_TYPES["values.yaml"], b"pack: {}\n", "values.yaml")
        for blob in (logo, values):
            assert blob.data is not None
            files[layout.blob_data(parse_digest(blob.digest))] = blob.data
        for tag in versions(per_pack):
            group, _, label = tag.rpartition("__")
            pack: dict[str, Any] = {
                "name": name,
                "displayName": f"Pack {p}",
                "version": label,
                "layer": LAYERS[p % len(LAYERS)],
                "cloudTypes": ["aws", "azure", "vsphere"],
                "addonType": "monitoring",
                **({"group": group} if group else {}),
            }
            config = _blob(CONFIG_MEDIA_TYPE, json.dumps(pack).encode(), None)
            archive = _blob(ARCHIVE_MEDIA_TYPE, hashlib.sha256(tag.encode()).digest(), None)
            manifest = build_manifest(config, [logo, values, archive], summary_annotations(pack))
            digest = parse_digest(sha256_digest(manifest))
            link = layout.link_content(digest)
            files[layout.blob_data(digest)] = manifest
            files[layout.revision_link(name, digest)] = link
            files[layout.tag_index_link(name, tag, digest)] = link
            files[layout.tag_current_link(name, tag)] = link
    for path, data in files.items():
        storage.put_content(path, data)
    return packs * per_pack


class LongestStall:
    """The longest the reactor went without running a 1 ms timer, until :meth:`stop`."""

    def __init__(self, reactor: Any) -> None:
        self.longest = 0.0
        self._last = time.perf_counter()
        self._loop = LoopingCall(self._tick)
        self._loop.clock = reactor
        self._loop.start(0.001)

    def _tick(self) -> None:
        now = time.perf_counter()
        self.longest = max(self.longest, now - self._last)
        self._last = now

    def stop(self) -> None:
        self._tick()
        self._loop.stop()


async def run(reactor: Any, args: argparse.Namespace) -> None:
    storage = MemoryStorage()
    count = write_registry(storage, args.packs, args.versions)
    print(f"wrote {args.packs} packs, {count} tags")
    disk_pool = make_pool("bench-disk", 4)
    pages_pool = make_pool("bench-pages", 1)
    client_pool = make_pool("bench-client", 1)
    pools = (disk_pool, pages_pool, client_pool)
    for pool in pools:
        pool.start()
    try:
        registry = Registry(storage)
        await registry.start()
        catalogue = Catalogue(registry, PoolRunner(reactor, pages_pool))
        # the index makes each pack's JSON once, on the first listing after a
        # start (as for /v2/_packs): not the catalogue's to time
        await registry.packs(None, None)
        stall = LongestStall(reactor)
        wall, _, size = await time_render(catalogue, 1)
        stall.stop()
        print(
            _summary("list page, first (every document parsed)", wall, size)
            + f"; longest reactor stall {stall.longest * 1000:.0f} ms"
        )
        wall, cpu, size = await time_render(catalogue, args.rounds)
        print(_summary("list page, rendered in process", wall, size))
        print(_summary("list page, rendered in process (CPU time)", cpu))
        site_root = RegistryRoot(registry, catalogue=catalogue.resource_for(OPEN_ACCESS))
        site = RegistrySite(site_root, runner=PoolRunner(reactor, disk_pool))
        port = reactor.listenTCP(0, site, interface="127.0.0.1")
        try:
            d: Deferred[dict[str, list[float]]] = deferToThreadPool(
                reactor, client_pool, fetch_all, port.getHost().port, args.rounds
            )
            for label, seconds in (await d).items():
                print(_summary(f"GET {label}", seconds))
        finally:
            await port.stopListening()
    finally:
        for pool in pools:
            pool.stop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--packs", type=int, default=1000)
    parser.add_argument("--versions", type=int, default=20, help="tags per pack")
    parser.add_argument("--rounds", type=int, default=50)
    args = parser.parse_args(argv)
    os.environ.setdefault("PYTHONHASHSEED", "0")
    react(lambda reactor: ensureDeferred(run(reactor, args)))


if __name__ == "__main__":
    main(sys.argv[1:])
