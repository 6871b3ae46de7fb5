"""The pack format as the daemon sees it: media types, annotation keys, tag groups.

A pack in a registry is an OCI image manifest whose ``artifactType`` is
:data:`ARTIFACT_TYPE` (``docs/pack-format.rst`` writes the mapping down).
This module names what both sides agree on and what the daemon needs to
recognise and summarise a pack; building one from a directory is paxctl's
business (:mod:`paxd.client.packdir`).
"""

from __future__ import annotations

import re
from typing import Any

from paxd.oci import TITLE_ANNOTATION

ARTIFACT_TYPE = "application/vnd.paxd.pack.v1"
CONFIG_MEDIA_TYPE = "application/vnd.paxd.pack.config.v1+json"
ARCHIVE_MEDIA_TYPE = "application/vnd.paxd.pack.content.v1.tar+gzip"
ARCHIVE_TITLE = "content.tar.gz"
#: the top-level documents that travel as their own blobs → their media types
DOCUMENT_MEDIA_TYPES: dict[str, str] = {
    "values.yaml": "application/vnd.paxd.pack.values.v1+yaml",
    "README.md": "text/markdown",
    "schema.yaml": "application/vnd.paxd.pack.schema.v1+yaml",
    "presets.yaml": "application/vnd.paxd.pack.presets.v1+yaml",
}
#: logo file name → media type; a pack has exactly one of them
LOGOS: dict[str, str] = {
    "logo.png": "image/png",
    "logo.svg": "image/svg+xml",
    "logo.webp": "image/webp",
}
#: a layer's file name (:data:`paxd.oci.TITLE_ANNOTATION`)
TITLE = TITLE_ANNOTATION
#: the prefix of the manifest annotations summarising ``pack.json``
PREFIX = "io.paxd.pack."
#: the annotation recording why a tag was overwritten (``paxctl pack push --force --message``)
MESSAGE_ANNOTATION = PREFIX + "message"
#: pack.json field → annotation suffix, for the summary a console reads without the config
SUMMARY_FIELDS: tuple[str, ...] = (
    "name",
    "displayName",
    "version",
    "layer",
    "cloudTypes",
    "addonType",
    "addonSubType",
    "group",
    "eol",
)

#: a tag group: no underscore, so that ``<group>__<label>`` splits one way only
GROUP_RE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9.-]{0,63}$")


def is_pack_manifest(manifest: Any) -> bool:
    """True if the parsed *manifest* is a paxd pack (by artifactType or config media type)."""
    if not isinstance(manifest, dict):
        return False
    config = manifest.get("config")
    config_type = config.get("mediaType") if isinstance(config, dict) else None
    return manifest.get("artifactType") == ARTIFACT_TYPE or config_type == CONFIG_MEDIA_TYPE


def split_tag(tag: str) -> tuple[str | None, str]:
    """``'lts__14.4.3'`` → ``('lts', '14.4.3')``; a tag without a group → ``(None, tag)``."""
    group, sep, label = tag.partition("__")
    return (group, label) if sep else (None, tag)


def join_tag(label: str, group: str | None) -> str:
    """The tag for *label* in *group* (``<group>__<label>``), or *label* alone."""
    return f"{group}__{label}" if group else label


__all__ = [
    "ARCHIVE_MEDIA_TYPE",
    "ARCHIVE_TITLE",
    "ARTIFACT_TYPE",
    "CONFIG_MEDIA_TYPE",
    "DOCUMENT_MEDIA_TYPES",
    "GROUP_RE",
    "LOGOS",
    "MESSAGE_ANNOTATION",
    "PREFIX",
    "SUMMARY_FIELDS",
    "TITLE",
    "is_pack_manifest",
    "join_tag",
    "split_tag",
]
