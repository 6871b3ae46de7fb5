"""The tags of one manifest push: the reference's own, and those of ``?tag=`` (OCI end-7b).

The distribution spec lets a client push a manifest by digest and name tags
for it in the same request::

    PUT /v2/<name>/manifests/<digest>?tag=1.2.3&tag=latest

A registry that supports it should accept at least 10 tags, may refuse too
many with 414, and lists each tag it accepted in an ``OCI-Tag`` header.  paxd
accepts up to :data:`MAX_PUSH_TAGS`; every tag is validated before anything
is stored (one invalid tag: TAG_INVALID and nothing stored), and all of them
are pointed at the manifest in one turn of the repository
(:meth:`TagStore.push_all <paxd.registry.tags.TagStore.push_all>`), where
every refusal is checked before the first tag is written.  The same works
with a tag as the reference (``PUT …/manifests/latest?tag=1.2.3``): then the
reference is one more tag.  It is the only way to tag a sha512 manifest: a
push by tag always digests with sha256.
"""

from __future__ import annotations

from collections.abc import Sequence

from paxd.registry.errors import RegistryError
from paxd.registry.reference import parse_tag

#: the most tags one push may name (``?tag=`` plus the reference); more → 414 at the web layer
MAX_PUSH_TAGS = 64


def too_many_tags(count: int) -> RegistryError:
    """TAG_INVALID: *count* tags is more than one push may name."""
    return RegistryError(
        "TAG_INVALID",
        f"a push may name at most {MAX_PUSH_TAGS} tags, not {count}: push the rest by tag",
        detail={"count": count, "limit": MAX_PUSH_TAGS},
    )


def push_tags(reference_tag: str | None, extra: Sequence[str]) -> tuple[str, ...]:
    """The tags a push points at its manifest, in order, each once.

    :param reference_tag: the tag the push was made to, if it was made to one.
    :param extra: the ``tag`` query parameters, as sent.
    :raises RegistryError: TAG_INVALID for the first invalid tag, or for too many.
    """
    named = ([reference_tag] if reference_tag is not None else []) + list(extra)
    if len(named) > MAX_PUSH_TAGS:
        raise too_many_tags(len(named))
    return tuple(dict.fromkeys(parse_tag(tag) for tag in named))
