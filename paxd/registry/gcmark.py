"""Garbage collection, the mark: what every repository holds, and what of it is alive.

Each repository is read once (:func:`scan_repository`): its tags and where
they point, its manifest revisions and what each references, the blobs it
links, and the referrer records paxd keeps.  From that, :func:`live_manifests`
says which manifests are alive:

- every tagged manifest; without ``delete_untagged``, every manifest revision;
- with ``delete_untagged``, also every manifest that is the ``subject`` of
  another manifest in the repository (Docker distribution deletes those,
  leaving their referrers — signatures, SBOMs — pointing at nothing);
- every manifest the collector adds (revisions younger than the grace
  window, manifests a recent push named);
- then, repeatedly: the manifests an alive index lists, and the referrers
  of an alive manifest (manifests whose ``subject`` it is).

An alive manifest keeps its own blob, its config and its layers.  References
are read leniently (:func:`references`): any stored JSON, Docker schema 1
included, so that content written by distribution is never swept for want of
parsing it; a live manifest that cannot be read at all stops the sweep.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

import attrs

from paxd.registry import layout
from paxd.registry.errors import RegistryError
from paxd.registry.links import read_link
from paxd.registry.reference import ALGORITHMS, Digest, is_tag, parse_digest
from paxd.storage.interface import IStorageDriver, PathNotFound


class Unreadable(Exception):
    """A live manifest's content could not be read: what it references is unknown."""


@attrs.frozen
class References:
    """What one stored manifest references."""

    #: manifests (an index's entries), in the same repository
    children: frozenset[Digest] = frozenset()
    #: blobs (config, layers; schema 1's ``fsLayers``)
    blobs: frozenset[Digest] = frozenset()
    subject: Digest | None = None


def _digest(value: Any) -> Digest | None:
    if not isinstance(value, str):
        return None
    try:
        return parse_digest(value)
    except RegistryError:
        return None


def _digests(items: Any, key: str) -> set[Digest]:
    found = set()
    if isinstance(items, list):
        for item in items:
            if isinstance(item, dict) and (d := _digest(item.get(key))) is not None:
                found.add(d)
    return found


def references(content: bytes) -> References | None:
    """What the stored manifest *content* references; None if it is not a JSON object."""
    try:
        document = json.loads(content.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return None
    if not isinstance(document, dict):
        return None
    blobs = _digests(document.get("layers"), "digest")
    blobs |= _digests(document.get("blobs"), "digest")  # the withdrawn OCI artifact manifest
    blobs |= _digests(document.get("fsLayers"), "blobSum")  # Docker schema 1
    config = document.get("config")
    if isinstance(config, dict) and (d := _digest(config.get("digest"))) is not None:
        blobs.add(d)
    subject = document.get("subject")
    return References(
        children=frozenset(_digests(document.get("manifests"), "digest")),
        blobs=frozenset(blobs),
        subject=_digest(subject.get("digest")) if isinstance(subject, dict) else None,
    )


@attrs.define
class RepositoryScan:
    """One repository as the mark found it."""

    name: str
    #: tag → the manifest it points at
    tags: dict[str, Digest] = attrs.Factory(dict)
    #: the manifest revisions (``_manifests/revisions``)
    revisions: set[Digest] = attrs.Factory(set)
    #: revisions and tag targets → what they reference (None: content missing)
    contents: dict[Digest, References | None] = attrs.Factory(dict)
    #: manifests whose content is there but is not a JSON object
    broken: set[Digest] = attrs.Factory(set)
    #: blobs linked into the repository (``_layers``)
    layers: set[Digest] = attrs.Factory(set)
    #: (subject, referrer) pairs recorded under ``_paxd_referrers``
    referrer_records: set[tuple[Digest, Digest]] = attrs.Factory(set)


async def _children(driver: IStorageDriver, path: str) -> list[str]:
    try:
        return await driver.children(path)
    except PathNotFound:
        return []


async def _digest_dirs(driver: IStorageDriver, path: str) -> list[Digest]:
    """The digests named by ``<path>/<algorithm>/<hex>`` directories."""
    found = []
    for algorithm in await _children(driver, path):
        if algorithm not in ALGORITHMS:
            continue
        for hex_ in await _children(driver, f"{path}/{algorithm}"):
            if (d := _digest(f"{algorithm}:{hex_}")) is not None:
                found.append(d)
    return found


async def _read(driver: IStorageDriver, scan: RepositoryScan, digest: Digest) -> None:
    """Note what the manifest blob *digest* references (or that it is missing or broken)."""
    if digest in scan.contents:
        return
    try:
        content = await driver.get_content(layout.blob_data(digest))
    except PathNotFound:
        scan.contents[digest] = None
        return
    refs = references(content)
    if refs is None:
        scan.broken.add(digest)
        refs = References()
    scan.contents[digest] = refs


async def scan_repository(driver: IStorageDriver, name: str) -> RepositoryScan:
    """Read everything the mark needs of repository *name*."""
    scan = RepositoryScan(name)
    for tag in await _children(driver, layout.tags(name)):
        if is_tag(tag):
            target = await read_link(driver, layout.tag_current_link(name, tag))
            if target is not None:
                scan.tags[tag] = target
    scan.revisions.update(await _digest_dirs(driver, f"{layout.manifests(name)}/revisions"))
    for digest in sorted(scan.revisions | set(scan.tags.values()), key=str):
        await _read(driver, scan, digest)
    scan.layers.update(await _digest_dirs(driver, layout.layers(name)))
    base = f"{layout.repository(name)}/{layout.PAXD_REFERRERS}"
    for subject in await _digest_dirs(driver, base):
        for referrer in await _digest_dirs(driver, f"{base}/{subject.algorithm}/{subject.hex}"):
            scan.referrer_records.add((subject, referrer))
    return scan


def _referrers_by_subject(scan: RepositoryScan) -> dict[Digest, set[Digest]]:
    by_subject: dict[Digest, set[Digest]] = {}
    for digest in scan.revisions:
        refs = scan.contents.get(digest)
        if refs is not None and refs.subject is not None:
            by_subject.setdefault(refs.subject, set()).add(digest)
    for subject, referrer in scan.referrer_records:
        if referrer in scan.revisions:
            by_subject.setdefault(subject, set()).add(referrer)
    return by_subject


def live_manifests(
    scan: RepositoryScan, delete_untagged: bool, roots: Iterable[Digest] = ()
) -> set[Digest]:
    """The manifests of *scan* that are alive (see the module docstring).

    :param roots: more manifests to keep (young ones, and those a push named).
    :raises Unreadable: an alive manifest whose content is there but cannot be parsed.
    """
    by_subject = _referrers_by_subject(scan)
    roots = set(scan.tags.values()) | (set(roots) & scan.revisions)
    if delete_untagged:
        roots |= {s for s in by_subject if s in scan.revisions}
    else:
        roots |= scan.revisions
    live: set[Digest] = set()
    pending = list(roots)
    while pending:
        digest = pending.pop()
        if digest in live:
            continue
        live.add(digest)
        if digest in scan.broken:
            raise Unreadable(
                f"manifest {scan.name}@{digest} is not JSON, so what it references is"
                " unknown: delete it or restore its content, then collect again"
            )
        refs = scan.contents.get(digest)
        if refs is None:
            continue  # missing content, or an index entry that is not in this repository
        pending.extend(refs.children)
        pending.extend(by_subject.get(digest, ()))
    return live


def kept_blobs(scan: RepositoryScan, live: Iterable[Digest]) -> set[Digest]:
    """Every blob the *live* manifests of *scan* keep: themselves and what they reference."""
    kept: set[Digest] = set()
    for digest in live:
        kept.add(digest)
        refs = scan.contents.get(digest)
        if refs is not None:
            kept |= refs.blobs
            kept |= refs.children
            if refs.subject is not None:
                kept.add(refs.subject)
    return kept
