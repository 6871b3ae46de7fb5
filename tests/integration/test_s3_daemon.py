"""paxd on S3, end to end: the real daemon on a RADOS Gateway, driven by skopeo, paxctl and curl.

Images in and out with skopeo (through redirects to the gateway, and through
paxd with ``storage.redirect.disable``), packs with paxctl, a chunked upload
begun on one process and finished on another, ``Range`` downloads, a kill -9
in the middle of a large push, and S3 going away (cut, or silent) and coming
back while the daemon runs, or before it starts.
"""

from __future__ import annotations

import random
import time

from twisted.internet.defer import Deferred
from twisted.internet.threads import deferToThread

from tests.integration.harness import (
    Daemon,
    HTTPResponse,
    MiB,
    absolute,
    build_oci_layout,
    curl,
    http_request,
    read_layout_blobs,
    sha256_digest,
    skopeo_copy,
    skopeo_inspect_raw,
    with_query,
)
from tests.integration.s3support import S3DaemonCase, same_tree
from tests.support.faults import Forwarder

OCI_ACCEPT = {"Accept": "application/vnd.oci.image.manifest.v1+json"}


async def push_blob(daemon: Daemon, name: str, data: bytes, timeout: float = 60.0) -> HTTPResponse:
    """A monolithic push (``POST ?digest=`` with the body)."""
    url = f"{daemon.url}/v2/{name}/blobs/uploads/?digest={sha256_digest(data)}"
    return await http_request("POST", url, body=data, timeout=timeout)


class S3EndToEndTests(S3DaemonCase):
    """Real clients, the real daemon, a real S3 server."""

    async def test_skopeo_in_and_out(self) -> None:
        image = await deferToThread(
            build_oci_layout, self.tmp / "image", tag="v1", seed=11, big_size=12 * MiB
        )
        paxd = await self.paxd()
        proxied = await self.paxd(redirect=False)  # a second process on the same bucket
        await skopeo_copy(self.tmp, image.ref, f"docker://{paxd.host}/lib/app:v1")
        expected = read_layout_blobs(image.path)
        for daemon, name in ((paxd, "redirected"), (proxied, "proxied")):
            out = self.tmp / name
            await skopeo_copy(self.tmp, f"docker://{daemon.host}/lib/app:v1", f"oci:{out}:v1")
            self.assertEqual(read_layout_blobs(out), expected, name)
            raw = await skopeo_inspect_raw(self.tmp, f"docker://{daemon.host}/lib/app:v1")
            self.assertEqual(raw, image.manifest)
        # the layer is one whole object at distribution's key; no upload is left behind
        head = self.s3.head_object(Bucket=self.bucket, Key=self.blob_key(image.layer_digest))
        self.assertEqual(head["ContentLength"], image.layer_size)
        self.assertEqual(self.uploads_in_progress(), [])
        self.assertEqual([k for k in self.keys() if "/_uploads/" in k], [])
        # a GET is a redirect to the gateway unless redirects are disabled
        path = f"/v2/lib/app/blobs/{image.layer_digest}"
        redirected = await http_request("GET", paxd.url + path)
        self.assertEqual(redirected.status, 307, redirected.describe())
        location = redirected.header("Location") or ""
        self.assertTrue(location.startswith(f"{self.gateway.endpoint}/{self.bucket}/"), location)
        self.assertIn("X-Amz-Expires=1200", location)
        served = await http_request("GET", proxied.url + path)
        self.assertEqual((served.status, sha256_digest(served.body)), (200, image.layer_digest))

    async def test_paxctl_push_and_pull(self) -> None:
        paxd = await self.paxd()
        server = ["-r", paxd.host, "--insecure"]
        first = self.sample_pack("cni-flannel", "0.24.2")
        await self.paxctl("pack", "push", str(first), *server)
        # the second version finds most blobs there: HEADs redirected to S3 and answered by it
        pushed = await self.paxctl(
            "pack", "push", str(self.sample_pack("cni-flannel", "0.24.3")), *server
        )
        self.assertIn(b"already there", pushed.stdout + pushed.stderr)
        out = self.tmp / "pulled"
        await self.paxctl("pack", "pull", "cni-flannel:0.24.2", str(out), *server)
        self.assertEqual(same_tree(first, out), [])
        tags = await http_request("GET", paxd.url + "/v1/cni-flannel/tags/list")
        self.assertEqual(tags.json()["tags"], ["0.24.2", "0.24.3", "0.24.x", "0.x"])
        packs = await http_request("GET", paxd.url + "/v1/_packs")
        (flannel,) = packs.json()["packs"]
        self.assertEqual({t["tag"] for t in flannel["tags"]}, {"0.24.2", "0.24.3"})
        # the logo a browser fetches is served by paxd itself, typed
        logo_digest = sha256_digest((first / "logo.png").read_bytes())
        logo = await http_request(
            "GET", f"{paxd.url}/v1/cni-flannel/blobs/{logo_digest}?type=image/png"
        )
        self.assertEqual((logo.status, logo.header("Content-Type")), (200, "image/png"))
        self.assertEqual(logo.body, (first / "logo.png").read_bytes())

    async def test_chunked_upload_continues_on_another_process(self) -> None:
        one, two = await self.paxd(), await self.paxd(redirect=False)
        data = random.Random(7).randbytes(13 * MiB + 5)
        started = await http_request("POST", one.url + "/v2/lib/big/blobs/uploads/")
        self.assertEqual(started.status, 202, started.describe())
        path = started.header("Location") or ""
        pieces = [(0, 6 * MiB, one), (6 * MiB, 12 * MiB, two), (12 * MiB, len(data), one)]
        for first, end, daemon in pieces:
            sent = await http_request(
                "PATCH",
                absolute(daemon.url, path),
                headers={
                    "Content-Range": f"{first}-{end - 1}",
                    "Content-Type": "application/octet-stream",
                },
                body=data[first:end],
            )
            self.assertEqual(sent.status, 202, sent.describe())
            self.assertEqual(sent.header("Range"), f"0-{end - 1}")
            path = sent.header("Location") or path
        status = await http_request("GET", absolute(two.url, path))
        self.assertEqual((status.status, status.header("Range")), (204, f"0-{len(data) - 1}"))
        digest = sha256_digest(data)
        done = await http_request(
            "PUT", with_query(absolute(two.url, path), digest=digest), body=b""
        )
        self.assertEqual(done.status, 201, done.describe())
        served = await http_request("GET", f"{two.url}/v2/lib/big/blobs/{digest}")
        self.assertEqual(served.body, data)
        # one whole object, no segment or upload left behind
        head = self.s3.head_object(Bucket=self.bucket, Key=self.blob_key(digest))
        self.assertEqual(head["ContentLength"], len(data))
        self.assertEqual(self.uploads_in_progress(), [])
        self.assertEqual([k for k in self.keys() if "/_uploads/" in k or ".paxd-seg" in k], [])

    async def test_range_downloads(self) -> None:
        proxied = await self.paxd(redirect=False)
        data = random.Random(9).randbytes(11 * MiB + 3)
        self.assertEqual((await push_blob(proxied, "lib/ranges", data)).status, 201)
        url = f"{proxied.url}/v2/lib/ranges/blobs/{sha256_digest(data)}"
        size = len(data)
        for asked, first, last in [
            ("bytes=100-199", 100, 199),
            (f"bytes={10 * MiB}-", 10 * MiB, size - 1),
            ("bytes=-1000", size - 1000, size - 1),
            (f"bytes={size - 5}-{size + 100}", size - 5, size - 1),
        ]:
            got = await http_request("GET", url, headers={"Range": asked})
            self.assertEqual(got.status, 206, (asked, got.describe()))
            self.assertEqual(got.header("Content-Range"), f"bytes {first}-{last}/{size}")
            self.assertEqual(got.body, data[first : last + 1], asked)
        beyond = await http_request("GET", url, headers={"Range": f"bytes={size}-"})
        self.assertEqual((beyond.status, beyond.header("Content-Range")), (416, f"bytes */{size}"))
        # through the redirect, the gateway answers the range
        paxd = await self.paxd()
        redirected = await curl(
            self.tmp, url.replace(proxied.url, paxd.url), "-L", "-r", "5000000-5000999"
        )
        self.assertEqual(redirected.status, 206)
        self.assertEqual(redirected.body, data[5000000:5001000])

    async def test_kill_during_a_large_push_leaves_nothing_visible(self) -> None:
        """kill -9 while parts go to S3: no blob appears; pushing again works."""
        relay = Forwarder(self.gateway.port)
        relay.restore()
        self.addCleanup(relay.cut)
        endpoint = f"http://127.0.0.1:{relay.port}"
        paxd = await self.paxd(endpoint=endpoint, chunksize=5 * MiB)
        data = random.Random(13).randbytes(64 * MiB + 11)
        digest = sha256_digest(data)
        pushing = Deferred.fromCoroutine(push_blob(paxd, "lib/huge", data, timeout=120))
        pushing.addErrback(lambda f: f.value)  # the connection dies with the daemon
        # wait for parts to flow to S3, freeze S3 half-way, and kill
        deadline = time.monotonic() + 60
        while not [k for k in self.uploads_in_progress() if "/_uploads/" in k]:
            self.assertLess(time.monotonic(), deadline, "paxd never began sending parts")
            await deferToThread(time.sleep, 0.02)
        relay.stall()
        await paxd.kill()
        relay.restore()
        failed = await pushing
        self.assertIsInstance(failed, OSError)
        self.assertNotIn(self.blob_key(digest), self.keys())
        again = await self.paxd(endpoint=endpoint)
        url = f"{again.url}/v2/lib/huge/blobs/{digest}"
        for method in ("HEAD", "GET"):
            self.assertEqual((await http_request(method, url)).status, 404, method)
        pushed = await push_blob(again, "lib/huge", data, timeout=120)
        self.assertEqual(pushed.status, 201, pushed.describe())
        head = self.s3.head_object(Bucket=self.bucket, Key=self.blob_key(digest))
        self.assertEqual(head["ContentLength"], len(data))
        got = await http_request("GET", url + "?type=application/octet-stream", timeout=120)
        self.assertEqual(sha256_digest(got.body), digest)


class S3OutageTests(S3DaemonCase):
    """S3 cut, silent, or down at start: 503s naming the bucket, /health says why, then back."""

    def relay(self) -> tuple[Forwarder, str]:
        relay = Forwarder(self.gateway.port)
        relay.restore()
        self.addCleanup(relay.cut)
        return relay, f"http://127.0.0.1:{relay.port}"

    def quick(self, endpoint: str, **extra: object) -> dict[str, object]:
        """Settings under which S3 counts as down within seconds."""
        return {
            "endpoint": endpoint,
            "connecttimeout": "1s",
            "readtimeout": "2s",
            "maxattempts": 1,
            **extra,
        }

    def assertUnavailable(self, answer: HTTPResponse, endpoint: str) -> None:
        self.assertEqual(answer.status, 503, answer.describe())
        (error,) = answer.json()["errors"]
        storage = f"S3 bucket {self.bucket!r} at {endpoint}"
        self.assertEqual((error["code"], error["detail"]), ("UNAVAILABLE", {"storage": storage}))
        self.assertIn(f"{storage} is unavailable", error["message"])

    async def image_in(self, daemon: Daemon) -> bytes:
        image = await deferToThread(
            build_oci_layout, self.tmp / "image", tag="v1", seed=5, big_size=4096
        )
        await skopeo_copy(self.tmp, image.ref, f"docker://{daemon.host}/lib/app:v1")
        return image.manifest

    async def test_s3_cut_then_back(self) -> None:
        relay, endpoint = self.relay()
        paxd = await self.paxd(**self.quick(endpoint))  # type: ignore[arg-type]
        manifest = await self.image_in(paxd)
        url = f"{paxd.url}/v2/lib/app/manifests/v1"
        relay.cut()
        began = time.monotonic()
        self.assertUnavailable(await http_request("GET", url, headers=OCI_ACCEPT), endpoint)
        self.assertUnavailable(
            await http_request("POST", f"{paxd.url}/v2/lib/app/blobs/uploads/", body=b""), endpoint
        )
        self.assertUnavailable(
            await http_request("GET", f"{paxd.url}/v2/lib/app/tags/list"), endpoint
        )
        self.assertLess(time.monotonic() - began, 10)
        health = await http_request("GET", paxd.url + "/health")
        self.assertEqual((health.status, health.json()["status"]), (503, "DOWN"))
        self.assertIn(
            f"S3 bucket {self.bucket!r} at {endpoint} is unavailable", health.json()["reason"]
        )
        self.assertEqual((await http_request("GET", paxd.url + "/v2/")).status, 200)
        relay.restore()

        async def back() -> None:
            self.assertEqual((await http_request("GET", paxd.url + "/health")).status, 200)

        await self.eventually(back)
        got = await http_request("GET", url, headers=OCI_ACCEPT)
        self.assertEqual((got.status, got.body), (200, manifest))
        self.assertIn("503", paxd.logs())

    async def test_s3_silent_never_holds_the_reactor(self) -> None:
        relay, endpoint = self.relay()
        paxd = await self.paxd(**self.quick(endpoint))  # type: ignore[arg-type]
        manifest = await self.image_in(paxd)
        url = f"{paxd.url}/v2/lib/app/manifests/v1"
        relay.stall()
        began = time.monotonic()
        stuck = [http_request("GET", url, headers=OCI_ACCEPT) for _ in range(4)]
        await deferToThread(time.sleep, 0.3)
        # while S3 holds those requests, what needs no storage is answered at once
        for _ in range(5):
            quick = time.monotonic()
            self.assertEqual((await http_request("GET", paxd.url + "/v2/")).status, 200)
            self.assertLess(time.monotonic() - quick, 0.5)
        health = await http_request("GET", paxd.url + "/health")
        self.assertEqual(health.status, 503, health.describe())
        for d in stuck:
            self.assertUnavailable(await d, endpoint)
        self.assertLess(time.monotonic() - began, 10)  # readtimeout is 2 s, not S3's mercy
        relay.restore()

        async def back() -> None:
            got = await http_request("GET", url, headers=OCI_ACCEPT)
            self.assertEqual((got.status, got.body), (200, manifest))

        await self.eventually(back)

    async def test_start_while_s3_is_down(self) -> None:
        first = await self.paxd()
        await self.image_in(first)
        await first.stop()
        relay, endpoint = self.relay()
        relay.cut()
        paxd = await self.paxd(ready="/v2/", **self.quick(endpoint))  # type: ignore[arg-type]
        health = await http_request("GET", paxd.url + "/health")
        self.assertEqual(health.status, 503, health.describe())

        async def gave_up_once() -> None:
            self.assertIn("could not build the registry's indexes", paxd.logs())

        await self.eventually(gave_up_once)
        relay.restore()

        async def indexed() -> None:
            catalog = await http_request("GET", paxd.url + "/v2/_catalog")
            self.assertEqual(catalog.json(), {"repositories": ["lib/app"]}, catalog.describe())

        await self.eventually(indexed)
        self.assertEqual((await http_request("GET", paxd.url + "/health")).status, 200)
        self.assertIn("trying again in", paxd.logs())
