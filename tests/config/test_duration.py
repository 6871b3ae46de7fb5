"""Tests for :mod:`paxd.config.duration` and the duration fields."""

from __future__ import annotations

from paxd.config.duration import parse_duration
from tests.config.support import MINIMAL, ErrorAssertions, parse


class DurationFieldTests(ErrorAssertions):
    """Go durations in the file."""

    def test_draintimeout(self) -> None:
        self.assertEqual(
            parse(f"{MINIMAL}http: {{draintimeout: 1h2m3.5s}}").http.draintimeout, 3723.5
        )
        self.assertEqual(parse(f"{MINIMAL}http: {{draintimeout: 250ms}}").http.draintimeout, 0.25)
        self.assertEqual(parse(f"{MINIMAL}http: {{draintimeout: 0}}").http.draintimeout, 0.0)
        self.assertConfigError(
            f"{MINIMAL}http: {{draintimeout: 10 s}}", "http.draintimeout", "duration"
        )


class ParseDurationTests(ErrorAssertions):
    """:func:`parse_duration` is Go's ``time.ParseDuration`` in seconds."""

    def test_units_and_sums(self) -> None:
        cases = {
            "0": 0.0,
            "+0": 0.0,
            "10s": 10.0,
            "1h30m": 5400.0,
            "1.5h": 5400.0,
            ".5s": 0.5,
            "250ms": 0.25,
            "3us": 3e-6,
            "3µs": 3e-6,
            "3μs": 3e-6,
            "7ns": 7e-9,
            "-2m": -120.0,
        }
        for text, seconds in cases.items():
            self.assertAlmostEqual(parse_duration(text), seconds, msg=text)

    def test_not_durations(self) -> None:
        for text in ("", "-", "10", "10 s", "1d", "s", "1h 2m", "1.2.3s"):
            self.assertRaises(ValueError, parse_duration, text)

    def test_negative_fields_refused(self) -> None:
        self.assertEqual(parse(f"{MINIMAL}http: {{draintimeout: '-0'}}").http.draintimeout, 0.0)
        for text in ("-1s", "-0s"):
            self.assertConfigError(
                f"{MINIMAL}http: {{draintimeout: '{text}'}}", "http.draintimeout", "negative"
            )
        self.assertConfigError(
            f"{MINIMAL}health: {{storagedriver: {{interval: 0s}}}}",
            "health.storagedriver.interval",
            "must be more than zero, e.g. 10s",
        )
