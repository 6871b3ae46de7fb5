"""Sections of the schema for running a registry over time: maintenance and the debug listener.

``storage.maintenance.uploadpurging`` and ``http.debug`` are Docker
distribution's (with its defaults); ``storage.maintenance.gc`` is paxd's own
(online garbage collection).  They are attrs sections like those of
:mod:`paxd.config.model`, which holds them.
"""

from __future__ import annotations

from typing import Any, ClassVar

import attrs

from paxd.config.context import Context
from paxd.config.schema import Rule, Section, leaf, section
from paxd.config.values import boolean, duration, starts_with_slash, string
from paxd.listeners import AddressError, addr_descriptions

__all__ = ["DebugConfig", "GCConfig", "PrometheusConfig", "UploadPurgingConfig"]

HOUR = 3600.0


@attrs.frozen
class UploadPurgingConfig:
    """``storage.maintenance.uploadpurging``: remove uploads abandoned for longer than ``age``.

    On by default, as in distribution (not in read-only mode).
    """

    enabled: bool = leaf(boolean(), default=True)
    age: float = leaf(duration(positive=True), default=168 * HOUR)
    interval: float = leaf(duration(positive=True), default=24 * HOUR)
    dryrun: bool = leaf(boolean(), default=False)


def _grace_is_sane(ctx: Context, values: dict[str, Any], section: dict[str, Any], key: str) -> None:
    if values["enabled"] and values["grace"] < 60:
        ctx.warn(
            f"{key}.grace: {values['grace']:g}s is shorter than a slow push; blobs uploaded"
            " for a manifest not yet pushed may be collected (e.g. grace: 1h)"
        )


@attrs.frozen
class GCConfig:
    """``storage.maintenance.gc`` (paxd extension): garbage collection while serving.

    Every ``interval``, one process among those sharing the storage collects:
    nothing younger than ``grace`` is deleted.
    """

    SECTION: ClassVar[Section] = Section(rules=(Rule(_grace_is_sane),))

    enabled: bool = leaf(boolean(), default=False)
    interval: float = leaf(duration(positive=True), default=24 * HOUR)
    grace: float = leaf(duration(), default=HOUR)
    deleteuntagged: bool = leaf(boolean(), default=False)
    dryrun: bool = leaf(boolean(), default=False)


@attrs.frozen
class PrometheusConfig:
    """``http.debug.prometheus``: metrics on the debug listener."""

    enabled: bool = leaf(boolean(), default=False)
    path: str = leaf(string(), default="/metrics", check=starts_with_slash)


def _debug_addr(ctx: Context, values: dict[str, Any], section: dict[str, Any], key: str) -> None:
    """``http.debug.addr`` translates to endpoints; ``localhost`` (distribution's example) is
    127.0.0.1. Metrics asked for with no address is a warning."""
    addr = values["addr"]
    if not addr:
        if values["prometheus"].enabled:
            ctx.warn(
                f"{key}.prometheus.enabled: no metrics are served without {key}.addr"
                " (e.g. addr: 127.0.0.1:5001)"
            )
        return
    host, _, port = addr.rpartition(":")
    if host == "localhost":
        addr = values["addr"] = f"127.0.0.1:{port}"
    try:
        addr_descriptions(addr)
    except AddressError as e:
        ctx.fail(f"{key}.addr", str(e))


@attrs.frozen
class DebugConfig:
    """``http.debug``: a plain-HTTP listener for ``/debug/health`` and Prometheus metrics."""

    SECTION: ClassVar[Section] = Section(rules=(Rule(_debug_addr),))

    #: Go's listen address (``localhost:5001``, ``:5001``); None: no debug listener
    addr: str | None = leaf(string(), default=None)
    prometheus: PrometheusConfig = section(PrometheusConfig)

    @property
    def descriptions(self) -> list[str]:
        """The debug listener's endpoint descriptions (none without ``addr``)."""
        return addr_descriptions(self.addr) if self.addr else []
