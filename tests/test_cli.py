"""The ``paxd`` command: version, check-config, and the subcommands it hands on."""

from __future__ import annotations

import contextlib
import io
import os
import sys

from twisted.trial.unittest import TestCase

from paxd import __version__
from paxd.cli import log_observer, main


def _run(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            status = main(argv)
        except SystemExit as e:
            status = int(e.code or 0)
    return status, out.getvalue(), err.getvalue()


class PaxdCommandTests(TestCase):
    def test_version(self) -> None:
        status, out, _ = _run(["--version"])
        self.assertEqual((status, out.strip()), (0, f"paxd {__version__}"))

    def test_check_config_ok(self) -> None:
        path = os.path.join(self.mktemp() + ".yml")
        with open(path, "w") as f:
            f.write("version: 0.1\nstorage: inmemory\nhttp:\n  addr: 127.0.0.1:5999\n")
        status, out, _ = _run(["check-config", path])
        self.assertEqual(status, 0)
        self.assertIn("inmemory storage", out)
        self.assertIn("tcp:5999:interface=127.0.0.1", out)

    def test_check_config_refuses_with_one_line(self) -> None:
        path = self.mktemp() + ".yml"
        with open(path, "w") as f:
            f.write("version: 0.2\nstorage: inmemory\n")
        status, _, err = _run(["check-config", path])
        self.assertEqual(status, 1)
        self.assertEqual(len(err.strip().splitlines()), 1)
        self.assertIn(path, err)
        self.assertIn("version", err)
        self.assertNotIn("Traceback", err)

    def test_no_command_is_usage(self) -> None:
        self.assertEqual(_run([])[0], 2)

    def test_cert_self_signed(self) -> None:
        out = self.mktemp()
        status, _, _ = _run(
            ["cert", "self-signed", "--host", "reg.test", "--ip", "127.0.0.1", "--out", out]
        )
        self.assertEqual(status, 0)
        self.assertEqual(sorted(os.listdir(out)), ["ca.crt", "ca.key", "tls.crt", "tls.key"])

    def test_htpasswd_is_handed_on(self) -> None:
        path = self.mktemp()
        # an empty standard input (not the test runner's, which may be a pipe): generate one
        self.patch(sys, "stdin", io.StringIO(""))
        status, _, _ = _run(["htpasswd", path, "add", "alice"])
        self.assertEqual(status, 0)
        with open(path) as f:
            self.assertTrue(f.read().startswith("alice:$2y$"))


class LogObserverTests(TestCase):
    """``log.level``, ``log.formatter`` and ``log.fields`` shape what ``paxd serve`` writes."""

    def _emit(self, **log: object) -> str:
        from twisted.logger import Logger

        from paxd.config import LogConfig

        stream = io.StringIO()
        config = LogConfig(**log)  # type: ignore[arg-type]
        observer = log_observer(config, stream)
        logger = Logger(namespace="paxd.test", observer=observer)
        logger.debug("hidden {x}", x=1)
        logger.info("pushed {digest}", digest="sha256:ab")
        return stream.getvalue()

    def test_text_at_info_drops_debug(self) -> None:
        out = self._emit()
        self.assertIn("pushed sha256:ab", out)
        self.assertNotIn("hidden", out)

    def test_debug_level_keeps_debug(self) -> None:
        self.assertIn("hidden 1", self._emit(level="debug"))

    def test_json_lines_carry_fields(self) -> None:
        import json

        out = self._emit(formatter="json", fields={"service": "registry"})
        # Issue 12: plain JSON lines (no record separator), not Twisted's serialisation
        self.assertNotIn("\x1e", out)
        events = [json.loads(line) for line in out.splitlines() if line.strip()]
        self.assertEqual(len(events), 1)
        self.assertEqual(events[0]["digest"], "sha256:ab")
        self.assertEqual(events[0]["service"], "registry")
