"""RegistryChannel in memory: requests decided on their headers, bodies streamed, deadlines, caps.

Every test drives a real :class:`~paxd.web.request.RegistrySite` (the real
root, the real auth guard over a real htpasswd file, the real registry over
memory or filesystem storage) byte by byte through a
:class:`~tests.web.rawhttp.Connection`, and looks at what the channel read,
paused and wrote, and at what reached storage.
"""

from __future__ import annotations

import os

from twisted.internet.testing import MemoryReactorClock
from twisted.trial.unittest import SynchronousTestCase
from twisted.web.resource import IResource

from paxd.access import Access
from paxd.auth.guard import make_guarded_api_factory
from paxd.auth.htpasswd import HtpasswdChecker
from paxd.auth.throttle import Throttle
from paxd.registry import layout
from paxd.registry.registry import Registry
from paxd.storage.filesystem import FilesystemStorage
from paxd.storage.interface import IStorageDriver
from paxd.storage.memory import MemoryStorage
from paxd.threadpool import IRunner, SynchronousRunner
from paxd.web.limits import ConnectionLimits
from paxd.web.request import RegistrySite
from paxd.web.root import APIResource, RegistryRoot
from tests.auth.support import fast_line
from tests.web.rawhttp import Connection, MiB, StepRunner, basic, chunk, head
from tests.web.support import sha256

ADMIN = basic("admin", "admin-pw")
READER = basic("reader", "ro-pw")
GiB = 1024 * MiB


class ChannelCase(SynchronousTestCase):
    """A guarded registry site on a memory clock."""

    def build(
        self,
        storage: IStorageDriver | None = None,
        *,
        bcrypt: IRunner | None = None,
        limits: ConnectionLimits | None = None,
    ) -> None:
        self.clock = MemoryReactorClock()
        self.storage = storage if storage is not None else MemoryStorage()
        self.registry = Registry(self.storage, delete_enabled=True)
        self.wait(self.registry.start())
        path = self.mktemp()
        with open(path, "w") as f:
            f.write(fast_line("admin", "admin-pw") + fast_line("reader", "ro-pw"))
        checker = HtpasswdChecker(path, bcrypt or SynchronousRunner(), clock=self.clock)
        checker.load()

        def api_for(access: Access, prefix: bytes) -> IResource:
            return APIResource(self.registry, access, prefix)

        factory = make_guarded_api_factory(
            api_for,
            checker,
            realm_name="r",
            admins=frozenset({"admin"}),
            anonymous_read=False,
            throttle=Throttle(self.clock),
        )
        self.site = RegistrySite(
            RegistryRoot(self.registry, api_factory=factory),
            reactor=self.clock,
            limits=limits or ConnectionLimits(),
        )

    def wait(self, d: object) -> object:
        runner = getattr(self.storage, "_runner", None)
        if isinstance(runner, StepRunner):
            runner.drain()
        return self.successResultOf(d)  # type: ignore[arg-type]

    def drain(self) -> None:
        runner = getattr(self.storage, "_runner", None)
        if isinstance(runner, StepRunner):
            runner.drain()

    def new_upload(self, name: str = "a") -> str:
        status = self.wait(self.registry.repository(name).uploads.start())
        return status.uuid  # type: ignore[attr-defined, no-any-return]

    def offset(self, uuid: str, name: str = "a") -> int:
        status = self.wait(self.registry.repository(name).uploads.status(uuid))
        return status.offset  # type: ignore[attr-defined, no-any-return]


class RefusedOnHeadersTests(ChannelCase):
    """401 and 403 go out as the headers arrive: no 100 Continue, at most 1 MiB read."""

    def setUp(self) -> None:
        self.build()
        self.uuid = self.new_upload()
        self.path = f"/v2/a/blobs/uploads/{self.uuid}"

    def assertRefusedAtOnce(self, conn: Connection, status: int) -> None:
        [answer] = conn.responses()
        self.assertEqual(answer.status, status, answer)
        self.assertEqual(answer.headers["connection"], "close")
        self.assertTrue(conn.transport.write_closed)  # the answer, then FIN
        # at most 1 MiB of body is read in all, then no more
        conn.send(b"x" * (512 * 1024))
        self.assertFalse(conn.paused)
        conn.send(b"x" * (512 * 1024))
        self.assertTrue(conn.paused)
        self.clock.advance(ConnectionLimits().linger)
        self.assertTrue(conn.transport.disconnected)
        self.assertEqual(self.offset(self.uuid), 0)

    def test_no_credentials(self) -> None:
        for expect in ({}, {"Expect": "100-continue"}):
            conn = Connection(self.site)
            conn.send(head("PATCH", self.path, 2 * GiB, expect))
            self.assertRefusedAtOnce(conn, 401)

    def test_bad_credentials(self) -> None:
        conn = Connection(self.site)
        conn.send(head("PATCH", self.path, 2 * GiB, basic("admin", "wrong")))
        self.assertRefusedAtOnce(conn, 401)

    def test_read_only_user_writing(self) -> None:
        conn = Connection(self.site)
        conn.send(head("PATCH", self.path, 2 * GiB, {**READER, "Expect": "100-continue"}))
        self.assertRefusedAtOnce(conn, 403)
        self.assertIn(b"DENIED", conn.transport.value())

    def test_body_sent_with_the_headers_counts(self) -> None:
        conn = Connection(self.site)
        conn.send(head("POST", "/v2/a/blobs/uploads/?digest=sha256:00", 2 * GiB) + b"y" * MiB)
        self.assertEqual(conn.responses()[0].status, 401)
        self.assertTrue(conn.paused)  # the budget is spent already

    def test_chunked_body_refused(self) -> None:
        conn = Connection(self.site)
        conn.send(head("PATCH", self.path, None) + chunk(b"z" * 1000))
        self.assertRefusedAtOnce(conn, 401)

    def test_small_body_drained_connection_kept(self) -> None:
        # a refused body of at most 1 MiB is read and dropped; the next request follows
        conn = Connection(self.site)
        conn.send(head("PATCH", self.path, 1000) + b"q" * 400)
        conn.send(b"q" * 600 + head("GET", "/v2/", 0, ADMIN))
        first, second = conn.responses()
        self.assertEqual((first.status, second.status), (401, 200))
        self.assertNotIn("connection", first.headers)
        self.assertFalse(conn.closed)
        self.assertEqual(self.offset(self.uuid), 0)

    def test_unknown_upload_refused_before_its_body(self) -> None:
        conn = Connection(self.site)
        path = "/v2/a/blobs/uploads/00000000-0000-0000-0000-000000000000"
        conn.send(head("PATCH", path, 100 * MiB, {**ADMIN, "Expect": "100-continue"}))
        [answer] = conn.responses()
        self.assertEqual(answer.status, 404)


class HeldBodyTests(ChannelCase):
    """Credentials being checked hold the body back; 100 Continue once the request may proceed."""

    def test_held_until_the_check_answers(self) -> None:
        bcrypt = StepRunner()
        self.build(bcrypt=bcrypt)
        uuid = self.new_upload()
        conn = Connection(self.site)
        data = os.urandom(3 * MiB)
        conn.send(
            head(
                "PATCH",
                f"/v2/a/blobs/uploads/{uuid}",
                len(data),
                {**ADMIN, "Expect": "100-continue"},
            )
        )
        self.assertTrue(conn.paused)
        self.assertEqual(conn.transport.value(), b"")  # no 100 before the password is checked
        # however long bcrypt takes, neither the idle timeout nor the body rate cuts it
        self.clock.advance(300)
        self.assertFalse(conn.closed)
        bcrypt.drain()
        self.assertFalse(conn.paused)
        self.assertEqual(conn.transport.value(), b"HTTP/1.1 100 Continue\r\n\r\n")
        for i in range(0, len(data), 64 * 1024):
            conn.send(data[i : i + 64 * 1024])
        interim, answer = conn.responses()
        self.assertEqual((interim.status, answer.status), (100, 202), answer)
        self.assertEqual(answer.headers["range"], f"0-{len(data) - 1}")
        self.assertEqual(self.offset(uuid), len(data))

    def test_no_100_without_expect(self) -> None:
        self.build()
        conn = Connection(self.site)
        data = b"d" * 5000
        conn.send(head("POST", f"/v2/a/blobs/uploads/?digest={sha256(data)}", len(data), ADMIN))
        conn.send(data)
        [answer] = conn.responses()
        self.assertEqual(answer.status, 201)


class StreamingTests(ChannelCase):
    """Bodies flow into storage as they arrive, the connection paused while storage lags."""

    def test_streamed_with_backpressure(self) -> None:
        runner = StepRunner()
        root = self.mktemp()
        self.build(FilesystemStorage(root, runner))
        uuid = self.new_upload()
        data_file = os.path.join(root, layout.upload_data("a", uuid).lstrip("/"))
        conn = Connection(self.site)
        data = os.urandom(8 * MiB)
        conn.send(head("PATCH", f"/v2/a/blobs/uploads/{uuid}", len(data), ADMIN))
        self.assertTrue(conn.paused)  # the upload is looked up first: the body waits
        runner.drain()
        self.assertFalse(conn.paused)
        request = conn.channel.requests[-1]
        sent = 0
        pauses = 0
        while sent < len(data):
            if conn.paused:
                pauses += 1
                # bounded: the reader's read and its read-ahead, one chunk beyond
                self.assertLessEqual(request._body._buffered, 2 * MiB + 64 * 1024)
                runner.step()
                continue
            conn.send(data[sent : sent + 64 * 1024])
            sent += 64 * 1024
            if sent == 4 * MiB:
                runner.drain()
                # in storage as it arrives: no temporary copy, no answer yet
                self.assertGreaterEqual(os.path.getsize(data_file), 3 * MiB)
                self.assertEqual(conn.transport.value(), b"")
        self.assertGreater(pauses, 0)
        runner.drain()
        [answer] = conn.responses()
        self.assertEqual(answer.status, 202, answer)
        with open(data_file, "rb") as f:
            self.assertEqual(f.read(), data)

    def test_chunked_body(self) -> None:
        self.build()
        uuid = self.new_upload()
        conn = Connection(self.site)
        conn.send(head("PATCH", f"/v2/a/blobs/uploads/{uuid}", None, ADMIN))
        conn.send(chunk(b"abc") + chunk(b"defg"))
        conn.send(chunk(b""))
        conn.send(
            head("PATCH", f"/v2/a/blobs/uploads/{uuid}", None, {**ADMIN, "Content-Range": "7-9"})
        )
        conn.send(chunk(b"hij") + chunk(b""))
        first, second = conn.responses()
        self.assertEqual((first.status, first.headers["range"]), (202, "0-6"))
        self.assertEqual((second.status, second.headers["range"]), (202, "0-9"))

    def test_pipelined_requests_after_a_body(self) -> None:
        self.build()
        data = b"layer" * 1000
        digest = sha256(data)
        conn = Connection(self.site)
        conn.send(
            head("POST", f"/v2/a/blobs/uploads/?digest={digest}", len(data), ADMIN)
            + data
            + head("HEAD", f"/v2/a/blobs/{digest}", 0, ADMIN)
            + head("GET", f"/v2/a/blobs/{digest}", 0, ADMIN)
        )
        pushed, headed, got = conn.responses(heads={1})
        self.assertEqual((pushed.status, headed.status, got.status), (201, 200, 200))
        self.assertEqual(headed.headers["content-length"], str(len(data)))
        self.assertEqual(got.body, data)
        self.assertFalse(conn.closed)

    def test_client_gone_mid_body_leaves_nothing(self) -> None:
        root = self.mktemp()
        self.build(FilesystemStorage(root, SynchronousRunner()))
        uuid = self.new_upload()
        data_file = os.path.join(root, layout.upload_data("a", uuid).lstrip("/"))
        conn = Connection(self.site)
        conn.send(head("PATCH", f"/v2/a/blobs/uploads/{uuid}", 4 * MiB, ADMIN))
        conn.send(b"p" * (3 * MiB))
        self.assertGreater(os.path.getsize(data_file), 0)  # streamed in...
        conn.lose()
        self.assertEqual(os.path.getsize(data_file), 0)  # ...and cut back: space given back
        self.assertEqual(self.offset(uuid), 0)
        # a monolithic push cut short leaves no upload behind
        conn = Connection(self.site)
        conn.send(head("POST", "/v2/a/blobs/uploads/?digest=sha256:" + "0" * 64, 4 * MiB, ADMIN))
        conn.send(b"m" * (2 * MiB))
        conn.lose()
        uploads = os.path.join(root, "docker/registry/v2/repositories/a/_uploads")
        self.assertEqual(os.listdir(uploads), [uuid])

    def test_malformed_chunked_body(self) -> None:
        self.build()
        uuid = self.new_upload()
        conn = Connection(self.site)
        conn.send(head("PATCH", f"/v2/a/blobs/uploads/{uuid}", None, ADMIN))
        conn.send(chunk(b"abc") + b"zz-not-hex\r\n")
        [answer] = conn.responses()
        self.assertEqual((answer.status, answer.headers["connection"]), (400, "close"))
        self.assertIn(b"BLOB_UPLOAD_INVALID", answer.body)
        self.assertEqual(self.offset(uuid), 0)


class FullStorageTests(ChannelCase):
    """A full disk mid-body: 507 at once, the connection closed, the upload as it was."""

    def test_disk_full(self) -> None:
        root = self.mktemp()
        self.build(FilesystemStorage(root, SynchronousRunner()))
        uuid = self.new_upload()
        real_write = os.write
        written = [0]

        def write(fd: int, data: bytes) -> int:
            if written[0] > 2 * MiB:
                raise OSError(28, "No space left on device")
            written[0] += len(data)
            return real_write(fd, data)

        self.patch(os, "write", write)
        conn = Connection(self.site)
        conn.send(head("PATCH", f"/v2/a/blobs/uploads/{uuid}", 20 * MiB, ADMIN))
        for _ in range(40):
            if conn.transport.value():
                break
            conn.send(b"f" * (256 * 1024))
        [answer] = conn.responses()
        self.assertEqual((answer.status, answer.headers["connection"]), (507, "close"))
        self.assertIn(b"full", answer.body)
        self.assertEqual(self.offset(uuid), 0)


class DeadlineTests(ChannelCase):
    """The head within header_timeout; a body at body_min_rate; idle held bodies never cut."""

    limits = ConnectionLimits(header_timeout=5.0, body_window=10.0, body_min_rate=100)

    def setUp(self) -> None:
        self.build(limits=self.limits)

    def test_trickled_head_cut_at_the_deadline(self) -> None:
        conn = Connection(self.site)
        for byte in b"GET /v2/ HTTP/1.1\r\n":
            if self.clock.seconds() >= 4.5:
                break
            conn.send(bytes([byte]))  # a byte resets the idle timer, not the deadline
            self.clock.advance(0.5)
        self.assertFalse(conn.closed)
        self.clock.advance(0.5)
        self.assertTrue(conn.closed)
        self.assertTrue(conn.transport.value().startswith(b"HTTP/1.1 408 "))

    def test_silent_connection_cut(self) -> None:
        conn = Connection(self.site)
        self.clock.advance(4.9)
        self.assertFalse(conn.closed)
        self.clock.advance(0.1)
        self.assertTrue(conn.closed)

    def test_kept_alive_connection_deadline_starts_with_its_next_request(self) -> None:
        conn = Connection(self.site)
        conn.send(head("GET", "/v2/", 0, ADMIN))
        self.clock.advance(30)  # idle between requests: the idle timeout's business
        self.assertFalse(conn.closed)
        conn.send(b"GET /v2/ HT")
        self.clock.advance(4.9)
        self.assertFalse(conn.closed)
        self.clock.advance(0.1)
        self.assertTrue(conn.closed)
        self.assertEqual([r.status for r in conn.responses()], [200, 408])

    def test_slow_body_cut(self) -> None:
        uuid = self.new_upload()
        conn = Connection(self.site)
        conn.send(head("PATCH", f"/v2/a/blobs/uploads/{uuid}", 100_000, ADMIN))
        for _ in range(4):
            conn.send(b"s" * 200)  # 200 bytes per 5 s: 40 bytes/s
            self.clock.advance(5)
            if conn.transport.value():
                break
        [answer] = conn.responses()
        self.assertEqual((answer.status, answer.headers["connection"]), (408, "close"))
        self.assertIn(b"bodyminrate", answer.body)
        self.clock.advance(self.limits.linger)
        self.assertTrue(conn.transport.disconnected)
        self.assertEqual(self.offset(uuid), 0)

    def test_steady_body_not_cut(self) -> None:
        uuid = self.new_upload()
        conn = Connection(self.site)
        conn.send(head("PATCH", f"/v2/a/blobs/uploads/{uuid}", 12_000, ADMIN))
        for _ in range(12):
            conn.send(b"s" * 1000)  # 200 bytes/s
            self.clock.advance(5)
        [answer] = conn.responses()
        self.assertEqual(answer.status, 202)


class ClientCapTests(ChannelCase):
    """At most max_per_client connections per address; others are served."""

    def test_cap(self) -> None:
        self.build(limits=ConnectionLimits(max_per_client=2))
        first = Connection(self.site, "10.0.0.1", 1)
        Connection(self.site, "10.0.0.1", 2)
        third = Connection(self.site, "10.0.0.1", 3)
        self.assertTrue(third.transport.value().startswith(b"HTTP/1.1 429 "))
        self.assertTrue(third.closed)
        other = Connection(self.site, "10.0.0.2", 1)
        other.send(head("GET", "/v2/", 0, ADMIN))
        self.assertEqual(other.responses()[0].status, 200)
        first.lose()
        again = Connection(self.site, "10.0.0.1", 4)
        again.send(head("GET", "/v2/", 0, ADMIN))
        self.assertEqual(again.responses()[0].status, 200)
