"""What a pushed manifest must find in its repository: its blobs, an index's manifests.

By default paxd, like Docker distribution, refuses a manifest whose config or
(distributable) layers are not linked into the repository, and an index
whose manifests are not there, with MANIFEST_BLOB_UNKNOWN.  The distribution
spec allows a registry to accept such *sparse* manifests (a mirror of one
platform of a multi-platform image, an index pushed before its images):

- ``validation.manifests.sparse: true`` (paxd's key) checks nothing: any
  blob or child manifest may be absent;
- ``validation.manifests.indexes.platforms`` (Docker distribution 3's key)
  decides for an index's manifests alone: ``all`` (the default) checks each,
  ``none`` none, ``list`` only those whose platform (``os`` and
  ``architecture``) is in ``validation.manifests.indexes.platformlist`` (an
  empty list: all, as distribution does).

A ``subject`` may always be absent (OCI 1.1).  What is accepted is stored as
it is; a client pulling a missing part gets 404, as for anything absent.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Literal

import attrs
from twisted.internet.defer import Deferred, gatherResults

from paxd.registry.errors import RegistryError
from paxd.registry.manifests import Descriptor, Manifest
from paxd.registry.reference import Digest

#: an index's manifests that must be present: every one, none, or those of listed platforms
Children = Literal["all", "none", "list"]


@attrs.frozen
class ReferenceChecks:
    """Which references of a pushed manifest must be in the repository (see the module).

    :ivar blobs: an image manifest's config and layers must be linked.
    :ivar children: an index's manifests: ``all``, ``none``, or ``list``
        (those of :attr:`platforms`).
    :ivar platforms: ``(os, architecture)`` pairs checked under ``list``.
    """

    blobs: bool = True
    children: Children = "all"
    platforms: frozenset[tuple[str, str]] = frozenset()

    @classmethod
    def configured(
        cls, sparse: bool, platforms: str, platformlist: Sequence[tuple[str, str]]
    ) -> ReferenceChecks:
        """From ``validation.manifests``: *sparse*, ``indexes.platforms`` and its list."""
        if sparse:
            return cls(blobs=False, children="none")
        children: Children = "none" if platforms == "none" else "all"
        if platforms == "list" and platformlist:
            children = "list"
        return cls(children=children, platforms=frozenset(platformlist))

    @property
    def complete(self) -> bool:
        """True if every reference is checked (the default)."""
        return self.blobs and self.children == "all"

    def describe(self) -> str:
        """One line for the log: what is not checked."""
        if self.complete:
            return "manifests must find all their blobs and child manifests in their repository"
        if not self.blobs:
            return "sparse manifests accepted: blobs and child manifests may be absent"
        if self.children == "none":
            return "sparse indexes accepted: an index's manifests may be absent"
        listed = ", ".join(f"{os}/{arch}" for os, arch in sorted(self.platforms))
        return f"sparse indexes accepted: only the manifests of {listed} must be present"

    def required_children(self, manifest: Manifest, content: bytes) -> list[Descriptor]:
        """The manifests an index lists that must be present."""
        if self.children == "none":
            return []
        children = manifest.required_manifests()
        if self.children == "all":
            return children
        platforms = _platforms(content, len(children))
        return [d for d, p in zip(children, platforms, strict=True) if p in self.platforms]


def _platforms(content: bytes, count: int) -> list[tuple[str, str] | None]:
    """The ``(os, architecture)`` of each of an index's *count* manifests (None: none given)."""
    document: Any = json.loads(content)  # already parsed once: valid JSON
    found: list[tuple[str, str] | None] = []
    for entry in document.get("manifests", [])[:count]:
        platform = entry.get("platform") if isinstance(entry, dict) else None
        if isinstance(platform, dict):
            found.append((str(platform.get("os")), str(platform.get("architecture"))))
        else:
            found.append(None)
    return found


async def check_references(
    name: str,
    manifest: Manifest,
    content: bytes,
    checks: ReferenceChecks,
    linked: Callable[[Digest], Awaitable[object | None]],
    present: Callable[[Digest], Awaitable[bool]],
) -> None:
    """MANIFEST_BLOB_UNKNOWN unless what *checks* requires is in repository *name*.

    :param linked: the repository's blob (None if not linked), by digest.
    :param present: whether the repository holds a manifest, by digest.
    """
    blobs = {d.digest: d for d in manifest.required_blobs()} if checks.blobs else {}
    children = {d.digest: d for d in checks.required_children(manifest, content)}
    blob_checks = gatherResults(
        [Deferred.fromCoroutine(_await(linked(d))) for d in blobs], consumeErrors=True
    )
    manifest_checks = gatherResults(
        [Deferred.fromCoroutine(_await(present(d))) for d in children], consumeErrors=True
    )
    for digest, info in zip(blobs, await blob_checks, strict=True):
        if info is None:
            raise RegistryError(
                "MANIFEST_BLOB_UNKNOWN",
                f"blob {digest} referenced by the manifest is unknown to repository {name}",
                detail={"digest": str(digest)},
            )
    for digest, there in zip(children, await manifest_checks, strict=True):
        if not there:
            raise RegistryError(
                "MANIFEST_BLOB_UNKNOWN",
                f"manifest {digest} listed by the index is unknown to repository {name}",
                detail={"digest": str(digest)},
            )


async def _await(value: Awaitable[Any]) -> Any:
    return await value
