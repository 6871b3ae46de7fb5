"""paxd against real peers: Docker distribution 2.8.2, skopeo and curl.

Each test starts its daemons as child processes on loopback ephemeral ports
(see :mod:`tests.integration.harness`).  The reference for every expectation
is Debian's ``docker-registry``: where paxd deliberately answers differently,
the test says so and why.

``PAXD_SKIP_BIG=1`` skips the 1 GiB memory test.  ``CI=true`` turns a missing
tool into a failure instead of a skip.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import urllib.parse
from pathlib import Path
from typing import Any
from unittest import SkipTest

from twisted.internet.threads import deferToThread
from twisted.trial.unittest import TestCase

from tests.integration.harness import (
    OCI_CONFIG,
    OCI_LAYER_GZIP,
    OCI_MANIFEST,
    Daemon,
    HTTPResponse,
    MiB,
    OCIImage,
    absolute,
    basic_auth,
    build_oci_layout,
    curl,
    file_digest,
    http_request,
    read_layout_blobs,
    read_link,
    registry_config,
    require_tool,
    sha256_digest,
    skopeo_copy,
    skopeo_inspect_raw,
    sparse_file,
    start_distribution,
    start_paxd,
    tls_hello_blocking,
    v2_root,
    with_query,
)

GiB = 1024 * MiB


class InteropCase(TestCase):
    """Common ground: a temporary directory and image, daemons stopped on cleanup."""

    #: trial's per-test timeout; each test aims to finish well under 60 s
    timeout = 120

    def setUp(self) -> None:
        self.tmp = Path(self.mktemp()).resolve()
        self.tmp.mkdir(parents=True)

    async def image(self, seed: int = 1, tag: str = "v1") -> OCIImage:
        """A deterministic OCI layout with a 5 MiB layer (built in a thread)."""
        path = self.tmp / f"image-{seed}-{tag}"
        return await deferToThread(build_oci_layout, path, tag=tag, seed=seed)

    def require_real_paxd(self, daemon: Daemon) -> None:
        """Skip a test of paxd-only behaviour when distribution stands in for paxd."""
        if daemon.kind != "paxd":
            raise SkipTest("paxd-only behaviour; PAXD_INTEROP_STANDIN is set")

    async def pull_and_compare(self, daemon: Daemon, name: str, image: OCIImage) -> None:
        """``skopeo copy docker://…/name:tag oci:OUT`` gives exactly the image's blobs."""
        out = self.tmp / f"pulled-{daemon.kind}-{daemon.port}-{name.replace('/', '_')}"
        await skopeo_copy(self.tmp, f"docker://{daemon.host}/{name}:{image.tag}", f"oci:{out}:v1")
        got = await deferToThread(read_layout_blobs, out)
        want = await deferToThread(read_layout_blobs, image.path)
        self.assertEqual(sorted(got), sorted(want))
        for digest in want:
            # compared one by one so a failure does not print 5 MiB
            self.assertTrue(got[digest] == want[digest], f"blob {digest} differs")
        raw = await skopeo_inspect_raw(self.tmp, f"docker://{daemon.host}/{name}:{image.tag}")
        self.assertEqual(raw, image.manifest)

    async def assert_listed(self, daemon: Daemon, name: str, tags: list[str], prefix: str) -> None:
        """``curl PREFIX/_catalog`` and ``PREFIX/NAME/tags/list`` show exactly this repository."""
        catalog = await curl(self.tmp, daemon.url + f"{prefix}/_catalog")
        self.assertEqual(catalog.status, 200, catalog.describe())
        self.assertEqual(catalog.json(), {"repositories": [name]})
        listed = await curl(self.tmp, daemon.url + f"{prefix}/{name}/tags/list")
        self.assertEqual(listed.status, 200, listed.describe())
        self.assertEqual(listed.json(), {"name": name, "tags": tags})


class StorageInteropTests(InteropCase):
    """One storage directory, two registries: distribution's layout is the contract."""

    async def test_distribution_writes_paxd_serves(self) -> None:
        """What distribution pushed into a directory, paxd serves unchanged (v1 and v2)."""
        root = self.tmp / "data"
        image = await self.image()
        dist = await start_distribution(registry_config(root), self.tmp, self)
        await skopeo_copy(self.tmp, image.ref, f"docker://{dist.host}/library/demo:v1")
        await dist.stop()

        paxd = await start_paxd(registry_config(root), self.tmp, self)
        await self.pull_and_compare(paxd, "library/demo", image)
        await self.assert_listed(paxd, "library/demo", ["v1"], "/v2")
        self.require_real_paxd(paxd)
        await self.assert_listed(paxd, "library/demo", ["v1"], "/v1")
        manifest = await curl(
            self.tmp,
            paxd.url + "/v1/library/demo/manifests/v1",
            "-H",
            f"Accept: {OCI_MANIFEST}",
        )
        self.assertEqual(manifest.status, 200, manifest.describe())
        self.assertEqual(manifest.body, image.manifest)
        self.assertEqual(manifest.header("docker-content-digest"), image.manifest_digest)

    async def test_paxd_writes_distribution_serves(self) -> None:
        """What paxd pushed into a directory is distribution's layout: distribution serves it."""
        root = self.tmp / "data"
        image = await self.image()
        paxd = await start_paxd(registry_config(root), self.tmp, self)
        await skopeo_copy(self.tmp, image.ref, f"docker://{paxd.host}/library/demo:v1")
        await paxd.stop()

        # the link files distribution reads, in distribution's format
        hexes = {d: d.split(":", 1)[1] for d in image.blob_digests()}
        tag_link = read_link(root, "library/demo", "_manifests", "tags", "v1", "current")
        self.assertEqual(tag_link, image.manifest_digest)
        revision = ("_manifests", "revisions", "sha256", hexes[image.manifest_digest])
        self.assertEqual(read_link(root, "library/demo", *revision), image.manifest_digest)
        for digest in (image.config_digest, image.layer_digest):
            hexed = hexes[digest]
            self.assertEqual(read_link(root, "library/demo", "_layers", "sha256", hexed), digest)
            data = v2_root(root) / "blobs" / "sha256" / hexed[:2] / hexed / "data"
            self.assertTrue(data.is_file(), f"{data} missing")

        dist = await start_distribution(registry_config(root), self.tmp, self)
        await self.pull_and_compare(dist, "library/demo", image)
        await self.assert_listed(dist, "library/demo", ["v1"], "/v2")


class PaxdAloneTests(InteropCase):
    """paxd with real clients and nothing else."""

    async def test_skopeo_round_trip(self) -> None:
        """Copy in, copy out: byte-identical blobs and the exact manifest bytes."""
        image = await self.image()
        paxd = await start_paxd(registry_config(self.tmp / "data"), self.tmp, self)
        await skopeo_copy(self.tmp, image.ref, f"docker://{paxd.host}/library/demo:v1")
        await self.pull_and_compare(paxd, "library/demo", image)
        # a second image in a nested repository, and a second tag of the first
        other = await self.image(seed=2, tag="v2")
        await skopeo_copy(self.tmp, other.ref, f"docker://{paxd.host}/team/packs/demo:v2")
        await self.pull_and_compare(paxd, "team/packs/demo", other)
        await skopeo_copy(
            self.tmp,
            f"docker://{paxd.host}/library/demo:v1",
            f"docker://{paxd.host}/library/demo:latest",
        )
        listed = await http_request("GET", paxd.url + "/v2/library/demo/tags/list")
        self.assertEqual(listed.json(), {"name": "library/demo", "tags": ["latest", "v1"]})
        catalog = await http_request("GET", paxd.url + "/v2/_catalog")
        self.assertEqual(catalog.json(), {"repositories": ["library/demo", "team/packs/demo"]})

    async def test_seed_verification(self) -> None:
        """The vendor guide's check: ``/health`` is 200 ``{"status":"UP"}``; /v1/_catalog 200."""
        paxd = await start_paxd(registry_config(self.tmp / "data"), self.tmp, self)
        self.require_real_paxd(paxd)
        code = await curl(self.tmp, paxd.url + "/health", "-o", "/dev/null", "-w", "%{http_code}")
        self.assertEqual(code.status, 200)
        health = await curl(self.tmp, paxd.url + "/health")
        self.assertEqual(health.status, 200, health.describe())
        self.assertEqual(health.json(), {"status": "UP"})
        catalog = await curl(self.tmp, paxd.url + "/v1/_catalog")
        self.assertEqual(catalog.status, 200, catalog.describe())
        self.assertIn("application/json", catalog.header("content-type") or "")
        self.assertEqual(catalog.json(), {"repositories": []})


# --- the same requests to distribution and to paxd ----------------------------------


def small_image(seed: int) -> tuple[list[bytes], bytes]:
    """``([config, layer], manifest)`` of a tiny OCI image, for seeding over HTTP."""
    config = json.dumps({"architecture": "amd64", "os": "linux", "seed": seed}).encode()
    layer = bytes(range(256)) * (64 + seed)
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {
                "mediaType": OCI_CONFIG,
                "digest": sha256_digest(config),
                "size": len(config),
            },
            "layers": [
                {"mediaType": OCI_LAYER_GZIP, "digest": sha256_digest(layer), "size": len(layer)}
            ],
        }
    ).encode()
    return [config, layer], manifest


async def push_blob(daemon: Daemon, name: str, data: bytes) -> HTTPResponse:
    """``POST /v2/NAME/blobs/uploads/`` then ``PUT <location>?digest=D`` with the whole blob.

    (Distribution 2.8 ignores a body and ``digest`` on the POST and answers
    202, so a one-request monolithic POST is not what the peers share.)
    """
    start = daemon.url + f"/v2/{name}/blobs/uploads/"
    resp = await http_request("POST", start, body=b"")
    if resp.status != 202:
        return resp
    loc = absolute(start, resp.header("location") or "")
    return await http_request(
        "PUT",
        with_query(loc, digest=sha256_digest(data)),
        body=data,
        headers={"Content-Type": "application/octet-stream"},
    )


async def seed(daemon: Daemon) -> None:
    """The same content in every registry the comparison tests talk to."""
    for name, tags, s in (("alpha/one", ["v1", "v2", "v3"], 1), ("beta/two", ["v1"], 2)):
        blobs, manifest = small_image(s)
        for blob in blobs:
            resp = await push_blob(daemon, name, blob)
            assert resp.status == 201, f"{daemon.kind}: {resp.describe()}"
        for tag in tags:
            resp = await http_request(
                "PUT",
                daemon.url + f"/v2/{name}/manifests/{tag}",
                body=manifest,
                headers={"Content-Type": OCI_MANIFEST},
            )
            assert resp.status == 201, f"{daemon.kind}: {resp.describe()}"


def link_target(header: str | None) -> tuple[str, list[tuple[str, str]], str] | None:
    """A ``Link: <URL>; rel="next"`` header as (path, sorted query pairs, rest), or None."""
    if header is None:
        return None
    target, _, rest = header.partition(">")
    parts = urllib.parse.urlsplit(target.lstrip("<").strip())
    return parts.path, sorted(urllib.parse.parse_qsl(parts.query)), rest.strip(" ;")


class SameAnswerTests(InteropCase):
    """Send the same request to docker-registry and to paxd: same status, same error code."""

    async def setUp(self) -> None:  # type: ignore[override]  # trial awaits it
        super().setUp()
        self.dist = await start_distribution(registry_config(self.tmp / "dist"), self.tmp, self)
        self.paxd = await start_paxd(registry_config(self.tmp / "paxd"), self.tmp, self)
        await seed(self.dist)
        await seed(self.paxd)

    async def both(
        self,
        method: str,
        path: str,
        *,
        headers: dict[str, str] | None = None,
        body: bytes | None = None,
    ) -> tuple[HTTPResponse, HTTPResponse]:
        """The answers of (distribution, paxd) to one request."""
        ref = await http_request(method, self.dist.url + path, headers=headers, body=body)
        got = await http_request(method, self.paxd.url + path, headers=headers, body=body)
        return ref, got

    def assertSameAnswer(self, ref: HTTPResponse, got: HTTPResponse) -> None:
        """Same status and same error codes (distribution's answer is the reference)."""
        message = f"\ndistribution: {ref.describe()}\npaxd:         {got.describe()}"
        self.assertEqual(got.status, ref.status, message)
        self.assertEqual(got.error_codes(), ref.error_codes(), message)
        if ref.header("docker-distribution-api-version") is not None:
            self.assertEqual(got.header("docker-distribution-api-version"), "registry/2.0", message)

    async def test_base(self) -> None:
        """``GET /v2/`` is 200 ``{}``."""
        ref, got = await self.both("GET", "/v2/")
        self.assertSameAnswer(ref, got)
        self.assertEqual(got.json(), {})

    async def test_tls_hello_on_plain_port(self) -> None:
        """A TLS ClientHello on the plain-HTTP port is refused at once, not left hanging.

        skopeo and docker, told ``--tls-verify=false``/``--insecure``, try HTTPS
        first and fall back to HTTP when the handshake fails: distribution
        fails it at once; a server that waits costs every command the client's
        10 s handshake timeout.
        """
        ref = await deferToThread(tls_hello_blocking, self.dist.port)
        got = await deferToThread(tls_hello_blocking, self.paxd.port)
        self.assertEqual(ref, "refused")
        self.assertEqual(got, ref)

    async def test_unknown_blob(self) -> None:
        """GET and HEAD of a blob nobody pushed: 404 ``BLOB_UNKNOWN`` (HEAD has no body)."""
        path = "/v2/alpha/one/blobs/" + sha256_digest(b"never pushed")
        for method in ("GET", "HEAD"):
            ref, got = await self.both(method, path)
            self.assertSameAnswer(ref, got)
            self.assertEqual(got.status, 404)
        ref, got = await self.both("GET", path)
        self.assertEqual(got.error_codes(), ["BLOB_UNKNOWN"])

    async def test_blob_of_other_repository(self) -> None:
        """A blob that exists, asked through a repository it is not linked into, is unknown."""
        blobs, _ = small_image(1)
        ref, got = await self.both("GET", "/v2/beta/two/blobs/" + sha256_digest(blobs[1]))
        self.assertSameAnswer(ref, got)
        self.assertEqual(got.error_codes(), ["BLOB_UNKNOWN"])

    async def test_invalid_digest(self) -> None:
        """A malformed digest: 400 ``DIGEST_INVALID``."""
        ref, got = await self.both("GET", "/v2/alpha/one/blobs/sha256:00")
        self.assertSameAnswer(ref, got)
        self.assertEqual(got.error_codes(), ["DIGEST_INVALID"])

    async def test_unknown_manifest(self) -> None:
        """Unknown tag, unknown digest: 404 ``MANIFEST_UNKNOWN``."""
        for ref_ in ("nosuchtag", sha256_digest(b"no such manifest")):
            ref, got = await self.both("GET", f"/v2/alpha/one/manifests/{ref_}")
            self.assertSameAnswer(ref, got)
            self.assertEqual(got.error_codes(), ["MANIFEST_UNKNOWN"])

    async def test_manifest(self) -> None:
        """A stored manifest: the exact bytes, its media type and ``Docker-Content-Digest``."""
        _, manifest = small_image(1)
        ref, got = await self.both(
            "GET", "/v2/alpha/one/manifests/v2", headers={"Accept": OCI_MANIFEST}
        )
        self.assertSameAnswer(ref, got)
        self.assertEqual(got.body, manifest)
        for header in ("content-type", "docker-content-digest"):
            self.assertEqual(got.header(header), ref.header(header), header)

    async def test_unknown_repository_tags(self) -> None:
        """Tags of a repository that does not exist: 404 ``NAME_UNKNOWN``."""
        ref, got = await self.both("GET", "/v2/no/such/repo/tags/list")
        self.assertSameAnswer(ref, got)
        self.assertEqual(got.error_codes(), ["NAME_UNKNOWN"])

    async def test_bad_name(self) -> None:
        """A repository name outside the grammar.

        Intentional difference: distribution's router does not match such a
        path at all and answers a plain-text 404 ``404 page not found``;
        paxd parses the name and answers the spec's 400 ``NAME_INVALID``.
        """
        for path in ("/v2/Bad/manifests/latest", "/v2/a..b/tags/list", "/v2/-x/blobs/uploads/"):
            method = "POST" if path.endswith("uploads/") else "GET"
            ref, got = await self.both(method, path, body=b"" if method == "POST" else None)
            self.assertEqual(ref.status, 404, ref.describe())
            self.assertEqual(ref.error_codes(), [])
            self.require_real_paxd(self.paxd)
            self.assertEqual(got.status, 400, f"{path}: {got.describe()}")
            self.assertEqual(got.error_codes(), ["NAME_INVALID"], path)

    async def test_catalog_paging(self) -> None:
        """``_catalog?n=1``: one repository and a ``Link`` to the next page; then the last page."""
        ref, got = await self.both("GET", "/v2/_catalog?n=1")
        self.assertSameAnswer(ref, got)
        self.assertEqual(got.json(), ref.json())
        self.assertEqual(got.json(), {"repositories": ["alpha/one"]})
        self.assertEqual(link_target(got.header("link")), link_target(ref.header("link")))
        link = link_target(got.header("link"))
        assert link is not None
        path, query, _ = link
        ref, got = await self.both("GET", path + "?" + urllib.parse.urlencode(query))
        self.assertSameAnswer(ref, got)
        self.assertEqual(got.json(), {"repositories": ["beta/two"]})
        self.assertIsNone(ref.header("link"))
        self.assertIsNone(got.header("link"))

    async def test_catalog_page_too_large(self) -> None:
        """``n`` above the maximum (1000): 400 ``PAGINATION_NUMBER_INVALID``."""
        ref, got = await self.both("GET", "/v2/_catalog?n=5000")
        self.assertSameAnswer(ref, got)
        self.assertEqual(got.error_codes(), ["PAGINATION_NUMBER_INVALID"])

    async def test_tags_paging(self) -> None:
        """``tags/list?n=2`` then the ``Link``'s page.

        Intentional difference: distribution 2.8 ignores ``n`` on tags/list
        and answers every tag (pagination of tags came with distribution 3);
        paxd pages as the OCI distribution spec says, with the same ``Link``
        form as distribution's catalog.
        """
        ref, got = await self.both("GET", "/v2/alpha/one/tags/list?n=2")
        self.assertSameAnswer(ref, got)
        self.assertEqual(ref.json(), {"name": "alpha/one", "tags": ["v1", "v2", "v3"]})
        self.require_real_paxd(self.paxd)
        self.assertEqual(got.json(), {"name": "alpha/one", "tags": ["v1", "v2"]})
        link = link_target(got.header("link"))
        self.assertEqual(
            link, ("/v2/alpha/one/tags/list", [("last", "v2"), ("n", "2")], 'rel="next"')
        )
        assert link is not None
        path, query, _ = link
        last = await http_request("GET", self.paxd.url + path + "?" + urllib.parse.urlencode(query))
        self.assertEqual(last.status, 200, last.describe())
        self.assertEqual(last.json(), {"name": "alpha/one", "tags": ["v3"]})
        self.assertIsNone(last.header("link"))

    async def upload_flow(self, daemon: Daemon, blob: bytes) -> list[tuple[Any, ...]]:
        """A chunked upload with status checks; what was observed at each step."""
        seen: list[tuple[Any, ...]] = []
        half = len(blob) // 2
        digest = sha256_digest(blob)

        def note(step: str, resp: HTTPResponse) -> None:
            location = resp.header("location")
            seen.append(
                (
                    step,
                    resp.status,
                    resp.error_codes(),
                    resp.header("range"),
                    # where it points, not how (distribution adds a signed _state)
                    urllib.parse.urlsplit(location).path.rsplit("/", 1)[0] if location else None,
                    resp.header("docker-upload-uuid") is not None,
                )
            )

        start = daemon.url + "/v2/alpha/one/blobs/uploads/"
        resp = await http_request("POST", start, body=b"")
        note("start", resp)
        # always follow the latest Location: distribution's carries the upload's state
        loc = absolute(start, resp.header("location") or "")
        resp = await http_request("GET", loc)
        note("status-empty", resp)
        for step, (first, last) in (("patch-1", (0, half)), ("patch-2", (half, len(blob)))):
            resp = await http_request(
                "PATCH",
                loc,
                body=blob[first:last],
                headers={
                    "Content-Type": "application/octet-stream",
                    "Content-Range": f"{first}-{last - 1}",
                },
            )
            note(step, resp)
            loc = absolute(loc, resp.header("location") or "")
            resp = await http_request("GET", loc)
            note(f"status-after-{step}", resp)
            # a status request must not cancel or move the upload
            resp = await http_request("GET", loc)
            note(f"status-after-{step}-again", resp)
        resp = await http_request("PUT", with_query(loc, digest=digest), body=b"")
        note("put", resp)
        seen.append(("put-digest", resp.header("docker-content-digest")))
        resp = await http_request("GET", loc)
        note("status-after-put", resp)
        resp = await http_request("GET", daemon.url + f"/v2/alpha/one/blobs/{digest}")
        seen.append(("get", resp.status, resp.body == blob))
        return seen

    async def test_chunked_upload(self) -> None:
        """POST, GET status, PATCH, PATCH, PUT ?digest, GET: the same answers at each step."""
        blob = os.urandom(300_000)
        ref = await self.upload_flow(self.dist, blob)
        got = await self.upload_flow(self.paxd, blob)
        self.assertEqual(ref[-1], ("get", 200, True), ref)
        self.assertEqual(len(got), len(ref))
        for r, g in zip(ref, got, strict=True):
            self.assertEqual(g, r, f"\ndistribution: {ref}\npaxd:         {got}")

    async def test_upload_wrong_digest(self) -> None:
        """Completing an upload with a digest that does not match: 400 ``DIGEST_INVALID``."""
        answers = []
        for daemon in (self.dist, self.paxd):
            start = daemon.url + "/v2/alpha/one/blobs/uploads/"
            resp = await http_request("POST", start, body=b"")
            loc = absolute(start, resp.header("location") or "")
            answers.append(
                await http_request(
                    "PUT",
                    with_query(loc, digest=sha256_digest(b"something else")),
                    body=b"the content",
                    headers={"Content-Type": "application/octet-stream"},
                )
            )
        ref, got = answers
        self.assertSameAnswer(ref, got)
        self.assertEqual(got.error_codes(), ["DIGEST_INVALID"])

    async def test_upload_out_of_order_chunk(self) -> None:
        """A PATCH whose ``Content-Range`` does not start at the upload's offset.

        Intentional difference: distribution 2.8 ignores ``Content-Range`` on
        PATCH and appends the chunk (202, a corrupt upload); paxd refuses it
        with 416 as the OCI distribution spec says, and the upload is intact.
        """
        answers = []
        for daemon in (self.dist, self.paxd):
            start = daemon.url + "/v2/alpha/one/blobs/uploads/"
            resp = await http_request("POST", start, body=b"")
            loc = absolute(start, resp.header("location") or "")
            resp = await http_request(
                "PATCH", loc, body=b"0123456789", headers={"Content-Range": "0-9"}
            )
            loc = absolute(loc, resp.header("location") or "")
            bad = await http_request(
                "PATCH", loc, body=b"abcdefghij", headers={"Content-Range": "20-29"}
            )
            status = await http_request("GET", loc)
            answers.append((bad, status))
        (ref_bad, _), (bad, status) = answers
        self.assertEqual(ref_bad.status, 202, ref_bad.describe())
        self.require_real_paxd(self.paxd)
        self.assertEqual(bad.status, 416, bad.describe())
        self.assertEqual(status.status, 204, status.describe())
        self.assertEqual(status.header("range"), "0-9")

    async def test_range_get(self) -> None:
        """``Range: bytes=a-b`` → 206 with ``Content-Range``; past the end → 416."""
        blobs, _ = small_image(1)
        layer = blobs[1]
        path = "/v2/alpha/one/blobs/" + sha256_digest(layer)
        ref, got = await self.both("GET", path, headers={"Range": "bytes=10-19"})
        self.assertSameAnswer(ref, got)
        self.assertEqual(got.status, 206)
        self.assertEqual(got.body, layer[10:20])
        self.assertEqual(got.header("content-range"), ref.header("content-range"))
        self.assertEqual(got.header("content-range"), f"bytes 10-19/{len(layer)}")
        ref, got = await self.both("GET", path, headers={"Range": "bytes=100-"})
        self.assertSameAnswer(ref, got)
        self.assertEqual(got.body, layer[100:])
        ref, got = await self.both("GET", path, headers={"Range": f"bytes={len(layer) + 5}-"})
        # distribution's 416 body is Go's plain text; compare the status only
        self.assertEqual(got.status, ref.status)
        self.assertEqual(got.status, 416)
        ref, got = await self.both("HEAD", path)
        self.assertSameAnswer(ref, got)
        self.assertEqual(got.header("content-length"), str(len(layer)))
        self.assertEqual(got.header("docker-content-digest"), sha256_digest(layer))

    async def test_delete_blob(self) -> None:
        """With deletes enabled, ``DELETE`` of a blob is 202 and then it is unknown."""
        blobs, _ = small_image(2)
        path = "/v2/beta/two/blobs/" + sha256_digest(blobs[0])
        ref, got = await self.both("DELETE", path)
        self.assertSameAnswer(ref, got)
        self.assertEqual(got.status, 202)
        ref, got = await self.both("HEAD", path)
        self.assertSameAnswer(ref, got)
        self.assertEqual(got.status, 404)


# --- crashes -------------------------------------------------------------------------


class CrashSafetyTests(InteropCase):
    """``kill -9`` loses nothing that was acknowledged and shows nothing half-written."""

    async def test_acknowledged_push_survives_kill(self) -> None:
        """A skopeo push and a monolithic blob upload, then SIGKILL: all served after restart."""
        root = self.tmp / "data"
        image = await self.image()
        paxd = await start_paxd(registry_config(root), self.tmp, self)
        await skopeo_copy(self.tmp, image.ref, f"docker://{paxd.host}/library/demo:v1")
        extra = os.urandom(2 * MiB)
        resp = await push_blob(paxd, "library/extra", extra)
        self.assertEqual(resp.status, 201, resp.describe())
        await paxd.kill()

        again = await paxd.start()
        await self.pull_and_compare(again, "library/demo", image)
        resp = await http_request(
            "GET", again.url + f"/v2/library/extra/blobs/{sha256_digest(extra)}"
        )
        self.assertEqual(resp.status, 200, resp.describe()[:300])
        self.assertTrue(resp.body == extra, "the acknowledged blob changed")

    async def test_partial_upload_is_not_a_blob(self) -> None:
        """Half a blob PATCHed, then SIGKILL: the blob does not exist; a full push still works."""
        root = self.tmp / "data"
        paxd = await start_paxd(registry_config(root), self.tmp, self)
        blob = os.urandom(3 * MiB)
        digest = sha256_digest(blob)
        start = paxd.url + "/v2/library/partial/blobs/uploads/"
        resp = await http_request("POST", start, body=b"")
        self.assertEqual(resp.status, 202, resp.describe())
        loc = absolute(start, resp.header("location") or "")
        resp = await http_request(
            "PATCH",
            loc,
            body=blob[: 2 * MiB],
            headers={
                "Content-Type": "application/octet-stream",
                "Content-Range": f"0-{2 * MiB - 1}",
            },
        )
        self.assertEqual(resp.status, 202, resp.describe())
        await paxd.kill()

        again = await paxd.start()
        for method in ("HEAD", "GET"):
            resp = await http_request(method, again.url + f"/v2/library/partial/blobs/{digest}")
            self.assertEqual(resp.status, 404, f"{method}: {resp.describe()[:300]}")
        # no blob data file holds the partial bytes under the full digest
        hexed = digest.split(":", 1)[1]
        self.assertFalse((v2_root(root) / "blobs" / "sha256" / hexed[:2] / hexed).exists())

        resp = await push_blob(again, "library/partial", blob)
        self.assertEqual(resp.status, 201, resp.describe())
        resp = await http_request("GET", again.url + f"/v2/library/partial/blobs/{digest}")
        self.assertEqual(resp.status, 200)
        self.assertTrue(resp.body == blob, "the blob pushed after the crash is corrupt")


# --- memory ---------------------------------------------------------------------------


class MemoryTests(InteropCase):
    """A 1 GiB blob goes through paxd without paxd holding it in memory."""

    timeout = 600

    async def test_one_gib_blob(self) -> None:
        """Push and pull 1 GiB with curl: the daemon's peak RSS grows by less than 64 MiB."""
        if os.environ.get("PAXD_SKIP_BIG") == "1":
            raise SkipTest("PAXD_SKIP_BIG=1")
        root = self.tmp / "data"
        paxd = await start_paxd(registry_config(root), self.tmp, self)
        big = self.tmp / "big.bin"
        pulled = self.tmp / "pulled.bin"
        # a GiB or three on disk: gone as soon as the test is
        self.addCleanup(shutil.rmtree, root, True)
        for path in (big, pulled):
            self.addCleanup(path.unlink, True)
        digest = await deferToThread(sparse_file, big, GiB)
        before = paxd.memory_kib()

        start = paxd.url + "/v2/big/blob/blobs/uploads/"
        resp = await http_request("POST", start, body=b"")
        self.assertEqual(resp.status, 202, resp.describe())
        loc = absolute(start, resp.header("location") or "")
        put = await curl(
            self.tmp,
            with_query(loc, digest=digest),
            "-X",
            "PUT",
            "-T",
            str(big),
            "-H",
            "Content-Type: application/octet-stream",
            "-H",
            "Expect:",
            timeout=300,
        )
        self.assertEqual(put.status, 201, put.describe())
        after_push = paxd.memory_kib()

        got = await curl(
            self.tmp, paxd.url + f"/v2/big/blob/blobs/{digest}", output=pulled, timeout=300
        )
        self.assertEqual(got.status, 200, got.describe())
        self.assertEqual(await deferToThread(file_digest, pulled), digest)
        after = paxd.memory_kib()

        growth_mib = (after["VmHWM"] - before["VmRSS"]) / 1024
        self.assertLess(
            growth_mib,
            64,
            f"RSS before {before['VmRSS']} KiB, peak after push {after_push['VmHWM']} KiB,"
            f" peak after pull {after['VmHWM']} KiB",
        )


# --- auth -----------------------------------------------------------------------------


class AuthTests(InteropCase):
    """htpasswd made by the real ``htpasswd -Bbn``: an admin, a read-only user, anonymous."""

    async def setUp(self) -> None:  # type: ignore[override]  # trial awaits it
        super().setUp()
        htpasswd = require_tool("htpasswd")
        self.htpasswd = self.tmp / "htpasswd-basic"
        lines = []
        for user, password in (("admin", "admin-secret"), ("spectro", "reader-secret")):
            result = await deferToThread(
                subprocess.run,
                [htpasswd, "-Bbn", user, password],
                capture_output=True,
                check=True,
            )
            lines.append(result.stdout.decode().strip())
        self.htpasswd.write_text("\n".join(lines) + "\n")

    def auth_section(self, **extra: Any) -> dict[str, Any]:
        """``auth.htpasswd`` with the vendor's realm and this test's file."""
        return {"htpasswd": {"realm": "basic-realm", "path": str(self.htpasswd), **extra}}

    async def test_roles(self) -> None:
        """admin pushes; the read-only user pulls but cannot push; anonymous gets 401."""
        config = registry_config(self.tmp / "data", auth=self.auth_section(admins=["admin"]))
        paxd = await start_paxd(config, self.tmp, self)
        self.require_real_paxd(paxd)
        image = await self.image()
        await skopeo_copy(
            self.tmp,
            image.ref,
            f"docker://{paxd.host}/library/demo:v1",
            dest_creds="admin:admin-secret",
        )
        denied = await skopeo_copy(
            self.tmp,
            image.ref,
            f"docker://{paxd.host}/library/other:v1",
            dest_creds="spectro:reader-secret",
            check=False,
        )
        self.assertNotEqual(denied.returncode, 0, denied.describe())
        out = self.tmp / "pulled-reader"
        await skopeo_copy(
            self.tmp,
            f"docker://{paxd.host}/library/demo:v1",
            f"oci:{out}:v1",
            src_creds="spectro:reader-secret",
        )
        self.assertEqual(
            sorted(await deferToThread(read_layout_blobs, out)), sorted(image.blob_digests())
        )

        anonymous = await curl(self.tmp, paxd.url + "/v1/_catalog")
        self.assertEqual(anonymous.status, 401, anonymous.describe())
        self.assertEqual(anonymous.header("www-authenticate"), 'Basic realm="basic-realm"')
        self.assertEqual(anonymous.error_codes(), ["UNAUTHORIZED"])
        wrong = await curl(self.tmp, paxd.url + "/v2/", "-u", "admin:wrong")
        self.assertEqual(wrong.status, 401, wrong.describe())
        # the vendor guide's checks: health without credentials, catalog with them
        health = await curl(self.tmp, paxd.url + "/health")
        self.assertEqual(health.status, 200, health.describe())
        for user in ("admin:admin-secret", "spectro:reader-secret"):
            catalog = await curl(self.tmp, paxd.url + "/v1/_catalog", "-u", user)
            self.assertEqual(catalog.status, 200, catalog.describe())
            self.assertEqual(catalog.json(), {"repositories": ["library/demo"]})
        # a read-only user's write is refused with 403 DENIED (their credentials are fine)
        blob = b"not allowed"
        url = with_query(paxd.url + "/v2/library/demo/blobs/uploads/", digest=sha256_digest(blob))
        resp = await http_request(
            "POST", url, body=blob, headers=basic_auth("spectro", "reader-secret")
        )
        self.assertEqual(resp.status, 403, resp.describe())
        self.assertEqual(resp.error_codes(), ["DENIED"])

    async def test_unauthenticated_like_distribution(self) -> None:
        """Anonymous ``GET /v2/``: distribution and paxd both 401 with the same challenge."""
        config = registry_config(self.tmp / "d", auth=self.auth_section())
        dist = await start_distribution(config, self.tmp, self)
        paxd = await start_paxd(
            registry_config(self.tmp / "p", auth=self.auth_section()), self.tmp, self
        )
        for path in ("/v2/", "/v2/_catalog"):
            ref = await http_request("GET", dist.url + path)
            got = await http_request("GET", paxd.url + path)
            self.assertEqual(got.status, ref.status, f"{path}\n{ref.describe()}\n{got.describe()}")
            self.assertEqual(got.status, 401)
            self.assertEqual(got.error_codes(), ref.error_codes())
            self.assertEqual(got.header("www-authenticate"), ref.header("www-authenticate"))
            ok = await http_request(
                "GET", paxd.url + path, headers=basic_auth("admin", "admin-secret")
            )
            self.assertEqual(ok.status, 200, ok.describe())

    async def test_anonymous_read(self) -> None:
        """``anonymous: read`` (a paxd extension): anonymous pulls work, pushes get the 401."""
        config = registry_config(self.tmp / "data", auth=self.auth_section(anonymous="read"))
        paxd = await start_paxd(config, self.tmp, self)
        self.require_real_paxd(paxd)
        image = await self.image()
        await skopeo_copy(
            self.tmp,
            image.ref,
            f"docker://{paxd.host}/library/demo:v1",
            dest_creds="admin:admin-secret",
        )
        await self.pull_and_compare(paxd, "library/demo", image)
        catalog = await curl(self.tmp, paxd.url + "/v1/_catalog")
        self.assertEqual(catalog.status, 200, catalog.describe())
        self.assertEqual(catalog.json(), {"repositories": ["library/demo"]})
        push = await skopeo_copy(
            self.tmp, image.ref, f"docker://{paxd.host}/library/anon:v1", check=False
        )
        self.assertNotEqual(push.returncode, 0, push.describe())
        start = await http_request("POST", paxd.url + "/v2/library/anon/blobs/uploads/", body=b"")
        self.assertEqual(start.status, 401, start.describe())
        self.assertEqual(start.header("www-authenticate"), 'Basic realm="basic-realm"')
