"""The distribution API, as paxctl uses it: blobs, uploads, manifests, tags, catalog.

Talks ``/v1/`` (paxd, the vendor's registry) and falls back to ``/v2/`` when
``/v1/`` answers 404 (Docker distribution and every other OCI registry).

Uploads: a blob up to :data:`MONOLITHIC_MAX` goes in one request (``POST
?digest=`` with the body; a registry that does not take it that way, such as
Docker distribution, answers 202 and gets the body by ``PUT`` instead, and
paxctl remembers that for the rest of the run).  Larger blobs go in
:data:`CHUNK_SIZE` ``PATCH`` chunks; after each one the upload's location is
saved under ``~/.cache/paxctl/uploads`` so that an interrupted push resumes
where the registry says it stopped, or restarts cleanly if it forgot it.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any
from urllib.parse import quote

import attrs
import requests

from paxd.client.errors import PaxctlError
from paxd.client.packdir.artifact import Blob
from paxd.client.progress import Bar, Progress
from paxd.client.transport import Response, Transport
from paxd.oci import DOCKER_LIST, DOCKER_MANIFEST, OCI_INDEX, OCI_MANIFEST, Sha256, sha256_digest

CHUNK_SIZE = 8 * 1024 * 1024
MONOLITHIC_MAX = 16 * 1024 * 1024
PAGE_SIZE = 100
MANIFEST_ACCEPT = ", ".join((OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_LIST))
_LINK_RE = re.compile(r'<([^>]+)>\s*;\s*rel="?next"?')
_READ = 1 << 20


@attrs.frozen
class ManifestResponse:
    """A manifest as the registry sent it."""

    content: bytes
    media_type: str
    digest: str


class _ProgressReader:
    """A file wrapper that moves a progress bar as the HTTP library reads the body.

    A body rewound (a retried request) moves the bar back with it.
    """

    def __init__(self, fh: IO[bytes], bar: Bar) -> None:
        self.fh = fh
        self.bar = bar
        #: the bar's count when the file is at offset 0
        self.base = bar.done - fh.tell()

    def read(self, n: int = -1) -> bytes:
        data = self.fh.read(n)
        self.bar.update(len(data))
        return data

    def tell(self) -> int:
        return self.fh.tell()

    def seek(self, offset: int, whence: int = 0) -> int:
        position = self.fh.seek(offset, whence)
        self.bar.reset(self.base + position)
        return position


class RegistryClient:
    """One registry, through a :class:`Transport`.

    :param verify_digests: compare the digests the registry reports with ours
        (``--skip-digest-check`` turns it off).
    :param state_dir: where chunked uploads record how to resume.
    """

    def __init__(
        self,
        transport: Transport,
        progress: Progress | None = None,
        state_dir: Path | None = None,
        verify_digests: bool = True,
    ) -> None:
        self.t = transport
        self.progress = progress or Progress(None)
        self.state_dir = state_dir
        self.verify_digests = verify_digests
        self.api: str | None = None
        #: whether the registry completes ``POST ?digest=`` uploads (None: not tried yet)
        self.monolithic_post: bool | None = None
        #: entries asked for per page of catalog and tag listings
        self.page_size = PAGE_SIZE

    # -- the API root ---------------------------------------------------------------

    def ping(self) -> str:
        """Find the API root (``/v1`` or ``/v2``), checking the credentials on the way."""
        if self.api is not None:
            return self.api
        for api in ("/v1", "/v2"):
            resp = self.t.request("GET", api + "/")
            if resp.status == 404:
                continue
            self.t.expect(resp, 200)
            self.api = api
            return api
        raise PaxctlError(f"{self.t.server.key} is not a registry: neither /v1/ nor /v2/ answered")

    def _path(self, name: str, *rest: str) -> str:
        return "/".join((self.ping(), name, *rest))

    # -- blobs ----------------------------------------------------------------------

    def blob_exists(self, name: str, digest: str) -> bool:
        """True if the repository *name* has the blob.

        A registry on S3 redirects the HEAD to its storage, as distribution
        does: the transport follows it, so the storage's answer is the one that counts.
        """
        resp = self.t.request("HEAD", self._path(name, "blobs", digest))
        if resp.status == 404:
            return False
        self.t.expect(resp, 200, what=f"blob {digest}")
        return True

    def _check_reported(self, resp: Response, digest: str, what: str) -> None:
        reported = resp.header("Docker-Content-Digest")
        if self.verify_digests and reported and reported != digest:
            raise PaxctlError(
                f"the registry stored {what} as {reported}, not {digest}"
                " (--skip-digest-check ignores this)",
                "DIGEST_INVALID",
            )

    def upload_blob(self, name: str, blob: Blob) -> None:
        """Upload *blob* into repository *name* (whether or not it is there: ask first)."""
        with self.progress.bar(blob.label, blob.size) as bar:
            if blob.size > MONOLITHIC_MAX:
                self._upload_chunked(name, blob, bar)
            else:
                self._upload_monolithic(name, blob, bar)

    def _start_upload(self, name: str) -> str:
        resp = self.t.expect(
            self.t.request("POST", self._path(name, "blobs", "uploads") + "/"), 202, what="upload"
        )
        location = resp.header("Location")
        if not location:
            raise PaxctlError("the registry started an upload but gave no Location")
        return self.t.url(location)

    def _finish_url(self, location: str, digest: str) -> str:
        return location + ("&" if "?" in location else "?") + "digest=" + quote(digest)

    def _upload_monolithic(self, name: str, blob: Blob, bar: Bar) -> None:
        headers = {"Content-Type": "application/octet-stream"}
        with blob.open() as fh:
            body = _ProgressReader(fh, bar)
            if self.monolithic_post is not False:
                path = self._path(name, "blobs", "uploads") + "/"
                resp = self.t.request(
                    "POST",
                    path,
                    query={"digest": blob.digest},
                    headers=headers,
                    body=body,  # type: ignore[arg-type]
                    length=blob.size,
                )
                if resp.status == 201:
                    self.monolithic_post = True
                    self._check_reported(resp, blob.digest, blob.label)
                    return
                self.t.expect(resp, 202, what=f"upload of {blob.label}")
                # The registry started an ordinary upload and ignored the body.
                self.monolithic_post = False
                location = self.t.url(resp.header("Location") or "")
                fh.seek(0)
                bar.reset()
            else:
                location = self._start_upload(name)
            resp = self.t.request(
                "PUT",
                self._finish_url(location, blob.digest),
                headers=headers,
                body=body,  # type: ignore[arg-type]
                length=blob.size,
            )
            self.t.expect(resp, 201, what=f"upload of {blob.label}")
            self._check_reported(resp, blob.digest, blob.label)

    # -- chunked uploads, resumable -------------------------------------------------------

    def _state_file(self, name: str, digest: str) -> Path | None:
        if self.state_dir is None:
            return None
        key = hashlib.sha256(f"{self.t.server.key}\0{name}\0{digest}".encode()).hexdigest()[:32]
        return self.state_dir / f"{key}.json"

    def _load_state(self, name: str, digest: str) -> str | None:
        path = self._state_file(name, digest)
        if path is None:
            return None
        try:
            state = json.loads(path.read_text())
        except (OSError, ValueError):
            return None
        location = state.get("location") if isinstance(state, dict) else None
        return location if isinstance(location, str) else None

    def _save_state(self, name: str, digest: str, location: str | None) -> None:
        path = self._state_file(name, digest)
        if path is None:
            return
        if location is None:
            path.unlink(missing_ok=True)
            return
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(
            json.dumps({"server": self.t.server.key, "name": name, "location": location})
        )
        tmp.replace(path)

    def _upload_offset(self, location: str) -> tuple[str, int] | None:
        """Where an upload stands (its new location and offset), or ``None`` if it is gone."""
        resp = self.t.request("GET", location)
        if resp.status != 204:
            return None
        match = re.match(r"^(?:bytes=)?0-(\d+)$", resp.header("Range") or "")
        # Distribution says "0-0" for an empty upload; chunks are never 1 byte, so 0-0 is 0.
        end = int(match.group(1)) if match else -1
        offset = end + 1 if end > 0 else 0
        return self.t.url(resp.header("Location") or location), offset

    def _upload_chunked(self, name: str, blob: Blob, bar: Bar) -> None:
        location: str | None = None
        offset = 0
        saved = self._load_state(name, blob.digest)
        if saved is not None:
            status = self._upload_offset(saved)
            if status is not None and status[1] <= blob.size:
                location, offset = status
        if location is None:
            location = self._start_upload(name)
        self._save_state(name, blob.digest, location)
        bar.update(offset)
        with blob.open() as fh:
            fh.seek(offset)
            while offset < blob.size:
                data = fh.read(min(CHUNK_SIZE, blob.size - offset))
                done = bar.done
                resp = self.t.request(
                    "PATCH",
                    location,
                    headers={
                        "Content-Type": "application/octet-stream",
                        "Content-Range": f"{offset}-{offset + len(data) - 1}",
                    },
                    body=_ProgressReader(io.BytesIO(data), bar),  # type: ignore[arg-type]
                    length=len(data),
                )
                bar.reset(done)
                if resp.status == 416:
                    # The registry holds a different amount than we think: ask and go on from there.
                    status = self._upload_offset(location)
                    if status is None:
                        raise PaxctlError(
                            f"the registry lost the upload of {blob.label}: push again"
                        )
                    location, offset = status
                    fh.seek(offset)
                    bar.reset(offset)
                    continue
                self.t.expect(resp, 202, what=f"chunk of {blob.label}")
                location = self.t.url(resp.header("Location") or location)
                offset += len(data)
                bar.update(len(data))
                self._save_state(name, blob.digest, location)
        resp = self.t.request("PUT", self._finish_url(location, blob.digest))
        self.t.expect(resp, 201, what=f"upload of {blob.label}")
        self._save_state(name, blob.digest, None)
        self._check_reported(resp, blob.digest, blob.label)

    def cancel_upload(self, location: str) -> None:
        """Cancel an upload (``paxctl check`` uses it to test the write role)."""
        self.t.request("DELETE", location)

    # -- downloads ------------------------------------------------------------------

    def fetch_blob(self, name: str, digest: str, size: int, out: IO[bytes], label: str) -> None:
        """Write the blob to *out*, checking its size and digest on the way."""
        target = self._path(name, "blobs", digest)
        # redirects (to blob storage) are followed by the transport, without our credentials
        resp = self.t.expect(
            self.t.request("GET", target, stream=True), 200, what=f"blob {digest} ({label})"
        )
        h = Sha256()
        with self.progress.bar(label, size) as bar:
            try:
                for chunk in resp.iter_body(_READ):
                    h.update(chunk)
                    if h.size > size:
                        break
                    out.write(chunk)
                    bar.update(len(chunk))
            except (OSError, requests.RequestException) as e:
                resp.close()
                self.t.close()
                raise PaxctlError(f"download of {label} broke off: {e}") from None
        resp.close()
        got, actual = h.size, h.digest
        if got != size or actual != digest:
            raise PaxctlError(
                f"{label}: expected {size} bytes with digest {digest}, received {got} bytes"
                f" with digest {actual}",
                "DIGEST_INVALID",
            )

    # -- manifests ------------------------------------------------------------------

    def get_manifest(
        self, name: str, reference: str, missing_ok: bool = False
    ) -> ManifestResponse | None:
        """The manifest for a tag or digest; ``None`` if it does not exist and *missing_ok*."""
        resp = self.t.request(
            "GET", self._path(name, "manifests", reference), headers={"Accept": MANIFEST_ACCEPT}
        )
        if resp.status == 404 and missing_ok:
            return None
        self.t.expect(resp, 200, what=f"{name}:{reference}" if ":" not in reference else reference)
        digest = sha256_digest(resp.body)
        reported = resp.header("Docker-Content-Digest")
        if reference.startswith("sha256:") and digest != reference:
            raise PaxctlError(
                f"the registry sent a manifest with digest {digest} for {reference}",
                "DIGEST_INVALID",
            )
        if (
            self.verify_digests
            and reported
            and reported.startswith("sha256:")
            and reported != digest
        ):
            raise PaxctlError(
                f"the manifest of {name}:{reference} hashes to {digest},"
                f" the registry says {reported}",
                "DIGEST_INVALID",
            )
        media_type = (resp.header("Content-Type") or "").split(";")[0].strip()
        return ManifestResponse(resp.body, media_type, digest)

    def manifest_digest(self, name: str, reference: str) -> str | None:
        """The digest a tag points at (by HEAD), or ``None`` if there is no such tag."""
        resp = self.t.request(
            "HEAD", self._path(name, "manifests", reference), headers={"Accept": MANIFEST_ACCEPT}
        )
        if resp.status == 404:
            return None
        self.t.expect(resp, 200, what=f"{name}:{reference}")
        digest = resp.header("Docker-Content-Digest")
        if digest:
            return digest
        found = self.get_manifest(name, reference)
        return found.digest if found else None

    def put_manifest(self, name: str, reference: str, content: bytes, media_type: str) -> str:
        """Store a manifest under a tag (or its digest); return its digest."""
        resp = self.t.request(
            "PUT",
            self._path(name, "manifests", reference),
            headers={"Content-Type": media_type},
            body=content,
        )
        self.t.expect(resp, 201, what=f"{name}:{reference}")
        digest = sha256_digest(content)
        self._check_reported(resp, digest, f"the manifest of {name}:{reference}")
        return digest

    def delete_manifest(self, name: str, reference: str) -> None:
        """Delete a manifest by digest, or a tag."""
        resp = self.t.request("DELETE", self._path(name, "manifests", reference))
        self.t.expect(resp, 202, what=f"{name}:{reference}" if ":" not in reference else reference)

    # -- listings -------------------------------------------------------------------

    def _pages(self, path: str, key: str) -> Iterator[str]:
        target: str | None = path
        query: dict[str, str] | None = {"n": str(self.page_size)}
        seen: set[str] = set()
        while target is not None:
            resp = self.t.expect(self.t.request("GET", target, query=query), 200, what=path)
            body = resp.json()
            items = body.get(key) if isinstance(body, dict) else None
            for item in items or []:
                yield str(item)
            match = _LINK_RE.search(resp.header("Link") or "")
            target, query = (match.group(1), None) if match else (None, None)
            # A registry repeating the same link would make this loop forever.
            if target is not None:
                if target in seen:
                    break
                seen.add(target)

    def catalog(self) -> list[str]:
        """Every repository, following the catalog's pages."""
        return list(self._pages(self.ping() + "/_catalog", "repositories"))

    def tags(self, name: str) -> list[str]:
        """Every tag of *name*, following the pages."""
        return list(self._pages(self._path(name, "tags", "list"), "tags"))


def parse_json_manifest(content: bytes) -> dict[str, Any] | None:
    """A manifest parsed, or ``None`` if it is not a JSON object."""
    try:
        value = json.loads(content)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None
