"""How big and how long each workload is, for ``--smoke``, ``--quick`` and ``--full``."""

from __future__ import annotations

import attrs

KiB = 1024
MiB = 1024 * KiB
GiB = 1024 * MiB


@attrs.frozen
class Profile:
    """Sizes, counts and durations of one kind of run.

    :ivar rounds: measured rounds per workload and server (servers alternate).
    :ivar warmup: run each workload once per server, unrecorded, before the rounds.
    """

    name: str
    rounds: int
    warmup: bool
    #: workload 1: one blob pulled with curl
    pull_size: int
    #: workload 2: this many blobs of ``concurrent_size`` pulled by as many clients at once
    concurrent_count: int
    concurrent_size: int
    #: workload 3: wrk's connections and duration (seconds) per measurement
    wrk_connections: int
    wrk_seconds: float
    #: workload 4: the pushed blob and the chunk of the chunked push
    push_size: int
    push_chunk: int
    #: workload 5: versions pushed per measurement and the chart archive's size
    pack_versions: int
    chart_size: int
    #: workload 6: repositories on disk; the first page and the page of the full walk
    catalog_repos: int
    catalog_first_page: int
    catalog_walk_page: int
    #: workload 7: the blob uploaded then downloaded while memory is sampled
    memory_size: int
    memory_rounds: int
    #: the S3 workloads (bench/s3.py): pack versions per push measurement, repositories,
    #: and the catalog's rounds (distribution walks the bucket for every page: minutes)
    s3_pack_versions: int = 100
    s3_catalog_repos: int = 10_000
    s3_catalog_rounds: int = 1
    #: workload 8: packs x versions written by distribution, and rounds (fresh directories)
    startup_packs: int = 5
    startup_versions: int = 4
    startup_rounds: int = 1


SMOKE = Profile(
    name="smoke",
    rounds=1,
    warmup=False,
    pull_size=1 * MiB,
    concurrent_count=4,
    concurrent_size=256 * KiB,
    wrk_connections=8,
    wrk_seconds=1.0,
    push_size=1 * MiB,
    push_chunk=256 * KiB,
    pack_versions=3,
    chart_size=64 * KiB,
    catalog_repos=50,
    catalog_first_page=10,
    catalog_walk_page=20,
    memory_size=4 * MiB,
    memory_rounds=1,
    s3_pack_versions=3,
    s3_catalog_repos=50,
)

QUICK = Profile(
    name="quick",
    rounds=3,
    warmup=True,
    pull_size=256 * MiB,
    concurrent_count=32,
    concurrent_size=16 * MiB,
    wrk_connections=64,
    wrk_seconds=1.0,
    push_size=256 * MiB,
    push_chunk=8 * MiB,
    pack_versions=20,
    chart_size=2 * MiB,
    catalog_repos=2_000,
    catalog_first_page=100,
    catalog_walk_page=1000,
    memory_size=512 * MiB,
    memory_rounds=1,
    startup_packs=200,
    startup_versions=20,
    startup_rounds=1,
)

FULL = Profile(
    name="full",
    rounds=5,
    warmup=True,
    pull_size=256 * MiB,
    concurrent_count=32,
    concurrent_size=16 * MiB,
    wrk_connections=64,
    wrk_seconds=6.0,
    push_size=256 * MiB,
    push_chunk=8 * MiB,
    pack_versions=100,
    chart_size=2 * MiB,
    catalog_repos=10_000,
    catalog_first_page=100,
    catalog_walk_page=1000,
    memory_size=1 * GiB,
    memory_rounds=3,
    s3_catalog_rounds=2,
    startup_packs=1000,
    startup_versions=20,
    startup_rounds=3,
)

PROFILES = {p.name: p for p in (SMOKE, QUICK, FULL)}
