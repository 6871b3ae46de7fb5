"""The registry's error codes and the exception that carries them: codes, messages, details.

The codes and the JSON shape are those of Docker distribution and the OCI
distribution spec: ``{"errors": [{"code": ..., "message": ..., "detail": ...}]}``.
Nothing here is HTTP: :mod:`paxd.web.errors` gives each code its status and
adds the headers an answer carries.
"""

from __future__ import annotations

import json
from typing import Any

#: code → default message
CODES: dict[str, str] = {
    "BLOB_UNKNOWN": "blob unknown to registry",
    "BLOB_UPLOAD_INVALID": "blob upload invalid",
    "BLOB_UPLOAD_UNKNOWN": "blob upload unknown to registry",
    "DIGEST_INVALID": "provided digest did not match uploaded content",
    "MANIFEST_BLOB_UNKNOWN": "manifest references a manifest or blob unknown to registry",
    "MANIFEST_INVALID": "manifest invalid",
    "MANIFEST_UNKNOWN": "manifest unknown",
    "NAME_INVALID": "invalid repository name",
    "NAME_UNKNOWN": "repository name not known to registry",
    "SIZE_INVALID": "provided length did not match content length",
    "TAG_INVALID": "manifest tag did not match URI",
    "UNAUTHORIZED": "authentication required",
    "DENIED": "requested access to the resource is denied",
    "UNSUPPORTED": "The operation is unsupported.",
    "TOOMANYREQUESTS": "too many requests",
    "PAGINATION_NUMBER_INVALID": "invalid number of results requested",
    "RANGE_INVALID": "invalid content range",
    "MANIFEST_TOO_BIG": "manifest is larger than the registry accepts",
    "UNAVAILABLE": "service unavailable",
}


class RegistryError(Exception):
    """A failure the client caused or must be told about, rendered as distribution's error JSON.

    :param code: one of :data:`CODES`.
    :param message: overrides the code's default message.
    :param detail: any JSON-serialisable value giving specifics.
    """

    def __init__(self, code: str, message: str | None = None, detail: Any = None) -> None:
        if code not in CODES:
            raise ValueError(f"unknown registry error code {code!r}")
        self.code = code
        self.message = message if message is not None else CODES[code]
        self.detail = detail
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
