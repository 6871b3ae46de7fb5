"""Cross-field rules: what one field means depends on another.

Each rule is attached to its section in :mod:`paxd.config.model` as a
:class:`~paxd.config.schema.Rule` and runs after the field it names (or after
the whole section). A rule gets ``values`` (field name → decoded value so far)
and the raw section, may change ``values``, warn, fail, or return
:data:`~paxd.config.schema.ABSENT` to make the section ``None``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from paxd.config.context import Context
from paxd.config.files import readable_file
from paxd.config.schema import ABSENT, Converter
from paxd.config.yamlload import is_null
from paxd.listeners import AddressError, addr_descriptions

__all__ = [
    "addr_is_listenable",
    "legacy_loglevel",
    "redirect_addr_unused",
    "redirect_descriptions",
    "redirect_needs_tls",
    "storagedriver_unused",
    "tls_enabled",
    "tls_files",
]

Values = dict[str, Any]
Raw = dict[str, Any]
RuleCheck = Callable[[Context, Values, Raw, str], Any]


def legacy_loglevel(level: Converter, default: str) -> RuleCheck:
    """The top-level ``loglevel`` (deprecated) is ``log.level`` (*level* converts it) if unset.

    A rule of ``log``, after ``level``: it reads the top level around it.
    """

    def check(ctx: Context, values: Values, section: Raw, key: str) -> None:
        legacy = ctx.enclosing().get("loglevel")
        if is_null(legacy):
            return
        ctx.warn("loglevel: deprecated; use log.level")
        if is_null(section.get("level")):
            values["level"] = level(ctx, legacy, "loglevel", default)

    return check


def addr_is_listenable(ctx: Context, values: Values, section: Raw, key: str) -> None:
    """``http.addr`` (with ``http.net``) translates to endpoint descriptions."""
    if values["listen"]:
        return
    try:
        addr_descriptions(values["addr"], values["net"])
    except AddressError as e:
        ctx.fail(f"{key}.addr", str(e))


def redirect_needs_tls(ctx: Context, values: Values, section: Raw, key: str) -> None:
    """``http.redirect`` sends clients to https, so https must be configured."""
    if values["redirect"] and values["tls"] is None:
        ctx.fail(
            f"{key}.redirect",
            "set, but http.tls is not: the plain-HTTP listener redirects to https; configure"
            " http.tls (a certificate or letsencrypt) or remove http.redirect",
        )


def redirect_addr_unused(ctx: Context, values: Values, section: Raw, key: str) -> None:
    """``http.redirect.addr`` says nothing once ``http.redirect.listen`` is set."""
    if values["listen"] and values["addr"]:
        ctx.warn(f"{key}.addr: not used because {key}.listen is set")


def redirect_descriptions(ctx: Context, redirect: Any, key: str) -> tuple[str, ...]:
    """``http.redirect`` (``listen``, or ``addr`` as ``http.addr``) → endpoint descriptions."""
    if redirect.listen:
        return tuple(redirect.listen)
    if not redirect.addr:
        return ()
    try:
        return tuple(addr_descriptions(redirect.addr, listen_key=f"{key}.listen"))
    except AddressError as e:
        ctx.fail(f"{key}.addr", str(e))


def tls_enabled(ctx: Context, values: Values, section: Raw, key: str) -> Any:
    """TLS is on with a certificate or letsencrypt (as in distribution), and then consistent."""
    certificate, tls_key, letsencrypt = values["certificate"], values["key"], values["letsencrypt"]
    if not certificate and letsencrypt is None:
        others = [k for k, v in section.items() if not is_null(v) and v != {}]
        if others:
            ctx.warn(
                f"{key}: no certificate configured, so paxd serves plain HTTP;"
                f" {', '.join(others)} ignored"
            )
        return ABSENT
    if certificate and letsencrypt is not None:
        ctx.fail(key, "both certificate and letsencrypt are configured; keep one of them")
    if certificate and not tls_key:
        ctx.fail(
            f"{key}.key", "missing; set the private key file that goes with http.tls.certificate"
        )
    if tls_key and not certificate:
        ctx.fail(f"{key}.certificate", "missing; set the certificate file for http.tls.key")
    return None


def tls_files(ctx: Context, values: Values, section: Raw, key: str) -> None:
    """The certificate, key and client CAs are files this process can read (made absolute)."""
    for name in ("certificate", "key"):
        if values[name]:
            values[name] = readable_file(ctx, values[name], f"{key}.{name}")
    values["clientcas"] = tuple(
        readable_file(ctx, path, f"{key}.clientcas.{i}")
        for i, path in enumerate(values["clientcas"])
    )


def storagedriver_unused(ctx: Context, values: Values, section: Raw, key: str) -> None:
    """``health.storagedriver`` is read, but ``/health`` checks storage on each request."""
    if section:
        ctx.warn(
            f"{key}: /health checks storage on every request instead;"
            " interval and threshold are not used"
        )
