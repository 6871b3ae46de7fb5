"""paxd's configuration: Docker distribution's YAML format and ``REGISTRY_*`` overrides.

The file is read as distribution 2.8 reads it (``configuration/parser.go``):
``version: 0.1``, then the ``log``, ``storage``, ``http``, ``auth``,
``health`` and ``catalog`` sections, then every environment variable whose
name starts with ``REGISTRY_`` replaces the value at its path (parsed as YAML),
less specific variables first. The result is a tree of frozen attrs objects.

An operator's mistake never produces a traceback: everything that stops the
daemon is a :class:`ConfigError` whose message is one line naming the file,
the key path, what is wrong and how to fix it. Keys paxd does not implement
are accepted and reported once each in :attr:`Config.warnings`; this module
never logs (the daemon logs the warnings).
"""

from __future__ import annotations

import difflib
import ipaddress
import os
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Literal, NoReturn, cast
from urllib.parse import urlsplit

import attrs
import yaml

__all__ = [
    "DEFAULT_CONFIG_TEXT",
    "AuthConfig",
    "CatalogConfig",
    "Config",
    "ConfigError",
    "HTTPConfig",
    "HealthConfig",
    "HtpasswdConfig",
    "LetsEncryptConfig",
    "LogConfig",
    "PacksConfig",
    "StorageConfig",
    "TLSConfig",
    "load_config",
    "load_default_config",
    "parse_config",
]

#: The source name used for :data:`DEFAULT_CONFIG_TEXT` in messages.
DEFAULT_SOURCE = "<paxd built-in default configuration>"

#: The vendor image's default configuration (``/etc/spectro/config.yml``): what
#: ``paxd serve`` runs with ``REGISTRY_*`` variables alone, like ``docker run -e``.
DEFAULT_CONFIG_TEXT = """\
version: 0.1
log:
  fields:
    service: registry
storage:
  cache:
    blobdescriptor: inmemory
  filesystem:
    rootdirectory: /data/.spectro-server
http:
  addr: :5000
  headers:
    X-Content-Type-Options: [nosniff]
    Strict-Transport-Security: [max-age=63072000; includeSubdomains; preload]
    Content-Security-Policy: ["img-src 'self'; script-src 'self'; style-src 'self'"]
    X-Frame-Options: [DENY]
    X-XSS-Protection: [1; mode=block]
    Referrer-Policy: [same-origin]
auth:
  htpasswd:
    realm: basic-realm
    path: /auth/htpasswd-basic
"""

ENV_PREFIX = "REGISTRY_"
DEFAULT_ROOTDIRECTORY = "/var/lib/registry"
DEFAULT_LETSENCRYPT_DIRECTORY = "https://acme-v02.api.letsencrypt.org/directory"
LOG_LEVELS = ("error", "warn", "info", "debug")
LOG_FORMATTERS = ("text", "json", "logstash")
TLS_VERSIONS = ("tls1.0", "tls1.1", "tls1.2", "tls1.3", "tls10", "tls11", "tls12", "tls13")
STORAGE_DRIVERS = ("filesystem", "inmemory")
#: keys of ``storage`` that are not drivers (distribution's ``Storage.Type``)
STORAGE_SPECIAL = ("delete", "redirect", "cache", "maintenance")
#: top-level sections distribution knows and paxd does not implement
UNIMPLEMENTED_SECTIONS = (
    "notifications",
    "redis",
    "middleware",
    "reporting",
    "proxy",
    "validation",
    "policy",
    "compatibility",
)


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


# --- the objects -------------------------------------------------------------------------


@attrs.frozen
class LogConfig:
    """``log``: level (error, warn, info, debug), formatter, fields added to every event."""

    level: str = "info"
    formatter: str = "text"
    fields: dict[str, Any] = attrs.field(factory=dict)
    accesslog_disabled: bool = False


@attrs.frozen
class StorageConfig:
    """``storage``: the one driver and the options that apply to every driver."""

    driver: Literal["filesystem", "inmemory"] = "filesystem"
    #: an absolute path for ``filesystem``; ``None`` for ``inmemory``
    rootdirectory: str | None = DEFAULT_ROOTDIRECTORY
    delete_enabled: bool = False
    readonly: bool = False
    redirect_disabled: bool = False


@attrs.frozen
class LetsEncryptConfig:
    """``http.tls.letsencrypt``: certificates from an ACME directory."""

    cachefile: str
    email: str | None = None
    hosts: tuple[str, ...] = ()
    directoryurl: str = DEFAULT_LETSENCRYPT_DIRECTORY


@attrs.frozen
class TLSConfig:
    """``http.tls``: a certificate chain and key from files, or Let's Encrypt."""

    certificate: str | None = None
    key: str | None = None
    clientcas: tuple[str, ...] = ()
    minimumtls: str | None = None
    ciphersuites: tuple[str, ...] = ()
    letsencrypt: LetsEncryptConfig | None = None


@attrs.frozen
class HTTPConfig:
    """``http``: where and how the registry listens."""

    addr: str = ":5000"
    net: Literal["tcp", "unix"] = "tcp"
    prefix: str = ""
    host: str | None = None
    secret: str | None = None
    headers: dict[str, list[str]] = attrs.field(factory=dict)
    tls: TLSConfig | None = None
    #: paxd extension: Twisted endpoint descriptions; when set, ``addr`` is not used
    listen: tuple[str, ...] = ()
    #: paxd extension (``http.redirect``): plain-HTTP listeners (port 80) that answer ACME
    #: HTTP-01 challenges and redirect everything else to https; endpoint descriptions
    redirect: tuple[str, ...] = ()
    #: seconds to wait for requests in flight at shutdown (Go duration in the file)
    draintimeout: float = 0.0


@attrs.frozen
class HtpasswdConfig:
    """``auth.htpasswd``: HTTP Basic against a bcrypt htpasswd file."""

    realm: str
    path: str
    #: paxd extension: users who may push and delete; every other user may only read
    admins: tuple[str, ...] = ("admin",)
    #: paxd extension: ``read`` lets clients without credentials pull
    anonymous: Literal["none", "read"] = "none"


@attrs.frozen
class AuthConfig:
    """``auth``: the access controller (paxd implements htpasswd only)."""

    htpasswd: HtpasswdConfig


@attrs.frozen
class HealthConfig:
    """``health.storagedriver``: periodic storage checks reported by ``/health``."""

    storagedriver_enabled: bool = False
    storagedriver_interval: float = 10.0
    storagedriver_threshold: int = 3


@attrs.frozen
class CatalogConfig:
    """``catalog``: the largest page ``/_catalog`` returns."""

    maxentries: int = 1000


@attrs.frozen
class PacksConfig:
    """``packs`` (paxd extension): pack-registry behaviour."""

    #: maintain parent tags (``14.x``, ``14.4.x``) pointing at the newest version of their line
    parenttags: bool = True


@attrs.frozen
class Config:
    """The whole configuration, after ``REGISTRY_*`` overrides and validation."""

    version: str = "0.1"
    log: LogConfig = attrs.field(factory=LogConfig)
    storage: StorageConfig = attrs.field(factory=StorageConfig)
    http: HTTPConfig = attrs.field(factory=HTTPConfig)
    auth: AuthConfig | None = None
    health: HealthConfig = attrs.field(factory=HealthConfig)
    catalog: CatalogConfig = attrs.field(factory=CatalogConfig)
    packs: PacksConfig = attrs.field(factory=PacksConfig)
    #: one line per accepted-but-ignored key or environment variable (no source prefix)
    warnings: tuple[str, ...] = ()
    #: where the configuration came from (a file name), for messages
    source: str = ""

    def endpoint_descriptions(self) -> list[str]:
        """Twisted server endpoint descriptions for the listeners.

        ``http.listen`` as given, or ``http.addr`` translated: ``:5000`` →
        ``tcp:5000``, ``127.0.0.1:5000`` → ``tcp:5000:interface=127.0.0.1``,
        ``[::1]:5000`` → ``tcp6:5000:interface=\\:\\:1``; ``net: unix`` →
        ``unix:PATH``.
        """
        return _endpoint_descriptions(self.http, self.source)


# --- public entry points --------------------------------------------------------------------


def load_config(path: str, environ: Mapping[str, str] | None = None) -> Config:
    """Read the configuration file *path* and apply the ``REGISTRY_*`` variables of *environ*.

    *environ* is never ``os.environ`` implicitly: the caller passes it (``None`` = no overrides).
    """
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        raise ConfigError(
            path,
            "",
            "no such file; pass the configuration file to use (etc/paxd/quickstart.yml is a"
            " minimal one)",
        ) from None
    except IsADirectoryError:
        raise ConfigError(path, "", "is a directory; pass the configuration file itself") from None
    except OSError as e:
        raise ConfigError(path, "", f"cannot read the file: {e.strerror}") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ConfigError(
            path, "", f"not UTF-8 text (byte {e.start}); save the file as UTF-8"
        ) from None
    return parse_config(text, path, environ)


def load_default_config(environ: Mapping[str, str] | None = None) -> Config:
    """The vendor image's default configuration with the ``REGISTRY_*`` overrides of *environ*."""
    return parse_config(DEFAULT_CONFIG_TEXT, DEFAULT_SOURCE, environ)


def parse_config(text: str, source: str, environ: Mapping[str, str] | None = None) -> Config:
    """Parse configuration *text*; *source* names it in messages."""
    tree = _load_yaml(text, source, "")
    if tree is None:
        raise ConfigError(source, "", "the file is empty; it must start with 'version: 0.1'")
    if not isinstance(tree, dict):
        raise ConfigError(
            source,
            "",
            f"the file holds {_describe(tree)}, not a mapping of sections; it must start with"
            " 'version: 0.1'",
        )
    parser = _Parser(source)
    # Distribution checks the version before anything else, overrides included.
    parser.version(tree.get("version"))
    _normalize_drivers(tree)
    _apply_environment(tree, environ or {}, parser)
    return parser.config(tree)


# --- YAML with the scalars' text kept ------------------------------------------------------------


class _Scalar:
    """A YAML scalar: its text as written, its resolved tag, and its Python value.

    Distribution decodes into typed Go fields: a string field takes the scalar's text
    (``secret: 0123`` is ``"0123"``, ``version: 0.1`` is ``"0.1"``), a bool field needs a
    YAML bool. Keeping the text lets each field decode the same way.
    """

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
        return f"_Scalar({self.text!r}, {self.kind})"


class _Loader(yaml.SafeLoader):
    """SafeLoader producing :class:`_Scalar` leaves, string keys, and no duplicate keys."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        has_merge = any(k.tag == "tag:yaml.org,2002:merge" for k, _ in node.value)
        self.flatten_mapping(node)
        mapping: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key = self.construct_object(key_node, deep=deep)
            if not isinstance(key, _Scalar):
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


def _scalar_constructor(tag: str) -> Callable[[yaml.SafeLoader, yaml.ScalarNode], _Scalar]:
    base = yaml.SafeLoader.yaml_constructors[tag]

    def construct(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> _Scalar:
        return _Scalar(node.value, tag, base(loader, node))

    return construct


for _tag in ("null", "bool", "int", "float", "str", "timestamp", "binary"):
    _full_tag = "tag:yaml.org,2002:" + _tag
    _Loader.add_constructor(_full_tag, _scalar_constructor(_full_tag))


def _load_yaml(text: str, source: str, key: str) -> Any:
    """Parse *text*; syntax errors become a :class:`ConfigError` with line and column."""
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


def _plain(value: Any) -> Any:
    """A raw tree as plain Python values."""
    if isinstance(value, _Scalar):
        return value.value
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _is_null(value: Any) -> bool:
    return value is None or (isinstance(value, _Scalar) and value.kind == "null")


def _describe(value: Any) -> str:
    """What an unexpected value is, for messages."""
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, _Scalar):
        kinds = {"int": "a number", "float": "a number", "bool": "a boolean", "null": "nothing"}
        return f"{kinds.get(value.kind, 'a string')} ({value.text!r})"
    return repr(value)


def _normalize_drivers(tree: dict[str, Any]) -> None:
    """``storage: inmemory`` and ``auth: htpasswd`` name a driver: make them maps, as Go does."""
    for section in ("storage", "auth"):
        value = tree.get(section)
        if isinstance(value, _Scalar) and value.kind != "null":
            tree[section] = {value.text: None}


# --- REGISTRY_* overrides -------------------------------------------------------------------


class _Schema:
    """The shape of the configuration, as far as environment overrides need it."""


class _Leaf(_Schema):
    """A single value: a variable can only replace it."""


class _Any(_Schema):
    """Go's ``interface{}``: descend into what is there, or make a map."""


@attrs.frozen
class _Struct(_Schema):
    """A Go struct: fixed keys, matched case-insensitively; others are warned about."""

    fields: Mapping[str, _Schema]
    aliases: Mapping[str, str] = attrs.field(factory=dict)

    def field(self, name: str) -> str | None:
        upper = name.upper()
        for field in self.fields:
            if field.upper() == upper:
                return field
        return self.aliases.get(name.lower())


@attrs.frozen
class _Map(_Schema):
    """A Go map with string keys: any key; new keys are created lower-case."""

    value: _Schema


@attrs.frozen
class _List(_Schema):
    """A list: a path component that is a number indexes it (a paxd extension)."""

    item: _Schema


_LEAF = _Leaf()
_ANY = _Any()
_SCHEMA = _Struct(
    {
        "version": _LEAF,
        "loglevel": _LEAF,
        "log": _Struct(
            {
                "level": _LEAF,
                "formatter": _LEAF,
                "fields": _Map(_ANY),
                "accesslog": _Struct({"disabled": _LEAF}),
                "hooks": _List(_ANY),
                "reportcaller": _LEAF,
            }
        ),
        "storage": _Map(_ANY),
        "auth": _Map(_ANY),
        "http": _Struct(
            {
                "addr": _LEAF,
                "net": _LEAF,
                "prefix": _LEAF,
                "host": _LEAF,
                "secret": _LEAF,
                "relativeurls": _LEAF,
                "draintimeout": _LEAF,
                "headers": _Map(_List(_LEAF)),
                "tls": _Struct(
                    {
                        "certificate": _LEAF,
                        "key": _LEAF,
                        "clientcas": _List(_LEAF),
                        "clientauth": _LEAF,
                        "minimumtls": _LEAF,
                        "ciphersuites": _List(_LEAF),
                        "letsencrypt": _Struct(
                            {
                                "cachefile": _LEAF,
                                "email": _LEAF,
                                "hosts": _List(_LEAF),
                                "directoryurl": _LEAF,
                            }
                        ),
                    }
                ),
                "debug": _ANY,
                "http2": _ANY,
                "h2c": _ANY,
                "listen": _List(_LEAF),
                "redirect": _Struct({"addr": _LEAF, "listen": _List(_LEAF)}),
            }
        ),
        "health": _Struct(
            {
                "storagedriver": _Struct({"enabled": _LEAF, "interval": _LEAF, "threshold": _LEAF}),
                "file": _ANY,
                "http": _ANY,
                "tcp": _ANY,
            },
            # Go field names differ from the YAML keys here.
            aliases={"filecheckers": "file", "httpcheckers": "http", "tcpcheckers": "tcp"},
        ),
        "catalog": _Struct({"maxentries": _LEAF}),
        "packs": _Struct({"parenttags": _LEAF}),
        **{name: _ANY for name in UNIMPLEMENTED_SECTIONS},
    }
)


class _Ignored(Exception):
    """An environment variable that names nothing settable; carries the reason."""


def _apply_environment(tree: dict[str, Any], environ: Mapping[str, str], parser: _Parser) -> None:
    """Apply ``REGISTRY_*`` variables to *tree*, with distribution's rules.

    Less specific variables apply first (``REGISTRY_AUTH`` before
    ``REGISTRY_AUTH_HTPASSWD_REALM``), so a variable naming a section replaces it
    and the more specific ones then fill it in.
    """
    names = [n for n in environ if n.startswith(ENV_PREFIX) and len(n) > len(ENV_PREFIX)]
    names.sort(key=lambda n: (n.count("_"), n))
    for name in names:
        parts = name[len(ENV_PREFIX) :].split("_")
        if any(not p for p in parts):
            parser.warn(f"{name}: empty component in the variable's name; ignored")
            continue
        payload = _load_yaml(environ[name], parser.source, name)
        if isinstance(payload, _Scalar) and payload.kind != "null" and len(parts) == 1:
            if parts[0].upper() in ("STORAGE", "AUTH"):
                # A scalar for a driver section names the driver (Go's UnmarshalYAML).
                payload = {payload.text: None}
        try:
            keys = _override(tree, _SCHEMA, parts, payload)
        except _Ignored as e:
            parser.warn(f"{name}: {e}; ignored")
            continue
        parser.env_paths[name] = ".".join(keys)


def _override(node: Any, schema: _Schema, parts: list[str], payload: Any) -> list[str]:
    """Set *payload* at *parts* under the container *node*; return the keys used."""
    if isinstance(schema, _Struct):
        field = schema.field(parts[0])
        if field is None:
            raise _Ignored(f"paxd has no configuration key {parts[0].lower()!r} here")
        return [field, *_set_child(node, field, schema.fields[field], parts[1:], payload)]
    if isinstance(schema, _List):
        if not parts[0].isdigit():
            raise _Ignored(f"{parts[0]!r} is not a list index")
        index = int(parts[0])
        if index > len(node):
            raise _Ignored(f"list index {index} is beyond the end of the list ({len(node)} items)")
        if index == len(node):
            node.append(None)
        return [str(index), *_set_child(node, index, schema.item, parts[1:], payload)]
    # A map (or Go's interface{} holding one): keys may contain "_", so match the
    # longest run of components that names an existing key.
    value_schema = schema.value if isinstance(schema, _Map) else _ANY
    for n in range(len(parts), 0, -1):
        wanted = "_".join(parts[:n]).upper()
        found = next((key for key in node if key.upper() == wanted), None)
        if found is None:
            continue
        if n < len(parts) and _is_null(node[found]):
            # Go recreates a key whose value is nil, under the lower-case name.
            del node[found]
            break
        return [found, *_set_child(node, found, value_schema, parts[n:], payload)]
    if len(parts) > 1 and not _descends(value_schema, parts[1]):
        # The value cannot hold a sub-path: the rest of the name is part of the key.
        parts = ["_".join(parts)]
    key = parts[0].lower()
    return [key, *_set_child(node, key, value_schema, parts[1:], payload)]


def _descends(schema: _Schema, part: str) -> bool:
    if isinstance(schema, _List):
        return part.isdigit()
    return not isinstance(schema, _Leaf)


def _set_child(node: Any, key: Any, schema: _Schema, rest: list[str], payload: Any) -> list[str]:
    if not rest:
        node[key] = payload
        return []
    child = node[key] if isinstance(node, list) or key in node else None
    if _is_null(child):
        if isinstance(schema, _Leaf):
            raise _Ignored("the key holds a single value, not a section")
        child = [] if isinstance(schema, _List) else {}
        node[key] = child
    if isinstance(schema, _Any):
        if isinstance(child, list):
            schema = _List(_ANY)
    if isinstance(schema, _List):
        if not isinstance(child, list):
            raise _Ignored("the key holds a single value, not a list")
    elif not isinstance(child, dict):
        raise _Ignored("the key holds a single value, not a section")
    return _override(child, schema, rest, payload)


# --- validation into objects ---------------------------------------------------------------------


_DURATION_UNITS = {
    "ns": 1e-9,
    "us": 1e-6,
    "µs": 1e-6,
    "μs": 1e-6,
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
}
_DURATION = re.compile(r"(\d+\.?\d*|\.\d+)(ns|us|µs|μs|ms|s|m|h)")
_NUMBER_WORDS = {2: "two", 3: "three", 4: "four", 5: "five"}


def _count(n: int, noun: str) -> str:
    return f"{_NUMBER_WORDS.get(n, str(n))} {noun}"


class _Parser:
    """Turns the raw tree into :class:`Config`, collecting warnings and naming keys in errors."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.warnings: list[str] = []
        #: environment variable → the key path it set
        self.env_paths: dict[str, str] = {}

    # helpers

    def warn(self, message: str) -> None:
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
        if _is_null(value):
            return {}
        if not isinstance(value, dict):
            self.fail(key, f"expected a mapping of keys, got {_describe(value)}")
        return value

    def keys(
        self,
        section: Mapping[str, Any],
        key: str,
        known: Iterable[str],
        unimplemented: Iterable[str] = (),
        why: str = "not implemented by paxd",
    ) -> None:
        """Warn once about each key of *section* paxd ignores."""
        known = tuple(known)
        unimplemented = tuple(unimplemented)
        for name, value in section.items():
            path = f"{key}.{name}" if key else name
            if name in known:
                continue
            if name in unimplemented:
                # An empty section or a "false" switches nothing on: nothing to warn about.
                off = isinstance(value, _Scalar) and value.kind == "bool" and not value.value
                if not _is_null(value) and value != {} and not off:
                    self.warn(f"{path}: {why}; ignored")
                continue
            hint = difflib.get_close_matches(name.lower(), known + unimplemented, n=1, cutoff=0.7)
            suggestion = f" (did you mean {hint[0]!r}?)" if hint else ""
            self.warn(f"{path}: unknown key; ignored{suggestion}")

    def string(self, value: Any, key: str, default: str | None = None) -> str | None:
        """A string field: any single value, as written (Go's decoding into ``string``)."""
        if _is_null(value):
            return default
        if not isinstance(value, _Scalar):
            self.fail(key, f"expected a single value (a string), got {_describe(value)}")
        return value.text

    def required(self, value: Any, key: str, example: str) -> str:
        text = self.string(value, key)
        if not text:
            self.fail(
                key, f"missing; set it, e.g. {key.rsplit('.', 1)[-1]}: {example}", missing=True
            )
        return text

    def boolean(self, value: Any, key: str, default: bool) -> bool:
        if _is_null(value):
            return default
        if not (isinstance(value, _Scalar) and value.kind == "bool"):
            self.fail(key, f"expected true or false, got {_describe(value)}")
        return bool(value.value)

    def integer(self, value: Any, key: str, default: int, minimum: int | None = None) -> int:
        if _is_null(value):
            return default
        if not (isinstance(value, _Scalar) and value.kind == "int"):
            self.fail(key, f"expected a whole number, got {_describe(value)}")
        number = int(value.value)
        if minimum is not None and number < minimum:
            self.fail(key, f"must be at least {minimum}, got {number}")
        return number

    def duration(self, value: Any, key: str, default: float) -> float:
        """A Go duration (``10s``, ``1h30m``; a bare number is nanoseconds) in seconds."""
        if _is_null(value):
            return default
        if isinstance(value, _Scalar) and value.kind == "int":
            return int(value.value) * 1e-9
        text = self.string(value, key) or ""
        body = text[1:] if text[:1] in "+-" else text
        if body == "0":
            return 0.0
        if not body or _DURATION.sub("", body):
            self.fail(key, f"expected a duration such as 10s, 5m or 1h30m, got {text!r}")
        seconds = sum(float(n) * _DURATION_UNITS[u] for n, u in _DURATION.findall(body))
        if text.startswith("-"):
            self.fail(key, f"must not be negative, got {text!r}")
        return seconds

    def strings(self, value: Any, key: str, single_ok: bool = False) -> tuple[str, ...]:
        """A list of strings (``single_ok``: a lone string counts as a list of one)."""
        if _is_null(value):
            return ()
        if single_ok and isinstance(value, _Scalar):
            value = [value]
        if not isinstance(value, list):
            self.fail(key, f"expected a list, e.g. [a, b], got {_describe(value)}")
        result = []
        for i, item in enumerate(value):
            text = self.string(item, f"{key}.{i}")
            if text is None:
                self.fail(f"{key}.{i}", "empty list item; remove it or give it a value")
            result.append(text)
        return tuple(result)

    def choice(self, value: Any, key: str, default: str, choices: Iterable[str]) -> str:
        text = (self.string(value, key) or default).lower()
        choices = tuple(choices)
        if text not in choices:
            self.fail(key, f"{text!r} is not one of {', '.join(choices)}")
        return text

    def readable_file(self, path: str, key: str) -> str:
        """*path* made absolute, if it is a file this process can read."""
        full = os.path.abspath(path)
        if not os.path.exists(full):
            self.fail(key, f"{full} does not exist; create it or correct the path")
        if os.path.isdir(full):
            self.fail(key, f"{full} is a directory; name the file itself")
        if not os.access(full, os.R_OK):
            self.fail(
                key, f"{full} is not readable by this user (uid {os.getuid()}); fix its permissions"
            )
        return full

    # sections

    def version(self, value: Any) -> str:
        if _is_null(value):
            self.fail("version", "missing; the file must start with 'version: 0.1'")
        if not isinstance(value, _Scalar) or value.text != "0.1":
            got = value.text if isinstance(value, _Scalar) else _describe(value)
            self.fail("version", f"unsupported version {got!r}; the only version is 0.1")
        return "0.1"

    def config(self, tree: dict[str, Any]) -> Config:
        known = ("version", "loglevel", "log", "storage", "auth", "http", "health", "catalog")
        self.keys(tree, "", (*known, "packs"), UNIMPLEMENTED_SECTIONS)
        version = self.version(tree.get("version"))
        log = self.log(tree.get("log"), tree.get("loglevel"))
        storage = self.storage(tree.get("storage"))
        http = self.http(tree.get("http"))
        auth = self.auth(tree.get("auth"))
        health = self.health(tree.get("health"))
        catalog_section = self.mapping(tree.get("catalog"), "catalog")
        self.keys(catalog_section, "catalog", ("maxentries",))
        catalog = CatalogConfig(
            maxentries=self.integer(
                catalog_section.get("maxentries"), "catalog.maxentries", 1000, 1
            )
        )
        packs_section = self.mapping(tree.get("packs"), "packs")
        self.keys(packs_section, "packs", ("parenttags",))
        packs = PacksConfig(
            parenttags=self.boolean(packs_section.get("parenttags"), "packs.parenttags", True)
        )
        return Config(
            version=version,
            log=log,
            storage=storage,
            http=http,
            auth=auth,
            health=health,
            catalog=catalog,
            packs=packs,
            warnings=tuple(self.warnings),
            source=self.source,
        )

    def log(self, value: Any, legacy_level: Any) -> LogConfig:
        section = self.mapping(value, "log")
        self.keys(
            section, "log", ("level", "formatter", "fields", "accesslog"), ("hooks", "reportcaller")
        )
        level_value = section.get("level")
        level_key = "log.level"
        if not _is_null(legacy_level):
            self.warn("loglevel: deprecated; use log.level")
            if _is_null(level_value):
                level_value, level_key = legacy_level, "loglevel"
        fields = self.mapping(section.get("fields"), "log.fields")
        accesslog = self.mapping(section.get("accesslog"), "log.accesslog")
        self.keys(accesslog, "log.accesslog", ("disabled",))
        return LogConfig(
            level=self.choice(level_value, level_key, "info", LOG_LEVELS),
            formatter=self.choice(
                section.get("formatter"), "log.formatter", "text", LOG_FORMATTERS
            ),
            fields=_plain(fields),
            accesslog_disabled=self.boolean(
                accesslog.get("disabled"), "log.accesslog.disabled", False
            ),
        )

    def storage(self, value: Any) -> StorageConfig:
        if _is_null(value):
            self.fail(
                "storage",
                "missing; configure one driver, e.g. 'filesystem: {rootdirectory:"
                " /var/lib/registry}' or 'inmemory'",
            )
        section = self.mapping(value, "storage")
        drivers = sorted(name for name in section if name not in STORAGE_SPECIAL)
        if not drivers:
            self.fail(
                "storage",
                "no storage driver configured; add 'filesystem: {rootdirectory:"
                " /var/lib/registry}' or 'inmemory'",
            )
        if len(drivers) > 1:
            self.fail(
                "storage",
                f"{_count(len(drivers), 'storage drivers')} configured ({', '.join(drivers)});"
                " keep exactly one",
            )
        driver = drivers[0]
        if driver not in STORAGE_DRIVERS:
            self.fail(
                "storage", f"driver {driver!r} is not supported yet; use filesystem or inmemory"
            )
        params = self.mapping(section[driver], f"storage.{driver}")
        rootdirectory: str | None = None
        if driver == "filesystem":
            self.keys(
                params,
                "storage.filesystem",
                ("rootdirectory",),
                ("maxthreads",),
                "not used by paxd (its disk thread pool is fixed)",
            )
            root = self.string(params.get("rootdirectory"), "storage.filesystem.rootdirectory")
            rootdirectory = os.path.abspath(root or DEFAULT_ROOTDIRECTORY)
        else:
            self.keys(params, "storage.inmemory", ())

        delete = self.mapping(section.get("delete"), "storage.delete")
        self.keys(delete, "storage.delete", ("enabled",))
        redirect = self.mapping(section.get("redirect"), "storage.redirect")
        self.keys(redirect, "storage.redirect", ("disable",))
        cache = section.get("cache")
        if not _is_null(cache) and cache != {}:
            self.warn(
                "storage.cache: not implemented by paxd (it keeps no blob descriptor cache);"
                " ignored"
            )
        maintenance = self.mapping(section.get("maintenance"), "storage.maintenance")
        self.keys(maintenance, "storage.maintenance", ("readonly",), ("uploadpurging",))
        readonly = self.mapping(maintenance.get("readonly"), "storage.maintenance.readonly")
        self.keys(readonly, "storage.maintenance.readonly", ("enabled",))
        return StorageConfig(
            driver=cast(Literal["filesystem", "inmemory"], driver),
            rootdirectory=rootdirectory,
            delete_enabled=self.boolean(delete.get("enabled"), "storage.delete.enabled", False),
            readonly=self.boolean(
                readonly.get("enabled"), "storage.maintenance.readonly.enabled", False
            ),
            redirect_disabled=self.boolean(
                redirect.get("disable"), "storage.redirect.disable", False
            ),
        )

    def http(self, value: Any) -> HTTPConfig:
        section = self.mapping(value, "http")
        self.keys(
            section,
            "http",
            (
                "addr",
                "net",
                "prefix",
                "host",
                "secret",
                "headers",
                "tls",
                "listen",
                "draintimeout",
                "redirect",
            ),
            ("relativeurls", "debug", "http2", "h2c"),
        )
        net = self.choice(section.get("net"), "http.net", "tcp", ("tcp", "unix"))
        addr = self.string(section.get("addr"), "http.addr", ":5000") or ""
        listen = self.strings(section.get("listen"), "http.listen", single_ok=True)
        for i, description in enumerate(listen):
            if ":" not in description:
                self.fail(
                    f"http.listen.{i}",
                    f"{description!r} is not a Twisted endpoint description; write e.g."
                    " tcp:5000:interface=127.0.0.1 or systemd:domain=INET:index=0",
                )
        if listen and "addr" in section:
            self.warn("http.addr: not used because http.listen is set")
        prefix = self.string(section.get("prefix"), "http.prefix", "") or ""
        if prefix and not prefix.startswith("/"):
            self.fail("http.prefix", f"{prefix!r} must start with '/', e.g. /registry/")
        host = self.string(section.get("host"), "http.host")
        if host:
            parts = urlsplit(host)
            if parts.scheme not in ("http", "https") or not parts.netloc:
                self.fail(
                    "http.host",
                    f"{host!r} is not a URL with a scheme; write e.g. https://registry.example.com",
                )
        # Accepted for compatibility; say plainly what paxd does instead.
        if prefix and prefix != "/":
            self.warn("http.prefix: not implemented; paxd serves /v1/ and /v2/ at the root")
        if section.get("secret"):
            self.warn(
                "http.secret: not used; paxd keeps upload state in storage, so every replica"
                " resumes any upload without a shared secret"
            )
        if section.get("draintimeout"):
            self.warn("http.draintimeout: not implemented; paxd stops when its requests end")
        tls = self.tls(section.get("tls"))
        redirect = self.redirect(section.get("redirect"))
        if redirect and tls is None:
            self.fail(
                "http.redirect",
                "set, but http.tls is not: the plain-HTTP listener redirects to https; configure"
                " http.tls (a certificate or letsencrypt) or remove http.redirect",
            )
        config = HTTPConfig(
            addr=addr,
            net=cast(Literal["tcp", "unix"], net),
            prefix=prefix,
            host=host or None,
            secret=self.string(section.get("secret"), "http.secret") or None,
            headers=self.headers(section.get("headers")),
            tls=tls,
            listen=listen,
            redirect=redirect,
            draintimeout=self.duration(section.get("draintimeout"), "http.draintimeout", 0.0),
        )
        try:
            _endpoint_descriptions(config, self.source)
        except ConfigError as e:
            self.fail(e.key, e.message)
        return config

    def redirect(self, value: Any) -> tuple[str, ...]:
        """``http.redirect`` (paxd extension): ``addr`` (as ``http.addr``) or ``listen``."""
        key = "http.redirect"
        section = self.mapping(value, key)
        self.keys(section, key, ("addr", "listen"))
        listen = self.strings(section.get("listen"), f"{key}.listen", single_ok=True)
        for i, description in enumerate(listen):
            if ":" not in description:
                self.fail(
                    f"{key}.listen.{i}",
                    f"{description!r} is not a Twisted endpoint description; write e.g. tcp:80"
                    " or systemd:domain=INET:index=1",
                )
        addr = self.string(section.get("addr"), f"{key}.addr")
        if listen:
            if addr:
                self.warn(f"{key}.addr: not used because {key}.listen is set")
            return listen
        if not addr:
            return ()
        try:
            return tuple(_endpoint_descriptions(HTTPConfig(addr=addr), self.source))
        except ConfigError as e:
            self.fail(f"{key}.addr", e.message.replace("http.listen", f"{key}.listen"))

    def headers(self, value: Any) -> dict[str, list[str]]:
        section = self.mapping(value, "http.headers")
        headers: dict[str, list[str]] = {}
        for name, values in section.items():
            key = f"http.headers.{name}"
            if not isinstance(values, list):
                self.fail(
                    key, f"expected a list of values, e.g. [nosniff], got {_describe(values)}"
                )
            headers[name] = list(self.strings(values, key))
        return headers

    def tls(self, value: Any) -> TLSConfig | None:
        section = self.mapping(value, "http.tls")
        self.keys(
            section,
            "http.tls",
            ("certificate", "key", "clientcas", "minimumtls", "ciphersuites", "letsencrypt"),
            ("clientauth",),
        )
        certificate = self.string(section.get("certificate"), "http.tls.certificate")
        key = self.string(section.get("key"), "http.tls.key")
        letsencrypt = self.letsencrypt(section.get("letsencrypt"))
        if not certificate and letsencrypt is None:
            # As in distribution: without a certificate, TLS is off.
            others = [k for k, v in section.items() if not _is_null(v) and v != {}]
            if others:
                self.warn(
                    f"http.tls: no certificate configured, so paxd serves plain HTTP;"
                    f" {', '.join(others)} ignored"
                )
            return None
        if certificate and letsencrypt is not None:
            self.fail(
                "http.tls",
                "both certificate and letsencrypt are configured; keep one of them",
            )
        if certificate and not key:
            self.fail(
                "http.tls.key",
                "missing; set the private key file that goes with http.tls.certificate",
            )
        if key and not certificate:
            self.fail("http.tls.certificate", "missing; set the certificate file for http.tls.key")
        minimumtls = self.string(section.get("minimumtls"), "http.tls.minimumtls")
        if minimumtls and minimumtls.lower() not in TLS_VERSIONS:
            self.fail(
                "http.tls.minimumtls",
                f"unknown TLS version {minimumtls!r}; use tls1.2 or tls1.3",
            )
        # Go's suite names; paxd.tls.context maps them to OpenSSL's (unknown names stop it).
        ciphersuites = self.strings(section.get("ciphersuites"), "http.tls.ciphersuites")
        clientcas = self.strings(section.get("clientcas"), "http.tls.clientcas", single_ok=True)
        return TLSConfig(
            certificate=self.readable_file(certificate, "http.tls.certificate")
            if certificate
            else None,
            key=self.readable_file(key, "http.tls.key") if key else None,
            clientcas=tuple(
                self.readable_file(path, f"http.tls.clientcas.{i}")
                for i, path in enumerate(clientcas)
            ),
            minimumtls=minimumtls or None,
            ciphersuites=ciphersuites,
            letsencrypt=letsencrypt,
        )

    def letsencrypt(self, value: Any) -> LetsEncryptConfig | None:
        key = "http.tls.letsencrypt"
        section = self.mapping(value, key)
        self.keys(section, key, ("cachefile", "email", "hosts", "directoryurl"))
        if not any(not _is_null(v) for v in section.values()):
            return None
        cachefile = self.required(section.get("cachefile"), f"{key}.cachefile", "/data/acme")
        hosts = self.strings(section.get("hosts"), f"{key}.hosts", single_ok=True)
        if not hosts:
            self.fail(
                f"{key}.hosts",
                "missing; list the host names to get certificates for,"
                " e.g. hosts: [registry.example.com]",
            )
        return LetsEncryptConfig(
            cachefile=os.path.abspath(cachefile),
            email=self.string(section.get("email"), f"{key}.email") or None,
            hosts=hosts,
            directoryurl=self.string(
                section.get("directoryurl"), f"{key}.directoryurl", DEFAULT_LETSENCRYPT_DIRECTORY
            )
            or DEFAULT_LETSENCRYPT_DIRECTORY,
        )

    def auth(self, value: Any) -> AuthConfig | None:
        section = self.mapping(value, "auth")
        if not section:
            return None
        if len(section) > 1:
            self.fail(
                "auth",
                f"{_count(len(section), 'access controllers')} configured"
                f" ({', '.join(section)}); keep exactly one (paxd supports htpasswd)",
            )
        (name,) = section
        if name in ("silly", "token"):
            self.fail(f"auth.{name}", f"{name!r} authentication is not supported; use htpasswd")
        if name != "htpasswd":
            self.fail("auth", f"unknown access controller {name!r}; use htpasswd")
        params = self.mapping(section[name], "auth.htpasswd")
        self.keys(params, "auth.htpasswd", ("realm", "path", "admins", "anonymous"))
        admins = self.strings(params.get("admins"), "auth.htpasswd.admins", single_ok=True)
        for i, admin in enumerate(admins):
            if not admin or ":" in admin:
                self.fail(f"auth.htpasswd.admins.{i}", f"{admin!r} is not a user name")
        if _is_null(params.get("admins")):
            admins = ("admin",)
        return AuthConfig(
            htpasswd=HtpasswdConfig(
                realm=self.required(params.get("realm"), "auth.htpasswd.realm", "basic-realm"),
                path=os.path.abspath(
                    self.required(params.get("path"), "auth.htpasswd.path", "/auth/htpasswd")
                ),
                admins=admins,
                anonymous=cast(
                    Literal["none", "read"],
                    self.choice(
                        params.get("anonymous"), "auth.htpasswd.anonymous", "none", ("none", "read")
                    ),
                ),
            )
        )

    def health(self, value: Any) -> HealthConfig:
        section = self.mapping(value, "health")
        self.keys(section, "health", ("storagedriver",), ("file", "http", "tcp"))
        driver = self.mapping(section.get("storagedriver"), "health.storagedriver")
        self.keys(driver, "health.storagedriver", ("enabled", "interval", "threshold"))
        key = "health.storagedriver"
        interval = self.duration(driver.get("interval"), f"{key}.interval", 10.0)
        if interval <= 0:
            self.fail(f"{key}.interval", "must be more than zero, e.g. 10s")
        if driver:
            self.warn(
                "health.storagedriver: /health checks storage on every request instead;"
                " interval and threshold are not used"
            )
        return HealthConfig(
            storagedriver_enabled=self.boolean(driver.get("enabled"), f"{key}.enabled", False),
            storagedriver_interval=interval,
            storagedriver_threshold=self.integer(driver.get("threshold"), f"{key}.threshold", 3, 1),
        )


# --- http.addr → endpoint descriptions ------------------------------------------------------------


def _escape(text: str) -> str:
    """Escape a value for a Twisted endpoint description."""
    return text.replace("\\", "\\\\").replace(":", "\\:").replace("=", "\\=")


def _endpoint_descriptions(http: HTTPConfig, source: str) -> list[str]:
    if http.listen:
        return list(http.listen)
    addr = http.addr
    if http.net == "unix":
        if not addr:
            raise ConfigError(source, "http.addr", "missing; with net: unix, set the socket path")
        return [f"unix:{_escape(addr)}"]
    host, sep, port = addr.rpartition(":")
    if not sep:
        raise ConfigError(
            source,
            "http.addr",
            f"{addr!r} has no port; write HOST:PORT, e.g. :5000 or 127.0.0.1:5000",
        )
    if not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ConfigError(
            source,
            "http.addr",
            f"{addr!r}: port {port!r} is not a number from 0 to 65535; write e.g. :5000",
        )
    number = int(port)
    if not host:
        return [f"tcp:{number}"]
    bracketed = host.startswith("[") and host.endswith("]")
    literal = host[1:-1] if bracketed else host
    try:
        ip = ipaddress.ip_address(literal)
    except ValueError:
        if ":" in literal and not bracketed:
            hint = "put an IPv6 address in brackets, e.g. [::1]:5000"
        else:
            hint = (
                "use an IP address (e.g. 127.0.0.1:5000, [::1]:5000, or :5000 for all),"
                " or Twisted endpoints in http.listen"
            )
        raise ConfigError(
            source, "http.addr", f"{addr!r}: {host!r} is not an IP address; {hint}"
        ) from None
    if ip.version == 6:
        if not bracketed:
            raise ConfigError(
                source,
                "http.addr",
                f"{addr!r}: put the IPv6 address in brackets, e.g. [{literal}]:{number}",
            )
        return [f"tcp6:{number}:interface={_escape(literal)}"]
    if bracketed:
        raise ConfigError(
            source,
            "http.addr",
            f"{addr!r}: only IPv6 addresses go in brackets; write {literal}:{number}",
        )
    return [f"tcp:{number}:interface={literal}"]
