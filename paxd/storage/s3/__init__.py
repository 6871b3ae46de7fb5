"""The S3 storage driver (``storage: s3``): Docker distribution's S3 layout through boto3.

- :mod:`~paxd.storage.s3.options`: :class:`S3Options`, distribution's ``storage.s3`` keys
- :mod:`~paxd.storage.s3.driver`: :class:`S3Storage`, the driver
- :mod:`~paxd.storage.s3.streams`: streaming readers and multipart writers
- :mod:`~paxd.storage.s3.segments`: how appends to large files avoid copying them
- :mod:`~paxd.storage.s3.bucket`: the blocking boto3 calls (pool side) and error translation
"""

from paxd.storage.s3.driver import S3Storage
from paxd.storage.s3.options import S3Options

__all__ = ["S3Options", "S3Storage"]
