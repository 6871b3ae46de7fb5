"""The configuration paxd would run with, as YAML again: for ``paxd check-config``.

:func:`as_tree` walks the model (:mod:`paxd.config.model`) the way the decoder
does, so every section comes out with every key and its effective value —
defaults filled in, ``REGISTRY_*`` overrides applied — and the result reads back
as the same configuration. Secrets (:data:`SECRET_KEYS`) are masked; keys paxd
keeps but does not implement come out as written.
"""

from __future__ import annotations

from typing import Any

import attrs
import yaml

from paxd.config.schema import Struct, fields_of, section_of

__all__ = ["MASK", "SECRET_KEYS", "as_tree", "as_yaml"]

#: keys whose values are never printed (http.secret; an S3 driver's keys; passwords)
SECRET_KEYS = frozenset({"secret", "password", "secretkey", "accesskey", "token"})
MASK = "********"


def _plain(value: Any) -> Any:
    if isinstance(value, float):
        # the model's only float leaves are Go durations, held in seconds
        return f"{value:g}s"
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return value


def _masked(key: str, value: Any) -> Any:
    if key.lower() in SECRET_KEYS and value not in (None, ""):
        return MASK
    if isinstance(value, dict):
        return {k: _masked(str(k), v) for k, v in value.items()}
    return value


def as_tree(section: Any) -> dict[str, Any]:
    """An attrs section object as the mapping of YAML keys it was decoded from."""
    cls: type = type(section)
    drivers = section_of(cls).drivers
    tree: dict[str, Any] = {}
    for field in fields_of(cls):
        value = getattr(section, field.name)
        spec = field.spec
        if spec.driver:
            if value is not None:
                tree[field.key] = as_tree(value) or None
            continue
        if spec.unimplemented is not None:
            if value is not None:
                tree[field.key] = _masked(field.key, value)
            continue
        if isinstance(spec.kind, Struct) and attrs.has(type(value)):
            tree[field.key] = as_tree(value)
        elif isinstance(spec.kind, Struct) and isinstance(value, tuple):
            # http.redirect: decoded into endpoint descriptions, which 'listen' takes as they are
            if value:
                tree[field.key] = {"listen": list(value)}
        elif value is not None:
            tree[field.key] = _masked(field.key, _plain(value))
    if drivers is not None and drivers.name_field is not None:
        tree.pop(drivers.name_field, None)
    return tree


def as_yaml(config: Any) -> str:
    """The whole configuration as YAML text (block style, keys in the model's order)."""
    return yaml.safe_dump(as_tree(config), sort_keys=False, default_flow_style=False, width=100)
