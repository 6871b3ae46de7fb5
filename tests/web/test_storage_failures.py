"""Storage failing under a request, through the real Site: 503 with Retry-After, never 500."""

from __future__ import annotations

import errno
import os

from twisted.internet.defer import Deferred, fail

from paxd.storage.fsraces import storage_error
from paxd.storage.interface import StorageError
from paxd.storage.memory import MemoryStorage
from tests.web.support import RegistryWebTestCase


class FailingStorage(MemoryStorage):
    """Memory storage whose writes fail as a full disk (or a broken journal) does, when told to."""

    failure: StorageError | None = None

    def put_content(self, path: str, content: bytes) -> Deferred[None]:
        if self.failure is not None:
            return fail(self.failure)
        return super().put_content(path, content)


class StorageFailureTests(RegistryWebTestCase):
    def make_storage(self) -> FailingStorage:
        self.failing = FailingStorage()
        return self.failing

    def test_full_disk_is_507(self) -> None:
        content = self.image_manifest("lib/app", [b"layer"])
        full = OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        self.failing.failure = storage_error(full, "writing", "/docker/registry/v2/x/link")
        answer = self.put_manifest("lib/app", "1.0", content)
        self.assertError(answer, 507, "UNAVAILABLE")
        self.assertIn("No space left on device", answer.json()["errors"][0]["message"])
        self.failing.failure = None
        self.assertEqual(self.put_manifest("lib/app", "1.0", content).code, 201)

    def test_other_storage_errors_are_503(self) -> None:
        self.failing.failure = StorageError("gave up appending after 8 conflicts")
        answer = self.request("POST", "/v2/lib/app/blobs/uploads/")
        self.assertError(answer, 503, "UNAVAILABLE")
        self.assertEqual(self.flushLoggedErrors(), [], "a warning, not a traceback")
