"""Prometheus metrics and Docker distribution's debug listener.

- :mod:`paxd.metrics.core`: :class:`Metrics`, every metric, in a registry of its own;
- :mod:`paxd.metrics.http`: request counts, latencies and bytes, for the site;
- :mod:`paxd.metrics.storage`: a timing wrapper around any storage driver;
- :mod:`paxd.metrics.debug`: ``/debug/health`` and the metrics page, on ``http.debug.addr``.
"""

from __future__ import annotations

from paxd.metrics.core import Metrics

__all__ = ["Metrics"]
