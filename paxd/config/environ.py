"""``REGISTRY_*`` variables over the raw tree, with distribution's rules, walking the model.

Each variable whose name starts with ``REGISTRY_`` names a path
(``REGISTRY_HTTP_TLS_KEY`` → ``http.tls.key``); its value is parsed as YAML
and replaces what is at that path. Less specific variables apply first, so
``REGISTRY_AUTH`` replaces the section and ``REGISTRY_AUTH_HTPASSWD_REALM``
then fills it in. The path is matched against the same attrs classes the
decoder uses (:mod:`paxd.config.model`), the way Go's reflection walks
distribution's structs:

- a section's keys match case-insensitively (and the Go field names given as
  ``aliases``); a name matching none is warned about and ignored;
- a map (``http.headers``, a driver map such as ``storage``, anything paxd
  keeps as written) takes any key: the longest run of components naming an
  existing key, else a new lower-case key;
- a number indexes a list (a paxd extension), one past the end appends.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from typing import Any

from paxd.config.context import Context
from paxd.config.schema import ANY, LEAF, Field, Kind, ListOf, MapOf, Struct, fields_of, section_of
from paxd.config.yamlload import Scalar, is_null, load_yaml

__all__ = ["ENV_PREFIX", "apply_environment", "is_driver_map", "name_drivers"]

ENV_PREFIX = "REGISTRY_"


class _Ignored(Exception):
    """An environment variable that names nothing settable; carries the reason.

    *closest*: ``(components left, the closest key)`` when a section's key was misspelt,
    so that the caller can name the variable that was probably meant.
    """

    def __init__(self, reason: str, closest: tuple[int, str] | None = None) -> None:
        super().__init__(reason)
        self.closest = closest


def is_driver_map(kind: Kind) -> bool:
    """A section that is Go's ``map[string]Parameters`` (``storage``, ``auth``)."""
    return isinstance(kind, Struct) and section_of(kind.cls).drivers is not None


def name_drivers(tree: dict[str, Any], root: type) -> None:
    """``storage: inmemory`` and ``auth: htpasswd`` name a driver: make them maps, as Go does."""
    for field in fields_of(root):
        value = tree.get(field.key)
        if is_driver_map(field.spec.kind) and isinstance(value, Scalar) and value.kind != "null":
            tree[field.key] = {value.text: None}


def apply_environment(
    tree: dict[str, Any], environ: Mapping[str, str], ctx: Context, root: type
) -> None:
    """Apply the ``REGISTRY_*`` variables of *environ* to *tree* (whose sections are *root*'s)."""
    names = [n for n in environ if n.startswith(ENV_PREFIX) and len(n) > len(ENV_PREFIX)]
    names.sort(key=lambda n: (n.count("_"), n))
    for name in names:
        parts = name[len(ENV_PREFIX) :].split("_")
        if any(not p for p in parts):
            ctx.warn(f"{name}: empty component in the variable's name; ignored")
            continue
        payload = load_yaml(environ[name], ctx.source, name)
        if isinstance(payload, Scalar) and payload.kind != "null" and len(parts) == 1:
            field = _field(root, parts[0])
            if field is not None and is_driver_map(field.spec.kind):
                # A scalar for a driver section names the driver (Go's UnmarshalYAML).
                payload = {payload.text: None}
        try:
            keys = _override(tree, Struct(root), parts, payload)
        except _Ignored as e:
            ctx.warn(f"{name}: {e}{_meant(parts, e.closest)}; ignored")
            continue
        ctx.env_paths[name] = ".".join(keys)


def _meant(parts: list[str], closest: tuple[int, str] | None) -> str:
    """`` (did you mean REGISTRY_…?)`` with the misspelt component replaced, or ``""``."""
    if closest is None:
        return ""
    left, key = closest
    at = len(parts) - left
    meant = [*parts[:at], key.upper(), *parts[at + 1 :]]
    return f" (did you mean {ENV_PREFIX}{'_'.join(meant)}?)"


def _field(cls: type, name: str) -> Field | None:
    """The field of *cls* that *name* names (its key in any case, or a Go alias)."""
    upper = name.upper()
    for field in fields_of(cls):
        if field.key.upper() == upper:
            return field
    lower = name.lower()
    return next((f for f in fields_of(cls) if lower in f.spec.aliases), None)


def _override(node: Any, kind: Kind, parts: list[str], payload: Any) -> list[str]:
    """Set *payload* at *parts* under the container *node*; return the keys used."""
    if isinstance(kind, Struct) and not is_driver_map(kind):
        field = _field(kind.cls, parts[0])
        if field is None:
            keys = [f.key for f in fields_of(kind.cls)]
            hint = difflib.get_close_matches(parts[0].lower(), keys, 1, 0.7)
            raise _Ignored(
                f"paxd has no configuration key {parts[0].lower()!r} here",
                (len(parts), hint[0]) if hint else None,
            )
        return [field.key, *_set_child(node, field.key, field.spec.kind, parts[1:], payload)]
    if isinstance(kind, ListOf):
        if not parts[0].isdigit():
            raise _Ignored(f"{parts[0]!r} is not a list index")
        index = int(parts[0])
        if index > len(node):
            raise _Ignored(f"list index {index} is beyond the end of the list ({len(node)} items)")
        if index == len(node):
            node.append(None)
        return [str(index), *_set_child(node, index, kind.item, parts[1:], payload)]
    # A map (or Go's interface{} holding one): keys may contain "_", so match the
    # longest run of components that names an existing key.
    value_kind = kind.value if isinstance(kind, MapOf) else ANY
    for n in range(len(parts), 0, -1):
        wanted = "_".join(parts[:n]).upper()
        found = next((key for key in node if key.upper() == wanted), None)
        if found is None:
            continue
        if n < len(parts) and is_null(node[found]):
            # Go recreates a key whose value is nil, under the lower-case name.
            del node[found]
            break
        return [found, *_set_child(node, found, value_kind, parts[n:], payload)]
    if len(parts) > 1 and not _descends(value_kind, parts[1]):
        # The value cannot hold a sub-path: the rest of the name is part of the key.
        parts = ["_".join(parts)]
    key = parts[0].lower()
    return [key, *_set_child(node, key, value_kind, parts[1:], payload)]


def _descends(kind: Kind, part: str) -> bool:
    if isinstance(kind, ListOf):
        return part.isdigit()
    return kind != LEAF


def _set_child(node: Any, key: Any, kind: Kind, rest: list[str], payload: Any) -> list[str]:
    if not rest:
        node[key] = payload
        return []
    child = node[key] if isinstance(node, list) or key in node else None
    if is_null(child):
        if kind == LEAF:
            raise _Ignored("the key holds a single value, not a section")
        child = [] if isinstance(kind, ListOf) else {}
        node[key] = child
    if kind == ANY and isinstance(child, list):
        kind = ListOf(ANY)
    if isinstance(kind, ListOf):
        if not isinstance(child, list):
            raise _Ignored("the key holds a single value, not a list")
    elif not isinstance(child, dict):
        raise _Ignored("the key holds a single value, not a section")
    return _override(child, kind, rest, payload)
