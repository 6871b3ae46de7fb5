"""OCI facts shared by the daemon and paxctl: media types, the descriptor, sha256 digests.

Pure: no Twisted, no I/O beyond what a caller hands in.  The registry
(:mod:`paxd.registry.manifests`) parses descriptors into :class:`Descriptor`
with a parsed :class:`~paxd.registry.reference.Digest`; paxctl
(:mod:`paxd.client.packdir.artifact`) builds them with the digest as text.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any, Generic, TypeVar

import attrs

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_SCHEMA1 = "application/vnd.docker.distribution.manifest.v1+json"
DOCKER_SCHEMA1_SIGNED = "application/vnd.docker.distribution.manifest.v1+prettyjws"

IMAGE_TYPES = frozenset({OCI_MANIFEST, DOCKER_MANIFEST})
INDEX_TYPES = frozenset({OCI_INDEX, DOCKER_LIST})
MANIFEST_TYPES = IMAGE_TYPES | INDEX_TYPES
SCHEMA1_TYPES = frozenset({DOCKER_SCHEMA1, DOCKER_SCHEMA1_SIGNED})

#: layers a registry need not hold when they carry ``urls`` (Windows base layers).
NON_DISTRIBUTABLE_TYPES = frozenset(
    {
        "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
        "application/vnd.oci.image.layer.nondistributable.v1.tar",
        "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
        "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
    }
)

#: the pre-defined annotation naming a blob's file (and a manifest's human title)
TITLE_ANNOTATION = "org.opencontainers.image.title"
#: the pre-defined annotation holding a manifest's version
VERSION_ANNOTATION = "org.opencontainers.image.version"

#: the digest's type: a parsed digest in the registry, ``"sha256:<hex>"`` text in paxctl
D = TypeVar("D")


@attrs.frozen
class Descriptor(Generic[D]):
    """A reference from a manifest to a blob or another manifest (OCI image-spec descriptor)."""

    media_type: str
    digest: D
    size: int
    urls: tuple[str, ...] = ()
    artifact_type: str | None = None
    annotations: Mapping[str, str] = attrs.field(factory=dict, hash=False)

    @property
    def foreign(self) -> bool:
        """True for a non-distributable layer with URLs: the registry need not hold it."""
        return bool(self.urls) and self.media_type in NON_DISTRIBUTABLE_TYPES

    @property
    def title(self) -> str | None:
        """The ``org.opencontainers.image.title`` annotation, if any."""
        return self.annotations.get(TITLE_ANNOTATION)

    def to_json(self) -> dict[str, Any]:
        """The OCI descriptor object (keys in the order paxctl has always written them)."""
        d: dict[str, Any] = {
            "mediaType": self.media_type,
            "digest": str(self.digest),
            "size": self.size,
        }
        if self.urls:
            d["urls"] = list(self.urls)
        if self.artifact_type is not None:
            d["artifactType"] = self.artifact_type
        if self.annotations:
            d["annotations"] = dict(self.annotations)
        return d


def titled(title: str | None) -> dict[str, str]:
    """The annotations of a blob named *title* (none for ``None``)."""
    return {TITLE_ANNOTATION: title} if title is not None else {}


def sha256_digest(data: bytes) -> str:
    """``sha256:<hex>`` of *data*."""
    return "sha256:" + hashlib.sha256(data).hexdigest()


class Sha256:
    """A running sha256 over bytes fed piece by piece, with the size seen so far."""

    def __init__(self) -> None:
        self._hash = hashlib.sha256()
        self.size = 0

    def update(self, data: bytes) -> None:
        """Feed *data*."""
        self._hash.update(data)
        self.size += len(data)

    @property
    def digest(self) -> str:
        """``sha256:<hex>`` of everything fed so far."""
        return "sha256:" + self._hash.hexdigest()


__all__ = [
    "DOCKER_LIST",
    "DOCKER_MANIFEST",
    "DOCKER_SCHEMA1",
    "DOCKER_SCHEMA1_SIGNED",
    "IMAGE_TYPES",
    "INDEX_TYPES",
    "MANIFEST_TYPES",
    "NON_DISTRIBUTABLE_TYPES",
    "OCI_INDEX",
    "OCI_MANIFEST",
    "SCHEMA1_TYPES",
    "TITLE_ANNOTATION",
    "VERSION_ANNOTATION",
    "Descriptor",
    "Sha256",
    "sha256_digest",
    "titled",
]
