"""Sample packs for the tests: copies of ``examples/packs`` in a test's temporary directory."""

from __future__ import annotations

import shutil
import struct
import zlib
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parents[3] / "examples" / "packs"
#: the three sample packs: an add-on with a Helm chart, a manifest pack, an OS pack
SAMPLES = ("cert-manager", "cni-flannel", "ubuntu-aws")


def copy_sample(name: str, into: str | Path) -> Path:
    """A fresh copy of the sample pack *name* under *into*; returns its directory."""
    dest = Path(into) / name
    shutil.copytree(EXAMPLES / name, dest, symlinks=True)
    return dest


def make_png(width: int = 2, height: int = 2) -> bytes:
    """A real (tiny, grey) PNG."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    raw = b"".join(b"\x00" + b"\x80\x80\x80" * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )


def tree_snapshot(root: Path) -> dict[str, tuple[str, bytes | str, bool]]:
    """Every entry under *root*: kind, content (or link target), and whether it is executable."""
    out: dict[str, tuple[str, bytes | str, bool]] = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        executable = bool(path.lstat().st_mode & 0o100)
        if path.is_symlink():
            out[rel] = ("symlink", str(path.readlink()), False)
        elif path.is_dir():
            out[rel] = ("dir", b"", False)
        else:
            out[rel] = ("file", path.read_bytes(), executable)
    return out
