"""The configuration's one error type: a message naming the file, the key and the fix."""

from __future__ import annotations

__all__ = ["ConfigError"]


class ConfigError(Exception):
    """A configuration paxd cannot run with.

    ``str()`` is one line: ``FILE: KEY.PATH: what is wrong; how to fix it``.

    :ivar path: the configuration file (or another source, e.g. the built-in default).
    :ivar key: the dotted key path (or environment variable) at fault; ``""`` for the file.
    :ivar message: what is wrong and how to fix it.
    """

    def __init__(self, path: str, key: str, message: str) -> None:
        self.path = path
        self.key = key
        self.message = " ".join(message.split())  # one line, whatever the cause said
        super().__init__(path, key, self.message)

    def __str__(self) -> str:
        return ": ".join(part for part in (self.path, self.key, self.message) if part)
