"""Helm charts as ``paxctl pack build`` reads them: a chart directory or a packaged ``.tgz``.

A chart is read, never rendered: ``Chart.yaml`` (its ``name``, ``version``,
``description``, ``appVersion``, ``icon``), its ``values.yaml`` as text (the
pack keeps the chart's comments), its ``README.md``, and one file for the
icon when the icon is a local path.  A packaged chart is copied into the pack
byte for byte; a chart directory is packaged the way ``helm package`` lays it
out (every file under ``<name>/``, ``.helmignore`` honoured) but
reproducibly, so that building twice gives the same pack digest.
"""

from __future__ import annotations

import fnmatch
import gzip
import io
import os
import posixpath
import stat
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

import attrs
import yaml

from paxd.client.packdir.archive import ARCHIVE_MTIME, COMPRESS_LEVEL, file_mode
from paxd.client.packdir.rules import IGNORED_DIRS

CHART_YAML = "Chart.yaml"
#: the most read of one small chart file (Chart.yaml, values.yaml, README.md, the icon)
MAX_CHART_FILE = 16 * 1024 * 1024


class ChartError(ValueError):
    """A chart that cannot be built from; the message names the file and the fix."""


@attrs.frozen
class Chart:
    """What a pack is built from."""

    #: the directory or ``.tgz`` given
    source: Path
    #: ``Chart.yaml`` parsed
    metadata: dict[str, Any]
    #: ``values.yaml`` verbatim ("" when the chart has none)
    values_text: str
    readme: bytes | None

    @property
    def name(self) -> str:
        return str(self.metadata["name"])

    @property
    def version(self) -> str:
        return str(self.metadata["version"])

    @property
    def is_archive(self) -> bool:
        return self.source.is_file()

    @property
    def archive_name(self) -> str:
        """``<name>-<version>.tgz``, as ``helm package`` names it."""
        return f"{self.name}-{self.version}.tgz"


def _parse_chart_yaml(data: bytes, where: str) -> dict[str, Any]:
    try:
        meta = yaml.safe_load(data.decode("utf-8"))
    except UnicodeDecodeError as e:
        raise ChartError(f"{where}: not UTF-8 text (byte {e.start})") from None
    except yaml.YAMLError as e:
        raise ChartError(f"{where}: not valid YAML ({e})") from None
    if not isinstance(meta, dict):
        raise ChartError(f"{where}: must be a YAML mapping with name and version")
    for key in ("name", "version"):
        value = meta.get(key)
        if not isinstance(value, str | int | float) or not str(value).strip():
            raise ChartError(f"{where}: {key}: required (a chart has a name and a version)")
        meta[key] = str(value).strip()
    return meta


def _text(data: bytes | None, where: str) -> str:
    if data is None:
        return ""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ChartError(f"{where}: not UTF-8 text (byte {e.start})") from None


def load_chart(path: Path) -> Chart:
    """Read the chart at *path* (a directory with Chart.yaml, or a packaged ``.tgz``)."""
    if path.is_dir():
        return _load_directory(path)
    if path.is_file():
        return _load_archive(path)
    raise ChartError(
        f"{path}: no such chart: give a chart directory (with {CHART_YAML}) or a packaged"
        " chart (.tgz, from helm package or helm pull)"
    )


def _read_small(path: Path) -> bytes | None:
    if not path.is_file():
        return None
    if path.stat().st_size > MAX_CHART_FILE:
        raise ChartError(f"{path}: larger than {MAX_CHART_FILE} bytes")
    return path.read_bytes()


def _load_directory(root: Path) -> Chart:
    data = _read_small(root / CHART_YAML)
    if data is None:
        raise ChartError(f"{root}: not a chart directory: it has no {CHART_YAML}")
    meta = _parse_chart_yaml(data, str(root / CHART_YAML))
    values = _text(_read_small(root / "values.yaml"), str(root / "values.yaml"))
    return Chart(root, meta, values, _read_small(root / "README.md"))


def _archive_members(path: Path) -> tuple[str, dict[str, tarfile.TarInfo], tarfile.TarFile]:
    """The chart's top directory, its regular files by path, and the open archive."""
    try:
        tar = tarfile.open(path, mode="r:gz")
        members = tar.getmembers()
    except (tarfile.TarError, OSError, EOFError) as e:
        raise ChartError(f"{path}: not a packaged chart (a .tgz): {e}") from None
    tops = {m.name.split("/", 1)[0] for m in members if m.name and not m.name.startswith("/")}
    charts = sorted(t for t in tops if f"{t}/{CHART_YAML}" in {m.name for m in members})
    if not charts:
        tar.close()
        raise ChartError(f"{path}: not a packaged chart: no <name>/{CHART_YAML} inside")
    files = {m.name: m for m in members if m.isfile()}
    return charts[0], files, tar


def _member(tar: tarfile.TarFile, files: dict[str, tarfile.TarInfo], name: str) -> bytes | None:
    info = files.get(name)
    if info is None:
        return None
    if info.size > MAX_CHART_FILE:
        raise ChartError(f"{name} (in the chart): larger than {MAX_CHART_FILE} bytes")
    fh = tar.extractfile(info)
    return fh.read() if fh is not None else None


def _load_archive(path: Path) -> Chart:
    top, files, tar = _archive_members(path)
    with tar:
        meta = _parse_chart_yaml(_member(tar, files, f"{top}/{CHART_YAML}") or b"", f"{path}")
        values = _text(_member(tar, files, f"{top}/values.yaml"), f"{path}: values.yaml")
        readme = _member(tar, files, f"{top}/README.md")
    return Chart(path, meta, values, readme)


def chart_file(chart: Chart, relative: str) -> bytes | None:
    """A file of the chart by its path inside the chart (the icon); None if absent or outside."""
    clean = posixpath.normpath(relative)
    if clean.startswith(("../", "/")) or clean == "..":
        return None
    if not chart.is_archive:
        full = chart.source / clean
        real, root = os.path.realpath(full), os.path.realpath(chart.source)
        if not real.startswith(root + os.sep):
            return None
        return _read_small(full)
    top, files, tar = _archive_members(chart.source)
    with tar:
        return _member(tar, files, f"{top}/{clean}")


# -- packaging a chart directory -------------------------------------------------------


def _helmignore(root: Path) -> list[str]:
    """The patterns of ``.helmignore`` (negations are not supported: ignored)."""
    try:
        lines = (root / ".helmignore").read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        return []
    return [s for s in (line.strip() for line in lines) if s and not s.startswith(("#", "!"))]


def _ignored(rel: str, is_dir: bool, patterns: list[str]) -> bool:
    base = rel.rsplit("/", 1)[-1]
    for pattern in patterns:
        if pattern.endswith("/"):
            if is_dir and (fnmatch.fnmatchcase(base, pattern[:-1]) or rel == pattern[:-1]):
                return True
            continue
        if fnmatch.fnmatchcase(rel, pattern.lstrip("/")) or fnmatch.fnmatchcase(base, pattern):
            return True
    return False


def _chart_entries(root: Path) -> Iterator[tuple[str, Path, bool]]:
    """``(relative path, file, is a directory)`` of what the package holds, sorted."""
    patterns = _helmignore(root)
    real_root = os.path.realpath(root)
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        rel_dir = Path(os.path.relpath(dirpath, root)).as_posix()
        rel_dir = "" if rel_dir == "." else rel_dir
        keep = []
        for name in sorted(dirnames):
            rel = f"{rel_dir}/{name}" if rel_dir else name
            if name in IGNORED_DIRS or _ignored(rel, True, patterns):
                continue
            keep.append(name)
            yield rel, Path(dirpath) / name, True
        dirnames[:] = keep
        for name in sorted(filenames):
            rel = f"{rel_dir}/{name}" if rel_dir else name
            full = Path(dirpath) / name
            if _ignored(rel, False, patterns):
                continue
            real = os.path.realpath(full)
            if not real.startswith(real_root + os.sep):
                raise ChartError(f"{full}: a symlink leading outside the chart: replace it")
            if not full.is_file():
                raise ChartError(f"{full}: not a regular file: remove it from the chart")
            yield rel, full, False


def package_directory(chart: Chart, out: BinaryIO) -> None:
    """Write the chart directory as ``helm package`` would lay it out, reproducibly."""
    root = chart.source
    entries = sorted(_chart_entries(root), key=lambda e: e[0].split("/"))
    with (
        gzip.GzipFile(
            filename="", mode="wb", fileobj=out, mtime=ARCHIVE_MTIME, compresslevel=COMPRESS_LEVEL
        ) as gz,
        tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT, encoding="utf-8") as tar,
    ):
        for rel, full, is_dir in entries:
            info = tarfile.TarInfo(f"{chart.name}/{rel}")
            info.mtime = ARCHIVE_MTIME
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            if is_dir:
                info.type = tarfile.DIRTYPE
                info.mode = 0o755
                tar.addfile(info)
                continue
            with full.open("rb") as fh:
                st = os.fstat(fh.fileno())
                info.size = st.st_size
                info.mode = file_mode(bool(stat.S_IMODE(st.st_mode) & 0o111))
                tar.addfile(info, fh)


def packaged_bytes(chart: Chart) -> bytes:
    """The chart as a ``.tgz``: the archive given, or the directory packaged."""
    if chart.is_archive:
        return chart.source.read_bytes()
    buffer = io.BytesIO()
    package_directory(chart, buffer)
    return buffer.getvalue()
