"""The S3 workloads: paxd and distribution on one RADOS Gateway, each on a bucket of its own.

``--only s3`` (or ``--full``) starts Ceph's RADOS Gateway on loopback through
the tests' own bring-up (:func:`tests.support.rgw.start_rgw`, a memory-backed
OSD), makes one bucket per server and writes the data straight into both
buckets in distribution's layout (:class:`S3Layout`, as :class:`bench.data.Layout`
does on disk), then measures:

* ``s3-pull``: a large blob pulled with curl following the redirect to the
  bucket (both servers' default), and ``s3-pull-proxied`` with
  ``storage.redirect.disable`` (the bytes pass through the registry);
* ``s3-push``: a large blob pushed monolithically, then in chunks;
* ``s3-packs``: a pack pushed N times as new versions (HEADs follow the
  redirect to the bucket, as clients do);
* ``s3-catalog``: ``_catalog`` over many repositories.

Both servers get the same ``storage.s3`` section but for the bucket, with
``multipartcopythresholdsize: 5368709120`` (a server-side copy on RGW is
instant: what docs/storage-s3.rst recommends for it, and it is distribution's
key too). The numbers are the gateway's as much as the registries': both
share it, in turn, on the same machine.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import attrs

from bench import client
from bench.data import payload, sha256_digest
from bench.profiles import GiB, MiB
from bench.servers import Server, Variant
from bench.workloads import (
    MB,
    BlobPush,
    Catalog,
    Context,
    Metric,
    PackPush,
    Workload,
    size_label,
)

S3 = Variant("s3", s3=True)
S3_PROXIED = Variant("s3-proxied", s3=True, redirect=False)
#: the catalog's repositories in a root directory of their own: the servers of the other
#: workloads do not see them (paxd would index them in the background meanwhile)
CATALOG_ROOT = "/catalog"
S3_CATALOG = Variant("s3-catalog", s3=True, s3_root=CATALOG_ROOT)
PULL_REPO = "bench/s3-pull"
#: the memory-backed OSD: the pushes of a round and what the pulls read fit at once
MEMSTORE_BYTES = 10 * GiB
#: deleted objects (the pushes, removed after each round) go back to the OSD sooner
GC_CONF = "rgw_gc_processor_period = 10\nrgw_gc_processor_max_time = 10\n"
#: PUTs at once when writing the catalog's repositories into the buckets
WRITERS = 32
REGISTRY_V2 = "docker/registry/v2"


@attrs.define
class S3Setup:
    """The running gateway and each server's bucket."""

    gateway: Any
    buckets: dict[str, str]
    _layouts: dict[str, S3Layout] = attrs.Factory(dict)

    def layout(self, root: str = "") -> S3Layout:
        """Writes into every bucket below *root* (the ``rootdirectory``)."""
        if root not in self._layouts:
            self._layouts[root] = S3Layout(self, root)
        return self._layouts[root]

    def section(self, server: str, root: str = "") -> dict[str, object]:
        """``storage.s3`` for *server*: the same for both but for the bucket."""
        g = self.gateway
        section = {
            "bucket": self.buckets[server],
            "regionendpoint": g.endpoint,
            "region": "us-east-1",
            "accesskey": g.access_key,
            "secretkey": g.secret_key,
            "secure": False,
            "v4auth": True,
            "forcepathstyle": True,
            "multipartcopythresholdsize": 5 * GiB,
        }
        if root:
            section["rootdirectory"] = root
        return section

    def stop(self) -> None:
        """Stop the cluster and remove its directory."""
        self.gateway.stop()


def missing_ceph() -> str:
    """What to install for the gateway ("" when Ceph is there)."""
    from tests.support.rgw import INSTALL, TOOLS

    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    return f"missing {', '.join(missing)} ({INSTALL})" if missing else ""


def start_s3(servers: Sequence[str], progress: Callable[[str], None]) -> S3Setup:
    """Start the gateway (blocking, a few seconds) and create a bucket per server."""
    # the tests' bring-up: one way of starting Ceph to keep working
    from tests.support.rgw import start_rgw

    gateway = start_rgw(memstore_bytes=MEMSTORE_BYTES, extra=GC_CONF)
    progress(f"RADOS Gateway up at {gateway.endpoint} in {gateway.started_in:.1f}s")
    buckets = {name: f"bench-{name}" for name in servers}
    for bucket in buckets.values():
        gateway.client().create_bucket(Bucket=bucket)
    return S3Setup(gateway, buckets)


class S3Layout:
    """Distribution's layout written into every bucket at once (what Layout does on disk)."""

    def __init__(self, setup: S3Setup, root: str = "") -> None:
        self.client = setup.gateway.client()
        self.buckets = list(setup.buckets.values())
        self.prefix = f"{root.strip('/')}/{REGISTRY_V2}" if root.strip("/") else REGISTRY_V2
        self._written: set[str] = set()

    def _put(self, key: str, data: bytes) -> None:
        first, *others = self.buckets
        self.client.put_object(Bucket=first, Key=key, Body=data)
        for bucket in others:
            if len(data) < MiB:
                self.client.put_object(Bucket=bucket, Key=key, Body=data)
            else:  # a server-side copy: the bytes are sent once
                source = {"Bucket": first, "Key": key}
                self.client.copy_object(Bucket=bucket, Key=key, CopySource=source)

    def _blob_key(self, digest: str) -> str:
        hex_ = digest.removeprefix("sha256:")
        return f"{self.prefix}/blobs/sha256/{hex_[:2]}/{hex_}/data"

    def _link_key(self, repo: str, digest: str) -> str:
        return f"{self.prefix}/repositories/{repo}/_layers/sha256/{digest[7:]}/link"

    def blob(self, data: bytes) -> str:
        """Store *data* as a blob in every bucket (once); its digest."""
        digest = sha256_digest(data)
        if digest not in self._written:
            self._put(self._blob_key(digest), data)
            self._written.add(digest)
        return digest

    def link_layer(self, repo: str, digest: str) -> None:
        """Make the blob *digest* part of repository *repo*."""
        self._put(self._link_key(repo, digest), digest.encode())

    def many_repositories(self, names: Sequence[str], layer: str) -> None:
        """*names* as repositories holding one layer each, :data:`WRITERS` PUTs at a time."""
        with ThreadPoolExecutor(WRITERS) as pool:
            list(pool.map(lambda name: self.link_layer(name, layer), names))

    def remove_blob(self, digest: str) -> None:
        """Delete a blob's data from every bucket (after a push round: memory is the OSD's)."""
        self._written.discard(digest)
        for bucket in self.buckets:
            self.client.delete_object(Bucket=bucket, Key=self._blob_key(digest))


def _s3(ctx: Context, root: str = "") -> S3Layout:
    setup = ctx.s3
    if setup is None:
        raise client.BenchError("the S3 workloads need the gateway (python -m bench --only s3)")
    assert isinstance(setup, S3Setup)
    return setup.layout(root)


class S3Pull(Workload):
    """Pull one large blob with curl, following the redirect to the bucket or through paxd."""

    def __init__(self, ctx: Context, variant: Variant) -> None:
        super().__init__(ctx)
        self.variant = variant
        self.key = "s3-pull" if variant.redirect else "s3-pull-proxied"
        size = size_label(self.profile.pull_size)
        how = "redirected to the bucket" if variant.redirect else "through the registry"
        self.title = f"S3: pull one {size} blob, {how}"
        label = "redirect" if variant.redirect else "proxied"
        self.metrics = (Metric("rate", f"S3 pull {size} ({label})", "MB/s", True, 1.0),)
        self.digest: str | None = None

    @property
    def layout(self) -> Any:
        return _s3(self.ctx)

    def prepare(self) -> None:
        if self.digest is None:
            self.digest = self.layout.blob(payload(self.profile.pull_size, "s3-pull-big"))
            self.layout.link_layer(PULL_REPO, self.digest)

    def run(self, server: Server, round_: int) -> dict[str, float]:
        assert self.digest is not None
        target = f"/v2/{PULL_REPO}/blobs/{self.digest}"
        t = client.curl_download(server, target, self.profile.pull_size, follow=True)
        return {"rate": t.size / t.seconds / MB}


class S3Push(BlobPush):
    """4 on S3: push a large blob monolithically, then in chunks."""

    key = "s3-push"
    variant = S3

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        self.title = "S3: " + self.title
        self.metrics = tuple(attrs.evolve(m, label="S3 " + m.label) for m in self.metrics)

    @property
    def layout(self) -> Any:
        return _s3(self.ctx)


class S3PackPush(PackPush):
    """5 on S3: a pack pushed as new versions (HEAD, push what is missing, PUT the manifest)."""

    key = "s3-packs"
    variant = S3

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        versions = self.profile.s3_pack_versions
        self.title = "S3: " + self.title.replace(
            f" {self.profile.pack_versions} times", f" {versions} times"
        )
        self.metrics = (Metric("rate", f"S3 pack push x{versions}", "packs/s", True, 1.0),)

    @property
    def versions(self) -> int:
        return self.profile.s3_pack_versions


class S3Catalog(Catalog):
    """6 on S3: ``_catalog`` over many repositories (paxd answers from its index).

    Distribution walks the bucket for every page (from the start: a 10,000
    repository walk is minutes), so this workload has rounds of its own.
    """

    key = "s3-catalog"
    variant = S3_CATALOG
    #: how long paxd may take to index the bucket after it starts
    INDEX_TIMEOUT = 600.0

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        repos, s3_repos = f"{self.profile.catalog_repos:,}", f"{self.profile.s3_catalog_repos:,}"
        self.title = "S3: " + self.title.replace(repos, s3_repos)
        self.metrics = tuple(
            attrs.evolve(m, label="S3 " + m.label.replace(repos, s3_repos), target_ratio=1.0)
            for m in self.metrics
        )
        self._settled: set[int] = set()

    @property
    def layout(self) -> Any:
        return _s3(self.ctx, CATALOG_ROOT)

    @property
    def repositories(self) -> int:
        return self.profile.s3_catalog_repos

    @property
    def rounds(self) -> int:
        return self.profile.s3_catalog_rounds

    def settle(self, server: Server) -> None:
        """Wait (once per server process) until paxd's start-up indexing of the bucket is over.

        paxd's ``_packs`` answers once that indexing is done (it reads every
        repository's tags: tens of seconds at 10,000, while the catalog itself
        is there after one listing); distribution has no ``_packs`` (404 at
        once) and keeps nothing between requests.
        """
        if server.pid in self._settled:
            return
        conn = server.connection(timeout=self.INDEX_TIMEOUT)
        try:
            client.request(conn, "GET", "/v2/_packs?n=1", expect=(200, 404))
        finally:
            conn.close()
        self._settled.add(server.pid)

    def run(self, server: Server, round_: int) -> dict[str, float]:
        self.settle(server)
        return super().run(server, round_)

    def warmup(self, server: Server) -> None:
        """Settled, and one first page (a full walk of distribution's is minutes)."""
        self.settle(server)
        conn = server.connection()
        try:
            client.catalog_page(conn, f"/v2/_catalog?n={self.profile.catalog_first_page}", {})
        finally:
            conn.close()


def s3_workloads(ctx: Context) -> list[Workload]:
    """The S3 workloads, grouped by variant (a restart between groups)."""
    return [S3Pull(ctx, S3), S3Push(ctx), S3PackPush(ctx), S3Pull(ctx, S3_PROXIED), S3Catalog(ctx)]
