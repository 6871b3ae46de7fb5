"""Domain errors as HTTP: the status of every code, and the headers an error calls for."""

from __future__ import annotations

from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from paxd.registry.errors import CODES, RegistryError
from paxd.storage.interface import InvalidPath, PathNotFound, StorageError, StorageUnavailable
from paxd.web.errors import (
    STATUS,
    STORAGE_RETRY_AFTER,
    HTTPError,
    error_for,
    http_headers,
    http_status,
    internal_error,
    method_not_allowed,
    not_found,
    storage_failure,
)


class StatusTests(SynchronousTestCase):
    def test_every_code_has_a_status(self) -> None:
        self.assertEqual(set(STATUS), set(CODES))
        for code in CODES:
            self.assertEqual(http_status(RegistryError(code)), STATUS[code])

    def test_distributions_statuses(self) -> None:
        cases = {
            "BLOB_UNKNOWN": 404,
            "DIGEST_INVALID": 400,
            "DENIED": 403,
            "UNSUPPORTED": 405,
            "RANGE_INVALID": 416,
            "MANIFEST_TOO_BIG": 413,
            "TOOMANYREQUESTS": 429,
            "UNAVAILABLE": 503,
        }
        for code, status in cases.items():
            self.assertEqual(http_status(RegistryError(code)), status, code)

    def test_web_errors_with_a_status_of_their_own(self) -> None:
        self.assertEqual(http_status(not_found()), 404)
        self.assertEqual(not_found().code, "UNSUPPORTED")
        self.assertEqual(http_status(internal_error()), 500)
        self.assertEqual(internal_error().to_dict()["message"], "internal error")
        self.assertEqual(http_status(HTTPError("DENIED")), 403)


class HeaderTests(SynchronousTestCase):
    def test_plain_domain_errors_carry_none(self) -> None:
        self.assertEqual(http_headers(RegistryError("BLOB_UNKNOWN", detail={"digest": "x"})), {})
        # a malformed Content-Range: no upload offset to tell
        self.assertEqual(
            http_headers(RegistryError("RANGE_INVALID", detail={"content_range": "a-b"})), {}
        )

    def test_chunk_out_of_order_is_told_the_upload_range(self) -> None:
        for offset, expected in [(0, "0-0"), (1, "0-0"), (3, "0-2")]:
            error = RegistryError("RANGE_INVALID", detail={"offset": offset, "start": 9})
            self.assertEqual(http_headers(error), {"Range": expected})

    def test_method_not_allowed_names_the_methods(self) -> None:
        error = method_not_allowed(b"PUT", frozenset({b"HEAD", b"GET"}))
        self.assertEqual((http_status(error), http_headers(error)), (405, {"Allow": "GET, HEAD"}))
        self.assertEqual(error.detail, {"allowed": "GET, HEAD"})

    def test_http_error_headers(self) -> None:
        error = HTTPError("RANGE_INVALID", headers={"Content-Range": "bytes */10"})
        self.assertEqual(http_headers(error), {"Content-Range": "bytes */10"})
        self.assertEqual(
            error.to_dict(), {"code": "RANGE_INVALID", "message": "invalid content range"}
        )


class StorageFailureTests(SynchronousTestCase):
    """A storage failure the domain passes on is never a 500."""

    def test_unavailable_storage_is_503_with_retry_after(self) -> None:
        error = storage_failure(StorageUnavailable("S3 bucket b at http://rgw", "timed out"))
        self.assertEqual((error.code, http_status(error)), ("UNAVAILABLE", 503))
        self.assertEqual(http_headers(error), {"Retry-After": str(STORAGE_RETRY_AFTER)})
        self.assertIn("S3 bucket b at http://rgw is unavailable: timed out", error.message)

    def test_any_other_storage_error_is_503(self) -> None:
        error = storage_failure(StorageError("gave up appending after 8 conflicts"))
        self.assertEqual(http_status(error), 503)

    def test_removed_meanwhile_is_the_404_of_the_paths_kind(self) -> None:
        gone = PathNotFound("/docker/registry/v2/x")
        cases = {
            b"/v2/a/b/blobs/uploads/1234": "BLOB_UPLOAD_UNKNOWN",
            b"/v2/a/blobs/sha256:ab": "BLOB_UNKNOWN",
            b"/v2/a/manifests/latest": "MANIFEST_UNKNOWN",
            b"/v2/a/tags/list": "NAME_UNKNOWN",
        }
        for uri, code in cases.items():
            error = storage_failure(gone, uri)
            self.assertEqual((error.code, http_status(error)), (code, 404), uri)
            self.assertNotIn("/docker/registry", error.message, "no storage path leaks")

    def test_refused_path_is_400(self) -> None:
        error = storage_failure(InvalidPath("invalid storage path: '/a/../b'"))
        self.assertEqual((error.code, http_status(error)), ("NAME_INVALID", 400))
        self.assertNotIn("/a/../b", error.message)

    def test_error_for_logs_a_warning_not_a_traceback(self) -> None:
        error = error_for(Failure(StorageUnavailable("filesystem storage", "No space left")))
        self.assertEqual(http_status(error), 503)
        self.assertEqual(self.flushLoggedErrors(), [])
