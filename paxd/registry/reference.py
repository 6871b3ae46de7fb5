"""Repository names, tags and digests: the grammars of the distribution spec.

Everything a client sends is parsed here before it reaches storage, so that a
malformed name can never become a path.
"""

from __future__ import annotations

import hashlib
import re

import attrs

from paxd.registry.errors import RegistryError

_COMPONENT = r"[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*"
NAME_RE = re.compile(rf"^{_COMPONENT}(?:/{_COMPONENT})*$")
TAG_RE = re.compile(r"^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$")
#: distribution counts the host too; we have none, so the name alone is capped.
NAME_MAX = 255

ALGORITHMS: dict[str, re.Pattern[str]] = {
    "sha256": re.compile(r"^[a-f0-9]{64}$"),
    "sha512": re.compile(r"^[a-f0-9]{128}$"),
}
_DIGEST_RE = re.compile(r"^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$")


def parse_name(name: str) -> str:
    """Return *name* if it is a valid repository name, else raise ``NAME_INVALID``."""
    if not name or len(name) > NAME_MAX or not NAME_RE.match(name):
        raise RegistryError(
            "NAME_INVALID",
            "invalid repository name: lower-case components of [a-z0-9] separated by"
            " '.', '_', '__' or '-', joined by '/', at most 255 characters",
            detail={"name": name[:300]},
        )
    return name


def is_tag(reference: str) -> bool:
    """True if *reference* is a syntactically valid tag."""
    return bool(TAG_RE.match(reference))


def parse_tag(tag: str) -> str:
    """Return *tag* if valid, else raise ``TAG_INVALID``."""
    if not is_tag(tag):
        raise RegistryError(
            "TAG_INVALID",
            "invalid tag: [a-zA-Z0-9_] then up to 127 of [a-zA-Z0-9._-]",
            detail={"tag": tag[:200]},
        )
    return tag


@attrs.frozen
class Digest:
    """A content digest such as ``sha256:<64 hex>``."""

    algorithm: str
    hex: str

    def __str__(self) -> str:
        return f"{self.algorithm}:{self.hex}"

    def hasher(self) -> hashlib._Hash:
        """A fresh hash object for this digest's algorithm."""
        return hashlib.new(self.algorithm)

    def matches(self, data: bytes) -> bool:
        """True if *data* hashes to this digest."""
        return hashlib.new(self.algorithm, data).hexdigest() == self.hex

    @classmethod
    def of(cls, data: bytes, algorithm: str = "sha256") -> Digest:
        """The digest of *data*."""
        return cls(algorithm, hashlib.new(algorithm, data).hexdigest())


def parse_digest(value: str) -> Digest:
    """Parse ``alg:hex``; raise ``DIGEST_INVALID`` for anything else or an unsupported algorithm."""
    if not _DIGEST_RE.match(value or ""):
        raise RegistryError(
            "DIGEST_INVALID",
            "invalid digest: expected <algorithm>:<hex>",
            detail={"digest": (value or "")[:200]},
        )
    algorithm, _, encoded = value.partition(":")
    pattern = ALGORITHMS.get(algorithm)
    if pattern is None:
        raise RegistryError(
            "DIGEST_INVALID",
            f"unsupported digest algorithm {algorithm!r}: use sha256 or sha512",
            detail={"digest": value[:200]},
        )
    if not pattern.match(encoded):
        raise RegistryError(
            "DIGEST_INVALID",
            f"invalid {algorithm} digest: expected {64 if algorithm == 'sha256' else 128}"
            " lower-case hex characters",
            detail={"digest": value[:200]},
        )
    return Digest(algorithm, encoded)


def parse_algorithm(value: str) -> str:
    """A digest algorithm paxd supports (``?digest-algorithm=``); ``DIGEST_INVALID`` otherwise."""
    if value not in ALGORITHMS:
        raise RegistryError(
            "DIGEST_INVALID",
            f"unsupported digest algorithm {value[:50]!r}: use sha256 or sha512",
            detail={"digest-algorithm": value[:200]},
        )
    return value


def is_digest(reference: str) -> bool:
    """True if *reference* looks like a digest (contains ':'), valid or not."""
    return ":" in reference


def parse_reference(reference: str) -> str | Digest:
    """A manifest reference: a tag (``str``) or a :class:`Digest`."""
    if is_digest(reference):
        return parse_digest(reference)
    return parse_tag(reference)
