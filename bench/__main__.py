"""``python -m bench [--smoke|--quick|--full] [--only W] [--output FILE]``.

Exit status: 0 when every workload ran against every server, 1 when one
failed (its cell says FAILED and the error is printed), 2 on a usage error or
a missing tool.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from bench import report
from bench.data import Layout, write_htpasswd, write_self_signed
from bench.profiles import FULL, PROFILES, QUICK, SMOKE, Profile
from bench.s3 import S3Setup, missing_ceph, start_s3
from bench.servers import (
    DISTRIBUTION,
    PASSWORD,
    PAXD,
    SERVER_NAMES,
    USER,
    Files,
    MemorySampler,
    Profiler,
    Server,
    ServerError,
    Variant,
)
from bench.workloads import Context, Workload, all_workloads

REQUIRED_TOOLS = ("docker-registry", "wrk", "curl")
ONLY_HELP = (
    "comma-separated workloads to run: 1, 1-http, 1-tls, 2, 2-http, 2-tls, 3, 3-auth, 3-open,"
    " 4, 5, 6, 7, 8"
    " (a number selects all its variants); s3 (s3-pull, s3-pull-proxied, s3-push, s3-packs,"
    " s3-catalog: on Ceph's RADOS Gateway, which they start; run by --full or when named)"
)


class Progress:
    """Timestamped progress lines on standard error (the table goes to standard output)."""

    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet
        self.start = time.monotonic()

    def __call__(self, message: str) -> None:
        if not self.quiet:
            print(f"[{time.monotonic() - self.start:6.1f}s] {message}", file=sys.stderr, flush=True)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="Benchmark paxd against Docker distribution 2.8 (docker-registry),"
        " side by side.",
    )
    size = parser.add_mutually_exclusive_group()
    for profile, text in (
        (SMOKE, "one tiny round of each workload (under a minute; what the tests run)"),
        (QUICK, "real sizes, fewer rounds (under two minutes; the default)"),
        (FULL, "real sizes, five rounds (under fifteen minutes)"),
    ):
        size.add_argument(
            f"--{profile.name}", dest="profile", action="store_const", const=profile.name, help=text
        )
    parser.add_argument(
        "--only",
        metavar="W",
        default="",
        help=ONLY_HELP,
    )
    parser.add_argument(
        "--servers",
        default=",".join(SERVER_NAMES),
        help="comma-separated servers to measure (default: distribution,paxd)",
    )
    parser.add_argument(
        "--output",
        metavar="FILE",
        type=Path,
        help="also write the results as a reStructuredText page (docs/benchmarks.rst)",
    )
    parser.add_argument(
        "--notes",
        metavar="FILE",
        type=Path,
        help="reStructuredText appended to the --output page (analysis of the run)",
    )
    parser.add_argument(
        "--py-spy",
        dest="spy_dir",
        metavar="DIR",
        type=Path,
        help="record paxd's measured rounds with py-spy into DIR (raw collapsed stacks;"
        " summarize with python -m bench.spy FILE)",
    )
    parser.add_argument(
        "--keep",
        action="store_true",
        help="keep the temporary directory (configs, server logs, storage)",
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress on standard error")
    parser.set_defaults(profile=QUICK.name)
    args = parser.parse_args(argv)
    servers = [s.strip() for s in args.servers.split(",") if s.strip()]
    unknown = set(servers) - set(SERVER_NAMES)
    if unknown or not servers:
        parser.error(f"--servers: choose among {', '.join(SERVER_NAMES)}")
    args.server_list = servers
    args.only_list = [w.strip() for w in args.only.split(",") if w.strip()]
    return args


def selected(workload: Workload, only: Sequence[str], full: bool = False) -> bool:
    """Whether ``--only`` picks the workload (``3`` picks ``3-auth`` and ``3-open``).

    Without ``--only``, every workload but the S3 ones, which need Ceph and run
    by name (``--only s3``) or in a ``--full`` run.
    """
    if not only:
        return full or not workload.variant.s3
    return any(workload.key == w or workload.key.split("-")[0] == w for w in only)


class Fleet:
    """The running servers, one per name, all in the same variant."""

    def __init__(
        self,
        names: Sequence[str],
        roots: dict[str, Path],
        workdir: Path,
        files: Files,
        s3: S3Setup | None = None,
    ):
        self.names = list(names)
        self.roots = roots
        self.workdir = workdir
        self.files = files
        self.s3 = s3
        self.variant: Variant | None = None
        self.servers: dict[str, Server] = {}

    def ensure(self, variant: Variant, progress: Progress) -> dict[str, Server]:
        """Servers in ``variant``, (re)started if needed."""
        if variant != self.variant or any(
            s.proc is None or s.proc.poll() is not None for s in self.servers.values()
        ):
            self.stop()
            for name in self.names:
                s3 = None
                if variant.s3 and self.s3 is not None:
                    s3 = self.s3.section(name, variant.s3_root)
                server = Server(
                    name, self.roots[name], self.workdir / "servers", variant, self.files, s3
                )
                started = time.monotonic()
                server.start()
                self.servers[name] = server
                progress(
                    f"started {name} ({variant.name}) on port {server.port} in"
                    f" {time.monotonic() - started:.2f}s"
                )
            self.variant = variant
        return self.servers

    def stop(self) -> None:
        """Stop every server."""
        for server in self.servers.values():
            server.stop()
        self.servers = {}
        self.variant = None


def run_workload(
    workload: Workload,
    fleet: Fleet,
    profile: Profile,
    progress: Progress,
    spy_dir: Path | None = None,
) -> report.WorkloadResult:
    """Warm up, then ``rounds`` rounds alternating the servers' order; one result.

    With ``spy_dir``, paxd's measured rounds run under py-spy, one file per workload
    (the numbers of such a run carry py-spy's overhead: use it to find causes, not ratios).
    """

    result = report.WorkloadResult(workload)
    try:
        servers = fleet.ensure(workload.variant, progress)
    except ServerError as e:
        for name in fleet.names:
            result.errors[name] = str(e)
        return result
    if profile.warmup:
        for name, server in servers.items():
            try:
                workload.warmup(server)
            except Exception as e:  # a failure is reported per server, the run goes on
                result.errors[name] = f"warm-up: {type(e).__name__}: {e}"
    for round_ in range(workload.rounds):
        order = list(servers.items())
        if round_ % 2:
            order.reverse()
        for name, server in order:
            if name in result.errors:
                continue
            spy = None
            if spy_dir is not None and name == PAXD:
                spy = spy_dir / f"{workload.key}-round{round_ + 1}.txt"
            try:
                with Profiler(server, spy), MemorySampler(server) as memory:
                    values = workload.run(server, round_)
                server.check_alive()
            except Exception as e:
                result.errors[name] = f"round {round_}: {type(e).__name__}: {e}"
                progress(f"{workload.key} {name} FAILED: {e}")
                continue
            result.add(name, values, memory.peak)
            shown = ", ".join(
                f"{m.label} {report.fmt(values[m.key])} {m.unit}" for m in workload.metrics
            )
            progress(f"{workload.key} round {round_ + 1}/{workload.rounds} {name}: {shown}")
    return result


def missing_tools(servers: Sequence[str]) -> list[str]:
    """The load generators and servers that are not installed."""
    tools = [t for t in REQUIRED_TOOLS if t != "docker-registry" or DISTRIBUTION in servers]
    return [t for t in tools if shutil.which(t) is None]


def show_results(
    args: argparse.Namespace,
    profile: Profile,
    results: Sequence[report.WorkloadResult],
    progress: Progress,
) -> int:
    """Print the tables (and write the page ``--output`` asks for); the exit status."""
    machine = report.machine()
    print()
    print(report.machine_text(machine))
    print()
    print(report.text_table(report.HEADER, report.rows(results)))
    print()
    print(report.text_table(report.RSS_HEADER, report.rss_rows(results)))
    errors = report.errors_text(results)
    if errors:
        print("\nFailures:\n" + errors)
    if args.output is not None:
        notes = args.notes.read_text() if args.notes is not None else ""
        args.output.write_text(report.rst_page(profile, machine, results, notes))
        progress(f"wrote {args.output}")
    progress("done")
    return 1 if errors else 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark; the exit status."""
    args = parse_args(argv)
    profile = PROFILES[args.profile]
    progress = Progress(args.quiet)
    missing = missing_tools(args.server_list)
    if missing:
        print(
            f"missing tools: {', '.join(missing)} (Debian: apt-get install {' '.join(missing)})",
            file=sys.stderr,
        )
        return 2
    tmp = Path(tempfile.mkdtemp(prefix="paxd-bench-", dir="/tmp"))
    fleet: Fleet | None = None
    s3: S3Setup | None = None
    try:
        roots = {name: tmp / name / "root" for name in args.server_list}
        files = Files(tmp / "htpasswd", tmp / "cert.pem", tmp / "key.pem")
        write_htpasswd(files.htpasswd, USER, PASSWORD)
        write_self_signed(files.certificate, files.key)
        ctx = Context(profile, tmp, Layout(roots.values()))
        full = profile is FULL
        workloads = [w for w in all_workloads(ctx) if selected(w, args.only_list, full)]
        if not workloads:
            print(f"--only {args.only}: no such workload", file=sys.stderr)
            return 2
        if any(w.variant.s3 for w in workloads):
            if missing_ceph():
                print(f"the S3 workloads need Ceph: {missing_ceph()}", file=sys.stderr)
                return 2
            s3 = ctx.s3 = start_s3(args.server_list, progress)
        progress(f"profile {profile.name}, workdir {tmp}; writing data into the storage roots")
        for w in workloads:
            started = time.monotonic()
            w.prepare()
            progress(f"prepared {w.key} in {time.monotonic() - started:.1f}s")
        if args.spy_dir is not None:
            args.spy_dir.mkdir(parents=True, exist_ok=True)
        fleet = Fleet(args.server_list, roots, tmp, files, s3)
        results = []
        for w in workloads:
            progress(f"workload {w.key}: {w.title}")
            results.append(run_workload(w, fleet, profile, progress, args.spy_dir))
        fleet.stop()
        return show_results(args, profile, results, progress)
    finally:
        if fleet is not None:
            fleet.stop()
        if s3 is not None:
            s3.stop()
        if args.keep:
            print(f"kept {tmp}", file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
