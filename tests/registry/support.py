"""What the registry's store tests share: request bodies, a started Registry, two drivers.

Each store's tests are a mixin of :class:`RegistryTestsMixin` run twice: over
MemoryStorage (:class:`OnMemory`) and over FilesystemStorage in a temporary
directory with a synchronous runner (:class:`OnFilesystem`), so that every
Deferred fires at once.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from twisted.internet.defer import Deferred, fail, maybeDeferred, succeed
from twisted.trial.unittest import SynchronousTestCase
from zope.interface import implementer

from paxd.registry import manifests
from paxd.registry.blobs import BlobInfo
from paxd.registry.errors import RegistryError
from paxd.registry.manifeststore import PutManifestResult
from paxd.registry.reference import Digest
from paxd.registry.registry import Registry
from paxd.registry.repository import Repository
from paxd.storage.filesystem import TEMP_PREFIX, FilesystemStorage
from paxd.storage.interface import IReader, IStorageDriver
from paxd.storage.memory import MemoryStorage
from paxd.storage.readers import BytesReader
from paxd.threadpool import SynchronousRunner

if TYPE_CHECKING:
    _Base = SynchronousTestCase
else:
    _Base = object

_T = TypeVar("_T")

BAD_NAMES = ["../x", "a//b", "A", "a" * 256, "", "a/", "/a", "a/../b", "_layers", "a\x00"]
BAD_DIGESTS = ["sha256:xyz", "sha256:" + "A" * 64, "md5:" + "a" * 32, "nope", "sha256:../../x"]
UUID = "12345678-1234-1234-1234-123456789abc"
OTHER_UUID = "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"
CONFIG_TYPE = "application/vnd.oci.image.config.v1+json"
LAYER_TYPE = "application/vnd.oci.image.layer.v1.tar+gzip"


@implementer(IReader)
class BytesBody:
    """A request body: *data* delivered in reads of at most *chunk* bytes."""

    def __init__(self, data: bytes, chunk: int = 7) -> None:
        self._data = data
        self._chunk = chunk
        self.size = len(data)
        self.closed = False

    def read(self, length: int) -> Deferred[bytes]:
        piece, self._data = (
            self._data[: min(length, self._chunk)],
            self._data[min(length, self._chunk) :],
        )
        return succeed(piece)

    def close(self) -> Deferred[None]:
        self.closed = True
        return succeed(None)


@implementer(IReader)
class BrokenBody:
    """A body whose client goes away after *good* bytes."""

    def __init__(self, good: bytes) -> None:
        self._good: bytes | None = good
        self.size = len(good) + 100

    def read(self, length: int) -> Deferred[bytes]:
        if self._good is not None:
            good, self._good = self._good, None
            return succeed(good)
        return fail(ConnectionError("client went away"))

    def close(self) -> Deferred[None]:
        return succeed(None)


@implementer(IReader)
class HeldBody:
    """A body whose first read waits until the test releases it."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.waiting: Deferred[bytes] | None = None
        self.size = len(data)

    def read(self, length: int) -> Deferred[bytes]:
        if self.waiting is None:
            self.waiting = Deferred()
            return self.waiting
        return succeed(b"")

    def release(self) -> None:
        assert self.waiting is not None
        self.waiting.callback(self.data)

    def close(self) -> Deferred[None]:
        return succeed(None)


def link(digest: Digest) -> bytes:
    """What a link file naming *digest* holds."""
    return str(digest).encode()


def on(
    repository: Callable[[], Repository], call: Callable[[Repository], Deferred[_T]]
) -> Deferred[_T]:
    """``call(repository())`` as one Deferred: a NAME_INVALID from the lookup fails it too."""
    return maybeDeferred(lambda: call(repository()))


class RegistryTestsMixin(_Base):
    """A started Registry over whatever driver ``make_driver`` returns, and push helpers."""

    def make_driver(self) -> IStorageDriver:
        """A fresh driver whose Deferreds fire synchronously."""
        raise NotImplementedError

    def files(self) -> dict[str, bytes]:
        """Every file in storage: logical path → content."""
        raise NotImplementedError

    def setUp(self) -> None:
        super().setUp()
        self.driver = self.make_driver()
        self.registry = self.make_registry()

    def make_registry(self, **kwargs: Any) -> Registry:
        """A started Registry over this test's driver (deletes enabled unless told)."""
        kwargs.setdefault("delete_enabled", True)
        kwargs.setdefault("now", lambda: 1_700_000_000.0)
        registry = Registry(self.driver, **kwargs)
        self.successResultOf(registry.start())
        return registry

    # -- helpers ----------------------------------------------------------
    def ok(self, d: Deferred[_T]) -> _T:
        return self.successResultOf(d)

    def error(self, d: Deferred[Any], code: str) -> RegistryError:
        """Assert *d* failed with RegistryError *code*; return the error."""
        e = self.failureResultOf(d, RegistryError).value
        assert isinstance(e, RegistryError)
        self.assertEqual(e.code, code, e.message)
        return e

    def repo(self, name: str, registry: Registry | None = None) -> Repository:
        """The repository *name* of *registry* (this test's by default)."""
        return (registry or self.registry).repository(name)

    def push_blob(self, name: str, data: bytes, registry: Registry | None = None) -> Digest:
        uploads = self.repo(name, registry).uploads
        status = self.ok(uploads.start())
        self.ok(uploads.append(status.uuid, BytesBody(data), 0))
        digest = Digest.of(data)
        self.assertEqual(
            self.ok(uploads.complete(status.uuid, str(digest), None, None)),
            BlobInfo(digest, len(data)),
        )
        return digest

    def image(self, name: str, tag_data: bytes = b"layer", **extra: Any) -> bytes:
        """Push a config and a layer to *name*; the bytes of an OCI manifest using them."""
        config = self.push_blob(name, b'{"config": true}')
        layer = self.push_blob(name, tag_data)
        doc: dict[str, Any] = {
            "schemaVersion": 2,
            "mediaType": manifests.OCI_MANIFEST,
            "config": {"mediaType": CONFIG_TYPE, "digest": str(config), "size": 16},
            "layers": [{"mediaType": LAYER_TYPE, "digest": str(layer), "size": len(tag_data)}],
            **extra,
        }
        return json.dumps(doc, indent=3).encode()

    def put_manifest(
        self,
        name: str,
        ref: str,
        content: bytes,
        content_type: str | None,
        registry: Registry | None = None,
    ) -> Deferred[PutManifestResult]:
        """PUT *content* as the manifest *ref* of *name* (a Deferred)."""
        return self.repo(name, registry).manifests.put(ref, BytesReader(content), content_type)

    def put(
        self, name: str, ref: str, content: bytes, content_type: str | None = None
    ) -> PutManifestResult:
        return self.ok(
            self.put_manifest(name, ref, content, content_type or manifests.OCI_MANIFEST)
        )


class OnMemory(_Base):
    """The tests over MemoryStorage."""

    def make_driver(self) -> IStorageDriver:
        self.memory = MemoryStorage()
        return self.memory

    def files(self) -> dict[str, bytes]:
        return {path: data for path, (data, _) in self.memory._files.items()}


class OnFilesystem(_Base):
    """The tests over FilesystemStorage in a temporary directory."""

    def make_driver(self) -> IStorageDriver:
        self.root = self.mktemp()
        return FilesystemStorage(self.root, SynchronousRunner())

    def files(self) -> dict[str, bytes]:
        found = {}
        for directory, _, names in os.walk(self.root):
            for name in names:
                full = os.path.join(directory, name)
                self.assertFalse(name.startswith(TEMP_PREFIX), full)
                with open(full, "rb") as f:
                    found["/" + os.path.relpath(full, self.root)] = f.read()
        return found
