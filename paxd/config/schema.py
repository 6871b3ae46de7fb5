"""The vocabulary :mod:`paxd.config.model` is written in: what a field of a section is.

A section is an attrs class; each field that is a key of the YAML carries a
:class:`Spec` in its metadata, made by one of the declarators below:

- :func:`leaf`: a single value, decoded by a converter from :mod:`paxd.config.values`;
- :func:`items`: a list of single values; :func:`mapping`: a map (``http.headers``);
- :func:`records`: a list of small sections (``validation.manifests.indexes.platformlist``);
- :func:`section`: a nested section (another attrs class);
- :func:`alternative`: one driver of a driver map (``storage.filesystem``, ``auth.htpasswd``);
- :func:`unimplemented`: a key paxd accepts and warns about, keeping its value as written.

A class may add a :class:`Section` (``SECTION: ClassVar[Section]``): cross-field
:class:`Rule` objects, ``optional`` (``None`` when every value is empty), or
:class:`Drivers` for a driver map. The decoder (:mod:`paxd.config.decode`) and the
``REGISTRY_*`` overlay (:mod:`paxd.config.environ`) both read only this.

Kinds (:data:`LEAF`, :data:`ANY`, :class:`ListOf`, :class:`MapOf`,
:class:`Struct`) are the shape of the value as distribution's Go types have it,
which is what the environment overlay walks.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Union

import attrs

from paxd.config.yamlload import Scalar, is_null

if TYPE_CHECKING:
    from paxd.config.context import Context

__all__ = [
    "ABSENT",
    "ANY",
    "LEAF",
    "Drivers",
    "Field",
    "Ignored",
    "ListOf",
    "MapOf",
    "Rule",
    "Section",
    "Spec",
    "Struct",
    "Unimplemented",
    "alternative",
    "fields_of",
    "items",
    "leaf",
    "mapping",
    "records",
    "section",
    "section_of",
    "unimplemented",
]

#: ``(context, raw value, key path, default) -> value``
Converter = Callable[["Context", Any, str, Any], Any]
#: ``(context, value, key path) -> None``; fails through the context
Check = Callable[["Context", Any, str], None]


class _Absent:
    def __repr__(self) -> str:
        return "ABSENT"


#: what a :class:`Rule` returns to make its section ``None`` (e.g. TLS without a certificate)
ABSENT: Any = _Absent()


# --- kinds -------------------------------------------------------------------------------


@attrs.frozen
class _Leaf:
    """A single value (a Go string, bool, number): a variable can only replace it."""


@attrs.frozen
class _Any:
    """Go's ``interface{}``: whatever is there; the overlay descends into it or makes a map."""


@attrs.frozen
class ListOf:
    """A list (a path component that is a number indexes it: a paxd extension)."""

    item: Kind


@attrs.frozen
class MapOf:
    """A Go map with string keys: any key; keys the overlay creates are lower-case."""

    value: Kind


@attrs.frozen
class Struct:
    """A section: the attrs class *cls* (a driver map is a Go map, the rest Go structs)."""

    cls: type


LEAF = _Leaf()
ANY = _Any()
Kind = Union[_Leaf, _Any, ListOf, MapOf, Struct]  # noqa: UP007 (a runtime alias)


# --- what a field knows --------------------------------------------------------------------


def switched_on(raw: Any) -> bool:
    """An unimplemented key worth a warning: not empty, not ``{}``, not ``false``."""
    off = isinstance(raw, Scalar) and raw.kind == "bool" and not raw.value
    return not is_null(raw) and raw != {} and not off


@attrs.frozen
class Unimplemented:
    """A key paxd accepts but does not implement: ``"{path}: {why}; ignored"`` when *when*."""

    why: str = "not implemented by paxd"
    when: Callable[[Any], bool] = switched_on


@attrs.frozen
class Ignored:
    """A key paxd reads and keeps but does not act on: warn *message* when *when*.

    *message* is formatted with ``path`` (the key's) and ``section`` (its section's);
    *when* gets ``(raw value, raw section)``. The warning comes with the section's
    unknown-key warnings, before any field is decoded.
    """

    message: str
    when: Callable[[Any, dict[str, Any]], bool]


@attrs.frozen
class Spec:
    """Everything the decoder and the overlay know about one field (see the declarators)."""

    kind: Kind
    key: str | None = None
    convert: Converter | None = None
    check: Check | None = None
    #: ``(context, decoded value, key path) -> stored value``, after the checks
    finish: Callable[[Context, Any, str], Any] | None = None
    #: other spellings the ``REGISTRY_*`` overlay accepts (Go field names)
    aliases: tuple[str, ...] = ()
    ignored: Ignored | None = None
    unimplemented: Unimplemented | None = None
    #: one driver of a driver map
    driver: bool = False


_SPEC = "paxd.config.spec"


def _field(spec: Spec, default: Any, factory: Any) -> Any:
    if factory is not None:
        return attrs.field(factory=factory, metadata={_SPEC: spec})
    return attrs.field(default=default, metadata={_SPEC: spec})


def leaf(
    convert: Converter,
    *,
    default: Any = attrs.NOTHING,
    key: str | None = None,
    check: Check | None = None,
    ignored: Ignored | None = None,
) -> Any:
    """A single value; *convert* gets ``None`` or a :class:`Scalar` and the *default*."""
    return _field(Spec(LEAF, key, convert, check, ignored=ignored), default, None)


def items(
    convert: Converter,
    *,
    default: tuple[str, ...] = (),
    key: str | None = None,
    check: Check | None = None,
) -> Any:
    """A list of single values (Go ``[]string``), stored as a tuple."""
    return _field(Spec(ListOf(LEAF), key, convert, check), default, None)


def records(cls: type, convert: Converter, *, key: str | None = None) -> Any:
    """A list of sections of class *cls* (Go ``[]struct``), stored as *convert* makes it.

    The overlay walks each item as a *cls* section (``..._PLATFORMLIST_0_OS``);
    *convert* decodes the list (typically each item with
    :func:`paxd.config.decode.decode`).  The default is ``()``.
    """
    return _field(Spec(ListOf(Struct(cls)), key, convert), (), None)


def mapping(kind: MapOf, convert: Converter, *, key: str | None = None) -> Any:
    """A map with string keys (``http.headers``, ``log.fields``), stored as a dict."""
    return _field(Spec(kind, key, convert), attrs.NOTHING, dict)


def section(
    cls: type,
    *,
    default: Any = attrs.NOTHING,
    key: str | None = None,
    finish: Callable[[Context, Any, str], Any] | None = None,
) -> Any:
    """A nested section (attrs class *cls*).

    With ``default=None`` an absent section is ``None``; otherwise it is decoded from
    nothing (its defaults, checks and rules), and *default* stands in only when a
    rule says the section is absent.
    """
    spec = Spec(Struct(cls), key, finish=finish)
    return _field(spec, default, cls if default is attrs.NOTHING else None)


def alternative(cls: type, *, default_driver: bool = False, key: str | None = None) -> Any:
    """One driver of a driver map: its parameters, or ``None`` when another driver is used.

    *default_driver*: a section built without the file (``StorageConfig()``) uses this one.
    """
    return _field(Spec(Struct(cls), key, driver=True), None, cls if default_driver else None)


def unimplemented(
    kind: Kind = ANY,
    *,
    why: str = "not implemented by paxd",
    when: Callable[[Any], bool] = switched_on,
    key: str | None = None,
    aliases: tuple[str, ...] = (),
) -> Any:
    """A key distribution knows and paxd does not implement: kept as written, warned about."""
    spec = Spec(kind, key, aliases=aliases, unimplemented=Unimplemented(why, when))
    return _field(spec, None, None)


# --- what a section knows ------------------------------------------------------------------


@attrs.frozen
class Rule:
    """A cross-field check: ``check(context, values, raw section, key path)``.

    It runs after the field named *after* is decoded (``None``: after every field);
    it may change ``values`` (field name → decoded value) or return :data:`ABSENT`.
    """

    check: Callable[[Context, dict[str, Any], dict[str, Any], str], Any]
    after: str | None = None


@attrs.frozen
class Drivers:
    """A driver map (Go ``map[string]Parameters``): exactly one driver, plus fixed keys."""

    #: counted in "two storage drivers configured (...)"
    noun: str
    #: what to do when there are several, after "keep exactly one"-style text
    many: str
    #: ``(key path, name, supported names) -> (key, message)`` for a driver paxd lacks
    unsupported: Callable[[str, str, Sequence[str]], tuple[str, str]]
    #: the message when the section is absent; ``None``: the section is then ``None``
    missing: str | None = None
    #: the message when no driver is named; ``None``: the section is then ``None``
    empty: str | None = None
    #: the field that receives the chosen driver's name, if any
    name_field: str | None = None
    #: list the drivers sorted in "several" messages (else as written)
    sort: bool = False


@attrs.frozen
class Section:
    """Class-level knowledge: rules, optional presence, a driver map."""

    rules: tuple[Rule, ...] = ()
    #: ``None`` when absent or when every value in it is empty
    optional: bool = False
    drivers: Drivers | None = None
    #: an unknown key is refused, not warned about: a misspelt key here would quietly
    #: lower security (``http.tls.certficate`` serving plain HTTP)
    strict: bool = False
    #: an unknown key that is a key of a section inside this one is refused: the file's
    #: indentation was lost (the seed's YAML, flattened, puts ``tls`` at the top level)
    misplaced: bool = False


_PLAIN = Section()


def section_of(cls: type) -> Section:
    """The :class:`Section` of *cls* (its ``SECTION`` attribute, or the plain default)."""
    found: Section = getattr(cls, "SECTION", _PLAIN)
    return found


@attrs.frozen
class Field:
    """A field of a section class with its :class:`Spec` and YAML key resolved."""

    name: str
    key: str
    spec: Spec
    attribute: attrs.Attribute[Any]

    def default(self) -> Any:
        """The attrs default (a factory is called), or :data:`attrs.NOTHING`."""
        value: Any = self.attribute.default
        if isinstance(value, attrs.Factory):  # type: ignore[arg-type]
            return value.factory()
        return value


@functools.cache
def fields_of(cls: type) -> tuple[Field, ...]:
    """The YAML fields of section class *cls*, in declaration order."""
    return tuple(
        Field(a.name, a.metadata[_SPEC].key or a.name, a.metadata[_SPEC], a)
        for a in attrs.fields(cls)
        if _SPEC in a.metadata
    )
