"""Docker distribution's storage layout, as logical paths for a storage driver.

A directory written by distribution 2.x (and by the vendor's fork of it) is
served unchanged, and the other way round::

    /docker/registry/v2/blobs/sha256/<2 hex>/<hex>/data
    /docker/registry/v2/repositories/<name>/_layers/sha256/<hex>/link
    /docker/registry/v2/repositories/<name>/_manifests/revisions/sha256/<hex>/link
    /docker/registry/v2/repositories/<name>/_manifests/tags/<tag>/current/link
    /docker/registry/v2/repositories/<name>/_manifests/tags/<tag>/index/sha256/<hex>/link
    /docker/registry/v2/repositories/<name>/_uploads/<uuid>/{data,startedat}

Every function takes values already validated by :mod:`paxd.registry.reference`.
"""

from __future__ import annotations

from paxd.registry.reference import Digest

ROOT = "/docker/registry/v2"
BLOBS = f"{ROOT}/blobs"
REPOSITORIES = f"{ROOT}/repositories"
#: paxd's own bookkeeping, outside anything distribution reads.
PAXD = "/paxd"


def blob_dir(digest: Digest) -> str:
    return f"{BLOBS}/{digest.algorithm}/{digest.hex[:2]}/{digest.hex}"


def blob_data(digest: Digest) -> str:
    return f"{blob_dir(digest)}/data"


def repository(name: str) -> str:
    return f"{REPOSITORIES}/{name}"


def layers(name: str) -> str:
    return f"{repository(name)}/_layers"


def layer_link(name: str, digest: Digest) -> str:
    return f"{layers(name)}/{digest.algorithm}/{digest.hex}/link"


def manifests(name: str) -> str:
    return f"{repository(name)}/_manifests"


def revision_link(name: str, digest: Digest) -> str:
    return f"{manifests(name)}/revisions/{digest.algorithm}/{digest.hex}/link"


def revisions(name: str, algorithm: str = "sha256") -> str:
    return f"{manifests(name)}/revisions/{algorithm}"


def tags(name: str) -> str:
    return f"{manifests(name)}/tags"


def tag_dir(name: str, tag: str) -> str:
    return f"{tags(name)}/{tag}"


def tag_current_link(name: str, tag: str) -> str:
    return f"{tag_dir(name, tag)}/current/link"


def tag_index_link(name: str, tag: str, digest: Digest) -> str:
    return f"{tag_dir(name, tag)}/index/{digest.algorithm}/{digest.hex}/link"


def uploads(name: str) -> str:
    return f"{repository(name)}/_uploads"


def upload_dir(name: str, uuid: str) -> str:
    return f"{uploads(name)}/{uuid}"


def upload_data(name: str, uuid: str) -> str:
    return f"{upload_dir(name, uuid)}/data"


def upload_startedat(name: str, uuid: str) -> str:
    return f"{upload_dir(name, uuid)}/startedat"


def link_content(digest: Digest) -> bytes:
    """What a link file holds: the digest, no newline (as distribution writes it)."""
    return str(digest).encode("ascii")


# -- added for the registry service ----------------------------------------
#: distribution's catalog and paxd's walk skip directories starting with this.
PAXD_REFERRERS = "_paxd_referrers"
HEALTH_PROBE = f"{PAXD}/health"


def layer_dir(name: str, digest: Digest) -> str:
    """The directory holding a blob's layer link in *name* (removed to unlink it)."""
    return f"{layers(name)}/{digest.algorithm}/{digest.hex}"


def revision_dir(name: str, digest: Digest) -> str:
    """The directory holding a manifest's revision link in *name*."""
    return f"{manifests(name)}/revisions/{digest.algorithm}/{digest.hex}"


def referrers(name: str, subject: Digest) -> str:
    """paxd's own index of the manifests in *name* whose ``subject`` is *subject*.

    distribution has no referrers API; the leading ``_`` keeps its catalog
    walk (and paxd's) out of this directory.
    """
    return f"{repository(name)}/{PAXD_REFERRERS}/{subject.algorithm}/{subject.hex}"


def referrer_dir(name: str, subject: Digest, digest: Digest) -> str:
    """The directory recording that manifest *digest* refers to *subject*."""
    return f"{referrers(name, subject)}/{digest.algorithm}/{digest.hex}"


def referrer_link(name: str, subject: Digest, digest: Digest) -> str:
    """The link file recording that manifest *digest* refers to *subject*."""
    return f"{referrer_dir(name, subject, digest)}/link"


#: the directory whose presence says a repository holds packs (see :mod:`paxd.registry.tags`)
PAXD_PACKS = "_paxd_packs"


def pack_marker(name: str) -> str:
    """The file saying repository *name* holds packs, so that the registry keeps its parent tags.

    Under a ``_`` directory, which distribution's catalog walk (and paxd's) skips.
    """
    return f"{repository(name)}/{PAXD_PACKS}/marker"


#: paxd's reverse index of blob links: which repositories link a blob (see registry/holders.py)
BLOB_HOLDERS = f"{PAXD}/blobholders"


def blob_holders(digest: Digest) -> str:
    """The directory naming the repositories that linked blob *digest* (one file each)."""
    return f"{BLOB_HOLDERS}/{digest.algorithm}/{digest.hex[:2]}/{digest.hex}"


def blob_holder(digest: Digest, name: str) -> str:
    """The file saying repository *name* linked blob *digest*: its ``/`` spelt ``+``.

    ``+`` is in no repository name, so the file name is unambiguous and flat.
    """
    return f"{blob_holders(digest)}/{name.replace('/', '+')}"
