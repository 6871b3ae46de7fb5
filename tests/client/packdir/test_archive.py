"""The reproducible archive and its distrustful extraction."""

from __future__ import annotations

import gzip
import io
import os
import tarfile
from pathlib import Path

from twisted.trial.unittest import SynchronousTestCase

from paxd.client.packdir.archive import ArchiveError, extract_archive, write_archive
from paxd.client.packdir.rules import inspect_pack
from tests.client.packdir.support import copy_sample, tree_snapshot


def archive_of(root: Path) -> bytes:
    pack, problems = inspect_pack(root)
    assert pack is not None, problems
    out = io.BytesIO()
    write_archive(root, pack.tree, out)
    return out.getvalue()


def evil_archive(*members: tuple[tarfile.TarInfo, bytes]) -> io.BytesIO:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as tar:
        for info, data in members:
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    out.seek(0)
    return out


def member(name: str, kind: bytes = tarfile.REGTYPE, link: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = link
    info.mode = 0o644
    return info


class ReproducibleTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.tmp = Path(self.mktemp())
        self.tmp.mkdir()

    def test_same_bytes_from_copies_with_different_times_and_modes(self) -> None:
        """Two copies differing in mtimes, group-write bits and creation order give equal bytes."""
        a = copy_sample("ubuntu-aws", self.tmp / "a")
        b = copy_sample("ubuntu-aws", self.tmp / "b")
        os.utime(b / "roles" / "harden" / "tasks" / "main.yml", (1, 1))
        os.chmod(b / "roles" / "harden" / "tasks" / "main.yml", 0o664)
        os.chmod(b / "roles", 0o775)
        self.assertEqual(archive_of(a), archive_of(b))

    def test_header_fields_are_fixed(self) -> None:
        """No timestamps in the gzip header; zero mtime, root owner, simple modes in the tar."""
        root = copy_sample("ubuntu-aws", self.tmp)
        script = root / "roles" / "harden" / "run.sh"
        script.write_text("#!/bin/sh\n")
        script.chmod(0o700)
        data = archive_of(root)
        self.assertEqual(data[4:8], b"\x00\x00\x00\x00")  # gzip MTIME
        self.assertEqual(data[3] & 0x08, 0)  # no FNAME
        with tarfile.open(fileobj=io.BytesIO(data)) as tar:
            members = tar.getmembers()
        self.assertEqual(
            [(m.name, oct(m.mode)) for m in members],
            [
                ("roles", "0o755"),
                ("roles/harden", "0o755"),
                ("roles/harden/run.sh", "0o755"),
                ("roles/harden/tasks", "0o755"),
                ("roles/harden/tasks/main.yml", "0o644"),
            ],
        )
        for m in members:
            self.assertEqual((m.mtime, m.uid, m.gid, m.uname, m.gname), (0, 0, 0, "", ""))

    def test_round_trip(self) -> None:
        """Extraction gives back the tree: contents, symlinks, executable bits."""
        root = copy_sample("cert-manager", self.tmp / "src")
        os.symlink("cert-manager-v1.14.4.tgz", root / "charts" / "current.tgz")
        (root / "empty").mkdir()
        tool = root / "bin" / "tool"
        tool.parent.mkdir()
        tool.write_text("#!/bin/sh\necho hi\n")
        tool.chmod(0o755)
        data = archive_of(root)
        dest = self.tmp / "dest"
        dest.mkdir()
        written = extract_archive(io.BytesIO(data), dest)
        self.assertIn("charts/current.tgz", written)
        expected = {
            k: v
            for k, v in tree_snapshot(root).items()
            if "/" in k or k in ("charts", "empty", "bin")
        }
        self.assertEqual(tree_snapshot(dest), expected)
        self.assertEqual(os.stat(dest / "bin" / "tool").st_mode & 0o777, 0o755)
        self.assertEqual(
            os.stat(dest / "charts" / "cert-manager-v1.14.4.tgz").st_mode & 0o777, 0o644
        )


class HostileArchiveTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.dest = Path(self.mktemp())
        self.dest.mkdir()

    def assertRefused(self, source: io.BytesIO, fragment: str) -> None:
        with self.assertRaises(ArchiveError) as caught:
            extract_archive(source, self.dest)
        self.assertIn(fragment, str(caught.exception))

    def test_dot_dot(self) -> None:
        self.assertRefused(evil_archive((member("../escape"), b"x")), "not a plain relative path")
        self.assertFalse((self.dest.parent / "escape").exists())

    def test_absolute(self) -> None:
        self.assertRefused(evil_archive((member("/tmp/x"), b"x")), "not a plain relative path")

    def test_symlink_out(self) -> None:
        self.assertRefused(
            evil_archive((member("link", tarfile.SYMTYPE, "../../etc"), b"")), "symlink leaves"
        )

    def test_write_through_symlink(self) -> None:
        self.assertRefused(
            evil_archive(
                (member("d", tarfile.SYMTYPE, "."), b""),
                (member("d/x"), b"x"),
            ),
            "lies under a symlink",
        )

    def test_symlink_chain_out(self) -> None:
        self.assertRefused(
            evil_archive(
                (member("a", tarfile.DIRTYPE), b""),
                (member("a/up", tarfile.SYMTYPE, ".."), b""),
                (member("b", tarfile.SYMTYPE, "a/up/.."), b""),
            ),
            "'b': symlink leaves the pack",
        )

    def test_hard_link(self) -> None:
        self.assertRefused(
            evil_archive((member("h", tarfile.LNKTYPE, "/etc/passwd"), b"")), "only files"
        )

    def test_top_level_names(self) -> None:
        self.assertRefused(evil_archive((member("pack.json"), b"{}")), "travels as its own blob")

    def test_duplicates(self) -> None:
        self.assertRefused(evil_archive((member("a"), b"1"), (member("a"), b"2")), "appears twice")

    def test_not_gzip(self) -> None:
        self.assertRefused(io.BytesIO(b"plain text"), "cannot extract")

    def test_truncated(self) -> None:
        data = evil_archive((member("a"), b"x" * 100000)).getvalue()
        self.assertRefused(io.BytesIO(data[: len(data) // 2]), "cannot extract")

    def test_gzip_without_tar(self) -> None:
        self.assertRefused(io.BytesIO(gzip.compress(b"x" * 1000)), "cannot extract")
