"""One repository's pack entry as the shared index stores it: JSON in and out of a PackIndex.

The entry is ``{"t": {tag: [digest, version, layer, displayName, addonType,
[cloudTypes], logo]}, "p": {parent: tag}}``.  A change is applied by the
same :class:`~paxd.registry.packindex.PackIndex` an in-process index uses,
on a one-pack index rebuilt from the entry, which also renders the pack's
``_packs`` document; so both indexes answer alike.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from paxd.registry.packindex import PackIndex, PackSummary

__all__ = ["apply", "decode", "encode"]


def encode(tags: dict[str, PackSummary], parents: dict[str, str]) -> str:
    """The stored entry ('' when nothing is known)."""
    if not tags and not parents:
        return ""
    return json.dumps(
        {
            "t": {
                tag: [
                    s.digest,
                    s.version,
                    s.layer,
                    s.display_name,
                    s.addon_type,
                    list(s.cloud_types),
                    s.logo,
                ]
                for tag, s in tags.items()
            },
            "p": parents,
        },
        separators=(",", ":"),
    )


def decode(text: str) -> tuple[dict[str, PackSummary], dict[str, str]]:
    """An entry back as summaries and parent tags ('' is nothing)."""
    if not text:
        return {}, {}
    found: dict[str, Any] = json.loads(text)
    tags = {
        tag: PackSummary(
            digest=v[0],
            version=v[1],
            layer=v[2],
            display_name=v[3],
            addon_type=v[4],
            cloud_types=tuple(v[5]),
            logo=v[6],
        )
        for tag, v in found.get("t", {}).items()
    }
    return tags, dict(found.get("p", {}))


def apply(
    name: str, stored: str, parent_tags: bool, change: Callable[[PackIndex], None]
) -> tuple[str, str]:
    """*change* applied to repository *name*'s *stored* entry: the new entry and document ('')."""
    index = PackIndex(parent_tags)
    tags, parents = decode(stored)
    if tags or parents:
        index.replace(name, tags, parents)
    change(index)
    return encode(*index.state(name)), index.document_json(name) or ""
