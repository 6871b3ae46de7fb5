"""The S3 storage driver (``storage: s3``): Docker distribution's S3 layout through boto3.

- :mod:`~paxd.storage.s3.options`: :class:`S3Options`, distribution's ``storage.s3`` keys
- :mod:`~paxd.storage.s3.driver`: :class:`S3Storage`, the driver
- :mod:`~paxd.storage.s3.streams`: streaming readers and multipart writers
- :mod:`~paxd.storage.s3.segments`: how appends to large files avoid copying them
- :mod:`~paxd.storage.s3.bucket`: the blocking boto3 calls (pool side) and error translation

The names are imported on first use: the configuration reads
:mod:`~paxd.storage.s3.options` whatever the driver, and a daemon on
filesystem storage should not pay for boto3 (tens of MiB, half a second).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from paxd.storage.s3.driver import S3Storage
    from paxd.storage.s3.options import S3Options

__all__ = ["S3Options", "S3Storage"]

_HOMES = {"S3Storage": "paxd.storage.s3.driver", "S3Options": "paxd.storage.s3.options"}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(home), name)
