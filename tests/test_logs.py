"""``log.formatter``: text by default; ``json`` and ``logstash`` one object per line."""

from __future__ import annotations

import io
import json
import re
from typing import Any

from twisted.logger import Logger, LogLevel
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from paxd.config import LogConfig
from paxd.logs import json_line, log_observer, logstash_line, rfc3339_utc

RFC3339_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


class FormatterTests(SynchronousTestCase):
    def emit(self, formatter: str, emit: Any = None, **log: Any) -> list[dict[str, Any]]:
        stream = io.StringIO()
        observer = log_observer(LogConfig(formatter=formatter, **log), stream)
        logger = Logger(namespace="paxd.registry", observer=observer)
        if emit is None:
            logger.info("pushed {digest} to {repository}", digest="sha256:ab", repository="a/b")
        else:
            emit(logger)
        lines = stream.getvalue().splitlines()
        self.assertTrue(lines)
        return [json.loads(line) for line in lines]

    def test_json(self) -> None:
        (line,) = self.emit("json", fields={"service": "registry", "environment": "prod"})
        self.assertEqual(list(line)[:4], ["time", "level", "msg", "logger"])
        self.assertRegex(line["time"], RFC3339_UTC)
        self.assertEqual(line["level"], "info")
        self.assertEqual(line["msg"], "pushed sha256:ab to a/b")
        self.assertEqual(line["logger"], "paxd.registry")
        self.assertEqual((line["digest"], line["repository"]), ("sha256:ab", "a/b"))
        self.assertEqual((line["service"], line["environment"]), ("registry", "prod"))
        self.assertFalse([k for k in line if k.startswith("log_")], line)

    def test_logstash(self) -> None:
        (line,) = self.emit("logstash", fields={"service": "registry"})
        self.assertEqual(
            list(line)[:5], ["@timestamp", "@version", "message", "level", "logger_name"]
        )
        self.assertRegex(line["@timestamp"], RFC3339_UTC)
        self.assertEqual((line["@version"], line["level"]), ("1", "info"))
        self.assertEqual(line["message"], "pushed sha256:ab to a/b")
        self.assertEqual(line["service"], "registry")

    def test_levels_are_distributions_names(self) -> None:
        def emit(logger: Logger) -> None:
            logger.debug("d")
            logger.warn("w")
            logger.error("e")

        lines = self.emit("json", emit, level="debug")
        self.assertEqual([line["level"] for line in lines], ["debug", "warning", "error"])

    def test_failure_is_one_line_with_its_traceback(self) -> None:
        def emit(logger: Logger) -> None:
            try:
                1 / 0  # noqa: B018
            except ZeroDivisionError:
                logger.failure("indexing {name} failed", name="a/b")

        (line,) = self.emit("json", emit)
        self.assertEqual(line["msg"], "indexing a/b failed")
        self.assertEqual(line["level"], "critical")
        self.assertIn("ZeroDivisionError", line["traceback"])
        self.assertEqual(line["error"], "division by zero")

    def test_an_events_own_msg_never_hides_the_message(self) -> None:
        (line,) = self.emit("json", lambda logger: logger.info("hello {msg}", msg="x"))
        self.assertEqual(line["msg"], "hello x")

    def test_values_that_are_not_json(self) -> None:
        event = {
            "log_format": "{x}",
            "log_level": LogLevel.info,
            "log_time": 0.0,
            "log_namespace": "n",
            "x": b"bytes",
            "y": object(),
            "z": Failure(ValueError("v")),
        }
        line = json.loads(json_line(event))
        self.assertEqual((line["x"], line["time"]), ("bytes", "1970-01-01T00:00:00.000Z"))
        self.assertIsInstance(line["y"], str)
        self.assertEqual(json.loads(logstash_line(event))["message"], "b'bytes'")

    def test_legacy_events(self) -> None:
        """A twisted.python.log message, as Twisted's own modules still send."""
        event = {
            "message": ("Starting factory",),
            "isError": 0,
            "system": "-",
            "time": 1.5,
            "log_time": 1.5,
            "log_text": "Starting factory",
            "log_format": "{log_text}",
            "log_level": LogLevel.info,
            "log_namespace": "log_legacy",
        }
        line = json.loads(json_line(event))
        self.assertEqual(line["msg"], "Starting factory")
        self.assertEqual(set(line), {"time", "level", "msg", "logger"})

    def test_text_stays_readable(self) -> None:
        stream = io.StringIO()
        logger = Logger(namespace="paxd.x", observer=log_observer(LogConfig(), stream))
        logger.info("pushed {digest}", digest="sha256:ab")
        self.assertRegex(stream.getvalue(), r"\[paxd\.x#info\] pushed sha256:ab\n$")

    def test_rfc3339_is_utc(self) -> None:
        self.assertEqual(rfc3339_utc(86400.5), "1970-01-02T00:00:00.500Z")
