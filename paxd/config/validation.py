"""``validation``: what a pushed manifest must find in the registry (sparse manifests).

Docker distribution 3 names these keys; paxd implements the part about
references (:mod:`paxd.registry.references` is what they configure):

- ``validation.manifests.sparse`` (paxd's): ``true`` accepts an image manifest
  whose config or layers, or an index whose manifests, are not all in the
  repository, as the OCI distribution spec allows. Default ``false``: such a
  push is ``MANIFEST_BLOB_UNKNOWN``, as in distribution;
- ``validation.manifests.indexes.platforms`` (distribution 3's): ``all``
  (default), ``none`` or ``list``, with ``platformlist`` (``os`` and
  ``architecture`` of each platform whose manifests must be present).

``validation.disabled`` / ``enabled`` and ``validation.manifests.urls`` stay
accepted with a warning: paxd restricts no URLs in manifests.
"""

from __future__ import annotations

from typing import Any, ClassVar

import attrs

from paxd.config.context import Context
from paxd.config.decode import decode
from paxd.config.schema import LEAF, Rule, Section, leaf, records, section, unimplemented
from paxd.config.values import boolean, choice, required
from paxd.config.yamlload import describe, is_null

__all__ = [
    "IndexValidationConfig",
    "ManifestValidationConfig",
    "PlatformConfig",
    "ValidationConfig",
]

#: ``validation.manifests.indexes.platforms``: which manifests of an index must be present
INDEX_PLATFORMS = ("all", "none", "list")


@attrs.frozen
class PlatformConfig:
    """One item of ``platformlist``: a platform whose manifests an index must have."""

    os: str = leaf(required("linux"))
    architecture: str = leaf(required("amd64"))


def _platform_list(ctx: Context, value: Any, key: str, default: Any) -> tuple[tuple[str, str], ...]:
    """``platformlist``: ``(os, architecture)`` of each item."""
    if is_null(value):
        return tuple(default)
    if not isinstance(value, list):
        ctx.fail(
            key,
            "expected a list of platforms, e.g. [{os: linux, architecture: amd64}],"
            f" got {describe(value)}",
        )
    found = []
    for i, item in enumerate(value):
        platform = decode(ctx, PlatformConfig, item, f"{key}.{i}")
        found.append((platform.os, platform.architecture))
    return tuple(found)


def _platforms_used(ctx: Context, values: dict[str, Any], raw: dict[str, Any], key: str) -> None:
    """``platformlist`` means something only with ``platforms: list``, and must not be empty."""
    listed = values["platforms"] == "list"
    if listed and not values["platformlist"]:
        ctx.warn(
            f"{key}.platformlist: empty, so every manifest of an index must be present"
            " (as with platforms: all); list the platforms to check"
        )
    elif not listed and values["platformlist"]:
        ctx.warn(f"{key}.platformlist: not used unless {key}.platforms is list")


@attrs.frozen
class IndexValidationConfig:
    """``validation.manifests.indexes``: which manifests of an index must be present."""

    SECTION: ClassVar[Section] = Section(rules=(Rule(_platforms_used),))

    platforms: str = leaf(choice(*INDEX_PLATFORMS), default="all")
    platformlist: tuple[tuple[str, str], ...] = records(PlatformConfig, _platform_list)


@attrs.frozen
class ManifestValidationConfig:
    """``validation.manifests``."""

    #: paxd extension: accept manifests and indexes whose references are not all present
    sparse: bool = leaf(boolean(), default=False)
    indexes: IndexValidationConfig = section(IndexValidationConfig)
    urls: Any = unimplemented(why="not implemented by paxd (it accepts any URL in a manifest)")


@attrs.frozen
class ValidationConfig:
    """``validation``: what paxd checks in what is pushed."""

    manifests: ManifestValidationConfig = section(ManifestValidationConfig)
    disabled: Any = unimplemented(
        LEAF, why="not implemented by paxd (it has no URL checks to turn off)"
    )
    enabled: Any = unimplemented(LEAF, why="not implemented by paxd (deprecated: use disabled)")

    @property
    def sparse(self) -> bool:
        """``validation.manifests.sparse``."""
        return self.manifests.sparse

    @property
    def index_platforms(self) -> str:
        """``validation.manifests.indexes.platforms``: ``all``, ``none`` or ``list``."""
        return self.manifests.indexes.platforms

    @property
    def platformlist(self) -> tuple[tuple[str, str], ...]:
        """``validation.manifests.indexes.platformlist``: ``(os, architecture)`` pairs."""
        return self.manifests.indexes.platformlist
