"""Request bodies stream into storage in the disk pool, over a real thread pool and reactor.

(The channel's decisions — refusals on the headers, holding, backpressure,
deadlines — are tested in memory in ``test_channel.py``.)  Here a
RegistrySite over the filesystem driver on a real pool shows that the body's
writes happen off the reactor thread, as the body arrives, that the answer
comes only once all of it is stored, and that a client leaving mid-body
leaves nothing behind.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar

from twisted.internet import reactor as global_reactor
from twisted.internet.defer import Deferred
from twisted.internet.task import deferLater
from twisted.trial.unittest import TestCase

from paxd.registry import layout
from paxd.registry.registry import Registry
from paxd.storage import fsfiles
from paxd.storage.filesystem import FilesystemStorage
from paxd.threadpool import PoolRunner, make_pool
from paxd.web.request import RegistrySite
from paxd.web.root import RegistryRoot
from tests.web.rawhttp import Connection, MiB, head
from tests.web.support import sha256

_P = ParamSpec("_P")
_T = TypeVar("_T")


class RecordingRunner(PoolRunner):
    """A real PoolRunner that notes which thread wrote each piece of a body."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.write_threads: list[threading.Thread] = []

    def run(self, f: Callable[_P, _T], *args: _P.args, **kwargs: _P.kwargs) -> Deferred[_T]:
        def recorded(*a: Any, **kw: Any) -> Any:
            # the driver runs its writes as _guarded(op, path, _write_hashed, ...)
            if fsfiles._write_hashed in (f, *a[2:3]):
                self.write_threads.append(threading.current_thread())
            return f(*a, **kw)

        return super().run(recorded, *args, **kwargs)  # type: ignore[arg-type]


class ThreadPoolStreamTests(TestCase):
    """A RegistrySite over the filesystem driver, a real thread pool and the real reactor."""

    def setUp(self) -> None:
        self.pool = make_pool("test-disk", 2)
        self.pool.start()
        self.addCleanup(self.pool.stop)
        self.runner = RecordingRunner(global_reactor, self.pool)
        self.root = self.mktemp()
        self.registry = Registry(FilesystemStorage(self.root, self.runner), delete_enabled=True)
        self.site = RegistrySite(RegistryRoot(self.registry), timeout=None)
        self.conn = Connection(self.site)
        self.addCleanup(self.conn.lose)  # no timer of its own left on the reactor

    async def wait_for(self, condition: Callable[[], bool], what: str) -> None:
        for _ in range(500):
            if condition():
                return
            await deferLater(global_reactor, 0.01, lambda: None)
        self.fail(f"timed out waiting for {what}")

    def uploads(self, name: str) -> list[str]:
        path = os.path.join(self.root, "docker/registry/v2/repositories", name, "_uploads")
        return os.listdir(path) if os.path.isdir(path) else []

    def stored(self, name: str, uuid: str) -> int:
        path = os.path.join(self.root, layout.upload_data(name, uuid).lstrip("/"))
        return os.path.getsize(path) if os.path.exists(path) else -1

    async def test_large_body_streamed_off_the_reactor(self) -> None:
        await self.registry.start()
        data = os.urandom(3 * MiB)
        digest = sha256(data).encode()
        self.conn.send(head("POST", "/v2/big/blobs/uploads/?digest=" + digest.decode(), len(data)))
        await self.wait_for(lambda: len(self.uploads("big")) == 1, "the upload")
        [uuid] = self.uploads("big")
        self.conn.send(data[: 2 * MiB])
        await self.wait_for(lambda: self.stored("big", uuid) == 2 * MiB, "2 MiB in the upload")
        self.assertEqual(self.conn.transport.value(), b"")  # answered only once all is stored
        self.conn.send(data[2 * MiB :])
        await self.wait_for(lambda: b"\r\n\r\n" in self.conn.transport.value(), "the response")
        self.assertEqual(self.conn.responses()[0].status, 201)
        self.assertTrue(self.runner.write_threads)
        self.assertNotIn(threading.main_thread(), self.runner.write_threads)
        info = await self.registry.repository("big").blobs.stat(digest.decode())
        self.assertEqual(info.size, len(data))
        self.assertEqual(self.uploads("big"), [])

    async def test_connection_lost_mid_body(self) -> None:
        await self.registry.start()
        status = await self.registry.repository("big").uploads.start()
        path = f"/v2/big/blobs/uploads/{status.uuid}"
        self.conn.send(head("PATCH", path, 4 * MiB))
        self.conn.send(b"p" * (2 * MiB))
        await self.wait_for(lambda: self.stored("big", status.uuid) == 2 * MiB, "the first 2 MiB")
        self.conn.lose()
        # the part written is cut off again: the registry never sees a partial body
        await self.wait_for(lambda: self.stored("big", status.uuid) == 0, "the upload cut back")
        uploads = self.registry.repository("big").uploads
        self.assertEqual((await uploads.status(status.uuid)).offset, 0)
