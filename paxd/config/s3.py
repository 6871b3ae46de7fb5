"""``storage.s3``: Docker distribution's S3 driver keys, the vendor's ``host``/``port``, paxd's own.

One section class, :class:`S3Config`, declared like the rest of the model
(:mod:`paxd.config.model` holds it as the ``s3`` driver of ``storage``). Each
value is read the way distribution's driver reads its parameters (a boolean may
be written ``true`` or ``"true"``, a size ``10485760`` or ``"10485760"``), with
the S3 driver's own converter and check for that key
(:class:`~paxd.storage.s3.options.S3Options`), so the file and the driver
cannot disagree about what a key accepts; a section rule then checks the
combination (a region or an endpoint, both keys or neither...). Every refusal is
a :class:`~paxd.config.errors.ConfigError` naming the file and the key.
:meth:`S3Config.options` is what the daemon hands the driver.
"""

from __future__ import annotations

from typing import Any, ClassVar

import attrs

from paxd.config.context import Context
from paxd.config.duration import parse_duration
from paxd.config.schema import Converter, Rule, Section, leaf, unimplemented
from paxd.config.values import required
from paxd.config.yamlload import Scalar, describe, is_null
from paxd.storage.s3.options import InvalidOption, MiB, S3Options

__all__ = ["S3Config"]

_OPTION_FIELDS = attrs.fields_dict(S3Options)


def _option(name: str) -> Converter:
    """The value of key *name* through :class:`S3Options`'s converter and check for it."""
    attribute = _OPTION_FIELDS[name]

    def convert(ctx: Context, raw: Any, key: str, default: Any) -> Any:
        if is_null(raw):
            return default
        if not isinstance(raw, Scalar):
            ctx.fail(key, f"expected a single value, got {describe(raw)}")
        # Go's fmt.Sprint for strings, the YAML type for booleans and numbers
        value = raw.value if raw.kind in ("bool", "int", "float") else raw.text
        return _checked(ctx, attribute, value, key)

    return convert


def _checked(ctx: Context, attribute: attrs.Attribute[Any], value: Any, key: str) -> Any:
    try:
        if attribute.converter is not None:
            value = attribute.converter(value)  # type: ignore[operator]
        if attribute.validator is not None:
            attribute.validator(None, attribute, value)
    except ValueError as e:
        ctx.fail(key, str(e))
    return value


def _seconds(name: str) -> Converter:
    """paxd's timeouts: a Go duration (``3s``, ``500ms``) or a number of seconds."""
    attribute = _OPTION_FIELDS[name]

    def convert(ctx: Context, raw: Any, key: str, default: Any) -> Any:
        if is_null(raw):
            return default
        if not isinstance(raw, Scalar):
            ctx.fail(key, f"expected a duration such as 3s, got {describe(raw)}")
        if raw.kind in ("int", "float"):
            value = float(raw.value)
        else:
            try:
                value = parse_duration(raw.text)
            except ValueError:
                ctx.fail(key, f"expected a duration such as 3s or 500ms, got {raw.text!r}")
        return _checked(ctx, attribute, value, key)

    return convert


def _valid_together(
    ctx: Context, values: dict[str, Any], section: dict[str, Any], key: str
) -> None:
    """The keys make one usable driver: S3Options' own cross-key checks, with the key named."""
    try:
        S3Options(**_driver_values(values))
    except InvalidOption as e:
        ctx.fail(f"{key}.{e.key}", str(e), missing=e.key not in section)
    except ValueError as e:
        ctx.fail(key, str(e))


def _driver_values(values: dict[str, Any]) -> dict[str, Any]:
    return {name: values[name] for name in _OPTION_FIELDS if name in values}


_IGNORED = "not used by paxd"


@attrs.frozen
class S3Config:
    """``storage.s3``: one bucket of Amazon S3 or of an S3-compatible store (docs/storage-s3.rst).

    With neither ``accesskey`` nor ``secretkey``, boto3's standard credential
    chain applies (environment, shared files, instance or task role).
    """

    SECTION: ClassVar[Section] = Section(rules=(Rule(_valid_together),))

    bucket: str = leaf(required("registry"))
    region: str | None = leaf(_option("region"), default=None)
    regionendpoint: str | None = leaf(_option("regionendpoint"), default=None)
    #: the vendor's form (MinIO): ``host`` and ``port`` instead of ``regionendpoint``
    host: str | None = leaf(_option("host"), default=None)
    port: int | None = leaf(_option("port"), default=None)
    accesskey: str | None = leaf(_option("accesskey"), default=None)
    secretkey: str | None = leaf(_option("secretkey"), default=None)
    sessiontoken: str | None = leaf(_option("sessiontoken"), default=None)
    #: None: path-style when an endpoint is configured (as distribution 2.x)
    forcepathstyle: bool | None = leaf(_option("forcepathstyle"), default=None)
    rootdirectory: str = leaf(_option("rootdirectory"), default="")
    encrypt: bool = leaf(_option("encrypt"), default=False)
    keyid: str | None = leaf(_option("keyid"), default=None)
    secure: bool = leaf(_option("secure"), default=True)
    skipverify: bool = leaf(_option("skipverify"), default=False)
    v4auth: bool = leaf(_option("v4auth"), default=True)
    chunksize: int = leaf(_option("chunksize"), default=10 * MiB)
    multipartcopychunksize: int = leaf(_option("multipartcopychunksize"), default=32 * MiB)
    multipartcopymaxconcurrency: int = leaf(_option("multipartcopymaxconcurrency"), default=100)
    multipartcopythresholdsize: int = leaf(_option("multipartcopythresholdsize"), default=32 * MiB)
    storageclass: str = leaf(_option("storageclass"), default="STANDARD")
    objectacl: str | None = leaf(_option("objectacl"), default=None)
    useragent: str | None = leaf(_option("useragent"), default=None)
    # -- paxd's own: how soon S3 counts as unavailable, how many connections --------
    connecttimeout: float = leaf(_seconds("connecttimeout"), default=3.0)
    readtimeout: float = leaf(_seconds("readtimeout"), default=10.0)
    maxattempts: int = leaf(_option("maxattempts"), default=2)
    maxconnections: int = leaf(_option("maxconnections"), default=64)
    # -- distribution's, without effect here ------------------------------------
    usedualstack: Any = unimplemented(why=f"{_IGNORED} (give regionendpoint instead)")
    accelerate: Any = unimplemented(why=f"{_IGNORED} (give regionendpoint instead)")
    usefipsendpoint: Any = unimplemented(why=f"{_IGNORED} (give regionendpoint instead)")
    loglevel: Any = unimplemented(why=f"{_IGNORED} (paxd logs S3 failures itself)")

    def options(self) -> S3Options:
        """The driver's options (already checked when the configuration was read)."""
        return S3Options(**_driver_values(attrs.asdict(self, recurse=False)))
