"""Registry errors as HTTP answers: statuses, headers, error documents, and the error resource.

The domain raises :class:`~paxd.registry.errors.RegistryError` with a code,
a message and details; this module alone turns one into HTTP: the status of
its code (distribution's), and the headers an answer carries
(:func:`http_headers`).  Errors the web layer raises itself, whose status or
headers their code does not imply (a 404 for no endpoint, 405 with
``Allow``, 416 with ``Content-Range``, a 500), are :class:`HTTPError`.

A storage failure that reaches the web layer is never a 500: a full storage
(:class:`~paxd.storage.interface.StorageFull`) is a 507; storage that is
failing (:class:`~paxd.storage.interface.StorageUnavailable`, or any other
:class:`~paxd.storage.interface.StorageError`) is a 503 naming the storage,
with ``Retry-After``; something removed while the request ran (a
``PathNotFound`` the domain did not expect) is the 404 the path's kind
calls for; a path the storage refuses, a 400 (:func:`storage_failure`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web.iweb import IRequest
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET

from paxd.registry.errors import RegistryError
from paxd.storage.interface import (
    InvalidPath,
    PathNotFound,
    StorageError,
    StorageFull,
    StorageUnavailable,
)

log = Logger()

#: code → HTTP status (distribution's)
STATUS: dict[str, int] = {
    "BLOB_UNKNOWN": 404,
    "BLOB_UPLOAD_INVALID": 400,
    "BLOB_UPLOAD_UNKNOWN": 404,
    "DIGEST_INVALID": 400,
    "MANIFEST_BLOB_UNKNOWN": 400,
    "MANIFEST_INVALID": 400,
    "MANIFEST_UNKNOWN": 404,
    "NAME_INVALID": 400,
    "NAME_UNKNOWN": 404,
    "SIZE_INVALID": 400,
    "TAG_INVALID": 400,
    "UNAUTHORIZED": 401,
    "DENIED": 403,
    "UNSUPPORTED": 405,
    "TOOMANYREQUESTS": 429,
    "PAGINATION_NUMBER_INVALID": 400,
    "RANGE_INVALID": 416,
    "MANIFEST_TOO_BIG": 413,
    "UNAVAILABLE": 503,
}


class HTTPError(RegistryError):
    """A RegistryError raised by the web layer, with a status or headers of its own.

    :param status: overrides the code's status.
    :param headers: response headers the answer carries.
    """

    def __init__(
        self,
        code: str,
        message: str | None = None,
        detail: Any = None,
        *,
        status: int | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(code, message, detail)
        self.status = status
        self.headers = dict(headers or {})


def http_status(error: RegistryError) -> int:
    """The HTTP status of *error*."""
    if isinstance(error, HTTPError) and error.status is not None:
        return error.status
    return STATUS[error.code]


def upload_range(offset: int) -> str:
    """The ``Range`` header of an upload that holds *offset* bytes (``0-0`` when empty)."""
    return f"0-{max(offset - 1, 0)}"


def http_headers(error: RegistryError) -> dict[str, str]:
    """The response headers *error* calls for.

    A chunk that does not start where its upload is (RANGE_INVALID with the
    upload's ``offset``) is told where that is, in ``Range``.
    """
    headers: dict[str, str] = {}
    detail = error.detail
    if error.code == "RANGE_INVALID" and isinstance(detail, dict) and "offset" in detail:
        headers["Range"] = upload_range(detail["offset"])
    if isinstance(error, HTTPError):
        headers.update(error.headers)
    return headers


def write_error(request: IRequest, error: RegistryError) -> None:
    """Answer *request* with *error* as distribution's error JSON, and finish it."""
    body = error.to_json()
    request.setResponseCode(http_status(error))
    request.setHeader(b"Content-Type", b"application/json")
    for name, value in http_headers(error).items():
        request.setHeader(name.encode("latin-1"), value.encode("latin-1"))
    request.setHeader(b"Content-Length", b"%d" % len(body))
    if request.method != b"HEAD":
        request.write(body)
    request.finish()


def internal_error() -> RegistryError:
    """What the client is told about a bug or an unexpected failure (never the details)."""
    return HTTPError("UNAVAILABLE", "internal error", status=500)


#: seconds a client is asked to wait after a storage failure
STORAGE_RETRY_AFTER = 10
#: path segment → the 404 code for something removed under a request of that kind
_GONE_CODES = (
    (b"/blobs/uploads/", "BLOB_UPLOAD_UNKNOWN"),
    (b"/blobs/", "BLOB_UNKNOWN"),
    (b"/manifests/", "MANIFEST_UNKNOWN"),
)


def storage_failure(error: StorageError, uri: bytes = b"") -> RegistryError:
    """The answer for a storage failure the domain passed on (see the module docstring)."""
    if isinstance(error, PathNotFound):
        code = next((c for part, c in _GONE_CODES if part in uri), "NAME_UNKNOWN")
        return RegistryError(code, "it was removed while the request ran")
    if isinstance(error, InvalidPath):
        return RegistryError("NAME_INVALID", "the storage refuses this path")
    return storage_unavailable(error)


def storage_unavailable(error: StorageError) -> RegistryError:
    """503 UNAVAILABLE for a storage failure: not the client's doing, and worth a retry.

    The message names the storage and why (S3's bucket and endpoint); the
    detail has the storage alone, for clients that read it.
    """
    storage = error.storage if isinstance(error, StorageUnavailable) else "storage"
    return HTTPError(
        "UNAVAILABLE",
        f"storage is unavailable: {error}" if storage == "storage" else str(error),
        detail={"storage": storage},
        headers={"Retry-After": str(STORAGE_RETRY_AFTER)},
    )


def error_for(f: Failure, request: IRequest | None = None) -> RegistryError:
    """The error to send for *f*: a RegistryError as it is, a full storage a 507,
    another storage failure as :func:`storage_failure` says; anything else
    logged with its traceback, then a 500."""
    if f.check(RegistryError):
        error = f.value
        assert isinstance(error, RegistryError)
        return error
    if f.check(StorageFull):
        # not the client's doing, and no bug: 507, and the operator is told
        log.error("{error}: refusing writes until space is freed", error=str(f.value))
        return HTTPError(
            "UNAVAILABLE", f"{f.value}; nothing was stored, try again later", status=507
        )
    method = request.method.decode("latin-1", "replace") if request is not None else "?"
    uri = request.uri[:300].decode("latin-1", "replace") if request is not None else "?"
    if f.check(StorageError):
        assert isinstance(f.value, StorageError)
        log.warn("{method} {uri}: {reason}", method=method, uri=uri, reason=str(f.value)[:500])
        return storage_failure(f.value, request.uri if request is not None else b"")
    log.failure("unexpected failure answering {method} {uri}", f, method=method, uri=uri)
    return internal_error()


def not_found(what: str = "not found") -> RegistryError:
    """The 404 for a path that names no endpoint (distribution has no code for it)."""
    return HTTPError("UNSUPPORTED", what, status=404)


def method_not_allowed(method: bytes, allowed: frozenset[bytes]) -> RegistryError:
    """405 UNSUPPORTED naming the methods the resource does answer."""
    names = ", ".join(sorted(m.decode("ascii") for m in allowed))
    return HTTPError(
        "UNSUPPORTED",
        f"method {method.decode('latin-1', 'replace')[:20]} is not allowed here",
        detail={"allowed": names},
        headers={"Allow": names},
    )


class ErrorResource(Resource):
    """A leaf answering every request (whatever the path below it) with one error.

    The one error answer of the web layer and of the auth guard (401 with its
    challenge, 429 for a blocked address).

    :param error: the error document to send, with its status.
    :param headers: more response headers (``WWW-Authenticate``, ``Retry-After``).
    """

    isLeaf = True

    def __init__(self, error: RegistryError, headers: Mapping[bytes, bytes] | None = None) -> None:
        super().__init__()
        self.error = error
        self.headers = dict(headers or {})

    def getChildWithDefault(self, path: bytes, request: IRequest) -> ErrorResource:
        """Stop traversal here: whatever lies below, the answer is this error."""
        return self

    def render(self, request: IRequest) -> int:
        """Write the extra headers and the error document, and finish."""
        for name, value in self.headers.items():
            request.setHeader(name, value)
        # docker looks for it on the 401 to /v2/, even outside a RegistrySite
        if not request.responseHeaders.hasHeader(b"docker-distribution-api-version"):
            request.setHeader(b"docker-distribution-api-version", b"registry/2.0")
        write_error(request, self.error)
        return NOT_DONE_YET
