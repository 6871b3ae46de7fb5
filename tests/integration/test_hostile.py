"""The real daemon under attack on loopback: bodies refused unread, small disks, slow clients.

Each test starts ``paxd`` (``python -m twisted paxd``) and attacks it with
raw sockets (:mod:`tests.integration.attacks`) or the real ``curl``.  The
figures each one measures are logged (``FIGURE ...`` lines in trial's
``test.log``) for the closing note.
"""

from __future__ import annotations

import itertools
import os
import socket
import subprocess
import time
import uuid as uuidlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from unittest import SkipTest

from twisted.internet.threads import deferToThread
from twisted.logger import Logger
from twisted.trial.unittest import TestCase

from paxd.auth.htpasswd import hash_password
from tests.integration.attacks import (
    Latencies,
    Puller,
    Trickled,
    ask_all,
    bytes_read_in_log,
    open_many,
    process_io,
    push_body,
    request_head,
    tree_size,
    trickle,
    trickle_on,
)
from tests.integration.harness import (
    Daemon,
    absolute,
    basic_auth,
    http_request,
    in_ci,
    registry_config,
    require_tool,
    run_tool,
    sha256_digest,
    sparse_file,
    start_distribution,
    start_paxd,
    with_query,
)

log = Logger()

MiB = 1024 * 1024
GiB = 1024 * MiB
ADMIN = basic_auth("admin", "admin-pw")
READER = basic_auth("reader", "reader-pw")


def figure(name: str, value: Any) -> None:
    """One measured figure, for the report."""
    log.info("FIGURE {name}: {value}", name=name, value=value)


class HostileCase(TestCase):
    timeout = 180

    def setUp(self) -> None:
        self.tmp = Path(self.mktemp()).resolve()
        self.tmp.mkdir(parents=True)

    def require_paxd(self, daemon: Daemon) -> None:
        if daemon.kind != "paxd":
            raise SkipTest("paxd-only behaviour; PAXD_INTEROP_STANDIN is set")

    async def bodies_read(self, daemon: Daemon, count: int) -> list[int]:
        """What paxd logged reading of the *count* bodies it answered unread (once all are)."""
        for _ in range(100):
            reads = bytes_read_in_log(daemon.logs(limit=10_000_000))
            if len(reads) >= count:
                return reads
            await deferToThread(time.sleep, 0.1)
        self.fail(f"paxd logged {len(reads)} closed connections, not {count}")

    async def push(self, daemon: Daemon, name: str, data: bytes, **headers: str) -> int:
        """A monolithic push; its status."""
        url = daemon.url + f"/v2/{name}/blobs/uploads/?digest={sha256_digest(data)}"
        resp = await http_request("POST", url, body=data, headers=headers, timeout=120)
        return resp.status

    async def push_in_one_patch(self, daemon: Daemon, name: str, data: bytes) -> int:
        """POST, one PATCH with all of *data*, PUT ?digest= (what distribution 2.8 takes)."""
        start = daemon.url + f"/v2/{name}/blobs/uploads/"
        resp = await http_request("POST", start, body=b"")
        url = absolute(start, resp.header("location") or "")
        try:
            resp = await http_request("PATCH", url, body=data, timeout=120)
        except OSError:
            return 0  # it broke the connection off
        if resp.status != 202:
            return resp.status
        url = absolute(url, resp.header("location") or "")
        resp = await http_request("PUT", with_query(url, digest=sha256_digest(data)), body=b"")
        return resp.status


class RefusedUnreadTests(HostileCase):
    """With auth on, refusals go out on the headers; the bodies stay (nearly) unread."""

    async def setUp(self) -> None:  # type: ignore[override]  # trial awaits it
        super().setUp()
        htpasswd = self.tmp / "htpasswd"
        htpasswd.write_text(
            "".join(
                f"{user}:{hash_password(pw.encode(), 5).decode()}\n"
                for user, pw in (("admin", "admin-pw"), ("reader", "reader-pw"))
            )
        )
        self.root = self.tmp / "data"
        auth = {"htpasswd": {"realm": "r", "path": str(htpasswd), "admins": ["admin"]}}
        self.paxd = await start_paxd(registry_config(self.root, auth=auth), self.tmp, self)
        self.require_paxd(self.paxd)
        self.upload = f"/v2/a/blobs/uploads/{uuidlib.uuid4()}"

    async def test_two_gib_unauthenticated_patch(self) -> None:
        before = process_io(self.paxd.pid)
        got = await deferToThread(
            push_body,
            "127.0.0.1",
            self.paxd.port,
            request_head("PATCH", self.upload, 2 * GiB),
            2 * GiB,
        )
        self.assertEqual(got.status, 401, got.response)
        assert got.answered is not None and got.ended is not None
        self.assertLess(got.answered, 2.0)
        self.assertLess(got.ended, 15.0)  # cut long before 2 GiB
        self.assertNotIn(b"100 Continue", got.response)
        after = process_io(self.paxd.pid)
        [read] = await self.bodies_read(self.paxd, 1)
        self.assertLessEqual(read, MiB)
        self.assertLess(after["wchar"] - before["wchar"], 256 * 1024)  # nothing stored
        figure("2 GiB unauthenticated PATCH: body bytes read by paxd", read)
        figure("... bytes the client got into socket buffers before the cut", got.sent)
        figure("... 401 after (s)", round(got.answered, 3))
        figure("... connection closed after (s)", round(got.ended, 3))

    async def test_curl_expect_gets_no_continue(self) -> None:
        exe = require_tool("curl")
        big = self.tmp / "big.bin"
        await deferToThread(lambda: open(big, "wb").truncate(2 * GiB))
        self.addCleanup(big.unlink)
        for auth in ([], ["-u", "admin:wrong"], ["-u", "reader:reader-pw"]):
            write_out = ["-w", "%{http_code} %{size_upload} %{time_total}"]
            url = self.paxd.url + self.upload
            argv = [exe, "-sS", "-o", "/dev/null", "-X", "PATCH", "-T", str(big), *auth]
            result = await run_tool([*argv, *write_out, url], check=False)
            status, uploaded, seconds = result.stdout.decode().split()
            self.assertIn(status, ("401", "403"), result.describe())
            self.assertEqual(int(uploaded), 0, "no 100 Continue, so curl sent nothing")
            self.assertLess(float(seconds), 3.0)
        figure("curl -T 2 GiB with Expect: body bytes sent", 0)

    async def test_read_only_user_push(self) -> None:
        got = await deferToThread(
            push_body,
            "127.0.0.1",
            self.paxd.port,
            request_head("POST", "/v2/a/blobs/uploads/?digest=sha256:" + "0" * 64, GiB, READER),
            GiB,
        )
        self.assertEqual(got.status, 403, got.response)
        assert got.answered is not None
        self.assertLess(got.answered, 2.0)
        [read] = await self.bodies_read(self.paxd, 1)
        self.assertLessEqual(read, MiB)
        self.assertEqual(tree_size(self.root / "docker"), 0)  # the health probe aside

    async def test_fifty_unauthenticated_100_mib_bodies(self) -> None:
        before = process_io(self.paxd.pid)
        head = request_head("PATCH", self.upload, 100 * MiB)

        def attack() -> list[Any]:
            with ThreadPoolExecutor(50) as pool:
                runs = [
                    pool.submit(push_body, "127.0.0.1", self.paxd.port, head, 100 * MiB)
                    for _ in range(50)
                ]
                return [r.result() for r in runs]

        results = await deferToThread(attack)
        after = process_io(self.paxd.pid)
        self.assertEqual([r.status for r in results], [401] * 50)
        reads = await self.bodies_read(self.paxd, 50)
        self.assertEqual(len(reads), 50)
        self.assertLessEqual(max(reads), MiB)
        written = after["wchar"] - before["wchar"]
        self.assertLess(written, MiB, "only answers and log lines are written")
        self.assertEqual(tree_size(self.root / "docker"), 0)  # the health probe aside
        figure("50 x 100 MiB unauthenticated: bytes written by paxd (wchar)", written)
        figure("... to disk (write_bytes)", after["write_bytes"] - before["write_bytes"])
        figure("... most body bytes read of one", max(reads))
        figure("... slowest close (s)", round(max(r.ended or 99 for r in results), 2))

    async def test_admin_with_expect_streams(self) -> None:
        """The same curl with the admin's password: 100 Continue, then the body is stored."""
        exe = require_tool("curl")
        data = self.tmp / "layer.bin"
        digest = await deferToThread(sparse_file, data, 30 * MiB)
        start = self.paxd.url + "/v2/a/blobs/uploads/"
        resp = await http_request("POST", start, body=b"", headers=ADMIN)
        self.assertEqual(resp.status, 202, resp.describe())
        url = with_query(absolute(start, resp.header("location") or ""), digest=digest)
        write_out = ["-w", "%{http_code} %{size_upload}"]
        argv = [exe, "-sS", "-o", "/dev/null", "-X", "PUT", "-T", str(data), "-u", "admin:admin-pw"]
        result = await run_tool([*argv, *write_out, url], check=False)
        self.assertEqual(result.stdout.decode().split(), ["201", str(30 * MiB)])


class SmallDiskTests(HostileCase):
    """A blob needs its own size free (a fixed-size tmpfs as the storage root)."""

    mounts = itertools.count()

    def mount(self, size_mib: float) -> Path:
        """A new tmpfs of *size_mib* MiB (needs root, or CAP_SYS_ADMIN in a container)."""
        path = self.tmp / f"tmpfs-{size_mib}-{next(self.mounts)}"
        path.mkdir()
        size = f"size={int(size_mib * 1024)}k"
        done = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", size, "tmpfs", str(path)], capture_output=True
        )
        if done.returncode != 0:
            message = f"cannot mount a tmpfs (root needed): {done.stderr.decode().strip()}"
            if in_ci():
                raise AssertionError(message)
            raise SkipTest(message)
        self.addCleanup(subprocess.run, ["umount", "-l", str(path)], check=False)
        return path

    def free(self, path: Path) -> int:
        st = os.statvfs(path)
        return st.f_bavail * st.f_frsize

    def used(self, path: Path) -> int:
        st = os.statvfs(path)
        return (st.f_blocks - st.f_bfree) * st.f_frsize

    async def test_blob_needs_its_own_size(self) -> None:
        layer = os.urandom(20 * MiB)
        root = self.mount(21)
        paxd = await start_paxd(registry_config(root), self.tmp, self)
        free = self.free(root)
        self.assertEqual(await self.push(paxd, "a", layer), 201)
        figure("20 MiB layer: free space before the push / layer size", round(free / len(layer), 3))
        got = await http_request("GET", paxd.url + f"/v2/a/blobs/{sha256_digest(layer)}")
        self.assertTrue(got.body == layer)
        # chunked, on a disk of the same size
        root = self.mount(22)
        paxd = await start_paxd(registry_config(root), self.tmp, self)
        start = paxd.url + "/v2/b/blobs/uploads/"
        resp = await http_request("POST", start, body=b"")
        url = absolute(start, resp.header("location") or "")
        for i in range(4):
            piece = layer[i * 5 * MiB : (i + 1) * 5 * MiB]
            resp = await http_request("PATCH", url, body=piece)
            self.assertEqual(resp.status, 202, resp.describe())
            url = absolute(url, resp.header("location") or "")
        resp = await http_request("PUT", with_query(url, digest=sha256_digest(layer)), body=b"")
        self.assertEqual(resp.status, 201, resp.describe())

    async def smallest_disk(self, start: Any, layer: bytes) -> float | None:
        """The smallest of a few tmpfs sizes (MiB) on which *start*'s registry takes *layer*."""
        for size in (20.25, 20.5, 21, 22, 24, 34):
            root = self.mount(size)
            daemon = await start(registry_config(root), self.tmp, self)
            status = await self.push_in_one_patch(daemon, "a", layer)
            await daemon.stop()
            if status == 201:
                return size
        return None

    async def test_smallest_disk_beside_distribution(self) -> None:
        """paxd and Debian's docker-registry on the same small disks: the smallest that will do."""
        layer = os.urandom(20 * MiB)
        paxd = await self.smallest_disk(start_paxd, layer)
        distribution = await self.smallest_disk(start_distribution, layer)
        self.assertIsNotNone(distribution, "distribution pushes a 20 MiB layer with 34 MiB free")
        assert paxd is not None
        self.assertLessEqual(paxd, 21)
        figure("smallest tmpfs (MiB) taking a 20 MiB layer: paxd", paxd)
        figure("... distribution", distribution)

    async def test_failed_push_gives_its_space_back(self) -> None:
        root = self.mount(21)
        paxd = await start_paxd(registry_config(root), self.tmp, self)
        baseline = self.used(root)
        too_big = os.urandom(25 * MiB)
        resp = await http_request(
            "POST",
            paxd.url + f"/v2/a/blobs/uploads/?digest={sha256_digest(too_big)}",
            body=too_big,
            timeout=60,
        )
        self.assertEqual(resp.status, 507, resp.describe())
        self.assertIn("full", resp.body.decode())
        self.assertLess(self.used(root) - baseline, 64 * 1024, "nothing left behind")
        uploads = root / "docker/registry/v2/repositories/a/_uploads"
        self.assertEqual(list(uploads.iterdir()) if uploads.exists() else [], [])
        # a chunk that does not fit: the upload stays where it was, and goes on
        start = paxd.url + "/v2/b/blobs/uploads/"
        url = absolute(
            start, (await http_request("POST", start, body=b"")).header("location") or ""
        )
        resp = await http_request("PATCH", url, body=too_big[: 10 * MiB])
        self.assertEqual(resp.status, 202, resp.describe())
        url = absolute(url, resp.header("location") or "")
        resp = await http_request("PATCH", url, body=too_big[10 * MiB :])
        self.assertEqual(resp.status, 507, resp.describe())
        self.assertLess(self.used(root) - baseline, 10 * MiB + 64 * 1024)
        status = await http_request("GET", url)
        self.assertEqual(status.header("range"), f"0-{10 * MiB - 1}")
        # and the registry keeps working: a blob that fits
        self.assertEqual(await self.push(paxd, "c", os.urandom(8 * MiB)), 201)


class SlowClientTests(HostileCase):
    """Deadlines and caps: trickling clients are cut, a flood of connections is queued."""

    async def start(self, **connections: Any) -> Daemon:
        config = registry_config(self.tmp / "data", http={"connections": connections})
        paxd = await start_paxd(config, self.tmp, self)
        self.require_paxd(paxd)
        return paxd

    async def blob(self, paxd: Daemon, size: int = MiB) -> tuple[str, int]:
        data = os.urandom(size)
        self.assertEqual(await self.push(paxd, "pull/me", data), 201)
        return f"/v2/pull/me/blobs/{sha256_digest(data)}", size

    async def test_trickling_heads_cut_at_the_deadline(self) -> None:
        paxd = await self.start(headertimeout="8s", maxperclient=1000)
        path, size = await self.blob(paxd)
        baseline = await deferToThread(self.pulls, paxd, path, size, 3.0)
        puller = Puller("127.0.0.1", paxd.port, path, size).start()
        results = await deferToThread(
            trickle, "127.0.0.1", paxd.port, b"GET /v2/ HTTP/1.1\r\nHost: x\r\n\r\n", 5.0, 20.0, 200
        )
        during = puller.stop()
        cuts = sorted(r.cut for r in results if r.cut is not None)
        self.assertEqual(len(cuts), 200, "every trickling connection is cut")
        self.assertGreaterEqual(cuts[0], 7.5)
        self.assertLess(cuts[-1], 12.0)
        self.assertTrue(all(r.response.startswith(b"HTTP/1.1 408 ") for r in results))
        self.assertEqual(during.failures, 0)
        self.assertLess(during.worst, 5000)
        figure("200 trickling heads (1 byte / 5 s, headertimeout 8s): cut between (s)",
               f"{cuts[0]:.1f}-{cuts[-1]:.1f}")  # fmt: skip
        figure("pull latency of a 1 MiB blob before", baseline.describe())
        figure("pull latency during the trickle", during.describe())

    def pulls(self, paxd: Daemon, path: str, size: int, seconds: float) -> Latencies:
        puller = Puller("127.0.0.1", paxd.port, path, size).start()
        time.sleep(seconds)
        return puller.stop()

    async def test_trickling_bodies_cut(self) -> None:
        paxd = await self.start(bodytimeout="4s", bodyminrate=1024, maxperclient=1000)
        path, size = await self.blob(paxd)
        heads = []
        for _ in range(50):
            start = paxd.url + "/v2/slow/blobs/uploads/"
            resp = await http_request("POST", start, body=b"")
            location = resp.header("location") or ""
            heads.append(request_head("PATCH", location, 10 * MiB))
        puller = Puller("127.0.0.1", paxd.port, path, size).start()
        results = await deferToThread(self.trickle_bodies, paxd, heads)
        during = puller.stop()
        cuts = sorted(r.cut for r in results if r.cut is not None)
        self.assertEqual(len(cuts), 50)
        self.assertLess(cuts[-1], 12.0)
        self.assertTrue(all(b" 408 " in r.response for r in results), results[0].response)
        self.assertEqual(during.failures, 0)
        figure("50 trickling bodies (1 byte / 0.5 s, bodytimeout 4s): cut between (s)",
               f"{cuts[0]:.1f}-{cuts[-1]:.1f}")  # fmt: skip
        figure("pull latency during the body trickle", during.describe())

    def trickle_bodies(self, paxd: Daemon, heads: list[bytes]) -> list[Trickled]:
        socks = [socket.create_connection(("127.0.0.1", paxd.port)) for _ in heads]
        for s, head in zip(socks, heads, strict=True):
            s.sendall(head)
        return trickle_on(socks, None, 0.5, 20.0)

    async def test_thousand_connections_open_quickly(self) -> None:
        paxd = await self.start(maxperclient=2000)
        socks, seconds = await deferToThread(open_many, "127.0.0.1", paxd.port, 1000)
        try:
            statuses = await deferToThread(ask_all, socks, b"GET /v2/ HTTP/1.1\r\nHost: x\r\n\r\n")
        finally:
            for s in socks:
                s.close()
        self.assertLess(seconds, 3.0)
        self.assertEqual(statuses, [200] * 1000)
        figure("1,000 connections opened in (s)", round(seconds, 3))

    async def test_connections_per_address_capped(self) -> None:
        paxd = await self.start()  # the default cap: 128
        socks, _ = await deferToThread(open_many, "127.0.0.1", paxd.port, 130)
        other, _ = await deferToThread(open_many, "127.0.0.1", paxd.port, 2, "127.0.0.2")
        try:
            statuses = await deferToThread(
                ask_all, socks + other, b"GET /v2/ HTTP/1.1\r\nHost: x\r\n\r\n"
            )
        finally:
            for s in socks + other:
                s.close()
        self.assertEqual(sorted(statuses[:130]), [200] * 128 + [429] * 2)
        self.assertEqual(statuses[130:], [200, 200])
