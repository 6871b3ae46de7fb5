"""Request bodies: kept in memory when small, spooled in a thread pool when large.

The spool is tested on its own with a runner the test steps by hand (to see
the connection paused and resumed), and inside a real RegistrySite over a
real thread pool and the real reactor (to see that the writes happen off the
reactor thread and that a client leaving mid-body leaves nothing behind).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar

from twisted.internet import reactor as global_reactor
from twisted.internet.defer import Deferred, maybeDeferred
from twisted.internet.error import ConnectionDone
from twisted.internet.task import deferLater
from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase, TestCase

from paxd.registry.registry import Registry
from paxd.storage.memory import MemoryStorage
from paxd.threadpool import PoolRunner, SynchronousRunner, make_pool
from paxd.web import spool as spool_module
from paxd.web.request import RegistrySite
from paxd.web.root import RegistryRoot
from paxd.web.spool import BodySpool
from tests.web.support import sha256

_P = ParamSpec("_P")
_T = TypeVar("_T")
MiB = 1024 * 1024


class StepRunner:
    """Runs nothing until told: each call waits in a queue until :meth:`step`."""

    def __init__(self) -> None:
        self.calls: list[tuple[Callable[..., Any], tuple[Any, ...], Deferred[Any]]] = []

    def run(self, f: Callable[_P, _T], *args: _P.args, **kwargs: _P.kwargs) -> Deferred[_T]:
        d: Deferred[_T] = Deferred()
        self.calls.append((f, args, d))
        return d

    def step(self) -> None:
        f, args, d = self.calls.pop(0)
        maybeDeferred(f, *args).chainDeferred(d)

    def drain(self) -> None:
        while self.calls:
            self.step()


class RecordingRunner(PoolRunner):
    """A real PoolRunner that notes which thread ran each spool write."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.write_threads: list[threading.Thread] = []

    def run(self, f: Callable[_P, _T], *args: _P.args, **kwargs: _P.kwargs) -> Deferred[_T]:
        def recorded(*a: Any, **kw: Any) -> Any:
            if f is spool_module._write_all:
                self.write_threads.append(threading.current_thread())
            return f(*a, **kw)

        return super().run(recorded, *args, **kwargs)  # type: ignore[arg-type]


class BodySpoolTests(SynchronousTestCase):
    """BodySpool on its own."""

    def setUp(self) -> None:
        self.dir = self.mktemp()
        os.makedirs(self.dir)

    def read_all(self, spool: BodySpool) -> bytes:
        reader = spool.reader()
        parts = []
        while chunk := self.successResultOf(reader.read(300_000)):
            parts.append(chunk)
        self.successResultOf(reader.close())
        return b"".join(parts)

    def test_small_body_stays_in_memory(self) -> None:
        spool = BodySpool(SynchronousRunner(), self.dir)
        spool.write(b"a" * MiB)
        self.assertTrue(spool.in_memory)
        self.successResultOf(spool.flushed())
        self.assertEqual(os.listdir(self.dir), [])
        self.assertEqual(self.read_all(spool), b"a" * MiB)

    def test_large_body_spooled_and_removed(self) -> None:
        spool = BodySpool(SynchronousRunner(), self.dir)
        data = os.urandom(3 * MiB + 5)
        for i in range(0, len(data), 65536):
            spool.write(data[i : i + 65536])
        self.assertFalse(spool.in_memory)
        self.successResultOf(spool.flushed())
        self.assertEqual(len(os.listdir(self.dir)), 1)
        self.assertEqual(spool.size, len(data))
        reader = spool.reader()
        spool.discard()  # the request ends while a reader is still open: the file stays
        self.assertEqual(len(os.listdir(self.dir)), 1)
        self.assertEqual(self.successResultOf(reader.read(10)), data[:10])
        self.successResultOf(reader.close())
        self.assertEqual(os.listdir(self.dir), [])

    def test_pauses_when_the_disk_lags(self) -> None:
        runner = StepRunner()
        events: list[str] = []
        spool = BodySpool(
            runner,
            self.dir,
            pause=lambda: events.append("pause"),
            resume=lambda: events.append("resume"),
        )
        chunk = b"x" * MiB
        for _ in range(9):
            spool.write(chunk)
        self.assertEqual(events, ["pause"])
        flushed = spool.flushed()
        self.assertNoResult(flushed)
        # nothing was written by the caller: every file operation waits in the runner
        runner.drain()
        self.assertEqual(events, ["pause", "resume"])
        self.successResultOf(flushed)
        with open(os.path.join(self.dir, os.listdir(self.dir)[0]), "rb") as f:
            self.assertEqual(f.read(), chunk * 9)
        spool.discard()
        runner.drain()
        self.assertEqual(os.listdir(self.dir), [])

    def test_discard_while_writing(self) -> None:
        runner = StepRunner()
        spool = BodySpool(runner, self.dir)
        spool.write(b"y" * (2 * MiB))
        runner.step()  # the file is created; a write is now queued in the runner
        self.assertEqual(len(os.listdir(self.dir)), 1)
        spool.discard()
        runner.drain()
        self.assertEqual(os.listdir(self.dir), [])

    def test_write_failure(self) -> None:
        spool = BodySpool(SynchronousRunner(), os.path.join(self.dir, "missing"))
        spool.write(b"z" * (2 * MiB))
        self.failureResultOf(spool.flushed(), FileNotFoundError)
        self.flushLoggedErrors(FileNotFoundError)


class WriteAllTests(SynchronousTestCase):
    """The spool's writev loop: every byte, in order, whatever the kernel takes at once."""

    def test_partial_writes(self) -> None:
        real = os.writev
        calls: list[int] = []

        def stingy(fd: int, buffers: Any) -> int:
            calls.append(len(buffers))
            # at most 5 bytes, and never more than the first two buffers
            data = b"".join(bytes(b) for b in list(buffers)[:2])[:5]
            return real(fd, [data])

        self.patch(os, "writev", stingy)
        self.patch(spool_module, "_IOV_MAX", 3)
        path = self.mktemp()
        fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
        chunks: list[bytes | bytearray] = [b"abc", b"", bytearray(b"defghij"), b"k", b"lmnopq"]
        try:
            self.assertEqual(spool_module._write_all(fd, chunks), 17)
        finally:
            os.close(fd)
        with open(path, "rb") as f:
            self.assertEqual(f.read(), b"abcdefghijklmnopq")
        self.assertTrue(all(n <= 3 for n in calls), calls)
        # the caller's list is left alone
        self.assertEqual(len(chunks), 5)


def _request_head(method: bytes, path: bytes, length: int) -> bytes:
    return b"%s %s HTTP/1.1\r\nHost: registry\r\nContent-Length: %d\r\n\r\n" % (
        method,
        path,
        length,
    )


class ChannelPauseTests(SynchronousTestCase):
    """The connection is paused while the spool lags, in a real HTTPChannel."""

    def test_paused_and_resumed(self) -> None:
        runner = StepRunner()
        registry = Registry(MemoryStorage())
        self.successResultOf(registry.start())
        spool_dir = self.mktemp()
        os.makedirs(spool_dir)
        site = RegistrySite(
            RegistryRoot(registry), runner=runner, spool_dir=spool_dir, reactor=MemoryReactorClock()
        )
        channel = site.buildProtocol(None)
        transport = StringTransport()
        channel.makeConnection(transport)
        data = b"d" * (10 * MiB)
        channel.dataReceived(
            _request_head(
                b"POST", b"/v2/a/blobs/uploads/?digest=" + sha256(data).encode(), len(data)
            )
        )
        for i in range(0, len(data), MiB):
            channel.dataReceived(data[i : i + MiB])
        self.assertEqual(transport.producerState, "paused")
        self.assertEqual(transport.value(), b"")  # not processed before the body is on disk
        runner.drain()
        self.assertEqual(transport.producerState, "producing")
        self.assertIn(b" 201 ", transport.value().split(b"\r\n")[0])
        self.assertEqual(os.listdir(spool_dir), [])


class ThreadPoolSpoolTests(TestCase):
    """A RegistrySite over a real thread pool and the real reactor."""

    def setUp(self) -> None:
        self.pool = make_pool("test-disk", 2)
        self.pool.start()
        self.addCleanup(self.pool.stop)
        self.runner = RecordingRunner(global_reactor, self.pool)
        self.registry = Registry(MemoryStorage(), delete_enabled=True)
        self.spool_dir = self.mktemp()
        os.makedirs(self.spool_dir)
        self.site = RegistrySite(
            RegistryRoot(self.registry), runner=self.runner, spool_dir=self.spool_dir, timeout=None
        )
        self.channel = self.site.buildProtocol(None)
        self.transport = StringTransport()
        self.channel.makeConnection(self.transport)

    async def wait_for(self, condition: Callable[[], bool], what: str) -> None:
        for _ in range(500):
            if condition():
                return
            await deferLater(global_reactor, 0.01, lambda: None)
        self.fail(f"timed out waiting for {what}")

    def spool_size(self) -> int:
        names = os.listdir(self.spool_dir)
        return os.path.getsize(os.path.join(self.spool_dir, names[0])) if names else 0

    async def test_large_body_spooled_off_the_reactor(self) -> None:
        await self.registry.start()
        data = os.urandom(3 * MiB)
        digest = sha256(data).encode()
        self.channel.dataReceived(
            _request_head(b"POST", b"/v2/big/blobs/uploads/?digest=" + digest, len(data))
        )
        self.channel.dataReceived(data[: 2 * MiB])
        await self.wait_for(lambda: self.spool_size() == 2 * MiB, "the first 2 MiB on disk")
        self.assertEqual(self.transport.value(), b"")
        self.channel.dataReceived(data[2 * MiB :])
        await self.wait_for(lambda: b"\r\n\r\n" in self.transport.value(), "the response")
        self.assertIn(b" 201 ", self.transport.value().split(b"\r\n")[0])
        self.assertTrue(self.runner.write_threads)
        self.assertNotIn(threading.main_thread(), self.runner.write_threads)
        info = await self.registry.repository("big").blobs.stat(digest.decode())
        self.assertEqual(info.size, len(data))
        await self.wait_for(lambda: os.listdir(self.spool_dir) == [], "the spool removed")

    async def test_connection_lost_mid_body(self) -> None:
        await self.registry.start()
        status = await self.registry.repository("big").uploads.start()
        path = f"/v2/big/blobs/uploads/{status.uuid}".encode()
        self.channel.dataReceived(_request_head(b"PATCH", path, 4 * MiB))
        self.channel.dataReceived(b"p" * (2 * MiB))
        await self.wait_for(lambda: self.spool_size() == 2 * MiB, "the spool file")
        self.channel.connectionLost(Failure(ConnectionDone("client left")))
        await self.wait_for(lambda: os.listdir(self.spool_dir) == [], "the spool removed")
        # the registry never saw the partial body
        uploads = self.registry.repository("big").uploads
        self.assertEqual((await uploads.status(status.uuid)).offset, 0)
