"""How long a console's full sync of ``_packs`` takes: ``python -m bench.packs_sync``.

Writes a registry directory the way Docker distribution would (1,000 packs x
20 versions by default, no parent tags), starts paxd's registry on it in this
process (filesystem storage, its disk thread pool, a real socket), times
``Registry.start()`` (which computes every parent tag and the pack index),
then times full syncs: ``GET /v1/_packs?n=N`` following ``Link`` until the
last page, over one keep-alive HTTP connection, as a console would.

The issue's target: a full sync of 1,000 x 20 well under a second.
"""

from __future__ import annotations

import argparse
import hashlib
import http.client
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from twisted.internet.defer import Deferred, ensureDeferred
from twisted.internet.task import react
from twisted.internet.threads import deferToThreadPool

from paxd.client.packdir.artifact import Blob, build_manifest, summary_annotations
from paxd.oci import Descriptor, sha256_digest, titled
from paxd.packs.format import ARCHIVE_MEDIA_TYPE, CONFIG_MEDIA_TYPE, DOCUMENT_MEDIA_TYPES
from paxd.registry import layout
from paxd.registry.reference import parse_digest
from paxd.registry.registry import Registry
from paxd.storage.filesystem import FilesystemStorage
from paxd.threadpool import PoolRunner, make_pool
from paxd.web.request import RegistrySite
from paxd.web.root import RegistryRoot

LAYERS = ("kernel", "os", "k8s", "cni", "csi", "addon")


def versions(count: int) -> list[str]:
    """*count* tags: mostly ``M.m.p``, every fifth one in the ``lts`` group."""
    out = []
    for i in range(count):
        label = f"{1 + i // 10}.{(i // 3) % 4}.{i}"
        out.append(f"lts__{label}" if i % 5 == 4 else label)
    return out


def _write(root: Path, logical: str, data: bytes) -> None:
    path = root / logical.lstrip("/")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def _blob(media_type: str, data: bytes, title: str | None) -> Blob:
    return Blob(
        Descriptor(media_type, sha256_digest(data), len(data), annotations=titled(title)), data=data
    )


def write_registry(root: Path, packs: int, per_pack: int) -> int:
    """A distribution-layout directory of pack manifests; the number of tags written."""
    written = 0
    for p in range(packs):
        name = f"pack-{p:04d}"
        logo = _blob("image/png", b"\x89PNG\r\n\x1a\n" + name.encode(), "logo.png")
        values = _blob(DOCUMENT_MEDIA_TYPES["values.yaml"], b"pack: {}\n", "values.yaml")
        for blob in (logo, values):
            assert blob.data is not None
            _write(root, layout.blob_data(parse_digest(blob.digest)), blob.data)
        for tag in versions(per_pack):
            group, _, label = tag.rpartition("__")
            pack: dict[str, Any] = {
                "name": name,
                "displayName": f"Pack {p}",
                "version": label,
                "layer": LAYERS[p % len(LAYERS)],
                "cloudTypes": ["aws", "azure", "vsphere"],
                "addonType": "monitoring",
            }
            if group:
                pack["group"] = group
            config = _blob(CONFIG_MEDIA_TYPE, json.dumps(pack).encode(), None)
            archive = _blob(ARCHIVE_MEDIA_TYPE, hashlib.sha256(tag.encode()).digest(), None)
            manifest = build_manifest(config, [logo, values, archive], summary_annotations(pack))
            digest = parse_digest(sha256_digest(manifest))
            link = layout.link_content(digest)
            _write(root, layout.blob_data(digest), manifest)
            _write(root, layout.revision_link(name, digest), link)
            _write(root, layout.tag_index_link(name, tag, digest), link)
            _write(root, layout.tag_current_link(name, tag), link)
            written += 1
    return written


def full_sync(port: int, n: int) -> tuple[float, int, int, int]:
    """One full sync: seconds, requests, packs and tags received."""
    started = time.perf_counter()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    path: str | None = f"/v1/_packs?n={n}"
    requests = packs = tags = 0
    while path is not None:
        conn.request("GET", path)
        response = conn.getresponse()
        body = response.read()
        if response.status != 200:
            raise RuntimeError(f"GET {path}: {response.status} {body[:200]!r}")
        requests += 1
        document = json.loads(body)
        packs += len(document["packs"])
        tags += sum(len(p["tags"]) for p in document["packs"])
        link = response.getheader("Link")
        path = link[1 : link.index(">")] if link else None
    conn.close()
    return time.perf_counter() - started, requests, packs, tags


async def run(reactor: Any, args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="paxd-packs-bench-") as tmp:
        root = Path(tmp)
        t0 = time.perf_counter()
        count = write_registry(root, args.packs, args.versions)
        print(f"wrote {args.packs} packs, {count} tags in {time.perf_counter() - t0:.1f} s")

        disk_pool = make_pool("bench-disk", 16)
        client_pool = make_pool("bench-client", 1)
        disk_pool.start()
        client_pool.start()
        try:
            runner = PoolRunner(reactor, disk_pool)
            registry = Registry(FilesystemStorage(str(root), runner), max_page=args.n)
            t0 = time.perf_counter()
            await registry.start()
            print(
                "Registry.start() on distribution's directory (writes every parent tag,"
                f" builds the pack index): {time.perf_counter() - t0:.2f} s"
            )
            # a restart: the parent tags are there now, only read
            registry = Registry(FilesystemStorage(str(root), runner), max_page=args.n)
            t0 = time.perf_counter()
            await registry.start()
            print(f"Registry.start() again (a restart): {time.perf_counter() - t0:.2f} s")
            site = RegistrySite(RegistryRoot(registry))
            port = reactor.listenTCP(0, site, interface="127.0.0.1")
            try:
                number = port.getHost().port
                timings = []
                for _ in range(args.rounds):
                    d: Deferred[tuple[float, int, int, int]] = deferToThreadPool(
                        reactor, client_pool, full_sync, number, args.n
                    )
                    seconds, requests, packs, tags = await d
                    timings.append(seconds)
                    if packs != args.packs or tags != count:
                        raise RuntimeError(f"synced {packs} packs and {tags} tags, not all")
                print(
                    f"full sync of {packs} packs / {tags} tags in {requests} requests"
                    f" (n={args.n}): min {min(timings) * 1000:.0f} ms,"
                    f" median {statistics.median(timings) * 1000:.0f} ms,"
                    f" max {max(timings) * 1000:.0f} ms over {args.rounds} rounds"
                )
            finally:
                await port.stopListening()
        finally:
            disk_pool.stop()
            client_pool.stop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--packs", type=int, default=1000)
    parser.add_argument("--versions", type=int, default=20, help="tags per pack")
    parser.add_argument("--n", type=int, default=1000, help="page size (catalog.maxentries)")
    parser.add_argument("--rounds", type=int, default=10)
    args = parser.parse_args(argv)
    os.environ.setdefault("PYTHONHASHSEED", "0")
    react(lambda reactor: ensureDeferred(run(reactor, args)))


if __name__ == "__main__":
    main(sys.argv[1:])
