"""The benchmark harness runs: ``python -m bench --smoke`` exits 0 with a row per workload.

Only that it runs; never a timing.  The smoke profile is one tiny round of
each workload against both servers (under a minute).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from twisted.trial.unittest import SkipTest, SynchronousTestCase

from bench.servers import SERVER_NAMES
from tests.support.rgw import require_ceph

REPO_ROOT = Path(__file__).resolve().parents[1]
TOOLS = ("docker-registry", "wrk", "curl")
#: every workload key the smoke run must print a row for
WORKLOADS = ("1-http", "1-tls", "2-http", "2-tls", "3-open", "3-auth", "4", "5", "6", "7", "8")
S3_WORKLOADS = ("s3-pull", "s3-pull-proxied", "s3-push", "s3-packs", "s3-catalog")


def require_tools() -> None:
    """Skip without the load generators or distribution; under CI (``CI=true``) fail instead."""
    missing = [t for t in TOOLS if shutil.which(t) is None]
    if missing:
        message = f"not installed: {', '.join(missing)} (apt-get install {' '.join(missing)})"
        if os.environ.get("CI") == "true":
            raise AssertionError(message)
        raise SkipTest(message)


class SmokeTests(SynchronousTestCase):
    """One tiny round of everything, as a child process from the repository root."""

    def smoke(self, *args: str) -> tuple[subprocess.CompletedProcess[str], str]:
        """``python -m bench --smoke ARGS``: the finished process and a report for messages."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("REGISTRY_")}
        env["PYTHONPATH"] = os.pathsep.join(
            [str(REPO_ROOT), *filter(None, env.get("PYTHONPATH", "").split(os.pathsep))]
        )
        proc = subprocess.run(
            [sys.executable, "-m", "bench", "--smoke", *args],
            cwd=REPO_ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        return proc, f"stdout:\n{proc.stdout[-6000:]}\nstderr:\n{proc.stderr[-6000:]}"

    def assertRows(self, stdout: str, keys: tuple[str, ...], report: str) -> None:
        """A result row and a peak-RSS row for each workload of *keys*, none FAILED."""
        lines = stdout.splitlines()
        header = [i for i, line in enumerate(lines) if line.split()[:2] == ["W", "metric"]]
        self.assertEqual(len(header), 1, report)
        table = lines[header[0] :]
        self.assertIn("paxd/dist", table[0])
        for server in SERVER_NAMES:
            self.assertIn(server, table[0])
        for key in keys:
            rows = [line for line in table if line.split(maxsplit=1)[:1] == [key]]
            # one metric row at least, plus its row in the peak RSS table
            self.assertGreaterEqual(len(rows), 2, f"no row for workload {key}\n{report}")
            for row in rows:
                self.assertNotIn("FAILED", row, report)
        self.assertNotIn("Failures:", stdout, report)

    def test_s3_smoke(self) -> None:
        """``--only s3``: the S3 workloads on a RADOS Gateway the run starts, and only them."""
        require_tools()
        require_ceph()
        proc, report = self.smoke("--only", "s3")
        self.assertEqual(proc.returncode, 0, report)
        self.assertRows(proc.stdout, S3_WORKLOADS, report)
        self.assertNotIn("\n4 ", proc.stdout, report)

    def test_smoke(self) -> None:
        """It exits 0 and prints a result row (and a peak-RSS row) for every workload."""
        require_tools()
        proc, report = self.smoke()
        self.assertEqual(proc.returncode, 0, report)
        self.assertRows(proc.stdout, WORKLOADS, report)
        # the S3 workloads need Ceph: only by name, or in --full
        self.assertNotIn("s3-", proc.stdout, report)
