"""Converters and checks for single fields, as Go decodes into typed fields.

A converter is ``(context, raw, key, default) -> value``: *raw* is ``None``, a
:class:`~paxd.config.yamlload.Scalar`, a list or a dict from
:mod:`paxd.config.yamlload`; an empty value gives *default*; anything else that
does not fit fails through the context with the key path. A check is
``(context, value, key) -> None`` on the converted value. The factories here
make them; :mod:`paxd.config.model` attaches them to fields.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import urlsplit

from paxd.config.context import Context
from paxd.config.duration import parse_duration
from paxd.config.schema import Check, Converter
from paxd.config.yamlload import Scalar, describe, is_null, plain
from paxd.listeners import is_description

__all__ = [
    "absolute",
    "boolean",
    "choice",
    "duration",
    "endpoints",
    "header_lists",
    "integer",
    "kept",
    "one_of",
    "plain_mapping",
    "required",
    "some_hosts",
    "starts_with_slash",
    "string",
    "strings",
    "text",
    "url_with_scheme",
    "user_name",
    "version",
]


def text(ctx: Context, value: Any, key: str) -> str | None:
    """A string field: any single value, as written (Go's decoding into ``string``)."""
    if is_null(value):
        return None
    if not isinstance(value, Scalar):
        ctx.fail(key, f"expected a single value (a string), got {describe(value)}")
    return value.text


def string(keep_empty: bool = False) -> Converter:
    """A string; an empty one is the default unless *keep_empty*."""

    def convert(ctx: Context, value: Any, key: str, default: Any) -> Any:
        found = text(ctx, value, key)
        if found is None or (not found and not keep_empty):
            return default
        return found

    return convert


def required(example: str) -> Converter:
    """A string that must be given: ``missing; set it, e.g. NAME: EXAMPLE``."""

    def convert(ctx: Context, value: Any, key: str, default: Any) -> str:
        found = text(ctx, value, key)
        if not found:
            ctx.fail(
                key, f"missing; set it, e.g. {key.rsplit('.', 1)[-1]}: {example}", missing=True
            )
        return found

    return convert


def absolute(convert: Converter) -> Converter:
    """*convert*'s path made absolute (relative to the current directory)."""

    def absolute_path(ctx: Context, value: Any, key: str, default: Any) -> str:
        return os.path.abspath(convert(ctx, value, key, default))

    return absolute_path


def boolean() -> Converter:
    """A YAML bool (``true``, ``yes``, ``off``...), nothing else."""

    def convert(ctx: Context, value: Any, key: str, default: Any) -> bool:
        if is_null(value):
            return bool(default)
        if not (isinstance(value, Scalar) and value.kind == "bool"):
            ctx.fail(key, f"expected true or false, got {describe(value)}")
        return bool(value.value)

    return convert


def integer(minimum: int | None = None) -> Converter:
    """A whole number, at least *minimum*."""

    def convert(ctx: Context, value: Any, key: str, default: Any) -> int:
        if is_null(value):
            return int(default)
        if not (isinstance(value, Scalar) and value.kind == "int"):
            ctx.fail(key, f"expected a whole number, got {describe(value)}")
        number = int(value.value)
        if minimum is not None and number < minimum:
            ctx.fail(key, f"must be at least {minimum}, got {number}")
        return number

    return convert


def duration(positive: bool = False) -> Converter:
    """A Go duration (``10s``, ``1h30m``; a bare number is nanoseconds) in seconds."""

    def convert(ctx: Context, value: Any, key: str, default: Any) -> float:
        seconds = _duration(ctx, value, key, float(default))
        if positive and seconds <= 0:
            ctx.fail(key, "must be more than zero, e.g. 10s")
        return seconds

    return convert


def _duration(ctx: Context, value: Any, key: str, default: float) -> float:
    if is_null(value):
        return default
    if isinstance(value, Scalar) and value.kind == "int":
        return int(value.value) * 1e-9
    written = text(ctx, value, key) or ""
    try:
        seconds = parse_duration(written)
    except ValueError:
        ctx.fail(key, f"expected a duration such as 10s, 5m or 1h30m, got {written!r}")
    if written.startswith("-") and written != "-0":
        ctx.fail(key, f"must not be negative, got {written!r}")
    return seconds


def choice(*choices: str) -> Converter:
    """One of *choices*, case-insensitively; stored lower-case; empty is the default."""

    def convert(ctx: Context, value: Any, key: str, default: Any) -> str:
        found = (text(ctx, value, key) or default).lower()
        if found not in choices:
            ctx.fail(key, f"{found!r} is not one of {', '.join(choices)}")
        return str(found)

    return convert


def strings(
    single_ok: bool = False, each: Callable[[Context, str, str], None] | None = None
) -> Converter:
    """A list of strings (*single_ok*: a lone string is a list of one); *each* checks items."""

    def convert(ctx: Context, value: Any, key: str, default: Any) -> tuple[str, ...]:
        if is_null(value):
            return tuple(default)
        result = _strings(ctx, value, key, single_ok)
        if each is not None:
            for i, item in enumerate(result):
                each(ctx, item, f"{key}.{i}")
        return result

    return convert


def _strings(ctx: Context, value: Any, key: str, single_ok: bool) -> tuple[str, ...]:
    if single_ok and isinstance(value, Scalar):
        value = [value]
    if not isinstance(value, list):
        ctx.fail(key, f"expected a list, e.g. [a, b], got {describe(value)}")
    result = []
    for i, item in enumerate(value):
        found = text(ctx, item, f"{key}.{i}")
        if found is None:
            ctx.fail(f"{key}.{i}", "empty list item; remove it or give it a value")
        result.append(found)
    return tuple(result)


def header_lists() -> Converter:
    """``http.headers``: each header name maps to a list of values (Go's ``http.Header``)."""

    def convert(ctx: Context, value: Any, key: str, default: Any) -> dict[str, list[str]]:
        headers: dict[str, list[str]] = {}
        for name, values in ctx.mapping(value, key).items():
            item_key = f"{key}.{name}"
            if not isinstance(values, list):
                ctx.fail(
                    item_key,
                    f"expected a list of values, e.g. [nosniff], got {describe(values)}",
                )
            headers[name] = list(_strings(ctx, values, item_key, False))
        return headers

    return convert


def plain_mapping() -> Converter:
    """A map of anything (``log.fields``), as plain Python values."""

    def convert(ctx: Context, value: Any, key: str, default: Any) -> dict[str, Any]:
        found: dict[str, Any] = plain(ctx.mapping(value, key))
        return found

    return convert


def kept() -> Converter:
    """Any value, unchecked, as plain Python values (a key another rule reads)."""

    def convert(ctx: Context, value: Any, key: str, default: Any) -> Any:
        return plain(value)

    return convert


def one_of(choices: Iterable[str], message: str) -> Check:
    """A check: the value, lower-cased, is one of *choices*; *message* gets ``value``."""
    allowed = tuple(choices)

    def check(ctx: Context, value: Any, key: str) -> None:
        if value and value.lower() not in allowed:
            ctx.fail(key, message.format(value=value))

    return check


# --- checks with their messages, for one field each ---------------------------------------


def version(ctx: Context, value: Any, key: str, default: Any) -> str:
    """``version``: the only one is ``0.1`` (a converter)."""
    if is_null(value):
        ctx.fail(key, "missing; the file must start with 'version: 0.1'")
    if not isinstance(value, Scalar) or value.text != "0.1":
        got = value.text if isinstance(value, Scalar) else describe(value)
        ctx.fail(key, f"unsupported version {got!r}; the only version is 0.1")
    return "0.1"


def endpoints(example: str) -> Callable[[Context, str, str], None]:
    """An item check: a Twisted endpoint description (*example* shows one)."""

    def check(ctx: Context, description: str, key: str) -> None:
        if not is_description(description):
            ctx.fail(
                key, f"{description!r} is not a Twisted endpoint description; write e.g. {example}"
            )

    return check


def starts_with_slash(ctx: Context, prefix: str, key: str) -> None:
    """``http.prefix`` is a path."""
    if prefix and not prefix.startswith("/"):
        ctx.fail(key, f"{prefix!r} must start with '/', e.g. /registry/")


def url_with_scheme(ctx: Context, host: str | None, key: str) -> None:
    """``http.host`` is an http(s) URL."""
    if not host:
        return
    try:
        parts = urlsplit(host)
        usable = parts.scheme in ("http", "https") and bool(parts.netloc)
    except ValueError:  # e.g. an unclosed IPv6 bracket
        usable = False
    if not usable:
        ctx.fail(
            key, f"{host!r} is not a URL with a scheme; write e.g. https://registry.example.com"
        )


def user_name(ctx: Context, admin: str, key: str) -> None:
    """An item check: an htpasswd user name."""
    if not admin or ":" in admin:
        ctx.fail(key, f"{admin!r} is not a user name")


def some_hosts(ctx: Context, hosts: tuple[str, ...], key: str) -> None:
    """``http.tls.letsencrypt.hosts`` names at least one host."""
    if not hosts:
        ctx.fail(
            key,
            "missing; list the host names to get certificates for,"
            " e.g. hosts: [registry.example.com]",
        )
