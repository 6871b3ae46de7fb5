"""The data both servers get: payloads, distribution's on-disk layout, htpasswd, a certificate.

Everything a workload reads is written straight into each server's storage
root, in Docker distribution's filesystem layout, before the servers start:
10,000 repositories or a 256 MiB blob load in seconds that way, where HTTP
pushes would take minutes, and both servers start from byte-identical trees
(which also proves that paxd serves a tree distribution wrote).  Blob data is
hard-linked between the roots, so both servers read the same page-cache pages.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import random
import shutil
import subprocess
from collections.abc import Iterable, Sequence
from pathlib import Path

import attrs

from bench.profiles import MiB

REGISTRY_V2 = Path("docker", "registry", "v2")
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
# A pack as paxd maps it to an OCI artifact (paxd/packs/format.py); copied here
# so that the harness runs even when the paxd package does not import.
PACK_ARTIFACT_TYPE = "application/vnd.paxd.pack.v1"
PACK_CONFIG = "application/vnd.paxd.pack.config.v1+json"
PACK_VALUES = "application/vnd.paxd.pack.values.v1+yaml"
PACK_CONTENT = "application/vnd.paxd.pack.content.v1.tar+gzip"
TITLE = "org.opencontainers.image.title"

_TILE_SIZE = 4 * MiB
_tile: bytes | None = None


def _random_tile() -> bytes:
    # os.urandom runs at ~200 MB/s here; a seeded PRNG tile repeated is as good a
    # payload for servers that neither compress nor deduplicate, and 10x faster.
    global _tile
    if _tile is None:
        _tile = random.Random(0x9A7D).randbytes(_TILE_SIZE)
    return _tile


def payload(size: int, seed: str) -> bytes:
    """``size`` pseudo-random bytes, distinct (and so with a distinct digest) for each ``seed``."""
    tile = _random_tile()
    data = bytearray(tile * (size // len(tile) + 1))
    del data[size:]
    mark = hashlib.sha256(seed.encode()).digest()
    data[: min(size, len(mark))] = mark[: min(size, len(mark))]
    return bytes(data)


def sha256_digest(data: bytes) -> str:
    """``sha256:<hex>`` of ``data``."""
    return "sha256:" + hashlib.sha256(data).hexdigest()


@attrs.frozen
class Descriptor:
    """An OCI descriptor."""

    media_type: str
    digest: str
    size: int
    title: str | None = None

    def to_json(self) -> dict[str, object]:
        """The descriptor as it goes into a manifest."""
        d: dict[str, object] = {
            "mediaType": self.media_type,
            "digest": self.digest,
            "size": self.size,
        }
        if self.title is not None:
            d["annotations"] = {TITLE: self.title}
        return d


def image_manifest(
    config: Descriptor, layers: Sequence[Descriptor], artifact_type: str | None = None
) -> bytes:
    """Compact OCI image manifest bytes."""
    doc: dict[str, object] = {"schemaVersion": 2, "mediaType": OCI_MANIFEST}
    if artifact_type is not None:
        doc["artifactType"] = artifact_type
    doc["config"] = config.to_json()
    doc["layers"] = [layer.to_json() for layer in layers]
    return json.dumps(doc, separators=(",", ":")).encode()


class Layout:
    """Writes distribution's filesystem layout into several storage roots at once."""

    def __init__(self, roots: Iterable[Path]) -> None:
        self.roots = [Path(r) for r in roots]
        for root in self.roots:
            (root / REGISTRY_V2).mkdir(parents=True, exist_ok=True)

    def _blob_path(self, root: Path, digest: str) -> Path:
        hex_ = digest.removeprefix("sha256:")
        return root / REGISTRY_V2 / "blobs" / "sha256" / hex_[:2] / hex_ / "data"

    def blob(self, data: bytes) -> str:
        """Store ``data`` as a blob in every root; its digest."""
        digest = sha256_digest(data)
        first = self._blob_path(self.roots[0], digest)
        if not first.exists():
            first.parent.mkdir(parents=True, exist_ok=True)
            tmp = first.with_name("data.tmp")
            tmp.write_bytes(data)
            tmp.rename(first)
        self._share(first, digest)
        return digest

    def _share(self, first: Path, digest: str) -> None:
        for root in self.roots[1:]:
            target = self._blob_path(root, digest)
            if target.exists():
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.link(first, target)
            except OSError:
                shutil.copyfile(first, target)

    def _link(self, relative: Path, digest: str) -> None:
        for root in self.roots:
            path = root / REGISTRY_V2 / "repositories" / relative / "link"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(digest)

    def link_layer(self, repo: str, digest: str) -> None:
        """Make the blob ``digest`` part of repository ``repo``."""
        self._link(Path(repo, "_layers", "sha256", digest.removeprefix("sha256:")), digest)

    def manifest(self, repo: str, tag: str, manifest: bytes, blobs: Iterable[str]) -> str:
        """Store ``manifest`` in ``repo`` under ``tag``, linking the blobs it references."""
        digest = self.blob(manifest)
        hex_ = digest.removeprefix("sha256:")
        for blob in blobs:
            self.link_layer(repo, blob)
        self._link(Path(repo, "_manifests", "revisions", "sha256", hex_), digest)
        self._link(Path(repo, "_manifests", "tags", tag, "current"), digest)
        self._link(Path(repo, "_manifests", "tags", tag, "index", "sha256", hex_), digest)
        return digest

    def image(self, repo: str, tag: str, layer_data: Sequence[bytes]) -> tuple[str, list[str]]:
        """A small OCI image: a config and ``layer_data`` as layers; (manifest digest, layers)."""
        config_bytes = json.dumps({"architecture": "amd64", "os": "linux"}).encode()
        config = Descriptor(OCI_CONFIG, self.blob(config_bytes), len(config_bytes))
        layers = [Descriptor(OCI_LAYER, self.blob(d), len(d)) for d in layer_data]
        manifest = image_manifest(config, layers)
        digest = self.manifest(repo, tag, manifest, [config.digest, *(x.digest for x in layers)])
        return digest, [x.digest for x in layers]

    def many_repositories(self, names: Sequence[str], layer: str) -> None:
        """Create ``names`` as repositories holding one layer (``_layers/sha256/<hex>/link``).

        ``_layers`` is what distribution 2.8's catalog walk looks for (and one of
        paxd's markers); a manifest and tags would add a dozen inodes per
        repository that no catalog reads, and on slow metadata storage (0.5 ms per
        mkdir on the VMs this was written on) that is minutes for 10,000.
        ``layer`` must already be a blob (:meth:`blob`).
        """
        hex_ = layer.removeprefix("sha256:")
        for root in self.roots:
            base = root / REGISTRY_V2 / "repositories"
            for name in names:
                repo = base / name
                repo.parent.mkdir(parents=True, exist_ok=True)
                path = os.fspath(repo)
                # plain os calls: pathlib's overhead is measurable at 50,000 inodes
                for part in ("", "/_layers", "/_layers/sha256", "/_layers/sha256/" + hex_):
                    os.mkdir(path + part)
                with open(path + "/_layers/sha256/" + hex_ + "/link", "w") as f:
                    f.write(layer)

    def remove_blob(self, digest: str) -> None:
        """Delete a blob's data from every root (after a push, to keep the disk small).

        Only for blobs no workload reads again: a server may still list it.
        """
        for root in self.roots:
            shutil.rmtree(self._blob_path(root, digest).parent, ignore_errors=True)


# --- credentials and certificates ------------------------------------------------


def write_htpasswd(path: Path, user: str, password: str) -> None:
    """A bcrypt htpasswd file, made by ``htpasswd -Bbn`` (or the bcrypt module, same cost)."""
    exe = shutil.which("htpasswd")
    if exe is not None:
        line = subprocess.run(
            [exe, "-Bbn", user, password], check=True, capture_output=True, text=True
        ).stdout.strip()
    else:
        import bcrypt

        hashed = bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=5)).decode()
        line = f"{user}:{hashed}"
    path.write_text(line + "\n")
    path.chmod(0o600)


def write_self_signed(cert_path: Path, key_path: Path) -> None:
    """A self-signed ECDSA P-256 certificate for 127.0.0.1 and localhost, valid for two days."""
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    key_path.chmod(0o600)
