"""Domain errors as HTTP: the status of every code, and the headers an error calls for."""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from paxd.registry.errors import CODES, RegistryError
from paxd.web.errors import (
    STATUS,
    HTTPError,
    http_headers,
    http_status,
    internal_error,
    method_not_allowed,
    not_found,
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
