"""Tests for :mod:`paxd.config.errors`."""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from paxd.config import ConfigError


class ConfigErrorTests(SynchronousTestCase):
    """One line: file, key, message."""

    def test_error_attributes(self) -> None:
        error = ConfigError("f.yml", "a.b", "bad\nthing")
        self.assertEqual((error.path, error.key, error.message), ("f.yml", "a.b", "bad thing"))
        self.assertEqual(str(error), "f.yml: a.b: bad thing")
        self.assertEqual(str(ConfigError("f.yml", "", "gone")), "f.yml: gone")
