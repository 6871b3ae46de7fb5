"""Go's duration syntax (``time.ParseDuration``): ``10s``, ``1h30m``, ``250ms``, ``-1.5h``."""

from __future__ import annotations

import re

__all__ = ["parse_duration"]

_UNITS = {
    "ns": 1e-9,
    "us": 1e-6,
    "µs": 1e-6,  # MICRO SIGN
    "μs": 1e-6,  # GREEK SMALL LETTER MU
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
}
_TERM = re.compile(r"(\d+\.?\d*|\.\d+)(ns|us|µs|μs|ms|s|m|h)")


def parse_duration(text: str) -> float:
    """Seconds in a Go duration: a sign, then number-unit terms; ``0`` needs no unit.

    :raises ValueError: *text* is not a Go duration.
    """
    sign = -1.0 if text[:1] == "-" else 1.0
    body = text[1:] if text[:1] in ("+", "-") else text
    if body == "0":
        return 0.0
    if not body or _TERM.sub("", body):
        raise ValueError(f"not a Go duration: {text!r}")
    return sign * sum(float(n) * _UNITS[u] for n, u in _TERM.findall(body))
