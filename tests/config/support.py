"""Shared helpers for the configuration tests: parse as the file SOURCE, assert an error."""

from __future__ import annotations

from pathlib import Path

from twisted.trial.unittest import SynchronousTestCase

from paxd.config import Config, ConfigError, parse_config

HERE = Path(__file__).parent
REPO = HERE.parent.parent
CONFIGS = HERE.parent / "configs"
SOURCE = "/etc/paxd/config.yml"
MINIMAL = "version: 0.1\nstorage: inmemory\n"


def parse(text: str, environ: dict[str, str] | None = None) -> Config:
    """Parse *text* as if it were the file SOURCE."""
    return parse_config(text, SOURCE, environ or {})


class ErrorAssertions(SynchronousTestCase):
    """Shared assertion: an error names the file and the key path, on one line."""

    def assertConfigError(
        self, text: str, key: str, *fragments: str, environ: dict[str, str] | None = None
    ) -> ConfigError:
        error = self.assertRaises(ConfigError, parse, text, environ)
        message = str(error)
        self.assertEqual(error.path, SOURCE)
        self.assertEqual(error.key, key)
        self.assertTrue(message.startswith(f"{SOURCE}: {key}: "), message)
        self.assertNotIn("\n", message)
        for fragment in fragments:
            self.assertIn(fragment, message)
        return error

    def tls_files(self) -> tuple[str, str]:
        """A certificate and a key file (any content: the configuration checks files only)."""
        base = Path(self.mktemp()).absolute()
        base.mkdir()
        (base / "c.pem").write_text("c")
        (base / "k.pem").write_text("k")
        return str(base / "c.pem"), str(base / "k.pem")
