"""The S3 driver's options: Docker distribution's ``storage.s3`` keys, checked once.

The configuration layer (:mod:`paxd.config.s3`) builds one :class:`S3Options`
from the YAML section (the keys are distribution's, spelled the same) and hands
it to :class:`~paxd.storage.s3.driver.S3Storage`.  Values are converted the way
distribution converts them (``"true"`` is a boolean, ``"10485760"`` an
integer); a bad value raises :class:`ValueError` (:class:`InvalidOption`,
naming the key, for checks and combinations), which the configuration layer
turns into its own error naming the file and the key.

Beyond distribution's keys: the vendor's ``host``/``port`` form (for MinIO),
which becomes ``regionendpoint``, and a few of paxd's own (timeouts, retries,
connections) so that a dead endpoint fails within seconds.
"""

from __future__ import annotations

from typing import Any

import attrs

MiB = 1024 * 1024
#: S3's smallest part (every part of a multipart upload but the last).
MIN_PART = 5 * MiB
#: S3's largest part, and the largest single copy.
MAX_PART = 5 * 1024 * MiB
#: S3's most parts in one multipart upload.
MAX_PARTS = 10_000

STORAGE_CLASSES = (
    "NONE",
    "STANDARD",
    "REDUCED_REDUNDANCY",
    "STANDARD_IA",
    "ONEZONE_IA",
    "INTELLIGENT_TIERING",
    "OUTPOSTS",
    "GLACIER_IR",
    "EXPRESS_ONEZONE",
)
OBJECT_ACLS = (
    "private",
    "public-read",
    "public-read-write",
    "authenticated-read",
    "aws-exec-read",
    "bucket-owner-read",
    "bucket-owner-full-control",
)


class InvalidOption(ValueError):
    """An option (or a combination of them) the driver cannot run with; names the key at fault."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(message)
        self.key = key


def to_bool(value: Any) -> bool:
    """A boolean as distribution reads one: a YAML bool or a string such as ``"true"``."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        lowered = value.strip().lower()
        if lowered in ("1", "t", "true", "yes", "on"):
            return True
        if lowered in ("0", "f", "false", "no", "off"):
            return False
    raise ValueError(f"expected a boolean (true or false), not {value!r}")


def to_optional_bool(value: Any) -> bool | None:
    """:func:`to_bool`, with None kept (meaning: the default that depends on other keys)."""
    return None if value is None else to_bool(value)


def to_int(value: Any) -> int:
    """An integer from a YAML integer or a string of digits (booleans are refused)."""
    if isinstance(value, bool):
        raise ValueError(f"expected an integer, not {value!r}")
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value.strip())
    raise ValueError(f"expected an integer, not {value!r}")


def to_str(value: Any) -> str:
    """A string, with None meaning ``""``."""
    return "" if value is None else str(value)


def to_optional_str(value: Any) -> str | None:
    """A string, with None and ``""`` both meaning "not set"."""
    if value is None or value == "":
        return None
    return str(value)


def _between(low: int, high: int) -> Any:
    def check(instance: S3Options, attribute: attrs.Attribute[int], value: int) -> None:
        if not low <= value <= high:
            raise InvalidOption(
                attribute.name,
                f"{attribute.name} must be between {low} and {high} (inclusive), not {value}",
            )

    return check


def _positive(instance: S3Options, attribute: attrs.Attribute[float], value: float) -> None:
    if value <= 0:
        raise InvalidOption(attribute.name, f"{attribute.name} must be positive, not {value}")


def _storage_class(value: Any) -> str:
    upper = str(value).upper()
    if upper not in STORAGE_CLASSES:
        raise InvalidOption(
            "storageclass",
            f"storageclass must be one of {', '.join(STORAGE_CLASSES)}, not {value!r}",
        )
    return upper


def _object_acl(value: Any) -> str | None:
    if value is None:
        return None
    if value not in OBJECT_ACLS:
        raise InvalidOption(
            "objectacl", f"objectacl must be one of {', '.join(OBJECT_ACLS)}, not {value!r}"
        )
    return str(value)


@attrs.frozen(kw_only=True)
class S3Options:
    """``storage.s3``: where the bucket is, how to sign, and how to cut uploads.

    With neither ``accesskey`` nor ``secretkey``, boto3's standard credential
    chain applies (environment, shared files, instance or task role).
    """

    bucket: str = attrs.field(converter=str)
    region: str | None = attrs.field(default=None, converter=to_optional_str)
    regionendpoint: str | None = attrs.field(default=None, converter=to_optional_str)
    #: the vendor's form (MinIO): ``host`` and ``port`` instead of ``regionendpoint``
    host: str | None = attrs.field(default=None, converter=to_optional_str)
    port: int | None = attrs.field(default=None, converter=attrs.converters.optional(to_int))
    accesskey: str | None = attrs.field(default=None, converter=to_optional_str, repr=False)
    secretkey: str | None = attrs.field(default=None, converter=to_optional_str, repr=False)
    sessiontoken: str | None = attrs.field(default=None, converter=to_optional_str, repr=False)
    #: None: path-style when an endpoint is configured (as distribution 2.x), else virtual hosts
    forcepathstyle: bool | None = attrs.field(default=None, converter=to_optional_bool)
    rootdirectory: str = attrs.field(default="", converter=to_str)
    encrypt: bool = attrs.field(default=False, converter=to_bool)
    keyid: str | None = attrs.field(default=None, converter=to_optional_str)
    secure: bool = attrs.field(default=True, converter=to_bool)
    skipverify: bool = attrs.field(default=False, converter=to_bool)
    v4auth: bool = attrs.field(default=True, converter=to_bool)
    chunksize: int = attrs.field(
        default=10 * MiB, converter=to_int, validator=_between(MIN_PART, MAX_PART)
    )
    multipartcopychunksize: int = attrs.field(
        default=32 * MiB, converter=to_int, validator=_between(MIN_PART, MAX_PART)
    )
    multipartcopymaxconcurrency: int = attrs.field(
        default=100, converter=to_int, validator=_between(1, 10_000)
    )
    multipartcopythresholdsize: int = attrs.field(
        default=32 * MiB, converter=to_int, validator=_between(0, MAX_PART)
    )
    storageclass: str = attrs.field(default="STANDARD", converter=_storage_class)
    #: None sends no ACL: objects are private all the same, and buckets with ACLs
    #: disabled (Amazon's default now) refuse any other ACL header
    objectacl: str | None = attrs.field(default=None, converter=_object_acl)
    useragent: str | None = attrs.field(default=None, converter=to_optional_str)
    # -- paxd's own: how long before S3 counts as unavailable ---------------
    #: seconds to open a connection (a dead endpoint fails after about this, per attempt)
    connecttimeout: float = attrs.field(default=3.0, converter=float, validator=_positive)
    #: seconds of silence on an open connection before the request fails
    readtimeout: float = attrs.field(default=10.0, converter=float, validator=_positive)
    #: attempts per request, the first included (boto3's "standard" retry mode)
    maxattempts: int = attrs.field(default=2, converter=to_int, validator=_between(1, 10))
    #: connections kept open to S3 (at least the pool's threads plus open readers)
    maxconnections: int = attrs.field(default=64, converter=to_int, validator=_between(1, 4096))

    def __attrs_post_init__(self) -> None:
        if not self.bucket:
            raise InvalidOption("bucket", "bucket is required")
        if self.regionendpoint is not None and self.host is not None:
            raise InvalidOption("host", "give either regionendpoint or host (and port), not both")
        if self.port is not None and self.host is None:
            raise InvalidOption("port", "port needs host")
        if self.endpoint_url is None and self.region is None:
            raise InvalidOption(
                "region", "region is required unless regionendpoint (or host) is given"
            )
        if (self.accesskey is None) != (self.secretkey is None):
            missing = "secretkey" if self.secretkey is None else "accesskey"
            raise InvalidOption(
                missing, "accesskey and secretkey go together: give both or neither"
            )
        if not self.v4auth and (
            self.endpoint_url is None or "amazonaws.com" in (self.endpoint_url or "")
        ):
            raise InvalidOption(
                "v4auth", "Amazon S3 needs v4auth: true (signature version 2 is refused)"
            )

    @property
    def endpoint_url(self) -> str | None:
        """The endpoint's URL, or None for Amazon S3's own endpoint for :attr:`region`.

        An endpoint without a scheme gets ``https://`` (``http://`` if not :attr:`secure`),
        as distribution's SDK does.
        """
        if self.regionendpoint is not None:
            endpoint = self.regionendpoint
        elif self.host is not None:
            endpoint = self.host if self.port is None else f"{self.host}:{self.port}"
        else:
            return None
        if "://" not in endpoint:
            endpoint = ("https://" if self.secure else "http://") + endpoint
        return endpoint.rstrip("/")

    @property
    def path_style(self) -> bool:
        """Whether the bucket goes in the path (``/bucket/key``) rather than the host name."""
        if self.forcepathstyle is not None:
            return self.forcepathstyle
        return self.endpoint_url is not None

    @property
    def key_prefix(self) -> str:
        """What every key starts with: ``rootdirectory`` without its slashes, plus ``/``.

        Distribution's ``s3Path``: the key of logical path ``/a/b`` is the root
        directory with any trailing slash removed, then ``/a/b``, with leading
        slashes removed.  So ``rootdirectory: /registry`` puts ``/a/b`` at
        ``registry/a/b`` and no root directory at ``a/b``.
        """
        root = self.rootdirectory.rstrip("/").lstrip("/")
        return f"{root}/" if root else ""

    def describe(self) -> str:
        """Which storage this is, for error messages: bucket and endpoint, never keys."""
        where = self.endpoint_url or f"Amazon S3 in {self.region}"
        return f"S3 bucket {self.bucket!r} at {where}"

    def encryption_args(self) -> dict[str, str]:
        """``ServerSideEncryption`` (and ``SSEKMSKeyId``) for writes, as distribution sends them."""
        if not self.encrypt:
            return {}
        if self.keyid is None:
            return {"ServerSideEncryption": "AES256"}
        return {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": self.keyid}

    def write_args(self) -> dict[str, str]:
        """The arguments every object-creating request carries (put, multipart start, copy)."""
        args = {"ContentType": "application/octet-stream"}
        if self.objectacl is not None:
            args["ACL"] = self.objectacl
        if self.storageclass != "NONE":
            args["StorageClass"] = self.storageclass
        args.update(self.encryption_args())
        return args
