"""YAML for the configuration: scalars keep their text, a key may appear only once.

Distribution decodes into typed Go fields: a string field takes the scalar's
text (``secret: 0123`` is ``"0123"``, ``version: 0.1`` is ``"0.1"``), a bool
field needs a YAML bool. :func:`load_yaml` therefore returns plain dicts and
lists whose leaves are :class:`Scalar` objects (text, tag and Python value), so
each field of :mod:`paxd.config.model` decodes the same way Go would.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import yaml

from paxd.config.errors import ConfigError

__all__ = ["Scalar", "describe", "is_null", "load_yaml", "plain"]


class Scalar:
    """A YAML scalar: its text as written, its resolved tag, and its Python value."""

    __slots__ = ("tag", "text", "value")

    def __init__(self, text: str, tag: str, value: Any) -> None:
        self.text = text
        self.tag = tag
        self.value = value

    @property
    def kind(self) -> str:
        """The tag's short name: ``str``, ``int``, ``bool``, ``null``, ..."""
        return self.tag.rsplit(":", 1)[-1]

    def __repr__(self) -> str:
        return f"Scalar({self.text!r}, {self.kind})"


class _Loader(yaml.SafeLoader):
    """SafeLoader producing :class:`Scalar` leaves, string keys, and no duplicate keys."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        has_merge = any(k.tag == "tag:yaml.org,2002:merge" for k, _ in node.value)
        self.flatten_mapping(node)
        mapping: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key = self.construct_object(key_node, deep=deep)
            if not isinstance(key, Scalar):
                raise yaml.constructor.ConstructorError(
                    None, None, "a mapping key must be a single value", key_node.start_mark
                )
            # After a merge (<<), a repeated key legitimately overrides the merged one.
            if key.text in mapping and not has_merge:
                raise yaml.constructor.ConstructorError(
                    None,
                    None,
                    f"key {key.text!r} appears twice in the same mapping; keep one",
                    key_node.start_mark,
                )
            mapping[key.text] = self.construct_object(value_node, deep=deep)
        return mapping


def _scalar_constructor(tag: str) -> Callable[[yaml.SafeLoader, yaml.ScalarNode], Scalar]:
    base = yaml.SafeLoader.yaml_constructors[tag]

    def construct(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> Scalar:
        return Scalar(node.value, tag, base(loader, node))

    return construct


for _tag in ("null", "bool", "int", "float", "str", "timestamp", "binary"):
    _full_tag = "tag:yaml.org,2002:" + _tag
    _Loader.add_constructor(_full_tag, _scalar_constructor(_full_tag))


def load_yaml(text: str, source: str, key: str) -> Any:
    """Parse *text*; syntax errors become a :class:`ConfigError` with line and column.

    *key* names an environment variable whose value *text* is (``""``: the file).
    """
    try:
        return yaml.load(text, Loader=_Loader)  # a SafeLoader: no arbitrary objects
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark and not key else ""
        what = e.problem or e.context or "invalid YAML"
        if key:
            raise ConfigError(source, key, f"the value is not valid YAML ({what})") from None
        raise ConfigError(
            source, "", f"{where}YAML syntax error: {what}; check the indentation and quoting"
        ) from None
    except yaml.YAMLError as e:
        raise ConfigError(source, key, f"YAML error: {e}") from None


def plain(value: Any) -> Any:
    """A raw tree as plain Python values."""
    if isinstance(value, Scalar):
        return value.value
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


def is_null(value: Any) -> bool:
    """Absent, or written as nothing (``key:``, ``~``, ``null``)."""
    return value is None or (isinstance(value, Scalar) and value.kind == "null")


def describe(value: Any) -> str:
    """What an unexpected value is, for messages."""
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, Scalar):
        kinds = {"int": "a number", "float": "a number", "bool": "a boolean", "null": "nothing"}
        return f"{kinds.get(value.kind, 'a string')} ({value.text!r})"
    return repr(value)
