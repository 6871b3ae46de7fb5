"""The registry's error codes, their HTTP statuses, and the exception that carries them.

The codes and the JSON shape are those of Docker distribution and the OCI
distribution spec: ``{"errors": [{"code": ..., "message": ..., "detail": ...}]}``.
"""

from __future__ import annotations

import json
from typing import Any

#: code → (HTTP status, default message)
CODES: dict[str, tuple[int, str]] = {
    "BLOB_UNKNOWN": (404, "blob unknown to registry"),
    "BLOB_UPLOAD_INVALID": (400, "blob upload invalid"),
    "BLOB_UPLOAD_UNKNOWN": (404, "blob upload unknown to registry"),
    "DIGEST_INVALID": (400, "provided digest did not match uploaded content"),
    "MANIFEST_BLOB_UNKNOWN": (400, "manifest references a manifest or blob unknown to registry"),
    "MANIFEST_INVALID": (400, "manifest invalid"),
    "MANIFEST_UNKNOWN": (404, "manifest unknown"),
    "NAME_INVALID": (400, "invalid repository name"),
    "NAME_UNKNOWN": (404, "repository name not known to registry"),
    "SIZE_INVALID": (400, "provided length did not match content length"),
    "TAG_INVALID": (400, "manifest tag did not match URI"),
    "UNAUTHORIZED": (401, "authentication required"),
    "DENIED": (403, "requested access to the resource is denied"),
    "UNSUPPORTED": (405, "The operation is unsupported."),
    "TOOMANYREQUESTS": (429, "too many requests"),
    "PAGINATION_NUMBER_INVALID": (400, "invalid number of results requested"),
    "RANGE_INVALID": (416, "invalid content range"),
    "MANIFEST_TOO_BIG": (413, "manifest is larger than the registry accepts"),
    "UNAVAILABLE": (503, "service unavailable"),
}


class RegistryError(Exception):
    """A failure the client caused or must be told about, rendered as distribution's error JSON.

    :param code: one of :data:`CODES`.
    :param message: overrides the code's default message.
    :param detail: any JSON-serialisable value giving specifics.
    :param status: overrides the code's default HTTP status.
    """

    def __init__(
        self,
        code: str,
        message: str | None = None,
        detail: Any = None,
        status: int | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        if code not in CODES:
            raise ValueError(f"unknown registry error code {code!r}")
        default_status, default_message = CODES[code]
        self.code = code
        self.message = message if message is not None else default_message
        self.detail = detail
        self.status = status if status is not None else default_status
        self.headers = dict(headers or {})
        super().__init__(f"{code}: {self.message}")

    def to_dict(self) -> dict[str, Any]:
        """The error as one entry of the ``errors`` list."""
        entry: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.detail is not None:
            entry["detail"] = self.detail
        return entry

    def to_json(self) -> bytes:
        """The whole error document, as bytes."""
        return json.dumps({"errors": [self.to_dict()]}).encode("utf-8")


def blob_unknown(digest: str) -> RegistryError:
    return RegistryError("BLOB_UNKNOWN", detail={"digest": digest})


def manifest_unknown(reference: str) -> RegistryError:
    return RegistryError("MANIFEST_UNKNOWN", detail={"reference": reference})


def name_unknown(name: str) -> RegistryError:
    return RegistryError("NAME_UNKNOWN", detail={"name": name})


def upload_unknown(uuid: str) -> RegistryError:
    return RegistryError("BLOB_UPLOAD_UNKNOWN", detail={"uuid": uuid})


def unsupported(message: str = "deletes are disabled: set storage.delete.enabled") -> RegistryError:
    return RegistryError("UNSUPPORTED", message)
