"""What every store of every repository shares: storage, the blob cache, the index, the policy.

The :class:`~paxd.registry.registry.Registry` builds one :class:`StoreContext`
and hands it to each :class:`~paxd.registry.repository.Repository` it makes;
the stores read their settings and check the registry's policy (read-only,
deletes, parent tags, page sizes) through it.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Coroutine
from typing import Any, ParamSpec, TypeVar

import attrs
from twisted.internet.defer import Deferred

from paxd.packs import versions
from paxd.registry.blobcache import BlobCache
from paxd.registry.errors import RegistryError, unsupported
from paxd.registry.index import IRegistryIndex
from paxd.registry.intents import Intents
from paxd.registry.references import ReferenceChecks
from paxd.storage.interface import IStorageDriver

_P = ParamSpec("_P")
_T = TypeVar("_T")


def deferred(f: Callable[_P, Coroutine[Any, Any, _T]]) -> Callable[_P, Deferred[_T]]:
    """Run an ``async def`` method as a Deferred, so errors (validation included) fail it."""

    @functools.wraps(f)
    def wrapper(*args: _P.args, **kwargs: _P.kwargs) -> Deferred[_T]:
        return Deferred.fromCoroutine(f(*args, **kwargs))

    return wrapper


def rfc3339(when: float) -> str:
    """*when* as distribution writes times (``time.Now().UTC().Format(time.RFC3339)``)."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(when))


@attrs.frozen
class StoreContext:
    """The registry-wide half of every store.

    :ivar driver: where everything is stored.
    :ivar index: the catalog, the pack index and the tag locks.
    :ivar cache: sizes and small contents of blobs, by digest (immutable data only).
    :ivar delete_enabled: ``storage.delete.enabled``.
    :ivar readonly: ``storage.maintenance.readonly.enabled``.
    :ivar parent_tags: ``packs.parenttags``.
    :ivar max_page: ``catalog.maxentries``.
    :ivar references: what a pushed manifest must find in its repository
        (``validation.manifests``: sparse manifests).
    :ivar redirect: blob downloads may redirect to the storage (``storage.redirect``)
        when the driver offers URLs.
    :ivar now: the clock (upload start times, health probes).
    :ivar new_uuid: makes upload ids.
    :ivar intents: while online garbage collection is on, where writes that
        create references note them first (:mod:`paxd.registry.intents`).
    """

    driver: IStorageDriver
    index: IRegistryIndex
    cache: BlobCache
    new_uuid: Callable[[], str]
    now: Callable[[], float] = time.time
    delete_enabled: bool = False
    readonly: bool = False
    parent_tags: bool = True
    max_page: int = 1000
    references: ReferenceChecks = attrs.field(factory=ReferenceChecks)
    redirect: bool = False
    intents: Intents | None = None

    def page_size(self, n: int | None) -> int:
        """The size of a listing page asked as *n* (PAGINATION_NUMBER_INVALID beyond the max)."""
        if n is None:
            return self.max_page
        if n < 0 or n > self.max_page:
            raise RegistryError(
                "PAGINATION_NUMBER_INVALID",
                f"n must be between 0 and {self.max_page}",
                detail={"n": n, "max": self.max_page},
            )
        return n

    def check_writable(self) -> None:
        """UNSUPPORTED in read-only mode."""
        if self.readonly:
            raise unsupported("registry is in read-only mode")

    def check_deletable(self) -> None:
        """UNSUPPORTED in read-only mode or with deletes disabled."""
        self.check_writable()
        if not self.delete_enabled:
            raise unsupported()

    def check_not_parent(self, tag: str, holds_packs: bool) -> None:
        """Refuse a client's push or delete of a parent tag (DENIED).

        Only in a repository holding packs (*holds_packs*, see
        :mod:`paxd.registry.tags`): elsewhere ``1.x`` is a tag like any other.
        """
        if self.parent_tags and holds_packs and versions.is_parent_tag(tag):
            raise parent_denied(tag)


def parent_denied(tag: str) -> RegistryError:
    """DENIED: *tag* is a parent tag the registry maintains."""
    return RegistryError(
        "DENIED",
        f"{tag} is a parent tag maintained by the registry: push or delete a version tag instead",
        detail={"tag": tag},
    )
