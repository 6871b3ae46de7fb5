"""Manifest parsing and validation, and the descriptors referrers list.

The media types and the descriptor are :mod:`paxd.oci`'s (re-exported here).
Four media types are accepted (OCI image manifest and index, Docker schema 2
manifest and manifest list); artifacts are OCI manifests with an
``artifactType`` or an unusual config media type.  Docker schema 1 is
refused, as distribution 3 does.

Parsing here is pure: it checks the JSON's structure and names the blobs and
manifests the registry must find in the repository; whether they exist is
:mod:`paxd.registry.manifeststore`'s business.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

import attrs

from paxd.oci import (
    DOCKER_LIST,
    DOCKER_MANIFEST,
    DOCKER_SCHEMA1,
    DOCKER_SCHEMA1_SIGNED,
    IMAGE_TYPES,
    INDEX_TYPES,
    MANIFEST_TYPES,
    NON_DISTRIBUTABLE_TYPES,
    OCI_INDEX,
    OCI_MANIFEST,
    SCHEMA1_TYPES,
)
from paxd.oci import Descriptor as OCIDescriptor
from paxd.registry.errors import RegistryError
from paxd.registry.reference import Digest, parse_digest

#: Content-Types that say nothing about the manifest: the JSON's ``mediaType`` decides.
GENERIC_TYPES = frozenset({"application/json", "application/octet-stream"})
#: a descriptor as the registry parses it: :class:`paxd.oci.Descriptor` with a parsed digest
Descriptor = OCIDescriptor[Digest]

# RFC 6838 type/subtype (what OCI's descriptor mediaType must be)
_MEDIA_TYPE_RE = re.compile(
    r"^[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}$"
)


@attrs.frozen
class Manifest:
    """A parsed, structurally valid schema 2 manifest or index."""

    media_type: str
    config: Descriptor | None = None
    layers: tuple[Descriptor, ...] = ()
    manifests: tuple[Descriptor, ...] = ()
    subject: Descriptor | None = None
    artifact_type: str | None = None
    annotations: Mapping[str, str] = attrs.field(factory=dict, hash=False)

    @property
    def is_index(self) -> bool:
        """True for an OCI index or a Docker manifest list."""
        return self.media_type in INDEX_TYPES

    def required_blobs(self) -> list[Descriptor]:
        """The blobs that must be linked into the repository: config and non-foreign layers."""
        blobs = [self.config] if self.config is not None else []
        blobs.extend(layer for layer in self.layers if not layer.foreign)
        return blobs

    def required_manifests(self) -> list[Descriptor]:
        """The manifests an index lists, which must be in the repository."""
        return list(self.manifests)

    def effective_artifact_type(self) -> str | None:
        """``artifactType``, else the config's media type (OCI 1.1's rule for referrers)."""
        if self.artifact_type is not None:
            return self.artifact_type
        if self.config is not None:
            return self.config.media_type
        return None

    def referrer_descriptor(self, digest: Digest, size: int) -> dict[str, Any]:
        """This manifest as an entry of a referrers index."""
        entry: dict[str, Any] = {
            "mediaType": self.media_type,
            "digest": str(digest),
            "size": size,
        }
        artifact_type = self.effective_artifact_type()
        if artifact_type is not None:
            entry["artifactType"] = artifact_type
        if self.annotations:
            entry["annotations"] = dict(self.annotations)
        return entry


def _invalid(message: str, field: str | None = None) -> RegistryError:
    detail = {"field": field} if field else None
    return RegistryError("MANIFEST_INVALID", message, detail=detail)


def content_media_type(content_type: str | None) -> str | None:
    """A ``Content-Type``'s media type, without parameters; None if generic or absent."""
    if content_type is None:
        return None
    media_type = content_type.split(";", 1)[0].strip().lower()
    if not media_type or media_type in GENERIC_TYPES:
        return None
    return media_type


def _string_map(value: Any, field: str) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise _invalid(f"{field} must be a map of strings to strings", field)
    return dict(value)


def _optional_media_type(value: Any, field: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not _MEDIA_TYPE_RE.match(value):
        raise _invalid(f"{field} must be a media type (type/subtype)", field)
    return value


def _is_int(value: Any) -> bool:
    # bool is an int subclass: "size": true is not a size
    return isinstance(value, int) and not isinstance(value, bool)


def _descriptor(value: Any, field: str) -> Descriptor:
    if not isinstance(value, dict):
        raise _invalid(f"{field} must be a descriptor object", field)
    media_type = _optional_media_type(value.get("mediaType"), f"{field}.mediaType")
    if media_type is None:
        raise _invalid(f"{field}.mediaType is required", f"{field}.mediaType")
    raw_digest = value.get("digest")
    if not isinstance(raw_digest, str):
        raise _invalid(f"{field}.digest is required", f"{field}.digest")
    try:
        digest = parse_digest(raw_digest)
    except RegistryError as e:
        raise _invalid(f"{field}.digest is invalid: {e.message}", f"{field}.digest") from None
    size = value.get("size")
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise _invalid(f"{field}.size must be a non-negative integer", f"{field}.size")
    urls = value.get("urls", [])
    if not isinstance(urls, list) or not all(isinstance(u, str) for u in urls):
        raise _invalid(f"{field}.urls must be a list of strings", f"{field}.urls")
    return OCIDescriptor(
        media_type=media_type,
        digest=digest,
        size=size,
        urls=tuple(urls),
        artifact_type=_optional_media_type(value.get("artifactType"), f"{field}.artifactType"),
        annotations=_string_map(value.get("annotations"), f"{field}.annotations"),
    )


def _descriptors(value: Any, field: str) -> tuple[Descriptor, ...]:
    if not isinstance(value, list):
        raise _invalid(f"{field} must be a list of descriptors", field)
    return tuple(_descriptor(item, f"{field}[{i}]") for i, item in enumerate(value))


def _load_json(content: bytes) -> dict[str, Any]:
    try:
        document = json.loads(content.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise _invalid("manifest is not valid JSON") from None
    if not isinstance(document, dict):
        raise _invalid("manifest must be a JSON object")
    return document


def infer_media_type(document: Mapping[str, Any]) -> str:
    """The media type of a manifest that does not declare one (OCI allows that)."""
    if document.get("schemaVersion") == 1:
        return DOCKER_SCHEMA1_SIGNED
    return OCI_INDEX if "manifests" in document else OCI_MANIFEST


def parse_manifest(content: bytes, content_type: str | None) -> Manifest:
    """Parse and validate *content*, pushed with *content_type*; MANIFEST_INVALID otherwise."""
    declared = content_media_type(content_type)
    document = _load_json(content)
    embedded = document.get("mediaType")
    if embedded is not None and not isinstance(embedded, str):
        raise _invalid("mediaType must be a string", "mediaType")
    schema_version = document.get("schemaVersion")
    if (
        declared in SCHEMA1_TYPES
        or embedded in SCHEMA1_TYPES
        or (_is_int(schema_version) and schema_version == 1)
    ):
        raise _invalid(
            "Docker schema1 manifests are not supported: push a schema2 or OCI manifest",
            "schemaVersion",
        )
    if declared is not None and embedded is not None and declared != embedded:
        raise _invalid(
            f"mediaType {embedded!r} contradicts the Content-Type {declared!r}", "mediaType"
        )
    media_type = declared or embedded or infer_media_type(document)
    if media_type not in MANIFEST_TYPES:
        raise _invalid(f"unsupported manifest media type {media_type!r}", "mediaType")
    if not _is_int(schema_version) or schema_version != 2:
        raise _invalid("schemaVersion must be 2", "schemaVersion")

    subject = (
        _descriptor(document["subject"], "subject") if document.get("subject") is not None else None
    )
    artifact_type = _optional_media_type(document.get("artifactType"), "artifactType")
    annotations = _string_map(document.get("annotations"), "annotations")

    if media_type in IMAGE_TYPES:
        if "manifests" in document:
            raise _invalid(f"a {media_type} has no manifests list", "manifests")
        if "config" not in document:
            raise _invalid("config is required", "config")
        if "layers" not in document:
            raise _invalid("layers is required", "layers")
        return Manifest(
            media_type=media_type,
            config=_descriptor(document["config"], "config"),
            layers=_descriptors(document["layers"], "layers"),
            subject=subject,
            artifact_type=artifact_type,
            annotations=annotations,
        )
    if "manifests" not in document:
        raise _invalid("manifests is required", "manifests")
    if "layers" in document or "config" in document:
        raise _invalid(f"a {media_type} has no config or layers", "layers")
    return Manifest(
        media_type=media_type,
        manifests=_descriptors(document["manifests"], "manifests"),
        subject=subject,
        artifact_type=artifact_type,
        annotations=annotations,
    )


def stored_media_type(content: bytes) -> str:
    """The media type of a stored manifest: its ``mediaType``, else inferred.

    Lenient: a manifest written by distribution (schema 1 included) is served
    as it is, so only the JSON object itself is required.
    """
    try:
        document = _load_json(content)
    except RegistryError:
        return OCI_MANIFEST
    embedded = document.get("mediaType")
    if isinstance(embedded, str) and embedded:
        return embedded
    return infer_media_type(document)


def parse_stored(content: bytes) -> Manifest | None:
    """Parse a stored manifest, or None if it is not one paxd would accept now."""
    try:
        return parse_manifest(content, None)
    except RegistryError:
        return None


# the media types are re-exported: callers name them ``manifests.OCI_MANIFEST`` and so on
__all__ = [
    "DOCKER_LIST",
    "DOCKER_MANIFEST",
    "DOCKER_SCHEMA1",
    "DOCKER_SCHEMA1_SIGNED",
    "GENERIC_TYPES",
    "IMAGE_TYPES",
    "INDEX_TYPES",
    "MANIFEST_TYPES",
    "NON_DISTRIBUTABLE_TYPES",
    "OCI_INDEX",
    "OCI_MANIFEST",
    "SCHEMA1_TYPES",
    "Descriptor",
    "Manifest",
    "content_media_type",
    "infer_media_type",
    "parse_manifest",
    "parse_stored",
    "stored_media_type",
]
