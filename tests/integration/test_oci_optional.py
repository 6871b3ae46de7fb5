"""The OCI spec's optional features on the real daemon, with real clients (skopeo, curl).

- sparse manifests: ``skopeo copy --multi-arch index-only`` pushes an index
  without its images; refused by default (as by distribution 2.8), accepted
  with ``validation.manifests.sparse: true`` or distribution 3's
  ``validation.manifests.indexes.platforms: none``;
- tags on a push by digest (``?tag=``, ``OCI-Tag``, 414), sha256 and sha512,
  with curl, then pulled by skopeo;
- the anonymous mount (``?mount=`` without ``from``) and
  ``?digest-algorithm=sha512``, with curl; distribution 2.8 starts an upload
  for the mount (the spec's fallback), paxd mounts.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from twisted.internet.threads import deferToThread

from tests.integration.harness import (
    OCI_INDEX,
    OCI_MANIFEST,
    Daemon,
    ToolResult,
    build_oci_layout,
    curl,
    read_layout_blobs,
    registry_config,
    run_tool,
    sha256_digest,
    skopeo_base,
    skopeo_inspect_raw,
    start_distribution,
    start_paxd,
)
from tests.integration.test_interop import InteropCase, push_blob, small_image


def _write_blob(layout: Path, data: bytes) -> str:
    digest = sha256_digest(data)
    path = layout / "blobs" / "sha256" / digest.split(":", 1)[1]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return digest


def multi_platform_layout(directory: Path) -> bytes:
    """An OCI layout whose ``multi`` tag is an index of a linux/amd64 and a linux/arm64 image.

    Blocking; returns the index's bytes.
    """
    entries = []
    for seed, arch in ((11, "amd64"), (12, "arm64")):
        image = build_oci_layout(directory / f"part-{arch}", seed=seed, big_size=64 * 1024)
        for digest, data in read_layout_blobs(image.path).items():
            assert _write_blob(directory / "multi", data) == digest
        entries.append(
            {
                "mediaType": OCI_MANIFEST,
                "digest": image.manifest_digest,
                "size": len(image.manifest),
                "platform": {"os": "linux", "architecture": arch},
            }
        )
    index = json.dumps(
        {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries}, indent=2
    ).encode()
    layout = directory / "multi"
    digest = _write_blob(layout, index)
    (layout / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
    top = {
        "schemaVersion": 2,
        "manifests": [
            {
                "mediaType": OCI_INDEX,
                "digest": digest,
                "size": len(index),
                "annotations": {"org.opencontainers.image.ref.name": "multi"},
            }
        ],
    }
    (layout / "index.json").write_text(json.dumps(top))
    return index


class SparseIndexTests(InteropCase):
    """``skopeo copy --multi-arch index-only``: an index whose images are not pushed."""

    async def index_only(self, daemon: Daemon, check: bool = True) -> ToolResult:
        """``skopeo copy --multi-arch index-only`` of the layout's ``multi`` to *daemon*."""
        argv = [
            *skopeo_base(self.tmp),
            "copy",
            "--retry-times=0",
            "--multi-arch=index-only",
            "--dest-tls-verify=false",
            "--dest-authfile",
            str(self.tmp / "skopeo-auth.json"),
            f"oci:{self.tmp / 'layouts' / 'multi'}:multi",
            f"docker://{daemon.host}/mirror/multi:multi",
        ]
        return await run_tool(argv, check=check)

    async def test_refused_by_default_as_by_distribution(self) -> None:
        await deferToThread(multi_platform_layout, self.tmp / "layouts")
        for start in (start_distribution, start_paxd):
            daemon = await start(
                registry_config(self.tmp / f"data-{start.__name__}"), self.tmp, self
            )
            result = await self.index_only(daemon, check=False)
            self.assertNotEqual(result.returncode, 0, result.describe())
            self.assertIn(b"manifest blob unknown", result.stderr.lower(), result.describe())
            await daemon.stop()

    async def test_accepted_when_configured(self) -> None:
        index = await deferToThread(multi_platform_layout, self.tmp / "layouts")
        for n, validation in enumerate(
            ({"manifests": {"sparse": True}}, {"manifests": {"indexes": {"platforms": "none"}}})
        ):
            config = registry_config(self.tmp / f"data-{n}", validation=validation)
            paxd = await start_paxd(config, self.tmp, self)
            self.require_real_paxd(paxd)
            await self.index_only(paxd)
            raw = await skopeo_inspect_raw(self.tmp, f"docker://{paxd.host}/mirror/multi:multi")
            self.assertEqual(raw, index)
            child = json.loads(index)["manifests"][0]["digest"]
            missing = await curl(self.tmp, paxd.url + f"/v2/mirror/multi/manifests/{child}")
            self.assertEqual(missing.status, 404, missing.describe())
            self.assertIn("accepted: ", paxd.logs())
            await paxd.stop()


class CurlFeatureTests(InteropCase):
    """Tags on a push by digest, the anonymous mount and ``?digest-algorithm=``, with curl."""

    async def push_blobs(self, daemon: Daemon, name: str, blobs: list[bytes]) -> None:
        for blob in blobs:
            path = self.tmp / "blob"
            path.write_bytes(blob)
            url = daemon.url + f"/v2/{name}/blobs/uploads/?digest={sha256_digest(blob)}"
            answer = await curl(self.tmp, url, "-X", "POST", "--data-binary", f"@{path}")
            self.assertEqual(answer.status, 201, answer.describe())

    async def put_manifest(self, daemon: Daemon, name: str, reference: str, manifest: bytes) -> Any:
        path = self.tmp / "manifest.json"
        path.write_bytes(manifest)
        return await curl(
            self.tmp,
            daemon.url + f"/v2/{name}/manifests/{reference}",
            "-X",
            "PUT",
            "-H",
            f"Content-Type: {OCI_MANIFEST}",
            "--data-binary",
            f"@{path}",
        )

    async def test_tags_on_a_push_by_digest(self) -> None:
        paxd = await start_paxd(registry_config(self.tmp / "data"), self.tmp, self)
        self.require_real_paxd(paxd)
        blobs, manifest = small_image(3)
        await self.push_blobs(paxd, "lib/demo", blobs)
        digest = sha256_digest(manifest)
        answer = await self.put_manifest(
            paxd, "lib/demo", f"{digest}?tag=1.2.3&tag=latest", manifest
        )
        self.assertEqual(answer.status, 201, answer.describe())
        # two OCI-Tag header lines (the harness joins repeated headers with ", ")
        self.assertEqual(answer.header("oci-tag"), "1.2.3, latest")
        for tag in ("1.2.3", "latest"):
            raw = await skopeo_inspect_raw(self.tmp, f"docker://{paxd.host}/lib/demo:{tag}")
            self.assertEqual(raw, manifest)
        # sha512: the only way to tag such a manifest
        digest512 = "sha512:" + hashlib.sha512(manifest).hexdigest()
        answer = await self.put_manifest(paxd, "lib/demo", f"{digest512}?tag=v512", manifest)
        self.assertEqual(answer.status, 201, answer.describe())
        self.assertEqual(answer.header("docker-content-digest"), digest512)
        pulled = await curl(
            self.tmp, paxd.url + "/v2/lib/demo/manifests/v512", "-H", f"Accept: {OCI_MANIFEST}"
        )
        self.assertEqual((pulled.status, pulled.body), (200, manifest), pulled.describe())
        self.assertEqual(pulled.header("docker-content-digest"), digest512)
        raw = await skopeo_inspect_raw(self.tmp, f"docker://{paxd.host}/lib/demo:v512")
        self.assertEqual(raw, manifest)
        # too many: 414, nothing stored; an invalid one: 400, nothing stored
        many = "&".join(f"tag=t{i}" for i in range(100))
        answer = await self.put_manifest(paxd, "lib/other", f"{digest}?{many}", manifest)
        self.assertEqual(answer.status, 414, answer.describe())
        self.assertEqual(answer.error_codes(), ["TAG_INVALID"])
        answer = await self.put_manifest(paxd, "lib/demo", f"{digest}?tag=ok&tag=-bad", manifest)
        self.assertEqual(answer.status, 400, answer.describe())
        self.assertEqual(answer.error_codes(), ["TAG_INVALID"])
        listed = await curl(self.tmp, paxd.url + "/v2/lib/demo/tags/list")
        self.assertEqual(listed.json()["tags"], ["1.2.3", "latest", "v512"])

    async def test_anonymous_mount(self) -> None:
        """paxd mounts; distribution 2.8 starts an upload, the spec's answer when it cannot."""
        blobs, _ = small_image(4)
        layer = blobs[1]
        answers = []
        for start in (start_distribution, start_paxd):
            daemon = await start(
                registry_config(self.tmp / f"data-{start.__name__}"), self.tmp, self
            )
            pushed = await push_blob(daemon, "team/source", layer)
            self.assertEqual(pushed.status, 201, pushed.describe())
            url = daemon.url + f"/v2/elsewhere/blobs/uploads/?mount={sha256_digest(layer)}"
            answers.append((daemon, await curl(self.tmp, url, "-X", "POST")))
            await daemon.stop()
        (_, reference), (paxd, got) = answers
        self.assertEqual(reference.status, 202, reference.describe())
        self.require_real_paxd(paxd)
        self.assertEqual(got.status, 201, got.describe())
        self.assertEqual(got.header("location"), f"/v2/elsewhere/blobs/{sha256_digest(layer)}")
        self.assertEqual(got.header("docker-content-digest"), sha256_digest(layer))

    async def test_digest_algorithm_sha512(self) -> None:
        paxd = await start_paxd(registry_config(self.tmp / "data"), self.tmp, self)
        self.require_real_paxd(paxd)
        data = bytes(range(256)) * 2048
        path = self.tmp / "blob512"
        path.write_bytes(data)
        digest = "sha512:" + hashlib.sha512(data).hexdigest()
        start = await curl(
            self.tmp,
            paxd.url + "/v2/a/blobs/uploads/?digest-algorithm=sha512",
            "-X",
            "POST",
            "-H",
            "Content-Length: 0",
        )
        self.assertEqual(start.status, 202, start.describe())
        location = paxd.url + (start.header("location") or "")
        done = await curl(
            self.tmp,
            f"{location}?digest={digest}",
            "-X",
            "PUT",
            "-H",
            "Content-Type: application/octet-stream",
            "--data-binary",
            f"@{path}",
        )
        self.assertEqual(done.status, 201, done.describe())
        pulled = await curl(self.tmp, paxd.url + f"/v2/a/blobs/{digest}")
        self.assertTrue(pulled.body == data, pulled.describe())
        bad = await curl(
            self.tmp, paxd.url + "/v2/a/blobs/uploads/?digest-algorithm=md5", "-X", "POST"
        )
        self.assertEqual((bad.status, bad.error_codes()), (400, ["DIGEST_INVALID"]))
