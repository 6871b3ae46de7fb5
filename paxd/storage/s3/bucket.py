"""The bucket, as the S3 driver's pool threads see it: blocking boto3 calls, keys, errors.

Everything here blocks and runs only in the driver's thread pool.  The boto3
client is made on first use, in the pool too: resolving credentials may read
files or ask an instance metadata service, and the reactor never waits for
either.  A boto3 client is thread-safe, so the pool's threads share one.

Errors leave this module translated: a missing key becomes
:class:`~paxd.storage.interface.PathNotFound` for the logical path the caller
was working on; anything that says S3 cannot serve (no connection, a timeout,
a 5xx, throttling, refused credentials, a missing bucket) becomes
:class:`~paxd.storage.interface.StorageUnavailable` naming the bucket and its
endpoint.  Nothing is remembered between calls, so the next one tries again.
"""

from __future__ import annotations

import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import IO, TYPE_CHECKING, Any, cast

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, ParamValidationError
from urllib3.exceptions import HTTPError as URLLib3Error
from urllib3.exceptions import InsecureRequestWarning

from paxd.storage.interface import PathNotFound, StorageError, StorageUnavailable
from paxd.storage.s3.options import MAX_PART, S3Options
from paxd.storage.s3.segments import copy_ranges

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.type_defs import CompletedPartTypeDef

#: S3's most keys in one listing page and in one DeleteObjects request
LIST_MAX = 1000
#: error codes that mean "no such key" (HEAD has no body, so only its status)
NOT_FOUND_CODES = frozenset({"NoSuchKey", "404", "NotFound"})


def error_code(error: ClientError) -> str:
    """The S3 error code of *error* (``"NoSuchKey"``, ``"404"`` for a HEAD, …)."""
    return str(error.response.get("Error", {}).get("Code", ""))


def translate(error: BaseException, storage: str, path: str | None) -> BaseException:
    """What *error*, raised by boto3 while working on logical *path*, means to a caller."""
    if isinstance(error, StorageError):
        return error
    if isinstance(error, ClientError):
        code = error_code(error)
        if code in NOT_FOUND_CODES and path is not None:
            return PathNotFound(path)
        if code == "PreconditionFailed":
            return StorageError(f"{path or 'an object'} in {storage} changed while in use")
        return StorageUnavailable(storage, str(error))
    if isinstance(error, ParamValidationError):
        return error  # a bug here, not S3's doing
    if isinstance(error, BotoCoreError | URLLib3Error | OSError):
        return StorageUnavailable(storage, str(error) or type(error).__name__)
    return error


class Bucket:
    """One bucket under one key prefix (``rootdirectory``); blocking, for pool threads only.

    :param session: the boto3 session to make the client from (tests hook
        its events); by default a new one, made in the pool on first use.
    """

    def __init__(self, options: S3Options, session: boto3.session.Session | None = None) -> None:
        self.options = options
        self.name = options.bucket
        self.prefix = options.key_prefix
        self.storage = options.describe()
        self._session = session
        self._client: S3Client | None = None
        self._lock = threading.Lock()

    # -- the client ----------------------------------------------------------
    @property
    def client(self) -> S3Client:
        """The boto3 client, made on first use (in the pool: it may resolve credentials)."""
        client = self._client
        if client is None:
            with self._lock:
                if self._client is None:
                    self._client = self._make_client()
                client = self._client
        return client

    def _make_client(self) -> S3Client:
        o = self.options
        config = Config(
            region_name=o.region or "us-east-1",
            signature_version="s3v4" if o.v4auth else "s3",
            s3={"addressing_style": "path" if o.path_style else "auto"},
            connect_timeout=o.connecttimeout,
            read_timeout=o.readtimeout,
            retries={"mode": "standard", "total_max_attempts": o.maxattempts},
            max_pool_connections=o.maxconnections,
            user_agent_extra=o.useragent,
            tcp_keepalive=True,
            # Checksums only where S3 demands them: RGW and other S3 servers
            # refuse the trailing checksums newer SDKs send by default.
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        )
        if o.skipverify:
            warnings.filterwarnings("ignore", category=InsecureRequestWarning)
        session = self._session or boto3.session.Session()
        client: S3Client = session.client(
            "s3",
            endpoint_url=o.endpoint_url,
            verify=not o.skipverify,
            aws_access_key_id=o.accesskey,
            aws_secret_access_key=o.secretkey,
            aws_session_token=o.sessiontoken,
            config=config,
        )
        return client

    # -- keys ----------------------------------------------------------------
    def key(self, path: str) -> str:
        """The key of logical *path* (a file): the prefix, then the path without its slash."""
        return self.prefix + path[1:]

    def dir_prefix(self, path: str) -> str:
        """What the key of everything below directory *path* starts with."""
        return self.prefix if path == "/" else self.key(path) + "/"

    def path(self, key: str) -> str:
        """The logical path of *key* (one that starts with the prefix)."""
        return "/" + key[len(self.prefix) :]

    @contextmanager
    def errors(self, path: str | None) -> Iterator[None]:
        """Translate what boto3 raises inside the block (see :func:`translate`)."""
        try:
            yield
        except Exception as e:
            translated = translate(e, self.storage, path)
            if translated is e:
                raise
            raise translated from e

    # -- objects -------------------------------------------------------------
    def head(self, key: str) -> dict[str, Any] | None:
        """The object's HEAD response, or None if there is no such key."""
        try:
            return dict(self.client.head_object(Bucket=self.name, Key=key))
        except ClientError as e:
            if error_code(e) in NOT_FOUND_CODES:
                return None
            raise

    def get(self, key: str, offset: int = 0, if_match: str | None = None) -> dict[str, Any]:
        """A GET response from *offset* on (its ``Body`` streams); raises ClientError."""
        args: dict[str, Any] = {"Bucket": self.name, "Key": key}
        if offset:
            args["Range"] = f"bytes={offset}-"
        if if_match is not None:
            args["IfMatch"] = if_match
        return dict(self.client.get_object(**args))

    def read(self, key: str) -> bytes:
        """The whole content of *key*; raises ClientError (NoSuchKey) if absent."""
        body = self.get(key)["Body"]
        try:
            data: bytes = body.read()
            return data
        finally:
            body.close()

    def put(
        self,
        key: str,
        content: bytes | IO[bytes],
        metadata: dict[str, str] | None = None,
        **extra: Any,
    ) -> dict[str, Any]:
        """Store *content* at *key* in one request (atomic: readers see old or new)."""
        args: dict[str, Any] = {"Bucket": self.name, "Key": key, "Body": content}
        args.update(self.options.write_args())
        if metadata:
            args["Metadata"] = metadata
        args.update(extra)
        return dict(self.client.put_object(**args))

    def copy(self, source: str, destination: str) -> None:
        """Copy one object of at most 5 GiB in one request (PUT Object - Copy)."""
        self.client.copy_object(
            Bucket=self.name,
            Key=destination,
            CopySource={"Bucket": self.name, "Key": source},
            MetadataDirective="COPY",
            **self.options.write_args(),  # type: ignore[arg-type]
        )

    def copy_any(self, source: str, destination: str, size: int) -> None:
        """Copy one object of any size: in one request up to 5 GiB, else part by part."""
        if size <= MAX_PART:
            self.copy(source, destination)
            return
        upload_id = self.start_upload(destination)
        try:
            ranges = copy_ranges(size, self.options.multipartcopychunksize)
            parts = [
                self.copy_part(source, destination, upload_id, number, first, last)
                for number, (first, last) in enumerate(ranges, 1)
            ]
            self.complete_upload(destination, upload_id, parts)
        except BaseException:
            with suppress(Exception):
                self.abort_upload(destination, upload_id)
            raise

    def delete_keys(self, keys: list[str]) -> None:
        """Delete *keys*, in batches of :data:`LIST_MAX`; any key S3 refused fails the call."""
        for start in range(0, len(keys), LIST_MAX):
            batch = keys[start : start + LIST_MAX]
            response = self.client.delete_objects(
                Bucket=self.name,
                Delete={"Objects": [{"Key": k} for k in batch], "Quiet": True},
            )
            refused = [e for e in response.get("Errors", []) if e.get("Code") != "NoSuchKey"]
            if refused:
                first = refused[0]
                raise StorageUnavailable(
                    self.storage,
                    f"{len(refused)} deletes refused, the first: {first.get('Key')}: "
                    f"{first.get('Code')} {first.get('Message')}",
                )

    # -- listings ------------------------------------------------------------
    def entries(self, prefix: str, delimiter: str | None = None) -> Iterator[tuple[str, bool]]:
        """``(key or common prefix, is_prefix)`` for everything under *prefix*, in key order.

        Pages of :data:`LIST_MAX` are fetched as the iteration needs them.
        """
        args: dict[str, Any] = {"Bucket": self.name, "Prefix": prefix, "MaxKeys": LIST_MAX}
        if delimiter is not None:
            args["Delimiter"] = delimiter
        paginator = self.client.get_paginator("list_objects_v2")
        for page in paginator.paginate(**args):
            found = [(c["Key"], False) for c in page.get("Contents", [])]
            found += [(p["Prefix"], True) for p in page.get("CommonPrefixes", [])]
            # within a page, files and prefixes come in two lists: merge them
            yield from sorted(found)

    def list_keys(self, prefix: str) -> list[str]:
        """Every key under *prefix* (no delimiter: the whole subtree)."""
        return [key for key, _ in self.entries(prefix)]

    def exists_below(self, prefix: str) -> bool:
        """Whether any key starts with *prefix* (one request)."""
        response = self.client.list_objects_v2(Bucket=self.name, Prefix=prefix, MaxKeys=1)
        return bool(response.get("KeyCount", len(response.get("Contents", []))))

    # -- multipart uploads ---------------------------------------------------
    def start_upload(self, key: str, metadata: dict[str, str] | None = None) -> str:
        """Begin a multipart upload of *key*; its upload id."""
        args: dict[str, Any] = {"Bucket": self.name, "Key": key}
        args.update(self.options.write_args())
        if metadata:
            args["Metadata"] = metadata
        return str(self.client.create_multipart_upload(**args)["UploadId"])

    def upload_part(
        self, key: str, upload_id: str, number: int, data: bytes | IO[bytes]
    ) -> dict[str, Any]:
        """Send part *number*; the ``{"PartNumber", "ETag"}`` to complete with."""
        response = self.client.upload_part(
            Bucket=self.name, Key=key, UploadId=upload_id, PartNumber=number, Body=data
        )
        return {"PartNumber": number, "ETag": response["ETag"]}

    def copy_part(
        self, source: str, key: str, upload_id: str, number: int, first: int, last: int
    ) -> dict[str, Any]:
        """Make bytes *first*..*last* (inclusive) of *source* part *number* of the upload."""
        response = self.client.upload_part_copy(
            Bucket=self.name,
            Key=key,
            UploadId=upload_id,
            PartNumber=number,
            CopySource={"Bucket": self.name, "Key": source},
            CopySourceRange=f"bytes={first}-{last}",
        )
        return {"PartNumber": number, "ETag": response["CopyPartResult"]["ETag"]}

    def complete_upload(self, key: str, upload_id: str, parts: list[dict[str, Any]]) -> None:
        """Make the upload's parts the object at *key*.

        The response's ETag is not used: RGW answers an empty one.
        """
        ordered: list[dict[str, Any]] = sorted(parts, key=lambda p: int(p["PartNumber"]))
        self.client.complete_multipart_upload(
            Bucket=self.name,
            Key=key,
            UploadId=upload_id,
            MultipartUpload={"Parts": cast("list[CompletedPartTypeDef]", ordered)},
        )

    def abort_upload(self, key: str, upload_id: str) -> None:
        """Abort an upload; one that is already gone is fine.

        AWS answers NoSuchUpload for a finished upload, RGW sometimes NoSuchKey.
        """
        try:
            self.client.abort_multipart_upload(Bucket=self.name, Key=key, UploadId=upload_id)
        except ClientError as e:
            if error_code(e) not in ("NoSuchUpload", "NoSuchKey"):
                raise

    def uploads_below(self, prefix: str) -> list[tuple[str, str]]:
        """``(key, upload id)`` of every multipart upload in progress under *prefix*."""
        found: list[tuple[str, str]] = []
        paginator = self.client.get_paginator("list_multipart_uploads")
        for page in paginator.paginate(Bucket=self.name, Prefix=prefix):
            found += [(u["Key"], u["UploadId"]) for u in page.get("Uploads", [])]
        return found

    def presign(self, key: str, expires: int, method: str) -> str:
        """A presigned URL for GET (or HEAD) of *key*; computed locally, no request."""
        operation = {"GET": "get_object", "HEAD": "head_object"}[method]
        url: str = self.client.generate_presigned_url(
            ClientMethod=operation,
            Params={"Bucket": self.name, "Key": key},
            ExpiresIn=expires,
        )
        return url
