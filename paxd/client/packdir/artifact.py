"""A pack directory as an OCI artifact, and back.

The mapping (written down for people in ``docs/pack-format.rst``; the media
types and annotation keys are :mod:`paxd.packs.format`, shared with the
daemon):

* the manifest is an OCI image manifest whose ``artifactType`` is
  :data:`~paxd.packs.format.ARTIFACT_TYPE`, annotated with the ``pack.json`` summary;
* the config blob is ``pack.json`` verbatim (:data:`~paxd.packs.format.CONFIG_MEDIA_TYPE`);
* the layers are, in order: the logo (its image media type), then
  ``values.yaml``, ``README.md``, ``schema.yaml`` and ``presets.yaml`` when
  present, each titled with ``org.opencontainers.image.title``, then one
  reproducible tar+gzip of everything else (:data:`~paxd.packs.format.ARCHIVE_MEDIA_TYPE`).
"""

from __future__ import annotations

import io
import json
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import Any, BinaryIO

import attrs

from paxd.client.packdir.archive import write_archive
from paxd.client.packdir.rules import DOCUMENTS, PackDirectory
from paxd.oci import OCI_MANIFEST, VERSION_ANNOTATION, Descriptor, Sha256, sha256_digest, titled
from paxd.packs.format import (
    ARCHIVE_MEDIA_TYPE,
    ARCHIVE_TITLE,
    ARTIFACT_TYPE,
    CONFIG_MEDIA_TYPE,
    DOCUMENT_MEDIA_TYPES,
    LOGOS,
    MESSAGE_ANNOTATION,
    PREFIX,
    SUMMARY_FIELDS,
    TITLE,
    is_pack_manifest,
    join_tag,
)

#: a descriptor as paxctl holds it: the digest as ``sha256:<hex>`` text
PackDescriptor = Descriptor[str]

_DIGEST_RE = re.compile(r"^sha256:[a-f0-9]{64}$")
_CHUNK = 1 << 20


class ManifestError(ValueError):
    """A manifest that is not a pack this version of paxctl understands."""


@attrs.frozen
class Blob:
    """A blob to push: its descriptor and where its bytes are (in memory or in a file)."""

    descriptor: PackDescriptor
    data: bytes | None = None
    path: Path | None = None

    @property
    def digest(self) -> str:
        return self.descriptor.digest

    @property
    def size(self) -> int:
        return self.descriptor.size

    @property
    def label(self) -> str:
        """What to call it on a progress line."""
        return self.descriptor.title or "pack.json"

    def open(self) -> BinaryIO:
        """A fresh binary stream of the blob's bytes."""
        if self.data is not None:
            return io.BytesIO(self.data)
        assert self.path is not None
        return self.path.open("rb")


def _blob_from_bytes(media_type: str, data: bytes, title: str | None) -> Blob:
    descriptor = Descriptor(media_type, sha256_digest(data), len(data), annotations=titled(title))
    return Blob(descriptor, data=data)


def _blob_from_file(media_type: str, path: Path, title: str | None) -> Blob:
    h = Sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(_CHUNK):
            h.update(chunk)
    return Blob(Descriptor(media_type, h.digest, h.size, annotations=titled(title)), path=path)


def summary_annotations(pack: dict[str, Any]) -> dict[str, str]:
    """The ``pack.json`` summary as manifest annotations (lists joined with commas)."""
    out: dict[str, str] = {}
    for key in SUMMARY_FIELDS:
        value = pack.get(key)
        if value is None:
            continue
        out[PREFIX + key] = ",".join(map(str, value)) if isinstance(value, list) else str(value)
    out[TITLE] = str(pack.get("displayName", ""))
    out[VERSION_ANNOTATION] = str(pack.get("version", ""))
    return out


def pack_tags(pack: dict[str, Any]) -> list[str]:
    """The tags a push gives: the version, and ``<group>__<version>`` when pack.json has a group."""
    version = str(pack["version"])
    tags = [version]
    if pack.get("group"):
        tags.append(join_tag(version, str(pack["group"])))
    return tags


@attrs.define
class PackArtifact:
    """A pack ready to push: its blobs and its manifest.  Close it to remove the archive."""

    name: str
    tags: list[str]
    config: Blob
    layers: list[Blob]
    manifest: bytes
    digest: str
    _tmp: tempfile.TemporaryDirectory[str] | None = None

    @property
    def blobs(self) -> list[Blob]:
        """Every blob, the config first."""
        return [self.config, *self.layers]

    def close(self) -> None:
        """Remove the temporary archive, if any."""
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self) -> PackArtifact:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def build_manifest(config: Blob, layers: list[Blob], annotations: dict[str, str]) -> bytes:
    """The manifest bytes: compact JSON in a fixed key order, so equal packs give equal bytes."""
    manifest = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": ARTIFACT_TYPE,
        "config": config.descriptor.to_json(),
        "layers": [b.descriptor.to_json() for b in layers],
        "annotations": dict(sorted(annotations.items())),
    }
    return json.dumps(manifest, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def build_artifact(pack: PackDirectory, annotations: dict[str, str] | None = None) -> PackArtifact:
    """Turn a validated pack directory into blobs and a manifest.

    :param annotations: added to the manifest's (e.g. :data:`MESSAGE_ANNOTATION`).
    """
    root = pack.root
    config = _blob_from_bytes(CONFIG_MEDIA_TYPE, pack.pack_json, None)
    layers = [_blob_from_bytes(LOGOS[pack.logo], (root / pack.logo).read_bytes(), pack.logo)]
    for name in pack.documents:
        layers.append(
            _blob_from_bytes(DOCUMENT_MEDIA_TYPES[name], (root / name).read_bytes(), name)
        )
    tmp = None
    if pack.tree:
        tmp = tempfile.TemporaryDirectory(prefix="paxctl-")
        path = Path(tmp.name) / ARCHIVE_TITLE
        with path.open("wb") as out:
            write_archive(root, pack.tree, out)
        layers.append(_blob_from_file(ARCHIVE_MEDIA_TYPE, path, ARCHIVE_TITLE))
    all_annotations = summary_annotations(pack.pack)
    all_annotations.update(annotations or {})
    manifest = build_manifest(config, layers, all_annotations)
    return PackArtifact(
        name=pack.name,
        tags=pack_tags(pack.pack),
        config=config,
        layers=layers,
        manifest=manifest,
        digest=sha256_digest(manifest),
        tmp=tmp,
    )


@attrs.frozen
class PackManifest:
    """A pulled manifest, checked to be a pack: what to fetch and where each blob goes."""

    config: PackDescriptor
    layers: tuple[PackDescriptor, ...]
    annotations: dict[str, str]

    def files(self) -> Iterator[PackDescriptor]:
        """The layers that are files of their own (logo and documents)."""
        return (d for d in self.layers if d.media_type != ARCHIVE_MEDIA_TYPE)

    def archive(self) -> PackDescriptor | None:
        """The tree's archive layer, if the pack has one."""
        return next((d for d in self.layers if d.media_type == ARCHIVE_MEDIA_TYPE), None)

    def summary(self) -> dict[str, str]:
        """The pack.json summary from the annotations (keys without the prefix)."""
        return {
            k[len(PREFIX) :]: v
            for k, v in self.annotations.items()
            if k.startswith(PREFIX) and k != MESSAGE_ANNOTATION
        }

    def content_key(self) -> tuple[PackDescriptor, ...]:
        """What the pack holds, ignoring annotations: equal keys mean equal packs."""
        return (self.config, *self.layers)


def _descriptor(value: Any, where: str) -> PackDescriptor:
    if not isinstance(value, dict):
        raise ManifestError(f"{where} is not a descriptor")
    media_type, digest, size = value.get("mediaType"), value.get("digest"), value.get("size")
    if (
        not isinstance(media_type, str)
        or not isinstance(digest, str)
        or not _DIGEST_RE.match(digest)
    ):
        raise ManifestError(f"{where}: needs a mediaType and a sha256 digest")
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise ManifestError(f"{where}: needs a size")
    annotations = value.get("annotations") or {}
    title = annotations.get(TITLE) if isinstance(annotations, dict) else None
    return Descriptor(
        media_type, digest, size, annotations=titled(title if isinstance(title, str) else None)
    )


def parse_pack_manifest(data: bytes) -> PackManifest:
    """Parse and check a pack manifest; raise :class:`ManifestError` if it is not one."""
    try:
        manifest = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ManifestError(f"the manifest is not JSON ({e})") from None
    if not is_pack_manifest(manifest):
        kind = (
            manifest.get("artifactType") or manifest.get("mediaType")
            if isinstance(manifest, dict)
            else None
        )
        raise ManifestError(f"not a pack (artifact type {kind or 'unknown'}, not {ARTIFACT_TYPE})")
    if manifest.get("schemaVersion") != 2:
        raise ManifestError("the manifest's schemaVersion is not 2")
    config = _descriptor(manifest.get("config"), "config")
    raw_layers = manifest.get("layers")
    if not isinstance(raw_layers, list):
        raise ManifestError("the manifest has no layers list")
    layers = tuple(_descriptor(v, f"layers[{i}]") for i, v in enumerate(raw_layers))
    allowed = set(LOGOS) | set(DOCUMENTS)
    titles: set[str] = set()
    logos = 0
    archives = 0
    for i, layer in enumerate(layers):
        if layer.media_type == ARCHIVE_MEDIA_TYPE:
            archives += 1
            continue
        # A title becomes a file name: only the known top-level names are accepted.
        if layer.title not in allowed:
            raise ManifestError(f"layers[{i}]: unexpected title {layer.title!r}")
        if layer.title in titles:
            raise ManifestError(f"layers[{i}]: {layer.title} appears twice")
        titles.add(layer.title)
        logos += layer.title in LOGOS
    if logos != 1 or archives > 1 or "values.yaml" not in titles:
        raise ManifestError("a pack has one logo, one values.yaml and at most one archive")
    annotations = manifest.get("annotations") or {}
    if not isinstance(annotations, dict):
        annotations = {}
    return PackManifest(
        config=config,
        layers=layers,
        annotations={str(k): str(v) for k, v in annotations.items()},
    )
