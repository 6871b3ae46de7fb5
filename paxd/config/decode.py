"""The raw tree → the attrs objects of :mod:`paxd.config.model`, driven by the model alone.

For a section class the decoder:

1. checks the section is a mapping (absent or empty: ``{}``);
2. warns, in the file's order, about each key that is not a field (with a
   "did you mean") and each :func:`~paxd.config.schema.unimplemented` key that
   switches something on, then about each :class:`~paxd.config.schema.Ignored`
   field that is set (:func:`warn_keys`: the one place unknown keys are judged);
3. decodes each field in declaration order (a leaf by its converter, a nested
   section recursively), runs its check and its ``finish``, then runs the
   :class:`~paxd.config.schema.Rule` objects anchored after it;
4. runs the section's remaining rules and builds the object (or ``None``).

A driver map (``storage``, ``auth``) first picks its one driver, decodes that
driver's section, then its fixed fields. Errors are :class:`ConfigError` through
the :class:`~paxd.config.context.Context`; nothing here knows a key by name.
"""

from __future__ import annotations

import difflib
import functools
from collections.abc import Sequence
from typing import Any

from paxd.config.context import Context
from paxd.config.schema import ABSENT, Drivers, Field, Struct, fields_of, section_of
from paxd.config.yamlload import is_null, plain

__all__ = ["count", "decode", "decode_field", "deeper_keys", "or_list", "warn_keys"]

_NUMBER_WORDS = {2: "two", 3: "three", 4: "four", 5: "five"}


def count(n: int, noun: str) -> str:
    """``two storage drivers``."""
    return f"{_NUMBER_WORDS.get(n, str(n))} {noun}"


def or_list(names: Sequence[str]) -> str:
    """``filesystem or inmemory``; ``a, b or c``."""
    if len(names) < 2:
        return "".join(names)
    return f"{', '.join(names[:-1])} or {names[-1]}"


def _path(parent: str, key: str) -> str:
    return f"{parent}.{key}" if parent else key


def decode(ctx: Context, cls: type, raw: Any, key: str) -> Any:
    """Section class *cls* from *raw* at key path *key*: an instance, or ``None`` if absent."""
    drivers = section_of(cls).drivers
    if drivers is not None:
        return _decode_drivers(ctx, cls, drivers, raw, key)
    section = ctx.mapping(raw, key)
    warn_keys(ctx, cls, section, key)
    if section_of(cls).optional and all(is_null(v) for v in section.values()):
        return None
    values = _decode_fields(ctx, cls, fields_of(cls), section, key, {})
    return None if values is None else cls(**values)


def warn_keys(ctx: Context, cls: type, section: dict[str, Any], key: str) -> None:
    """Judge each key of *section* that *cls* does not implement or use: warn, or refuse.

    An unknown key is refused in a :attr:`~paxd.config.schema.Section.strict` section,
    and in a :attr:`~paxd.config.schema.Section.misplaced` one when it belongs to a
    section inside (the indentation was lost); everywhere else it is warned about.
    """
    fields = fields_of(cls)
    known = tuple(f.key for f in fields if f.spec.unimplemented is None)
    unimplemented = {f.key: f.spec.unimplemented for f in fields if f.spec.unimplemented}
    shape = section_of(cls)
    misplaced: list[str] = []
    for name, value in section.items():
        path = _path(key, name)
        if name in known:
            continue
        found = unimplemented.get(name)
        if found is not None:
            if found.when(value):
                ctx.warn(f"{path}: {found.why}; ignored")
            continue
        hint = difflib.get_close_matches(name.lower(), known + tuple(unimplemented), 1, 0.7)
        deeper = deeper_keys(cls).get(name, ())
        if shape.misplaced and deeper:
            misplaced.append(f"{name} ({or_list([_path(key, d) for d in deeper[:3]])})")
            continue
        if deeper:  # the very name, one level or more too high: the likelier mistake
            where = or_list([repr(_path(key, d)) for d in deeper[:3]])
            suggestion = f"did you mean {where}? (check the indentation)"
        elif hint:
            suggestion = f"did you mean {hint[0]!r}?"
        else:
            suggestion = ""
        if shape.strict:
            ctx.fail(
                path,
                f"unknown key{f' ({suggestion})' if suggestion else ''}; paxd refuses unknown"
                f" keys under {key}, where a misspelt key would quietly weaken the registry:"
                " correct or remove it",
            )
        ctx.warn(f"{path}: unknown key; ignored{f' ({suggestion})' if suggestion else ''}")
    if misplaced:
        ctx.fail(
            key,
            f"{'the top level' if not key else key} holds keys that belong in sections inside"
            f" it: {', '.join(misplaced)}. The file's indentation was probably lost (YAML nests"
            " a key under a section by indenting it): indent each key under its section, as in"
            " etc/paxd/config.yml",
        )
    for field in fields:
        ignored = field.spec.ignored
        if ignored is not None and ignored.when(section.get(field.key), section):
            ctx.warn(ignored.message.format(path=_path(key, field.key), section=key))


@functools.cache
def deeper_keys(cls: type) -> dict[str, tuple[str, ...]]:
    """Each key of the sections inside *cls* (not its own) → its paths relative to *cls*."""
    found: dict[str, list[str]] = {}

    def walk(section: type, prefix: str) -> None:
        for field in fields_of(section):
            if prefix:
                found.setdefault(field.key, []).append(f"{prefix}.{field.key}")
            if isinstance(field.spec.kind, Struct) and field.spec.unimplemented is None:
                walk(field.spec.kind.cls, _path(prefix, field.key))

    walk(cls, "")
    own = {f.key for f in fields_of(cls)}
    return {name: tuple(paths) for name, paths in found.items() if name not in own}


def decode_field(ctx: Context, field: Field, section: dict[str, Any], key: str) -> Any:
    """The value of *field* in the raw *section* at key path *key*."""
    raw = section.get(field.key)
    path = _path(key, field.key)
    spec = field.spec
    if spec.unimplemented is not None:
        return plain(raw)
    if isinstance(spec.kind, Struct):
        if is_null(raw) and field.default() is None and not spec.driver:
            return None  # an optional section left out
        value = decode(ctx, spec.kind.cls, raw, path)
        if value is None:
            value = field.default()
    else:
        assert spec.convert is not None, f"{path}: a leaf field needs a converter"
        value = spec.convert(ctx, raw, path, field.default())
    if spec.check is not None:
        spec.check(ctx, value, path)
    if spec.finish is not None:
        value = spec.finish(ctx, value, path)
    return value


def _decode_fields(
    ctx: Context,
    cls: type,
    fields: Sequence[Field],
    section: dict[str, Any],
    key: str,
    values: dict[str, Any],
) -> dict[str, Any] | None:
    """Decode *fields* into *values*, running the rules; ``None`` if a rule said absent."""
    rules = section_of(cls).rules
    ctx.sections.append(section)
    try:
        for field in fields:
            if field.spec.unimplemented is not None and section_of(cls).drivers is not None:
                # A driver map has no key check of its own: its fixed keys warn here.
                if field.spec.unimplemented.when(section.get(field.key)):
                    why = field.spec.unimplemented.why
                    ctx.warn(f"{_path(key, field.key)}: {why}; ignored")
            values[field.name] = decode_field(ctx, field, section, key)
            for rule in rules:
                if rule.after == field.name and rule.check(ctx, values, section, key) is ABSENT:
                    return None
        for rule in rules:
            if rule.after is None and rule.check(ctx, values, section, key) is ABSENT:
                return None
    finally:
        ctx.sections.pop()
    return values


def _decode_drivers(ctx: Context, cls: type, drivers: Drivers, raw: Any, key: str) -> Any:
    """A driver map: exactly one driver (its parameters a section), then the fixed keys."""
    if is_null(raw):
        if drivers.missing is None:
            return None
        ctx.fail(key, drivers.missing)
    section = ctx.mapping(raw, key)
    fields = fields_of(cls)
    fixed = [f for f in fields if not f.spec.driver]
    names = [n for n in section if n not in {f.key for f in fixed}]
    if drivers.sort:
        names.sort()
    if not names:
        if drivers.empty is None:
            return None
        ctx.fail(key, drivers.empty)
    if len(names) > 1:
        ctx.fail(
            key,
            f"{count(len(names), drivers.noun)} configured ({', '.join(names)}); {drivers.many}",
        )
    available = {f.key: f for f in fields if f.spec.driver}
    chosen = available.get(names[0])
    if chosen is None:
        ctx.fail(*drivers.unsupported(key, names[0], tuple(available)))
    values: dict[str, Any] = {f.name: None for f in available.values()}
    if drivers.name_field is not None:
        values[drivers.name_field] = chosen.key
    values[chosen.name] = decode_field(ctx, chosen, section, key)
    found = _decode_fields(ctx, cls, fixed, section, key, values)
    return None if found is None else cls(**found)
