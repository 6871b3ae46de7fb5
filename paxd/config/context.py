"""The context of one parse: it raises every error and collects every warning.

Every part of :mod:`paxd.config` that can refuse a configuration goes through a
:class:`Context`: it names the source and the key path in each
:class:`~paxd.config.errors.ConfigError`, adds the ``REGISTRY_*`` variables that
touched the key, and keeps the warnings (once each) for
:attr:`paxd.config.Config.warnings`. Nothing here logs.
"""

from __future__ import annotations

from typing import Any, NoReturn

from paxd.config.errors import ConfigError
from paxd.config.yamlload import describe, is_null

__all__ = ["Context"]


class Context:
    """One parse: the source's name, the warnings so far, and what the environment set."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.warnings: list[str] = []
        #: environment variable → the key path it set
        self.env_paths: dict[str, str] = {}
        #: the raw sections being decoded, outermost first (for rules that look outward)
        self.sections: list[dict[str, Any]] = []

    def enclosing(self) -> dict[str, Any]:
        """The raw section around the one being decoded (``{}`` at the top)."""
        return self.sections[-2] if len(self.sections) > 1 else {}

    def warn(self, message: str) -> None:
        """Record *message* (no source prefix), once."""
        if message not in self.warnings:
            self.warnings.append(message)

    def fail(self, key: str, message: str, missing: bool = False) -> NoReturn:
        """Raise the :class:`ConfigError` for *key*, naming the variables that touched it.

        *missing*: the key is absent, so variables that set its siblings are named too
        (``REGISTRY_AUTH=htpasswd`` replaces the section and drops ``path``).
        """
        scope = key.rsplit(".", 1)[0] if missing and "." in key else key

        def related(path: str) -> bool:
            return path == key or key.startswith(path + ".") or path.startswith(scope + ".")

        related_names = [n for n, p in sorted(self.env_paths.items()) if key and related(p)]
        if related_names:
            message += f" (the environment sets {', '.join(related_names)})"
        raise ConfigError(self.source, key, message)

    def mapping(self, value: Any, key: str) -> dict[str, Any]:
        """A section: ``{}`` if absent or empty."""
        if is_null(value):
            return {}
        if not isinstance(value, dict):
            self.fail(key, f"expected a mapping of keys, got {describe(value)}")
        return value
