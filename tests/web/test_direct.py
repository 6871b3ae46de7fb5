"""Blob bodies sent from the transfer pool (paxd.web.direct, paxd.tls.offload), on real sockets.

The registry runs on the test's reactor over filesystem storage with real
thread pools; clients are blocking sockets in threads.  A recording runner
shows which jobs ran, so that each test also proves the direct path was
taken (and would fail on the producer path).
"""

from __future__ import annotations

import os
import socket
import ssl
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from twisted.internet import reactor
from twisted.internet.defer import Deferred, ensureDeferred
from twisted.internet.threads import deferToThread
from twisted.python.threadpool import ThreadPool
from twisted.trial.unittest import TestCase

from paxd.registry import layout
from paxd.registry.reference import parse_digest
from paxd.registry.registry import Registry
from paxd.storage.filesystem import FilesystemStorage
from paxd.threadpool import PoolRunner, make_pool
from paxd.tls.certificates import temporary_bundle, utcnow
from paxd.tls.context import ServerTLS, wrap_tls
from paxd.tls.plainhttp import RefusePlainHTTPFactory
from paxd.web.plainport import RefuseTLSFactory
from paxd.web.request import RegistrySite
from paxd.web.root import RegistryRoot
from tests.web.support import sha256

REPO = "direct/test"
MiB = 1024 * 1024


class RecordingRunner(PoolRunner):
    """A PoolRunner that remembers the name of every function it ran."""

    def __init__(self, pool: ThreadPool) -> None:
        super().__init__(reactor, pool)
        self.calls: list[str] = []

    def run(self, f: Callable[..., Any], *args: Any, **kwargs: Any) -> Deferred[Any]:
        self.calls.append(getattr(f, "__qualname__", repr(f)))
        return super().run(f, *args, **kwargs)


def _blob(size: int, seed: int) -> bytes:
    block = os.urandom(64 * 1024)
    data = (block * (size // len(block) + 1))[:size]
    return seed.to_bytes(4, "big") + data[4:]


class Response:
    """One parsed HTTP/1.1 response."""

    def __init__(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.status = status
        self.headers = headers
        self.body = body


class Client:
    """A blocking HTTP/1.1 client on one connection (keep-alive, pipelining, slow reads)."""

    def __init__(self, port: int, tls: bool) -> None:
        raw = socket.create_connection(("127.0.0.1", port), timeout=60)
        if tls:
            context = ssl.create_default_context()
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
            self.sock: socket.socket = context.wrap_socket(raw)
        else:
            self.sock = raw
        self.buffer = b""

    def send(self, method: str, path: str, headers: dict[str, str] | None = None) -> None:
        lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1"]
        lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())

    def _fill(self, delay: float = 0.0, size: int = 1 << 20) -> None:
        if delay:
            time.sleep(delay)
        data = self.sock.recv(size)
        if not data:
            raise ConnectionError("server closed the connection")
        self.buffer += data

    def response(self, head: bool = False, delay: float = 0.0, size: int = 1 << 20) -> Response:
        while b"\r\n\r\n" not in self.buffer:
            self._fill()
        raw, self.buffer = self.buffer.split(b"\r\n\r\n", 1)
        status_line, *header_lines = raw.decode("latin-1").split("\r\n")
        headers = {}
        for line in header_lines:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        length = 0 if head else int(headers.get("content-length", "0"))
        while len(self.buffer) < length:
            self._fill(delay, size)
        body, self.buffer = self.buffer[:length], self.buffer[length:]
        return Response(int(status_line.split()[1]), headers, body)

    def get(self, path: str, **headers: str) -> Response:
        self.send("GET", path, headers)
        return self.response()

    def close(self) -> None:
        self.sock.close()


class DirectTests(TestCase):
    """Plain connections: sendfile."""

    tls = False
    #: the https listener's wiring: plain HTTP watched for (paxd.tls.plainhttp) above TLS
    refuse_plain = False
    #: the job a direct transfer runs in the pool
    job = "SendfileSink.send"

    def setUp(self) -> None:
        self.root = tempfile.mkdtemp(prefix="paxd-direct-")
        self.addCleanup(_rmtree, self.root)
        disk_pool = make_pool("test-disk", 4)
        transfer_pool = make_pool("test-transfer", 1)  # one thread: a stalled client holds none
        for pool in (disk_pool, transfer_pool):
            pool.start()
            self.addCleanup(pool.stop)
        self.transfer = RecordingRunner(transfer_pool)
        storage = FilesystemStorage(self.root, PoolRunner(reactor, disk_pool))
        self.registry = Registry(storage)
        site = RegistrySite(
            RegistryRoot(self.registry),
            access_log=False,
            transfer=self.transfer,
        )
        if self.tls:
            factory = wrap_tls(ServerTLS(temporary_bundle(["127.0.0.1"], utcnow())), site)
            if self.refuse_plain:
                factory = RefusePlainHTTPFactory(factory)
        else:
            factory = RefuseTLSFactory(site)
        self.port = reactor.listenTCP(0, factory, interface="127.0.0.1")
        self.addCleanup(self.port.stopListening)
        self.number = self.port.getHost().port

    def put_blob(self, data: bytes) -> str:
        """Write *data* as a blob of REPO straight into the storage root; its path."""
        digest = sha256(data)
        parsed = parse_digest(digest)
        for logical, content in (
            (layout.blob_data(parsed), data),
            (layout.layer_link(REPO, parsed), layout.link_content(parsed)),
        ):
            path = os.path.join(self.root, logical.lstrip("/"))
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "wb") as f:
                f.write(content)
        return f"/v2/{REPO}/blobs/{digest}"

    def in_thread(self, f: Callable[[], Any]) -> Deferred[Any]:
        return deferToThread(f)

    @contextmanager
    def client(self) -> Iterator[Client]:
        c = Client(self.number, self.tls)
        try:
            yield c
        finally:
            c.close()

    def direct_jobs(self) -> int:
        return self.transfer.calls.count(self.job)

    async def test_whole_blob_then_keep_alive(self) -> None:
        """Two GETs and a HEAD on one connection: each body whole, the direct path taken."""
        data = _blob(6 * MiB, 1)
        other = _blob(3 * MiB + 17, 2)
        path, other_path = self.put_blob(data), self.put_blob(other)

        def fetch() -> list[Response]:
            with self.client() as c:
                first = c.get(path)
                c.send("HEAD", other_path)
                head = c.response(head=True)
                second = c.get(other_path)
                return [first, head, second]

        first, head, second = await self.in_thread(fetch)
        self.assertEqual((first.status, first.body == data), (200, True))
        self.assertEqual(first.headers["content-length"], str(len(data)))
        self.assertEqual((head.status, head.headers["content-length"]), (200, str(len(other))))
        self.assertEqual((second.status, second.body == other), (200, True))
        self.assertGreater(self.direct_jobs(), 0)

    async def test_range(self) -> None:
        """A large range is served directly from its offset; a small one the usual way."""
        data = _blob(5 * MiB, 3)
        path = self.put_blob(data)
        first, last = 1_000_003, 4_500_000

        def fetch() -> tuple[Response, Response, Response]:
            with self.client() as c:
                big = c.get(path, Range=f"bytes={first}-{last}")
                small = c.get(path, Range="bytes=-100")
                c.send("HEAD", path, {"Range": "bytes=10-19"})
                return big, small, c.response(head=True)

        big, small, head = await self.in_thread(fetch)
        self.assertEqual(big.status, 206)
        self.assertEqual(big.headers["content-range"], f"bytes {first}-{last}/{len(data)}")
        self.assertEqual(big.body, data[first : last + 1])
        self.assertEqual((small.status, small.body), (206, data[-100:]))
        self.assertEqual((head.status, head.headers["content-length"]), (206, "10"))
        self.assertGreater(self.direct_jobs(), 0)

    async def test_slow_client_holds_no_thread(self) -> None:
        """A client that stops reading holds no pool thread: another download completes."""
        slow_data, fast_data = _blob(16 * MiB, 4), _blob(4 * MiB, 5)
        slow_path, fast_path = self.put_blob(slow_data), self.put_blob(fast_data)
        slow = await self.in_thread(lambda: Client(self.number, self.tls))
        self.addCleanup(slow.close)
        await self.in_thread(lambda: slow.send("GET", slow_path))
        await self.in_thread(lambda: time.sleep(0.5))  # its socket buffers fill up
        fast = await self.in_thread(lambda: _fetch_one(self, fast_path))
        self.assertEqual(fast.body, fast_data)
        # now the slow one reads, in small sips, and gets every byte
        got = await self.in_thread(lambda: slow.response(delay=0.0, size=256 * 1024))
        self.assertEqual(got.body, slow_data)
        self.assertGreater(self.direct_jobs(), 1)

    async def test_client_disconnects_mid_body(self) -> None:
        """A client gone mid-body: the file is closed, the next client is served."""
        data = _blob(16 * MiB, 6)
        path = self.put_blob(data)
        before = _open_files_under(self.root)

        def abandon() -> None:
            c = Client(self.number, self.tls)
            c.send("GET", path)
            c._fill()
            c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\0\0\0\0\0\0\0")
            c.close()

        await self.in_thread(abandon)
        for _ in range(100):
            if _open_files_under(self.root) == before:
                break
            await self.in_thread(lambda: time.sleep(0.05))
        self.assertEqual(_open_files_under(self.root), before)
        again = await self.in_thread(lambda: _fetch_one(self, path))
        self.assertEqual(again.body, data)

    async def test_concurrent(self) -> None:
        """Eight clients at once, each gets its own blob whole."""
        blobs = [_blob(4 * MiB + i, 10 + i) for i in range(8)]
        paths = [self.put_blob(b) for b in blobs]
        results = await _gather([self.in_thread(lambda p=p: _fetch_one(self, p)) for p in paths])
        self.assertEqual([r.body == b for r, b in zip(results, blobs, strict=True)], [True] * 8)
        self.assertGreater(self.direct_jobs(), 7)

    async def test_pipelined_requests(self) -> None:
        """A second request arriving while the first body is sent is answered after it."""
        data, other = _blob(8 * MiB, 20), _blob(2 * MiB, 21)
        path, other_path = self.put_blob(data), self.put_blob(other)

        def fetch() -> tuple[Response, Response]:
            with self.client() as c:
                c.send("GET", path)
                c.send("GET", other_path)
                return c.response(), c.response()

        first, second = await self.in_thread(fetch)
        self.assertEqual((first.body == data, second.body == other), (True, True))


class TLSDirectTests(DirectTests):
    """TLS connections: encryption in the transfer pool."""

    tls = True
    job = "TLSSink.send"


def _fetch_one(test: DirectTests, path: str) -> Response:
    with test.client() as c:
        return c.get(path)


def _open_files_under(root: str) -> int:
    """Files open below *root* (the driver's own handle on the root itself aside)."""
    count = 0
    below = os.path.join(os.path.realpath(root), "")
    for fd in os.listdir("/proc/self/fd"):
        try:
            if os.readlink(f"/proc/self/fd/{fd}").startswith(below):
                count += 1
        except OSError:
            pass
    return count


async def _gather(ds: Sequence[Deferred[Any]]) -> list[Any]:
    return [await d for d in ds]


def _rmtree(path: str) -> None:
    import shutil

    shutil.rmtree(path, ignore_errors=True)


__all__ = ["DirectTests", "TLSDirectTests", "ensureDeferred"]


class TLSListenerDirectTests(TLSDirectTests):
    """The same as paxd's https listeners wire it: behind the plain-HTTP check."""

    refuse_plain = True
