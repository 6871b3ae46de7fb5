"""The workloads of issue 7, each measured against one server per call.

A workload prepares its data on disk before the servers start
(:meth:`Workload.prepare`, into both storage roots at once), then
:meth:`Workload.run` measures one round against one server and returns one
value per :class:`Metric`.  Data pushed during a round is generated before the
clock starts, identical for both servers of that round, and new each round
(a fresh digest each time, so no server can answer "already have it").
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Generic, TypeVar

import attrs

from bench import client
from bench.data import (
    OCI_MANIFEST,
    PACK_ARTIFACT_TYPE,
    PACK_CONFIG,
    PACK_CONTENT,
    PACK_VALUES,
    Descriptor,
    Layout,
    image_manifest,
    payload,
    sha256_digest,
)
from bench.profiles import GiB, KiB, MiB, Profile
from bench.servers import AUTH, PLAIN, TLS, MemorySampler, Server, Variant

PULL_REPO = "bench/pull"
SMALL_TAG = "v1"
PUSH_REPO = "bench/push"
PACK_REPO = "packs/bench-pack"
MEMORY_REPO = "bench/memory"
CATALOG_PREFIX = "catalog"
#: RSS settles this long before "idle" is read
IDLE_SETTLE = 0.5

MB = 1e6


def size_label(size: int) -> str:
    """``256 MiB``, ``64 KiB``, ``1 GiB``."""
    for unit, name in ((GiB, "GiB"), (MiB, "MiB"), (KiB, "KiB")):
        if size >= unit and size % unit == 0:
            return f"{size // unit} {name}"
    return f"{size} B"


@attrs.frozen
class Metric:
    """One number a workload reports per round.

    :ivar target_ratio: the issue's target for paxd/distribution (at least it when
        higher is better, at most it when lower is better).
    :ivar target_max: an absolute bound on paxd's median (memory targets).
    """

    key: str
    label: str
    unit: str
    higher_is_better: bool
    target_ratio: float | None = None
    target_max: float | None = None

    def target_text(self) -> str:
        """The target as the table shows it."""
        if self.target_ratio is not None:
            op = "≥" if self.higher_is_better else "≤"
            return f"{op} {self.target_ratio:g}x"
        if self.target_max is not None:
            return f"≤ {self.target_max:g} {self.unit}"
        return ""


@attrs.define
class Context:
    """What every workload shares: the profile, a scratch directory, the storage roots."""

    profile: Profile
    workdir: Path
    layout: Layout
    #: the gateway and buckets of the S3 workloads (:class:`bench.s3.S3Setup`), once it runs
    s3: Any = None


_T = TypeVar("_T")


class PerRound(Generic[_T]):
    """Data made once per round (outside the clock) and reused for the other server."""

    def __init__(self, make: Callable[[int], _T]) -> None:
        self._make = make
        self._round: int | None = None
        self._value: _T | None = None

    def get(self, round_: int) -> _T:
        """The data of ``round_`` (made on first use, replacing the previous round's)."""
        if self._round != round_ or self._value is None:
            self._value = None  # free the previous round's payload before making the next
            self._value = self._make(round_)
            self._round = round_
        return self._value


class Workload:
    """One workload; subclasses set ``key``, ``title``, ``variant`` and ``metrics``."""

    key: str = ""
    title: str = ""
    variant: Variant = PLAIN

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.profile = ctx.profile
        self.metrics: tuple[Metric, ...] = ()

    @property
    def rounds(self) -> int:
        """Measured rounds per server."""
        return self.profile.rounds

    @property
    def layout(self) -> Layout:
        """Where this workload's data is written before the servers start (the S3 workloads:
        the buckets, :class:`bench.s3.S3Layout`)."""
        return self.ctx.layout

    def prepare(self) -> None:
        """Write this workload's data into the storage roots (before the servers start)."""

    def run(self, server: Server, round_: int) -> dict[str, float]:
        """Measure one round against ``server``: metric key → value."""
        raise NotImplementedError

    def warmup(self, server: Server) -> None:
        """An unrecorded run (page cache, connection pools, JIT-free but cache-warm)."""
        self.run(server, -1)


# --- 1, 2: pulls -------------------------------------------------------------------


class PullData:
    """The blobs the pull workloads read, in :data:`PULL_REPO`, written once for all."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.big: str | None = None
        self.many: list[str] = []
        self.manifest: str | None = None
        self.small_layer: str | None = None

    def big_blob(self) -> str:
        """The digest of the single large blob (workload 1)."""
        if self.big is None:
            self.big = self.ctx.layout.blob(payload(self.ctx.profile.pull_size, "pull-big"))
            self.ctx.layout.link_layer(PULL_REPO, self.big)
        return self.big

    def many_blobs(self) -> list[str]:
        """The digests of the concurrently pulled blobs (workload 2)."""
        if not self.many:
            p = self.ctx.profile
            for i in range(p.concurrent_count):
                d = self.ctx.layout.blob(payload(p.concurrent_size, f"pull-many-{i}"))
                self.ctx.layout.link_layer(PULL_REPO, d)
                self.many.append(d)
        return self.many

    def small_image(self) -> tuple[str, str]:
        """(manifest digest, an empty layer's digest) of ``bench/pull:v1`` (workload 3).

        The layer HEADed is the empty blob: wrk's HTTP parser waits for a body after
        a HEAD answer whose Content-Length is not 0 (wg/wrk#198), and a HEAD costs a
        server the same whatever the blob's size.
        """
        if self.manifest is None or self.small_layer is None:
            self.manifest, layers = self.ctx.layout.image(
                PULL_REPO, SMALL_TAG, [payload(KiB, "small-layer"), b""]
            )
            self.small_layer = layers[1]
        return self.manifest, self.small_layer


class SinglePull(Workload):
    """1. Pull one large blob with curl: MB/s."""

    def __init__(self, ctx: Context, pulls: PullData, variant: Variant) -> None:
        super().__init__(ctx)
        self.pulls = pulls
        self.variant = variant
        self.key = f"1-{'tls' if variant.tls else 'http'}"
        size = size_label(self.profile.pull_size)
        self.title = f"pull one {size} blob, {'TLS' if variant.tls else 'plain HTTP'}"
        self.metrics = (Metric("rate", f"pull {size} ({variant.name})", "MB/s", True, 1.0),)

    def prepare(self) -> None:
        self.pulls.big_blob()

    def run(self, server: Server, round_: int) -> dict[str, float]:
        digest = self.pulls.big_blob()
        t = client.curl_download(server, f"/v2/{PULL_REPO}/blobs/{digest}", self.profile.pull_size)
        return {"rate": t.size / t.seconds / MB}


class ConcurrentPull(Workload):
    """2. Pull N blobs with N concurrent clients (``curl --parallel``): aggregate MB/s."""

    def __init__(self, ctx: Context, pulls: PullData, variant: Variant = PLAIN) -> None:
        super().__init__(ctx)
        self.pulls = pulls
        self.variant = variant
        self.key = f"2-{'tls' if variant.tls else 'http'}"
        p = self.profile
        n, size = p.concurrent_count, size_label(p.concurrent_size)
        how = "TLS" if variant.tls else "plain HTTP"
        self.title = f"pull {n} x {size} blobs with {n} concurrent clients, {how}"
        self.metrics = (
            Metric("rate", f"{n}x{size} pulls, {n} clients ({variant.name})", "MB/s", True, 1.0),
        )

    def prepare(self) -> None:
        self.pulls.many_blobs()

    def run(self, server: Server, round_: int) -> dict[str, float]:
        digests = self.pulls.many_blobs()
        targets = [f"/v2/{PULL_REPO}/blobs/{d}" for d in digests]
        size = self.profile.concurrent_size
        elapsed = client.curl_parallel(server, targets, size)
        return {"rate": len(targets) * size / elapsed / MB}


# --- 3: small requests ---------------------------------------------------------------


class SmallRequests(Workload):
    """3. Manifest GET and blob HEAD with wrk: requests/s and p99 latency."""

    def __init__(self, ctx: Context, pulls: PullData, variant: Variant) -> None:
        super().__init__(ctx)
        self.pulls = pulls
        self.variant = variant
        kind = "auth" if variant.auth else "open"
        self.key = f"3-{kind}"
        c = self.profile.wrk_connections
        who = "authenticated" if variant.auth else "unauthenticated"
        self.title = f"{who} manifest GET and blob HEAD, {c} connections (wrk)"
        rate_target = 3.0 if variant.auth else 1.0
        self.metrics = (
            Metric("get_rate", f"manifest GET ({kind})", "req/s", True, rate_target),
            Metric("get_p99", f"manifest GET p99 ({kind})", "ms", False),
            Metric("head_rate", f"blob HEAD ({kind})", "req/s", True, rate_target),
            Metric("head_p99", f"blob HEAD p99 ({kind})", "ms", False),
        )

    def prepare(self) -> None:
        self.pulls.small_image()

    def _measure(self, server: Server, seconds: float) -> dict[str, float]:
        _, layer = self.pulls.small_image()
        headers = client.auth_headers(server)
        common = {
            "connections": self.profile.wrk_connections,
            "seconds": seconds,
            "workdir": self.ctx.workdir,
        }
        get = client.wrk(
            server,
            f"/v2/{PULL_REPO}/manifests/{SMALL_TAG}",
            method="GET",
            headers={**headers, "Accept": OCI_MANIFEST},
            **common,  # type: ignore[arg-type]
        )
        head = client.wrk(
            server,
            f"/v2/{PULL_REPO}/blobs/{layer}",
            method="HEAD",
            headers=headers,
            **common,  # type: ignore[arg-type]
        )
        return {
            "get_rate": get.rate,
            "get_p99": get.p99_ms,
            "head_rate": head.rate,
            "head_p99": head.p99_ms,
        }

    def run(self, server: Server, round_: int) -> dict[str, float]:
        return self._measure(server, self.profile.wrk_seconds)

    def warmup(self, server: Server) -> None:
        self._measure(server, 1.0)


# --- 4, 5: pushes ------------------------------------------------------------------------


class BlobPush(Workload):
    """4. Push a large blob monolithically, then in chunks: MB/s (whole upload, POST to 201)."""

    key = "4"

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        p = self.profile
        size, chunk = size_label(p.push_size), size_label(p.push_chunk)
        self.title = f"push a {size} blob monolithic, and in {chunk} chunks"
        self.metrics = (
            Metric("mono", f"push {size} monolithic", "MB/s", True, 1.0),
            Metric("chunked", f"push {size} in {chunk} chunks", "MB/s", True, 1.0),
        )

        def make(round_: int) -> list[tuple[bytes, str]]:
            out = []
            for mode in ("mono", "chunked"):
                data = payload(p.push_size, f"push-{mode}-{round_}")
                out.append((data, sha256_digest(data)))
            return out

        self.data = PerRound(make)

    def run(self, server: Server, round_: int) -> dict[str, float]:
        (mono, mono_digest), (chunked, chunked_digest) = self.data.get(round_)
        headers = client.auth_headers(server)
        result = {}
        conn = server.connection()
        try:
            start = time.perf_counter()
            client.push_monolithic(conn, PUSH_REPO, mono, mono_digest, headers)
            result["mono"] = len(mono) / (time.perf_counter() - start) / MB
            start = time.perf_counter()
            client.push_chunked(
                conn, PUSH_REPO, chunked, chunked_digest, self.profile.push_chunk, headers
            )
            result["chunked"] = len(chunked) / (time.perf_counter() - start) / MB
        finally:
            conn.close()
        # keep /tmp small: nothing reads these blobs again
        self.layout.remove_blob(mono_digest)
        self.layout.remove_blob(chunked_digest)
        return result


@attrs.frozen
class PackVersion:
    """One version of the pack, ready to push."""

    tag: str
    blobs: Sequence[tuple[str, bytes]]
    manifest: bytes


class PackPush(Workload):
    """5. Push a typical pack N times as new versions (HEAD each blob, push the missing, PUT)."""

    key = "5"
    LOGO = payload(12 * KiB, "logo.png")

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        p = self.profile
        self.title = (
            f"push a pack (pack.json, logo.png, values.yaml, {size_label(p.chart_size)} chart)"
            f" {p.pack_versions} times as new versions"
        )
        self.metrics = (Metric("rate", f"pack push x{p.pack_versions}", "packs/s", True, 1.2),)
        self.data = PerRound(self._make)

    @property
    def versions(self) -> int:
        """Versions pushed per measurement."""
        return self.profile.pack_versions

    def _make(self, round_: int) -> list[PackVersion]:
        # versions <major>.0.<i>: the warm-up pushes major 1, round r major r+2
        major = round_ + 2
        out = []
        for i in range(self.versions):
            version = f"{major}.0.{i}"
            pack_json = json.dumps(
                {
                    "name": "bench-pack",
                    "displayName": "Bench pack",
                    "version": version,
                    "layer": "addon",
                    "addonType": "monitoring",
                    "cloudTypes": ["all"],
                },
                indent=2,
            ).encode()
            values = (
                f"pack:\n  namespace: bench\n  version: {version}\n"
                f"charts:\n  bench-chart:\n    replicas: {i % 5 + 1}\n"
            ).encode()
            chart = payload(self.profile.chart_size, f"chart-{version}")
            config = Descriptor(PACK_CONFIG, sha256_digest(pack_json), len(pack_json))
            layers = [
                Descriptor("image/png", sha256_digest(self.LOGO), len(self.LOGO), "logo.png"),
                Descriptor(PACK_VALUES, sha256_digest(values), len(values), "values.yaml"),
                Descriptor(PACK_CONTENT, sha256_digest(chart), len(chart), "content.tar.gz"),
            ]
            manifest = image_manifest(config, layers, PACK_ARTIFACT_TYPE)
            blobs = [
                (config.digest, pack_json),
                (layers[0].digest, self.LOGO),
                (layers[1].digest, values),
                (layers[2].digest, chart),
            ]
            out.append(PackVersion(version, blobs, manifest))
        return out

    def run(self, server: Server, round_: int) -> dict[str, float]:
        versions = self.data.get(round_)
        headers = client.auth_headers(server)
        conn = server.connection()
        try:
            start = time.perf_counter()
            for v in versions:
                for digest, data in v.blobs:
                    if not client.blob_exists(conn, PACK_REPO, digest, headers):
                        client.push_monolithic(conn, PACK_REPO, data, digest, headers)
                client.put_manifest(conn, PACK_REPO, v.tag, v.manifest, OCI_MANIFEST, headers)
            elapsed = time.perf_counter() - start
        finally:
            conn.close()
        return {"rate": len(versions) / elapsed}


# --- 6: catalog ---------------------------------------------------------------------------


class Catalog(Workload):
    """6. ``_catalog`` over many repositories: first page latency, full walk time."""

    key = "6"

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        p = self.profile
        repos = f"{p.catalog_repos:,}"
        self.title = (
            f"_catalog with {p.catalog_repos:,} repositories: first page (n={p.catalog_first_page})"
            f" and a full walk in pages of {p.catalog_walk_page:,}"
        )
        self.metrics = (
            Metric(
                "first",
                f"catalog first page n={p.catalog_first_page}, {repos} repos",
                "ms",
                False,
                0.05,
            ),
            Metric(
                "walk", f"catalog walk n={p.catalog_walk_page}, {repos} repos", "s", False, 0.05
            ),
        )
        self.expected = 0

    @property
    def repositories(self) -> int:
        """Repositories in storage."""
        return self.profile.catalog_repos

    def prepare(self) -> None:
        names = [f"{CATALOG_PREFIX}/repo-{i:05d}" for i in range(self.repositories)]
        layer = self.layout.blob(payload(KiB, "catalog-layer"))
        self.layout.many_repositories(names, layer)

    def run(self, server: Server, round_: int) -> dict[str, float]:
        headers = client.auth_headers(server)
        conn = server.connection()
        p = self.profile
        try:
            start = time.perf_counter()
            repos, _ = client.catalog_page(conn, f"/v2/_catalog?n={p.catalog_first_page}", headers)
            first = time.perf_counter() - start
            if len(repos) != p.catalog_first_page:
                raise client.BenchError(f"first catalog page has {len(repos)} repositories")
            start = time.perf_counter()
            seen = client.catalog_walk(conn, p.catalog_walk_page, headers)
            walk = time.perf_counter() - start
        finally:
            conn.close()
        if seen < self.repositories:
            raise client.BenchError(f"catalog walk saw {seen} of {self.repositories}+ repositories")
        return {"first": first * 1000, "walk": walk}


# --- 7: memory ------------------------------------------------------------------------------


class Memory(Workload):
    """7. Idle RSS, and peak RSS during a large upload and download."""

    key = "7"

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        size = size_label(self.profile.memory_size)
        self.title = f"daemon memory: idle, and during a {size} upload and download"
        self.metrics = (
            Metric("idle", "idle RSS", "MiB", False, target_max=50),
            Metric("up_peak", f"peak RSS, {size} upload", "MiB", False),
            Metric("up_growth", f"RSS growth, {size} upload", "MiB", False, target_max=8),
            Metric("down_peak", f"peak RSS, {size} download", "MiB", False),
            Metric("down_growth", f"RSS growth, {size} download", "MiB", False, target_max=8),
        )

        def make(round_: int) -> tuple[bytes, str]:
            data = payload(self.profile.memory_size, f"memory-{round_}")
            return data, sha256_digest(data)

        self.data = PerRound(make)

    @property
    def rounds(self) -> int:
        """1 GiB each way per round: fewer rounds than the others."""
        return self.profile.memory_rounds

    def run(self, server: Server, round_: int) -> dict[str, float]:
        data, digest = self.data.get(round_)
        headers = client.auth_headers(server)
        time.sleep(IDLE_SETTLE)
        idle = server.rss()
        conn = server.connection()
        try:
            with MemorySampler(server) as up:
                client.push_monolithic(conn, MEMORY_REPO, data, digest, headers)
        finally:
            conn.close()
        time.sleep(IDLE_SETTLE)
        before_down = server.rss()
        with MemorySampler(server) as down:
            client.curl_download(server, f"/v2/{MEMORY_REPO}/blobs/{digest}", len(data))
        self.ctx.layout.remove_blob(digest)
        return {
            "idle": idle / MiB,
            "up_peak": up.peak / MiB,
            "up_growth": (up.peak - idle) / MiB,
            "down_peak": down.peak / MiB,
            "down_growth": (down.peak - before_down) / MiB,
        }

    def warmup(self, server: Server) -> None:
        """No warm-up: the first idle reading is the one operators see."""


def all_workloads(ctx: Context) -> list[Workload]:
    """Every workload, in the order they run (grouped by server variant, fewest restarts).

    The S3 workloads (:mod:`bench.s3`) come last; they run with ``--only s3`` or ``--full``.
    """
    from bench.s3 import s3_workloads  # it builds on the classes here
    from bench.startup import StartUp  # it builds on this module's Workload

    pulls = PullData(ctx)
    return [
        Memory(ctx),  # first: idle RSS of freshly started servers
        SinglePull(ctx, pulls, PLAIN),
        ConcurrentPull(ctx, pulls),
        SmallRequests(ctx, pulls, PLAIN),
        BlobPush(ctx),
        PackPush(ctx),
        Catalog(ctx),
        SmallRequests(ctx, pulls, AUTH),
        SinglePull(ctx, pulls, TLS),
        ConcurrentPull(ctx, pulls, TLS),
        StartUp(ctx),  # it starts servers of its own
        *s3_workloads(ctx),
    ]
