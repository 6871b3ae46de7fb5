"""Tests for :mod:`paxd.config.yamlload`: syntax errors, duplicate keys, merge keys."""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from paxd.config import ConfigError
from tests.config.support import MINIMAL, SOURCE, parse


class YAMLTests(SynchronousTestCase):
    """YAML problems name the line and column; a key appears once."""

    def test_syntax_error_has_line_and_column(self) -> None:
        error = self.assertRaises(ConfigError, parse, "version: 0.1\nstorage:\n  inmemory: {\n")
        self.assertTrue(str(error).startswith(f"{SOURCE}: line "), str(error))
        error = self.assertRaises(ConfigError, parse, "version: 0.1\n  storage: x: y\n")
        self.assertEqual(
            str(error),
            f"{SOURCE}: line 2, column 10: YAML syntax error: mapping values are not allowed"
            " here; check the indentation and quoting",
        )

    def test_duplicate_key(self) -> None:
        error = self.assertRaises(ConfigError, parse, MINIMAL + "storage: inmemory\n")
        self.assertIn("line 3", str(error))
        self.assertIn("'storage' appears twice", str(error))

    def test_merge_keys_may_override(self) -> None:
        text = (
            "version: 0.1\nstorage: inmemory\nbase: &b {level: warn}\n"
            "log:\n  <<: *b\n  level: debug\n"
        )
        self.assertEqual(parse(text).log.level, "debug")
