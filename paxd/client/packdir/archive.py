"""The reproducible tar+gzip of a pack's tree, and its safe extraction.

Reproducible: the same directory always gives the same bytes (on the same
zlib), so pushing it twice gives the same blob and manifest digests.  Entries
are sorted, every timestamp is 0, owners are root with no names, modes are
0755 for directories and executables and 0644 for other files, and the gzip
header carries neither a file name nor a time.

Extraction trusts nothing in the archive: no absolute paths, no ``..``, no
entry under a symlink, no symlink leaving the directory, no hard links or
device files, no entry overwriting another, and none of the top-level names
that travel as their own blobs.
"""

from __future__ import annotations

import gzip
import os
import posixpath
import tarfile
from collections.abc import Iterable
from pathlib import Path
from typing import BinaryIO

from paxd.client.packdir.rules import TOP_LEVEL_FILES, Entry

#: the timestamp of every entry and of the gzip header
ARCHIVE_MTIME = 0
#: fixed so that the output does not depend on a default that could change
COMPRESS_LEVEL = 9


class ArchiveError(ValueError):
    """An archive that must not be extracted; the message names the entry."""


def file_mode(executable: bool) -> int:
    """The one mode a regular file gets, in the archive and on disk."""
    return 0o755 if executable else 0o644


def write_archive(root: Path, entries: Iterable[Entry], out: BinaryIO) -> None:
    """Write the tar+gzip of *entries* (paths relative to *root*) to *out*."""
    with (
        gzip.GzipFile(
            filename="", mode="wb", fileobj=out, mtime=ARCHIVE_MTIME, compresslevel=COMPRESS_LEVEL
        ) as gz,
        tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT, encoding="utf-8") as tar,
    ):
        for entry in entries:
            info = tarfile.TarInfo(entry.path)
            info.mtime = ARCHIVE_MTIME
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            if entry.kind == "dir":
                info.type = tarfile.DIRTYPE
                info.mode = 0o755
                tar.addfile(info)
            elif entry.kind == "symlink":
                info.type = tarfile.SYMTYPE
                info.mode = 0o777
                info.linkname = entry.target
                tar.addfile(info)
            else:
                info.type = tarfile.REGTYPE
                info.mode = file_mode(entry.executable)
                with (root / entry.path).open("rb") as fh:
                    info.size = os.fstat(fh.fileno()).st_size
                    tar.addfile(info, fh)


def _check_member_name(name: str) -> str:
    clean = name.rstrip("/")
    normal = posixpath.normpath(clean) if clean else ""
    if (
        not clean
        or clean.startswith("/")
        or "\\" in clean
        or normal != clean
        or normal == ".."
        or normal.startswith("../")
        or "\x00" in clean
    ):
        raise ArchiveError(f"archive entry {name!r}: not a plain relative path")
    return clean


def extract_archive(source: BinaryIO, dest: Path) -> list[str]:
    """Extract the pack tree read from *source* into the directory *dest*; return the paths."""
    written: list[str] = []
    seen: set[str] = set()
    symlinks: set[str] = set()
    try:
        with tarfile.open(fileobj=source, mode="r:gz", encoding="utf-8") as tar:
            for member in tar:
                name = _check_member_name(member.name)
                if name in TOP_LEVEL_FILES:
                    raise ArchiveError(f"archive entry {name!r}: that file travels as its own blob")
                if name in seen:
                    raise ArchiveError(f"archive entry {name!r}: appears twice")
                parts = name.split("/")
                for i in range(1, len(parts)):
                    if "/".join(parts[:i]) in symlinks:
                        raise ArchiveError(f"archive entry {name!r}: lies under a symlink")
                seen.add(name)
                target = dest / name
                target.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
                if member.isdir():
                    target.mkdir(mode=0o755, exist_ok=True)
                    os.chmod(target, 0o755)
                elif member.isreg():
                    data = tar.extractfile(member)
                    assert data is not None
                    with target.open("xb") as out:
                        while chunk := data.read(1 << 20):
                            out.write(chunk)
                    os.chmod(target, file_mode(bool(member.mode & 0o111)))
                elif member.issym():
                    link = member.linkname
                    resolved = posixpath.normpath(posixpath.join(posixpath.dirname(name), link))
                    if posixpath.isabs(link) or resolved == ".." or resolved.startswith("../"):
                        raise ArchiveError(
                            f"archive entry {name!r}: symlink leaves the pack ({link})"
                        )
                    os.symlink(link, target)
                    symlinks.add(name)
                else:
                    raise ArchiveError(
                        f"archive entry {name!r}: only files, directories and symlinks"
                    )
                written.append(name)
    except (tarfile.TarError, EOFError, OSError, gzip.BadGzipFile) as e:
        raise ArchiveError(f"cannot extract the pack archive: {e}") from e
    # Each link was checked alone; a chain of links can still lead out.
    real_dest = os.path.realpath(dest)
    for name in sorted(symlinks):
        real = os.path.realpath(dest / name)
        if real != real_dest and not real.startswith(real_dest + os.sep):
            raise ArchiveError(f"archive entry {name!r}: symlink leaves the pack")
    return written
