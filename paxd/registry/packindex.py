"""The ``_packs`` index: every pack, its tags and their summaries, in memory.

A console syncing a registry would otherwise walk catalog → tags → manifests:
20,000 requests for 1,000 packs of 20 versions.  paxd reads each tagged
manifest once (at start-up, then as it is pushed), keeps the summary its
annotations carry (see ``docs/pack-format.rst``) and answers a page of packs
from memory.  Each pack's JSON is cached until the pack changes, so a page is
a join of strings.

The tag store (:mod:`paxd.registry.tags`) and start-up indexing feed it, through
:class:`~paxd.registry.index.InProcessIndex`; it does no I/O.
"""

from __future__ import annotations

import bisect
import json
from collections.abc import Iterable, Mapping
from typing import Any

import attrs

from paxd.packs.format import LOGOS, PREFIX, TITLE, is_pack_manifest, split_tag
from paxd.packs.versions import is_parent_tag, parent_order, tag_order
from paxd.registry.catalog import catalog_key, paginate


@attrs.frozen
class PackSummary:
    """What a pack manifest's annotations and layers say, for the console."""

    digest: str
    version: str | None = None
    layer: str | None = None
    display_name: str | None = None
    addon_type: str | None = None
    cloud_types: tuple[str, ...] = ()
    logo: str | None = None
    #: the logo layer's media type (``image/png``…), for a ``?type=`` that a browser shows
    logo_type: str | None = None


def _annotation(annotations: Mapping[str, Any], key: str) -> str | None:
    value = annotations.get(PREFIX + key)
    return value if isinstance(value, str) else None


def _logo(layers: Any) -> tuple[str | None, str | None]:
    """The digest and media type of the logo layer: titled ``logo.*``, else the first ``image/*``.

    ``(None, None)`` when there is none; the type is None when the layer names none.
    """
    if not isinstance(layers, list):
        return None, None
    fallback: tuple[str | None, str | None] = (None, None)
    for layer in layers:
        if not isinstance(layer, dict) or not isinstance(layer.get("digest"), str):
            continue
        annotations = layer.get("annotations")
        title = annotations.get(TITLE) if isinstance(annotations, dict) else None
        media_type = layer.get("mediaType")
        kind = media_type if isinstance(media_type, str) else None
        if title in LOGOS:
            return str(layer["digest"]), kind
        if fallback[0] is None and kind is not None and kind.startswith("image/"):
            fallback = (str(layer["digest"]), kind)
    return fallback


def summarize(content: bytes, digest: str) -> PackSummary | None:
    """The summary of the manifest *content* (whose digest is *digest*); None if not a pack.

    Lenient: a pack manifest missing some annotations gives nulls, never an error.
    """
    try:
        manifest = json.loads(content)
    except (UnicodeDecodeError, ValueError):
        return None
    if not is_pack_manifest(manifest):
        return None
    annotations = manifest.get("annotations")
    if not isinstance(annotations, dict):
        annotations = {}
    cloud = _annotation(annotations, "cloudTypes")
    logo, logo_type = _logo(manifest.get("layers"))
    return PackSummary(
        digest=digest,
        version=_annotation(annotations, "version"),
        layer=_annotation(annotations, "layer"),
        display_name=_annotation(annotations, "displayName"),
        addon_type=_annotation(annotations, "addonType"),
        cloud_types=tuple(c.strip() for c in cloud.split(",") if c.strip()) if cloud else (),
        logo=logo,
        logo_type=logo_type,
    )


@attrs.define
class _Pack:
    """One pack as the index knows it."""

    #: tag → summary, for the tags pointing at a pack manifest (parent tags excepted)
    tags: dict[str, PackSummary] = attrs.Factory(dict)
    #: parent tag → the version tag it points at
    parents: dict[str, str] = attrs.Factory(dict)


def tag_document(tag: str, summary: PackSummary, parents: list[str]) -> dict[str, Any]:
    """One tag's entry in a ``_packs`` answer."""
    group, label = split_tag(tag)
    return {
        "tag": tag,
        "version": summary.version if summary.version is not None else label,
        "group": group,
        "parents": parents,
        "digest": summary.digest,
        "layer": summary.layer,
        "displayName": summary.display_name,
        "addonType": summary.addon_type,
        "cloudTypes": list(summary.cloud_types),
        "logo": summary.logo,
        "logoType": summary.logo_type,
    }


class PackIndex:
    """The packs of one registry, sorted by name like the catalog.

    :param parent_tags: whether parent tags are the registry's; if so they are
        listed under the tag they point at, not as tags of their own.
    """

    def __init__(self, parent_tags: bool = True) -> None:
        self.parent_tags = parent_tags
        self._packs: dict[str, _Pack] = {}
        self._names: list[str] = []
        self._keys: list[str] = []
        #: name → the pack's JSON text, until it changes
        self._json: dict[str, str] = {}

    def __len__(self) -> int:
        return len(self._names)

    def __contains__(self, name: object) -> bool:
        return name in self._packs

    # -- changes ------------------------------------------------------------
    def _listed(self, tag: str) -> bool:
        return not (self.parent_tags and is_parent_tag(tag))

    def _pack(self, name: str) -> _Pack:
        pack = self._packs.get(name)
        if pack is None:
            pack = self._packs[name] = _Pack()
        return pack

    def _settle(self, name: str) -> None:
        """Keep the sorted names in step with *name*'s presence; drop its cached JSON."""
        self._json.pop(name, None)
        pack = self._packs.get(name)
        if pack is not None and not pack.tags and not pack.parents:
            del self._packs[name]
        listed = pack is not None and bool(pack.tags)
        key = catalog_key(name)
        i = bisect.bisect_left(self._keys, key)
        present = i < len(self._keys) and self._keys[i] == key
        if listed and not present:
            self._keys.insert(i, key)
            self._names.insert(i, name)
        elif present and not listed:
            del self._keys[i]
            del self._names[i]

    def replace(
        self, name: str, tags: Mapping[str, PackSummary | None], parents: Mapping[str, str]
    ) -> None:
        """Set everything known of repository *name* (at start-up, from storage)."""
        pack = _Pack(
            {t: s for t, s in tags.items() if s is not None and self._listed(t)},
            dict(parents) if self.parent_tags else {},
        )
        self._packs[name] = pack
        self._settle(name)

    def put_tag(self, name: str, tag: str, summary: PackSummary | None) -> None:
        """*tag* now points at a manifest summarised by *summary* (None: not a pack)."""
        if not self._listed(tag):
            return
        if summary is None:
            self.remove_tags(name, [tag])
            return
        self._pack(name).tags[tag] = summary
        self._settle(name)

    def remove_tags(self, name: str, tags: Iterable[str]) -> None:
        """*tags* are gone from *name*."""
        pack = self._packs.get(name)
        if pack is None:
            return
        for tag in tags:
            pack.tags.pop(tag, None)
        self._settle(name)

    def set_parents(self, name: str, parents: Mapping[str, str | None]) -> None:
        """Parent tag → the version tag it points at now (None: the parent is gone)."""
        if not self.parent_tags:
            return
        pack = self._pack(name)
        for parent, target in parents.items():
            if target is None:
                pack.parents.pop(parent, None)
            else:
                pack.parents[parent] = target
        self._settle(name)

    # -- reading ---------------------------------------------------------------
    def state(self, name: str) -> tuple[dict[str, PackSummary], dict[str, str]]:
        """What is known of *name*: its listed tags' summaries and its parent tags (copies)."""
        pack = self._packs.get(name)
        if pack is None:
            return {}, {}
        return dict(pack.tags), dict(pack.parents)

    def document(self, name: str) -> dict[str, Any] | None:
        """The ``_packs`` entry of *name*, or None if it is not a pack."""
        pack = self._packs.get(name)
        if pack is None or not pack.tags:
            return None
        children: dict[str, list[str]] = {}
        for parent in sorted(pack.parents, key=parent_order):
            children.setdefault(pack.parents[parent], []).append(parent)
        return {
            "name": name,
            "tags": [
                tag_document(tag, pack.tags[tag], children.get(tag, []))
                for tag in sorted(pack.tags, key=tag_order)
            ],
        }

    def document_json(self, name: str) -> str | None:
        """:meth:`document` as JSON text, cached until *name* changes."""
        text = self._json.get(name)
        if text is None:
            document = self.document(name)
            if document is None:
                return None
            text = self._json[name] = json.dumps(document, separators=(",", ":"))
        return text

    def page(self, n: int, last: str | None) -> tuple[list[str], list[str], bool]:
        """Up to *n* pack names after *last*, their JSON texts, and whether more follow."""
        names, more = paginate(self._names, self._keys, n, last)
        texts = [self.document_json(name) for name in names]
        return names, [t for t in texts if t is not None], more
