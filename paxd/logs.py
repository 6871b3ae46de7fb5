"""What ``paxd serve`` writes to standard error: ``log.level``, ``log.formatter``, ``log.fields``.

Three formats, one event per line:

- ``text`` (the default): Twisted's readable lines (time, namespace, level, message);
- ``json``: one JSON object per line, as Docker distribution's logrus JSON
  formatter writes them: ``time`` (RFC 3339, UTC), ``level``, ``msg`` (the
  rendered message), ``logger`` (the event's namespace), then the event's own
  fields and the ``log.fields``;
- ``logstash``: Logstash's JSON event: ``@timestamp``, ``@version`` (``"1"``),
  ``message``, ``level``, ``logger_name``, then the same fields.

A failure adds ``error`` (its one-line description) and ``traceback``.
Levels are named as distribution names them (``debug``, ``info``,
``warning``, ``error``) plus Twisted's ``critical``.

No library does this for :mod:`twisted.logger`: structlog, python-json-logger
and ecs-logging format stdlib :mod:`logging` records, and Twisted's bridge to
them (``STDLibLogObserver``) drops an event's named fields; Twisted's own
``jsonFileLogObserver`` writes its serialisation format (record separators,
levels as objects), made to be read back by Twisted, not by a log shipper. So
the message is rendered by Twisted (``formatEvent``) and the line by the
standard library's :mod:`json`.
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Callable, Mapping
from typing import IO, Any

from twisted.logger import (
    FileLogObserver,
    FilteringLogObserver,
    ILogObserver,
    LogLevel,
    LogLevelFilterPredicate,
    formatEvent,
    textFileLogObserver,
)
from twisted.python.failure import Failure
from zope.interface import provider

__all__ = ["LEVELS", "json_line", "log_observer", "logstash_line", "rfc3339_utc"]

#: Twisted's levels by distribution's (logrus's) names; Twisted's ``critical`` kept
LEVELS = {
    LogLevel.debug: "debug",
    LogLevel.info: "info",
    LogLevel.warn: "warning",
    LogLevel.error: "error",
    LogLevel.critical: "critical",
}
#: the keys a legacy (``twisted.python.log``) event carries besides its text
_LEGACY = frozenset({"message", "isError", "system", "time", "format", "why", "failure", "printed"})


def rfc3339_utc(seconds: float) -> str:
    """``2024-05-01T12:00:00.123Z``."""
    moment = datetime.datetime.fromtimestamp(seconds, datetime.UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _fields(event: Mapping[str, Any]) -> dict[str, Any]:
    """The event's own named fields (not Twisted's ``log_*`` keys)."""
    legacy = "isError" in event
    return {
        k: v for k, v in event.items() if not k.startswith("log_") and not (legacy and k in _LEGACY)
    }


def _jsonable(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, (set, frozenset)):
        return sorted(map(str, value))
    return str(value)


def _line(head: dict[str, Any], event: Mapping[str, Any]) -> str:
    record = dict(head)
    failure = event.get("log_failure")
    if isinstance(failure, Failure):
        record["error"] = failure.getErrorMessage()
        record["traceback"] = failure.getTraceback()
    for key, value in _fields(event).items():
        record.setdefault(key, value)  # an event's own "msg" never hides the message
    return json.dumps(record, default=_jsonable, ensure_ascii=False) + "\n"


def _message(event: Mapping[str, Any]) -> str:
    text = formatEvent(dict(event))
    return text if text else ""


def json_line(event: Mapping[str, Any]) -> str:
    """One event as a line of distribution's JSON format."""
    level = event.get("log_level", LogLevel.info)
    head = {
        "time": rfc3339_utc(event.get("log_time") or 0.0),
        "level": LEVELS.get(level, str(getattr(level, "name", level))),
        "msg": _message(event),
        "logger": event.get("log_namespace", ""),
    }
    return _line(head, event)


def logstash_line(event: Mapping[str, Any]) -> str:
    """One event as a Logstash JSON event (``json_lines`` codec)."""
    level = event.get("log_level", LogLevel.info)
    head = {
        "@timestamp": rfc3339_utc(event.get("log_time") or 0.0),
        "@version": "1",
        "message": _message(event),
        "level": LEVELS.get(level, str(getattr(level, "name", level))),
        "logger_name": event.get("log_namespace", ""),
    }
    return _line(head, event)


_FORMATS: dict[str, Callable[[Mapping[str, Any]], str]] = {
    "json": json_line,
    "logstash": logstash_line,
}


def log_observer(config: Any, stream: IO[str], worker: int | None = None) -> ILogObserver:
    """The observer the ``log`` section asks for, writing to *stream*.

    *config* is a :class:`paxd.config.LogConfig` (``level``, ``formatter``, ``fields``);
    *worker*, a worker of ``paxd serve --workers``, is a ``worker`` field on every event
    and ``wN:`` in text lines' system.
    """
    level = str(config.level or "info").lower()
    names = {"debug", "info", "warn", "error"}
    predicate = LogLevelFilterPredicate(
        defaultLogLevel=LogLevel.levelWithName(level if level in names else "info")
    )
    line = _FORMATS.get(str(config.formatter or "text").lower())
    sink: ILogObserver = (
        FileLogObserver(stream, line) if line is not None else textFileLogObserver(stream)
    )
    fields = dict(config.fields or {})
    if worker is not None:
        fields["worker"] = worker

    @provider(ILogObserver)
    def with_fields(event: dict[str, Any]) -> None:
        # the configured fields (e.g. service: registry) on every event, never over its own
        if fields:
            event = {**{k: v for k, v in fields.items() if k not in event}, **event}
        if worker is not None and "log_system" not in event:
            level = event.get("log_level")
            name = level.name if level is not None else "-"
            event["log_system"] = f"w{worker}:{event.get('log_namespace', '-')}#{name}"
        sink(event)

    return FilteringLogObserver(with_fields, [predicate])
