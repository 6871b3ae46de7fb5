"""Tests for :mod:`paxd.config.operations`: upload purging, online collection, debug listener."""

from __future__ import annotations

from tests.config.support import CONFIGS, MINIMAL, ErrorAssertions, parse

HOUR = 3600.0


class UploadPurgingTests(ErrorAssertions):
    """``storage.maintenance.uploadpurging``, with distribution's defaults."""

    def test_defaults_are_distributions(self) -> None:
        purging = parse(MINIMAL).storage.maintenance.uploadpurging
        self.assertEqual(
            (purging.enabled, purging.age, purging.interval, purging.dryrun),
            (True, 168 * HOUR, 24 * HOUR, False),
        )

    def test_the_sample_section(self) -> None:
        config = parse((CONFIGS / "distribution-sample.yml").read_text())
        purging = config.storage.maintenance.uploadpurging
        self.assertEqual(
            (purging.enabled, purging.age, purging.interval), (True, 168 * HOUR, 86400)
        )
        self.assertFalse(any("uploadpurging" in w for w in config.warnings))

    def test_set_in_the_file_and_the_environment(self) -> None:
        text = (
            "version: 0.1\nstorage:\n  inmemory:\n  maintenance:\n    uploadpurging:\n"
            "      age: 2h\n      interval: 30m\n      dryrun: true\n"
        )
        purging = parse(text).storage.maintenance.uploadpurging
        self.assertEqual((purging.age, purging.interval, purging.dryrun), (7200, 1800, True))
        env = {"REGISTRY_STORAGE_MAINTENANCE_UPLOADPURGING_ENABLED": "false"}
        self.assertFalse(parse(text, env).storage.maintenance.uploadpurging.enabled)

    def test_bad_values(self) -> None:
        base = "version: 0.1\nstorage:\n  inmemory:\n  maintenance:\n    uploadpurging:\n"
        self.assertConfigError(
            base + "      age: soon\n", "storage.maintenance.uploadpurging.age", "10s, 5m"
        )
        self.assertConfigError(
            base + "      interval: 0s\n",
            "storage.maintenance.uploadpurging.interval",
            "more than zero",
        )


class GCTests(ErrorAssertions):
    """``storage.maintenance.gc``: paxd's online collection."""

    def test_off_by_default(self) -> None:
        gc = parse(MINIMAL).storage.maintenance.gc
        self.assertEqual(
            (gc.enabled, gc.interval, gc.grace, gc.deleteuntagged, gc.dryrun),
            (False, 24 * HOUR, HOUR, False, False),
        )

    def test_configured(self) -> None:
        text = (
            "version: 0.1\nstorage:\n  inmemory:\n  maintenance:\n    gc:\n      enabled: true\n"
            "      interval: 6h\n      grace: 2h\n      deleteuntagged: true\n"
        )
        gc = parse(text).storage.maintenance.gc
        self.assertEqual(
            (gc.enabled, gc.interval, gc.grace, gc.deleteuntagged), (True, 6 * HOUR, 2 * HOUR, True)
        )
        env = {"REGISTRY_STORAGE_MAINTENANCE_GC_GRACE": "90m"}
        self.assertEqual(parse(text, env).storage.maintenance.gc.grace, 5400)

    def test_a_short_grace_window_warns(self) -> None:
        text = (
            "version: 0.1\nstorage:\n  inmemory:\n  maintenance:\n"
            "    gc: {enabled: true, grace: 10s}\n"
        )
        warnings = parse(text).warnings
        self.assertTrue(
            any(w.startswith("storage.maintenance.gc.grace: 10s is shorter") for w in warnings),
            warnings,
        )


class DebugTests(ErrorAssertions):
    """``http.debug``: where ``/debug/health`` and ``/metrics`` are served."""

    def test_none_by_default(self) -> None:
        debug = parse(MINIMAL).http.debug
        self.assertIsNone(debug.addr)
        self.assertEqual(debug.descriptions, [])
        self.assertEqual((debug.prometheus.enabled, debug.prometheus.path), (False, "/metrics"))

    def test_distributions_example(self) -> None:
        text = (
            f"{MINIMAL}http:\n  debug:\n    addr: localhost:5001\n"
            "    prometheus:\n      enabled: true\n      path: /metrics\n"
        )
        debug = parse(text).http.debug
        self.assertEqual(debug.descriptions, ["tcp:5001:interface=127.0.0.1"])
        self.assertTrue(debug.prometheus.enabled)

    def test_from_the_environment(self) -> None:
        env = {
            "REGISTRY_HTTP_DEBUG_ADDR": ":5001",
            "REGISTRY_HTTP_DEBUG_PROMETHEUS_ENABLED": "true",
            "REGISTRY_HTTP_DEBUG_PROMETHEUS_PATH": "/m",
        }
        debug = parse(MINIMAL, env).http.debug
        self.assertEqual(debug.descriptions, ["tcp:5001"])
        self.assertEqual(debug.prometheus.path, "/m")

    def test_bad_address_and_path(self) -> None:
        self.assertConfigError(
            f"{MINIMAL}http: {{debug: {{addr: '5001'}}}}\n", "http.debug.addr", "no port"
        )
        self.assertConfigError(
            f"{MINIMAL}http: {{debug: {{addr: ':1', prometheus: {{path: metrics}}}}}}\n",
            "http.debug.prometheus.path",
            "must start with '/'",
        )

    def test_metrics_without_an_address_warn(self) -> None:
        config = parse(f"{MINIMAL}http: {{debug: {{prometheus: {{enabled: true}}}}}}\n")
        self.assertIn(
            "http.debug.prometheus.enabled: no metrics are served without http.debug.addr"
            " (e.g. addr: 127.0.0.1:5001)",
            config.warnings,
        )
