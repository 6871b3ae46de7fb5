"""The catalogue over a real Registry and RegistrySite in memory (StubTreq), with packs to show."""

from __future__ import annotations

import json
import struct
import zlib
from typing import Any

from paxd.access import OPEN_ACCESS, Access
from paxd.client.packdir.artifact import Blob, build_manifest, summary_annotations
from paxd.oci import OCI_MANIFEST, Descriptor, sha256_digest, titled
from paxd.packs.format import ARCHIVE_MEDIA_TYPE, CONFIG_MEDIA_TYPE, DOCUMENT_MEDIA_TYPES
from paxd.registry.registry import Registry
from paxd.storage.memory import MemoryReader
from paxd.storage.readers import BytesReader
from paxd.threadpool import SynchronousRunner
from paxd.web.api import APIResource
from paxd.web.catalogue.resources import Catalogue
from paxd.web.root import RegistryRoot
from tests.web.support import Answer, RegistryWebTestCase, site_client


def png(size: int = 64, color: tuple[int, int, int] = (20, 184, 166)) -> bytes:
    """A real PNG a browser decodes: a disc of *color* on white, *size* pixels square."""
    rows = []
    middle = (size - 1) / 2
    for y in range(size):
        row = bytearray(b"\x00")  # filter type: none
        for x in range(size):
            inside = (x - middle) ** 2 + (y - middle) ** 2 <= (size * 0.42) ** 2
            row += bytes(color) if inside else b"\xff\xff\xff"
        rows.append(bytes(row))

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", size, size, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"".join(rows), 9))
        + chunk(b"IEND", b"")
    )


PNG = png()
HTML = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}


def _blob(media_type: str, data: bytes, title: str | None) -> Blob:
    return Blob(
        Descriptor(media_type, sha256_digest(data), len(data), annotations=titled(title)), data=data
    )


def pack_blobs(
    name: str,
    version: str,
    *,
    display_name: str | None = None,
    layer: str = "addon",
    cloud_types: list[str] | None = None,
    addon_type: str | None = None,
    group: str | None = None,
    logo: tuple[str, bytes] = ("logo.png", PNG),
    documents: dict[str, bytes] | None = None,
    extra: dict[str, Any] | None = None,
) -> tuple[list[Blob], bytes]:
    """A pack's blobs and manifest, as ``paxctl pack push`` makes them."""
    pack: dict[str, Any] = {
        "name": name,
        "displayName": display_name or name.replace("-", " ").title(),
        "version": version,
        "layer": layer,
        "cloudTypes": cloud_types if cloud_types is not None else ["all"],
    }
    if addon_type:
        pack["addonType"] = addon_type
    if group:
        pack["group"] = group
    pack.update(extra or {})
    config = _blob(CONFIG_MEDIA_TYPE, json.dumps(pack).encode(), None)
    logo_title, logo_data = logo
    media = {"logo.png": "image/png", "logo.svg": "image/svg+xml", "logo.webp": "image/webp"}
    docs = {"values.yaml": f"pack:\n  version: {version}\n".encode()}
    docs.update(documents or {})
    layers = [_blob(media[logo_title], logo_data, logo_title)]
    for title in ("values.yaml", "README.md", "schema.yaml", "presets.yaml"):
        if title in docs:
            layers.append(_blob(DOCUMENT_MEDIA_TYPES[title], docs[title], title))
    layers.append(_blob(ARCHIVE_MEDIA_TYPE, b"\x1f\x8b" + version.encode(), "content.tar.gz"))
    return [config, *layers], build_manifest(config, layers, summary_annotations(pack))


#: a display name that would run script if it were not escaped
HOSTILE_NAME = '<script>window.pwned=1</script><img src=x onerror="window.pwned=2">'
HOSTILE_README = b"""# <script>window.pwned=3</script>

<img src=x onerror="window.pwned=4"> <a href="javascript:window.pwned=5">raw link</a>

[click](javascript:window.pwned=6) [click2](JAVASCRIPT:window.pwned=7)
[data](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)
![pic](javascript:window.pwned=8) <div onmouseover="window.pwned=9">hover</div>
[ok](https://example.com/"onmouseover="window.pwned=10)
"""


class CatalogueTestCase(RegistryWebTestCase):
    """A registry whose root serves the catalogue (open, or for one access)."""

    catalogue_access: Access | None = None

    def setUp(self) -> None:
        super().setUp()
        self.serve(self.registry)

    def serve(self, registry: Registry) -> None:
        """Serve *registry*'s API (open) and catalogue (for ``catalogue_access``)."""
        self.registry = registry
        self.catalogue = Catalogue(registry, SynchronousRunner())
        access = self.catalogue_access or OPEN_ACCESS
        self.root = RegistryRoot(
            registry,
            headers=self.headers,
            api_factory=lambda prefix: APIResource(registry, OPEN_ACCESS, prefix),
            catalogue=self.catalogue.resource_for(access),
        )
        self.client = site_client(self.root, headers=self.headers)

    def push(self, name: str, tag: str, **kw: Any) -> str:
        """Push a pack through the registry domain (as the API would); its manifest digest."""
        blobs, manifest = pack_blobs(name, tag.rpartition("__")[2], **kw)
        repository = self.registry.repository(name)
        for blob in blobs:
            assert blob.data is not None
            status = self.successResultOf(repository.uploads.start())
            self.successResultOf(
                repository.uploads.complete(
                    status.uuid, blob.digest, MemoryReader(blob.data, 0), None
                )
            )
        put = repository.manifests.put(tag, BytesReader(manifest), OCI_MANIFEST)
        return str(self.successResultOf(put).digest)

    def page(self, path: str, status: int = 200) -> Answer:
        """GET *path* as a browser does; checks the status and that it is HTML."""
        answer = self.request("GET", path, headers=HTML)
        self.assertEqual(answer.code, status, answer.body[:1000])
        self.assertEqual(answer.header("Content-Type"), "text/html; charset=utf-8")
        self.assertTrue(answer.body.startswith(b"<!DOCTYPE html>\n<html"), answer.body[:100])
        return answer


__all__ = [
    "HOSTILE_NAME",
    "HOSTILE_README",
    "HTML",
    "OCI_MANIFEST",
    "PNG",
    "CatalogueTestCase",
    "pack_blobs",
    "png",
]
