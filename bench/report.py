"""Results: medians and spreads, the text table, the reStructuredText page, the machine."""

from __future__ import annotations

import datetime
import os
import platform
import shutil
import statistics
import subprocess
import sys
from collections.abc import Sequence
from importlib import metadata

import attrs

from bench.profiles import MiB, Profile
from bench.servers import DISTRIBUTION, PAXD, REPO_ROOT
from bench.workloads import Metric, Workload


@attrs.define
class WorkloadResult:
    """Every round's numbers of one workload, per server, with peak RSS and any failure."""

    workload: Workload
    values: dict[tuple[str, str], list[float]] = attrs.Factory(dict)
    peak_rss: dict[str, int] = attrs.Factory(dict)
    errors: dict[str, str] = attrs.Factory(dict)

    def add(self, server: str, values: dict[str, float], peak_rss: int) -> None:
        """Record one round of ``server``."""
        for key, value in values.items():
            self.values.setdefault((server, key), []).append(value)
        self.peak_rss[server] = max(self.peak_rss.get(server, 0), peak_rss)

    def median(self, server: str, metric: Metric) -> float | None:
        """The median over rounds, or None if the server has no value."""
        values = self.values.get((server, metric.key))
        return statistics.median(values) if values else None


def fmt(value: float) -> str:
    """Three significant digits or so, without exponents."""
    if value >= 100:
        return f"{value:,.0f}"
    if value >= 10:
        return f"{value:.1f}"
    if value >= 1:
        return f"{value:.2f}"
    return f"{value:.3f}"


def cell(result: WorkloadResult, server: str, metric: Metric) -> str:
    """``median (min..max)``, or the failure."""
    if server in result.errors:
        return "FAILED"
    values = result.values.get((server, metric.key))
    if not values:
        return "-"
    med = statistics.median(values)
    if len(values) == 1:
        return fmt(med)
    return f"{fmt(med)} ({fmt(min(values))}..{fmt(max(values))})"


def ratio_and_verdict(result: WorkloadResult, metric: Metric) -> tuple[str, str]:
    """The ratio paxd/distribution and whether the issue's target is met."""
    dist, pax = result.median(DISTRIBUTION, metric), result.median(PAXD, metric)
    ratio = pax / dist if pax is not None and dist else None
    ratio_text = f"{ratio:.2f}" if ratio is not None else ""
    met = ""
    if metric.target_ratio is not None and ratio is not None:
        ok = (
            ratio >= metric.target_ratio
            if metric.higher_is_better
            else ratio <= metric.target_ratio
        )
        met = "yes" if ok else "no"
    elif metric.target_max is not None and pax is not None:
        met = "yes" if pax <= metric.target_max else "no"
    return ratio_text, met


HEADER = ("W", "metric", "unit", "distribution", "paxd", "paxd/dist", "target", "met")


def rows(results: Sequence[WorkloadResult]) -> list[tuple[str, ...]]:
    """One row per metric: workload key, label, unit, the two cells, ratio, target, verdict."""
    out: list[tuple[str, ...]] = []
    for result in results:
        for metric in result.workload.metrics:
            ratio, met = ratio_and_verdict(result, metric)
            out.append(
                (
                    result.workload.key,
                    metric.label,
                    metric.unit + (" ↑" if metric.higher_is_better else " ↓"),
                    cell(result, DISTRIBUTION, metric),
                    cell(result, PAXD, metric),
                    ratio,
                    metric.target_text(),
                    met,
                )
            )
    return out


RSS_HEADER = ("W", "workload", "distribution peak RSS (MiB)", "paxd peak RSS (MiB)")


def rss_rows(results: Sequence[WorkloadResult]) -> list[tuple[str, ...]]:
    """One row per workload: the peak RSS of each server over all its rounds."""
    out = []
    for r in results:
        cells = [fmt(r.peak_rss[s] / MiB) if s in r.peak_rss else "-" for s in (DISTRIBUTION, PAXD)]
        out.append((r.workload.key, r.workload.title, *cells))
    return out


def text_table(header: Sequence[str], body: Sequence[Sequence[str]]) -> str:
    """A plain aligned table for the terminal."""
    widths = [max(len(row[i]) for row in [header, *body]) for i in range(len(header))]
    lines = [
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
        for row in [header, *body]
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def rst_table(title: str, header: Sequence[str], body: Sequence[Sequence[str]]) -> str:
    """A ``list-table`` directive."""
    lines = [f".. list-table:: {title}", "   :header-rows: 1", ""]
    for row in [header, *body]:
        first, *rest = row
        lines.append(f"   * - {first or '..'}")
        lines.extend(f"     - {c}" if c else "     -" for c in rest)
    return "\n".join(lines)


def errors_text(results: Sequence[WorkloadResult]) -> str:
    """The failures, one paragraph each."""
    parts = []
    for r in results:
        for server, message in r.errors.items():
            parts.append(f"{r.workload.key} {server}: {message.strip()}")
    return "\n".join(parts)


# --- the machine -------------------------------------------------------------------------


def _first_line(argv: Sequence[str]) -> str:
    exe = shutil.which(argv[0])
    if exe is None:
        return "not installed"
    proc = subprocess.run([exe, *argv[1:]], capture_output=True, text=True, check=False)
    text = (proc.stdout or proc.stderr).strip()
    return text.splitlines()[0] if text else "unknown"


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _memory() -> str:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return f"{int(line.split()[1]) / (1024 * 1024):.1f} GiB"
    except OSError:
        pass
    return "unknown"


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def _paxd_version() -> str:
    proc = subprocess.run(
        [sys.executable, "-c", "import paxd; print(paxd.__version__)"],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        check=False,
    )
    version = proc.stdout.strip() or "unknown"
    commit = subprocess.run(
        ["git", "-C", str(REPO_ROOT), "rev-parse", "--short", "HEAD"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    return f"{version} (checkout {commit})" if commit else version


def machine() -> list[tuple[str, str]]:
    """What the numbers were measured on."""
    return [
        ("date", datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")),
        ("CPU", f"{_cpu_model()}, {os.cpu_count()} CPUs (nproc {len(os.sched_getaffinity(0))})"),
        ("memory", _memory()),
        ("kernel", f"{platform.system()} {platform.release()}"),
        ("Python", platform.python_version()),
        ("Twisted", _version("twisted")),
        ("paxd", _paxd_version()),
        ("distribution", _first_line(["docker-registry", "--version"]).split("/")[-1]),
        ("curl", " ".join(_first_line(["curl", "--version"]).split()[:2])),
        ("wrk", _first_line(["wrk", "-v"])),
    ]


def machine_text(items: Sequence[tuple[str, str]]) -> str:
    """The machine as ``key: value`` lines."""
    return "\n".join(f"{k}: {v}" for k, v in items)


# --- the page --------------------------------------------------------------------------------

_INTRO = """\
Benchmarks: paxd and Docker distribution
========================================

paxd replaces a fork of Docker distribution, so operators compare the two.
``bench/`` measures both on the same machine, in the same run: it starts paxd
and Debian's ``docker-registry`` (distribution 2.8.2) on loopback with the same
configuration (filesystem storage, ``cache.blobdescriptor: inmemory``, deletes
enabled, log level ``error`` with distribution's access log off, the same
htpasswd file or the same self-signed certificate where a workload needs
them), writes identical data into both storage roots in distribution's
on-disk layout, then runs each workload against each server, alternating the
servers round by round.

Run it from the repository root::

    python -m bench --quick                          # under two minutes
    python -m bench --full --output docs/benchmarks.rst   # this page, under fifteen
    python -m bench --only 3,6                       # some workloads only
    python -m bench --smoke                          # one tiny round: what the tests run

Load generators: ``curl`` (``--http1.1``, body to ``/dev/null``) for single and
concurrent (``--parallel``) pulls, ``wrk`` with a Lua script for request rates
and p99 latency, and a small ``http.client`` client on one keep-alive
connection for pushes and catalog walks. Peak RSS is the larger of the
kernel's ``VmHWM`` (reset before each workload through ``clear_refs``) and
``VmRSS`` sampled every 10 ms.

What the workloads do
---------------------

1. ``curl`` pulls one 256 MiB blob into ``/dev/null``, over plain HTTP (``1-http``)
   and over TLS with a self-signed ECDSA P-256 certificate (``1-tls``): MB/s
   (millions of bytes per second).
2. ``curl --parallel`` pulls 32 different 16 MiB blobs on 32 connections at
   once: aggregate MB/s, wall clock around the whole transfer.
3. ``wrk`` with 64 connections: ``GET`` of a tagged OCI manifest and ``HEAD``
   of a blob, with basic auth against the shared bcrypt htpasswd file
   (``3-auth``) and without auth (``3-open``): requests/s and p99 latency
   from wrk's histogram. The blob HEADed is the empty blob, because wrk's
   parser waits for a body after a HEAD answer whose ``Content-Length`` is
   not 0 (wg/wrk#198); a HEAD costs a server the same whatever the size.
4. A 256 MiB blob pushed monolithically (``POST`` then ``PUT ?digest=`` with
   the body, as docker and oras do), then another in 8 MiB ``PATCH`` chunks:
   MB/s from the ``POST`` to the ``201``. Every round pushes new content, so
   no server can answer "already there".
5. A pack pushed as an OCI artifact the way ``paxctl`` maps it (config
   ``pack.json``, layers ``logo.png``, ``values.yaml`` and a 2 MiB chart
   archive), 100 new versions per round: ``HEAD`` each blob, push the missing
   ones (the logo is shared), ``PUT`` the manifest under the version tag:
   packs/s.
6. ``_catalog`` over 10,000 repositories written straight into both storage
   roots (each ``<name>/_layers/sha256/<hex>/link``, which is what
   distribution 2.8's catalog walk looks for): latency of the first page
   (``n=100``) and time of a full walk in pages of ``n=1000`` following
   ``Link``.
7. Memory, run first so that both servers are freshly started: RSS when idle,
   then peak RSS during a 1 GiB monolithic upload and a 1 GiB ``curl``
   download, and the growth over the RSS just before each transfer.

Each cell is the median over the rounds with the minimum and maximum in
brackets. ↑ means higher is better, ↓ lower. "target" is the goal of issue 7
(a ratio paxd/distribution, or a bound on paxd's own number) and "met" says
whether this run meets it. Both servers run on the same cores as the load
generators, so a CPU-bound server is also competing with curl or wrk; the
spreads show how noisy the machine was. These are numbers from one machine:
run the harness on yours.
"""


def rst_page(
    profile: Profile,
    items: Sequence[tuple[str, str]],
    results: Sequence[WorkloadResult],
    notes: str = "",
) -> str:
    """The whole ``docs/benchmarks.rst``."""
    parts = [
        _INTRO,
        f"Latest run (``--{profile.name}``, {profile.rounds} rounds)",
        "-" * (len(f"Latest run (``--{profile.name}``, {profile.rounds} rounds)")),
        "",
        "\n".join(f":{k}: {v}" for k, v in items),
        "",
        rst_table("Results", HEADER, rows(results)),
        "",
        rst_table("Peak RSS of each server during each workload", RSS_HEADER, rss_rows(results)),
        "",
    ]
    errors = errors_text(results)
    if errors:
        parts += ["Failures::", "", *("    " + line for line in errors.splitlines()), ""]
    if notes:
        parts += [notes.rstrip(), ""]
    return "\n".join(parts) + "\n"
