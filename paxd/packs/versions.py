"""The one version order, and parent tags: pure tag arithmetic, no storage.

Both the daemon (parent tags, the ``_packs`` listing) and paxctl (``pack
pull`` without a tag, ``pack ls``) order versions here: semantic-version
precedence (semver.org, item 11), and "newest" is the highest release, or the
highest pre-release when there is no release (:func:`newest`).

A *version tag* is a tag whose label is a semantic version, optionally with a
``v`` prefix and a group: ``1.27.3``, ``v1.27.3``, ``1.28.0-rc.1``,
``lts__14.4.3``.  Each version tag belongs to two *lines*, named by the
*parent tags* the registry maintains for them: ``1.x`` and ``1.27.x`` (in a
group: ``lts__14.x`` and ``lts__14.4.x``).  A parent tag points at the highest
release in its line, or at the highest pre-release when the line has no
release; it disappears with the last version of its line.

Any tag matching the parent-tag grammar is the registry's: clients may not
push or delete one (while the feature is on).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable

import attrs

from paxd.packs.format import GROUP_RE, join_tag, split_tag

# semver.org's grammar, without build metadata ('+' cannot appear in a tag)
_NUMBER = r"0|[1-9][0-9]*"
_IDENTIFIER = r"0|[1-9][0-9]*|[0-9]*[a-zA-Z-][0-9a-zA-Z-]*"
_VERSION_RE = re.compile(
    rf"^(?P<v>v?)(?P<major>{_NUMBER})\.(?P<minor>{_NUMBER})\.(?P<patch>{_NUMBER})"
    rf"(?:-(?P<pre>(?:{_IDENTIFIER})(?:\.(?:{_IDENTIFIER}))*))?$"
)
_PARENT_LABEL_RE = re.compile(rf"^(?:{_NUMBER})(?:\.(?:{_NUMBER}))?\.x$")

#: one pre-release identifier as a sort key: numbers first (numerically), then words
PreKey = tuple[int, int, str]
#: :meth:`VersionTag.sort_key`
SortKey = tuple[int, int, int, int, tuple[PreKey, ...], int, str]


@attrs.frozen(order=True)
class Version:
    """A semantic version; ordered by semver precedence (a release after its pre-releases)."""

    major: int
    minor: int
    patch: int
    #: 1 for a release, 0 for a pre-release: a release sorts after its pre-releases
    release: int
    prerelease: tuple[PreKey, ...]
    text: str = attrs.field(eq=False, order=False)

    @property
    def is_release(self) -> bool:
        """True unless the version has a pre-release part."""
        return self.release == 1

    def __str__(self) -> str:
        return self.text


def parse_version(label: str) -> Version | None:
    """Parse ``1.27.3``, ``v1.27.3`` or ``1.28.0-rc.1``; None if *label* is not one."""
    m = _VERSION_RE.match(label)
    if m is None:
        return None
    pre = m.group("pre")
    prerelease: tuple[PreKey, ...] = ()
    if pre is not None:
        prerelease = tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in pre.split("."))
    return Version(
        int(m.group("major")),
        int(m.group("minor")),
        int(m.group("patch")),
        0 if pre is not None else 1,
        prerelease,
        label,
    )


@attrs.frozen
class VersionTag:
    """A tag whose label is a semantic version."""

    tag: str
    group: str | None
    version: Version

    @property
    def parents(self) -> tuple[str, str]:
        """The two parent tags of this tag's lines: ``<major>.x`` and ``<major>.<minor>.x``."""
        v = self.version
        return (
            join_tag(f"{v.major}.x", self.group),
            join_tag(f"{v.major}.{v.minor}.x", self.group),
        )

    def sort_key(self) -> SortKey:
        """The order to maximise: by version; of equal versions ``1.2.3`` beats ``v1.2.3``."""
        v = self.version
        # Version's own order, flattened: plain tuples compare several times
        # faster than attrs' generated comparisons (every push ranks a line)
        return (
            v.major,
            v.minor,
            v.patch,
            v.release,
            v.prerelease,
            0 if v.text.startswith("v") else 1,
            self.tag,
        )


def _split(tag: str) -> tuple[str | None, str] | None:
    """``(group, label)``, or None if the group part is not a valid group."""
    group, label = split_tag(tag)
    if group is not None and not GROUP_RE.match(group):
        return None
    return group, label


# Cached: every tag push ranks the tags of its lines, whose names are parsed
# again and again (a few hundred bytes an entry; tag names repeat across
# repositories).
@functools.lru_cache(maxsize=4096)
def parse_version_tag(tag: str) -> VersionTag | None:
    """The version tag *tag*, or None if its label is not a semantic version."""
    parts = _split(tag)
    if parts is None:
        return None
    version = parse_version(parts[1])
    if version is None:
        return None
    return VersionTag(tag, parts[0], version)


def is_parent_tag(tag: str) -> bool:
    """True if *tag* has the shape of a parent tag (``1.x``, ``1.27.x``, ``lts__14.4.x``)."""
    parts = _split(tag)
    return parts is not None and _PARENT_LABEL_RE.match(parts[1]) is not None


def parent_tags(tag: str) -> tuple[str, ...]:
    """The parent tags *tag* contributes to; ``()`` for a tag that is not a version."""
    parsed = parse_version_tag(tag)
    return parsed.parents if parsed is not None else ()


def best(candidates: Iterable[VersionTag]) -> VersionTag | None:
    """The tag a parent points at: the highest release, else the highest pre-release."""
    top: tuple[SortKey, VersionTag] | None = None
    top_release: tuple[SortKey, VersionTag] | None = None
    for c in candidates:
        key = c.sort_key()
        if top is None or key > top[0]:
            top = (key, c)
        if c.version.is_release and (top_release is None or key > top_release[0]):
            top_release = (key, c)
    chosen = top_release if top_release is not None else top
    return chosen[1] if chosen is not None else None


def compute_parents(tags: Iterable[str], lines: Iterable[str] | None = None) -> dict[str, str]:
    """Map each parent tag to the version tag it should point at.

    :param tags: every tag of the repository (parent and non-version tags are ignored).
    :param lines: only compute these parent tags (the others are left out);
        None for all.  A line with no version tag is absent from the result.
    """
    wanted = None if lines is None else set(lines)
    members: dict[str, list[VersionTag]] = {}
    for tag in tags:
        parsed = parse_version_tag(tag)
        if parsed is None:
            continue
        for parent in parsed.parents:
            if wanted is None or parent in wanted:
                members.setdefault(parent, []).append(parsed)
    out: dict[str, str] = {}
    for parent, candidates in members.items():
        chosen = best(candidates)
        if chosen is not None:
            out[parent] = chosen.tag
    return out


def tag_order(tag: str) -> tuple[str, int, tuple[object, ...] | str]:
    """A display order: by group, then versions in semver order, then other tags by name."""
    parsed = parse_version_tag(tag)
    if parsed is not None:
        return (parsed.group or "", 0, parsed.sort_key())
    group, label = split_tag(tag)
    return (group or "", 1, label)


def parent_order(tag: str) -> tuple[str, int, tuple[int, ...], str]:
    """A display order for parent tags: by group, the major line before the minor one."""
    parts = _split(tag)
    if parts is None or not _PARENT_LABEL_RE.match(parts[1]):
        return ("", 3, (), tag)
    numbers = tuple(int(n) for n in parts[1][:-2].split("."))
    return (parts[0] or "", len(numbers), numbers, tag)


#: a label shaped like a version although not a semantic one: ``22.04``, ``v1.2``, ``2024.1-1``
_VERSION_LIKE_RE = re.compile(r"^v?[0-9]+(?:\.[0-9]+)+(?:[-_.][0-9A-Za-z][0-9A-Za-z._-]*)?$")


def is_version_label(label: str) -> bool:
    """True if *label* names a version: a semantic one, or version-shaped (``22.04``).

    Labels (``latest``, ``recommended``, ``stable``) and parent tags (``1.x``)
    never are: they name other versions.
    """
    if parse_version(label) is not None:
        return True
    return _VERSION_LIKE_RE.match(label) is not None and _PARENT_LABEL_RE.match(label) is None


def is_version_tag(tag: str) -> bool:
    """A plain version tag: a version label without a group (not ``lts__1.0``, ``1.x``)."""
    return "__" not in tag and is_version_label(tag)


def natural_key(label: str) -> tuple[tuple[int, int, str], ...]:
    """An order for version labels that are not semantic versions (``22.04``): numbers as numbers.

    ``1.10`` after ``1.9``, numbers before words.  Only :func:`newest` uses it,
    for a pack whose versions are none of them semantic.
    """
    parts = re.split(r"[.\-_+]", label)
    return tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in parts)


def newest(labels: Iterable[str]) -> str | None:
    """The newest version among *labels*: the one a tag-less ``paxctl pack pull`` fetches.

    The highest release by semantic-version precedence, else the highest
    pre-release (as a parent tag points, :func:`best`); among labels none of
    which is a semantic version, the last version-shaped one (``22.04``) in
    :func:`natural_key` order.  Labels such as ``latest`` and parent tags
    never count (:func:`is_version_label`): ``None`` when no version is left.
    """
    given = [label for label in labels if is_version_label(label)]
    chosen = best(v for v in map(parse_version_tag, given) if v is not None)
    if chosen is not None:
        return chosen.tag
    return max(given, key=natural_key) if given else None


__all__ = [
    "Version",
    "VersionTag",
    "best",
    "compute_parents",
    "is_parent_tag",
    "is_version_label",
    "is_version_tag",
    "natural_key",
    "newest",
    "parent_order",
    "parent_tags",
    "parse_version",
    "parse_version_tag",
    "tag_order",
]
