"""``paxd gc``: collect garbage in a registry's storage from the command line.

The same collection as the daemon's online one (:mod:`paxd.registry.gc`),
run once, on the storage a configuration file names.  It takes the
storage's collection lease, so it never runs beside another collector; it
is safe beside running registries that have ``storage.maintenance.gc``
enabled (they note what each push references), and otherwise wants them
stopped or read-only, as Docker distribution's ``garbage-collect`` does.

Exit codes: 0 done, 1 failed (configuration, storage, an unreadable
manifest), 2 usage, 75 another collector holds the lease (try later).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Any, TextIO

from paxd.config import ConfigError, load_config
from paxd.config.duration import parse_duration

#: exit status when another collector holds the lease (EX_TEMPFAIL)
BUSY = 75


def _parser(prog: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Delete blobs no manifest references (and, with --delete-untagged,"
        " manifests no tag reaches), as Docker distribution's garbage-collect does, but"
        " keeping referrers of live manifests and their subjects, and nothing younger than"
        " the grace window.",
        epilog="Exit codes: 0 done, 1 failed, 2 usage, 75 another collector is running.",
    )
    parser.add_argument("config", help="the registry's configuration file")
    parser.add_argument(
        "-n", "--dry-run", action="store_true", help="only say what would be deleted"
    )
    parser.add_argument(
        "-m",
        "--delete-untagged",
        action="store_true",
        help="also delete manifests that no tag reaches (not index entries, referrers of"
        " live manifests, or manifests that referrers point at)",
    )
    parser.add_argument(
        "--grace",
        metavar="DURATION",
        help="keep anything younger than this (a Go duration: 0s, 30m, 1h; default"
        " storage.maintenance.gc.grace, 1h)",
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="print only the summary")
    return parser


def human_bytes(size: int) -> str:
    """*size* in B, KiB, MiB, GiB or TiB."""
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024:
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TiB"


class Progress:
    """Progress lines on *stream*: at most one a second, with the rate and the time left."""

    def __init__(self, stream: TextIO, clock: Any = time.monotonic) -> None:
        self.stream = stream
        self.clock = clock
        self._began: dict[str, float] = {}
        self._shown = 0.0

    def __call__(self, phase: str, done: int, total: int) -> None:
        now = self.clock()
        began = self._began.setdefault(phase, now)
        if done < total and now - self._shown < 1.0:
            return
        self._shown = now
        elapsed = now - began
        rate = done / elapsed if elapsed > 0 else 0.0
        left = f", {(total - done) / rate:.0f} s left" if rate > 0 and done < total else ""
        self.stream.write(f"paxd gc: {phase}: {done}/{total} ({rate:.0f}/s{left})\n")
        self.stream.flush()


def wrong_user(root: str | None) -> str | None:
    """Why this user must not collect in filesystem storage *root* (None: it may).

    What a collection writes (its lease, directories it puts back) would be
    this user's, and a daemon running as the owner could not write there.
    """
    if root is None:
        return None
    try:
        owner = os.stat(root).st_uid
    except OSError:
        return None
    if owner == os.geteuid():
        return None
    try:
        import pwd

        name = pwd.getpwuid(owner).pw_name
    except (KeyError, ImportError):
        name = str(owner)
    return f"{root} belongs to {name}: run as that user, e.g. sudo -u {name} paxd gc …"


def report_lines(report: Any, grace: float) -> list[str]:
    """What ``paxd gc`` prints: each thing deleted (dry run) and the summary."""
    lines = []
    if report.dry_run:
        for item in report.deleted:
            for name in item.manifests_in:
                lines.append(f"would delete manifest {name}@{item.digest}")
            if item.blob:
                lines.append(f"would delete blob {item.digest} ({item.size} bytes)")
    verb = "would delete" if report.dry_run else "deleted"
    lines.append(
        f"paxd gc: {verb} {report.blobs_deleted} blobs ({human_bytes(report.bytes_deleted)})"
        f" and {report.manifests_deleted} manifests in {report.duration:.1f} s; kept"
        f" {report.kept} of {report.blobs} blobs, {report.young} unreferenced but younger"
        f" than {grace:g}s"
    )
    if report.stopped:
        lines.append(f"paxd gc: stopped early: {report.stopped}")
    return lines


def main(argv: list[str] | None = None, prog: str = "paxd gc") -> int:
    """Entry point of ``paxd gc``."""
    args = _parser(prog).parse_args(sys.argv[1:] if argv is None else argv)
    try:
        config = load_config(args.config, os.environ)
        grace = config.storage.maintenance.gc.grace
        if args.grace is not None:
            grace = parse_duration(args.grace)
            if grace < 0:
                raise ValueError(f"a negative grace window: {args.grace!r}")
    except ConfigError as e:
        print(f"{prog}: {e}", file=sys.stderr)
        return 1
    except ValueError as e:
        print(f"{prog}: --grace: {e}", file=sys.stderr)
        return 2
    problem = wrong_user(config.storage.rootdirectory)
    if problem is not None:
        print(f"{prog}: {problem}", file=sys.stderr)
        return 1
    if config.storage.readonly:
        print(f"{prog}: {config.source}: storage.maintenance.readonly is on", file=sys.stderr)
        return 1
    if not config.storage.maintenance.gc.enabled and not args.dry_run:
        print(
            f"{prog}: note: registries running on this storage must be stopped or read-only"
            " unless they have storage.maintenance.gc.enabled",
            file=sys.stderr,
        )
    from twisted.internet.task import react

    status: list[int] = []
    try:
        react(_run, (config, args, grace, status))
    except SystemExit:
        pass  # react ends by exiting; the status is ours
    return status[0] if status else 1


async def _collect(reactor: Any, config: Any, args: Any, grace: float) -> Any:
    from paxd.registry.gc import Collector, GCOptions
    from paxd.registry.lease import Lease
    from paxd.tap import make_storage
    from paxd.threadpool import PoolRunner, make_pool

    pool = make_pool("paxd-gc", 8)
    pool.start()
    try:
        driver = make_storage(config, PoolRunner(reactor, pool))
        options = GCOptions(grace=grace, delete_untagged=args.delete_untagged, dry_run=args.dry_run)
        progress = None if args.quiet else Progress(sys.stderr)
        collector = Collector(
            driver, reactor, options, lease=Lease(driver, reactor.seconds), progress=progress
        )
        return await collector.run()
    finally:
        pool.stop()


def _run(reactor: Any, config: Any, args: Any, grace: float, status: list[int]) -> Any:
    from twisted.internet.defer import Deferred

    from paxd.registry.gcmark import Unreadable
    from paxd.registry.lease import LeaseHeld

    def done(report: Any) -> None:
        for line in report_lines(report, grace):
            print(line)
        status.append(0 if report.stopped is None else 1)

    def failed(failure: Any) -> None:
        if failure.check(LeaseHeld):
            print(f"paxd gc: another collector runs: the lease is {failure.value}", file=sys.stderr)
            status.append(BUSY)
        elif failure.check(Unreadable):
            print(f"paxd gc: nothing deleted: {failure.value}", file=sys.stderr)
            status.append(1)
        else:
            print(f"paxd gc: failed: {failure.getErrorMessage()}", file=sys.stderr)
            status.append(1)

    d = Deferred.fromCoroutine(_collect(reactor, config, args, grace))
    return d.addCallbacks(done, failed)
