"""Tests for :mod:`paxd.collect` (``paxd gc``): its output, its progress, who may run it."""

from __future__ import annotations

import io
import os

from twisted.trial.unittest import SynchronousTestCase

from paxd.collect import Progress, human_bytes, report_lines, wrong_user
from paxd.registry.gc import Doomed, GCReport
from paxd.registry.reference import Digest


class OutputTests(SynchronousTestCase):
    def test_sizes(self) -> None:
        self.assertEqual(human_bytes(17), "17 B")
        self.assertEqual(human_bytes(237069312), "226.1 MiB")
        self.assertEqual(human_bytes(3 * 1024**4), "3.0 TiB")

    def test_dry_run_lists_what_would_go(self) -> None:
        blob, manifest = Digest.of(b"blob"), Digest.of(b"manifest")
        report = GCReport(dry_run=True, blobs=5, kept=3, blobs_deleted=1, bytes_deleted=4)
        report.deleted = [Doomed(blob, size=4, blob=True), Doomed(manifest, manifests_in=["a/b"])]
        report.manifests_deleted = 1
        lines = report_lines(report, 3600)
        self.assertEqual(
            lines[:2],
            [f"would delete blob {blob} (4 bytes)", f"would delete manifest a/b@{manifest}"],
        )
        self.assertTrue(lines[2].startswith("paxd gc: would delete 1 blobs (4 B) and 1 manifests"))

    def test_progress_at_most_once_a_second_with_eta(self) -> None:
        now = [0.0]
        out = io.StringIO()
        progress = Progress(out, clock=lambda: now[0])
        progress("marking repositories", 0, 100)  # the start: nothing to say yet
        now[0] = 0.5
        progress("marking repositories", 10, 100)  # too soon
        now[0] = 2.0
        progress("marking repositories", 40, 100)
        now[0] = 2.1
        progress("marking repositories", 100, 100)  # the last always shows
        self.assertEqual(
            out.getvalue().splitlines(),
            [
                "paxd gc: marking repositories: 40/100 (20/s, 3 s left)",
                "paxd gc: marking repositories: 100/100 (48/s)",
            ],
        )


class UserTests(SynchronousTestCase):
    def test_the_storage_owner_collects(self) -> None:
        root = self.mktemp()
        os.mkdir(root)
        self.assertIsNone(wrong_user(root))
        self.assertIsNone(wrong_user(None))
        self.assertIsNone(wrong_user(os.path.join(root, "missing")))
        if os.geteuid() != 0:
            raise self.skipTest("only root can give the directory to another user")
        os.chown(root, 65534, 65534)
        problem = wrong_user(root)
        assert problem is not None
        self.assertIn("run as that user, e.g. sudo -u", problem)
