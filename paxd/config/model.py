"""The configuration's one schema: frozen attrs classes, one per section of the YAML.

Every field that is a key of the file says so with a declarator from
:mod:`paxd.config.schema` (its key, its kind, its default, its converter and
checks from :mod:`paxd.config.values`, whether paxd implements it); a
``SECTION`` attribute adds the section's cross-field rules
(:mod:`paxd.config.rules`) or makes it a driver map. The decoder
(:mod:`paxd.config.decode`) and the ``REGISTRY_*`` overlay
(:mod:`paxd.config.environ`) read nothing else, so a new key is a new field
here and a new section is a new class.

Classes come before the sections that hold them. Flattened read-only
properties (``storage.delete_enabled``, ``log.accesslog_disabled``, ...) keep
the names the daemon used before the sections were nested as in the file.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar, Literal

import attrs

from paxd.config import rules
from paxd.config.connections import ConnectionsConfig
from paxd.config.decode import or_list
from paxd.config.operations import DebugConfig, GCConfig, UploadPurgingConfig
from paxd.config.redis import RedisConfig
from paxd.config.s3 import S3Config
from paxd.config.schema import (
    ANY,
    LEAF,
    Drivers,
    Ignored,
    ListOf,
    MapOf,
    Rule,
    Section,
    alternative,
    items,
    leaf,
    mapping,
    section,
    unimplemented,
)
from paxd.config.validation import ValidationConfig
from paxd.config.values import (
    absolute,
    boolean,
    choice,
    duration,
    endpoints,
    header_lists,
    integer,
    kept,
    one_of,
    plain_mapping,
    required,
    some_hosts,
    starts_with_slash,
    string,
    strings,
    url_with_scheme,
    user_name,
    version,
)
from paxd.config.yamlload import Scalar, is_null

__all__ = [
    "DEFAULT_LETSENCRYPT_DIRECTORY",
    "DEFAULT_ROOTDIRECTORY",
    "LOG_FORMATTERS",
    "LOG_LEVELS",
    "TLS_VERSIONS",
    "AccessLogConfig",
    "AuthConfig",
    "CatalogConfig",
    "Config",
    "ConnectionsConfig",
    "DeleteConfig",
    "FilesystemConfig",
    "HTTPConfig",
    "HTTPRedirectConfig",
    "HealthConfig",
    "HtpasswdConfig",
    "InMemoryConfig",
    "LetsEncryptConfig",
    "LogConfig",
    "MaintenanceConfig",
    "PacksConfig",
    "ReadOnlyConfig",
    "S3Config",
    "StorageConfig",
    "StorageDriverHealthConfig",
    "StorageRedirectConfig",
    "TLSConfig",
    "ValidationConfig",
]

DEFAULT_ROOTDIRECTORY = "/var/lib/registry"
DEFAULT_LETSENCRYPT_DIRECTORY = "https://acme-v02.api.letsencrypt.org/directory"
LOG_LEVELS = ("error", "warn", "info", "debug")
LOG_FORMATTERS = ("text", "json", "logstash")
TLS_VERSIONS = ("tls1.0", "tls1.1", "tls1.2", "tls1.3", "tls10", "tls11", "tls12", "tls13")


# --- when a key counts as set ----------------------------------------------------------


def _given(raw: Any) -> bool:
    return not is_null(raw) and raw != {}


def _written(raw: Any, section: dict[str, Any]) -> bool:
    return bool(raw)  # as written, even empty: ``secret:`` is a value too


def _text(raw: Any) -> str:
    return raw.text if isinstance(raw, Scalar) and not is_null(raw) else ""


def _listed(raw: Any) -> bool:
    """A list given as a lone value or a non-empty list."""
    return (isinstance(raw, Scalar) and not is_null(raw)) or (isinstance(raw, list) and bool(raw))


# --- log --------------------------------------------------------------------------------------


@attrs.frozen
class AccessLogConfig:
    """``log.accesslog``."""

    disabled: bool = leaf(boolean(), default=False)


_LOG_LEVEL = choice(*LOG_LEVELS)


@attrs.frozen
class LogConfig:
    """``log``: level (error, warn, info, debug), formatter, fields added to every event."""

    SECTION: ClassVar[Section] = Section(
        rules=(Rule(rules.legacy_loglevel(_LOG_LEVEL, "info"), after="level"),)
    )

    level: str = leaf(_LOG_LEVEL, default="info")
    formatter: str = leaf(choice(*LOG_FORMATTERS), default="text")
    fields: dict[str, Any] = mapping(MapOf(ANY), plain_mapping())
    accesslog: AccessLogConfig = section(AccessLogConfig)
    hooks: Any = unimplemented(ListOf(ANY))
    reportcaller: Any = unimplemented(LEAF)

    @property
    def accesslog_disabled(self) -> bool:
        """``log.accesslog.disabled``."""
        return self.accesslog.disabled


# --- storage ----------------------------------------------------------------------------------


@attrs.frozen
class FilesystemConfig:
    """``storage.filesystem``: distribution's on-disk layout under ``rootdirectory``."""

    SECTION: ClassVar[Section] = Section(strict=True)

    #: absolute (a relative path is from the current directory)
    rootdirectory: str = leaf(absolute(string()), default=DEFAULT_ROOTDIRECTORY)
    maxthreads: Any = unimplemented(LEAF, why="not used by paxd (its disk thread pool is fixed)")


@attrs.frozen
class InMemoryConfig:
    """``storage.inmemory``: no parameters."""

    SECTION: ClassVar[Section] = Section(strict=True)


@attrs.frozen
class DeleteConfig:
    """``storage.delete``."""

    enabled: bool = leaf(boolean(), default=False)


@attrs.frozen
class StorageRedirectConfig:
    """``storage.redirect``."""

    disable: bool = leaf(boolean(), default=False)


@attrs.frozen
class ReadOnlyConfig:
    """``storage.maintenance.readonly``."""

    enabled: bool = leaf(boolean(), default=False)


@attrs.frozen
class MaintenanceConfig:
    """``storage.maintenance``."""

    readonly: ReadOnlyConfig = section(ReadOnlyConfig)
    uploadpurging: UploadPurgingConfig = section(UploadPurgingConfig)
    #: paxd extension: garbage collection while serving
    gc: GCConfig = section(GCConfig)


def _storage_unsupported(key: str, name: str, drivers: Sequence[str]) -> tuple[str, str]:
    return key, f"driver {name!r} is not supported yet; use {or_list(drivers)}"


_STORAGE_EXAMPLE = "'filesystem: {rootdirectory: /var/lib/registry}' or 'inmemory'"


@attrs.frozen
class StorageConfig:
    """``storage``: the one driver and the options that apply to every driver."""

    SECTION: ClassVar[Section] = Section(
        drivers=Drivers(
            noun="storage drivers",
            many="keep exactly one",
            unsupported=_storage_unsupported,
            missing=f"missing; configure one driver, e.g. {_STORAGE_EXAMPLE}",
            empty=f"no storage driver configured; add {_STORAGE_EXAMPLE}",
            name_field="driver",
            sort=True,
        )
    )

    #: the name of the driver configured (its section is the field of that name)
    driver: str = "filesystem"
    filesystem: FilesystemConfig | None = alternative(FilesystemConfig, default_driver=True)
    inmemory: InMemoryConfig | None = alternative(InMemoryConfig)
    #: distribution's keys and the vendor's host/port (paxd/config/s3.py)
    s3: S3Config | None = alternative(S3Config)
    delete: DeleteConfig = section(DeleteConfig)
    redirect: StorageRedirectConfig = section(StorageRedirectConfig)
    cache: Any = unimplemented(
        why="not implemented by paxd (it keeps no blob descriptor cache)", when=_given
    )
    maintenance: MaintenanceConfig = section(MaintenanceConfig)

    @property
    def rootdirectory(self) -> str | None:
        """An absolute path for ``filesystem``; ``None`` for other drivers."""
        return self.filesystem.rootdirectory if self.filesystem is not None else None

    @property
    def delete_enabled(self) -> bool:
        """``storage.delete.enabled``."""
        return self.delete.enabled

    @property
    def readonly(self) -> bool:
        """``storage.maintenance.readonly.enabled``."""
        return self.maintenance.readonly.enabled

    @property
    def redirect_disabled(self) -> bool:
        """``storage.redirect.disable``."""
        return self.redirect.disable

    @property
    def redirects(self) -> bool:
        """Whether blob downloads may redirect to the storage (distribution: on unless disabled).

        Only drivers that can hand out URLs (s3) ever redirect.
        """
        return not self.redirect.disable


# --- http -------------------------------------------------------------------------------------


@attrs.frozen
class LetsEncryptConfig:
    """``http.tls.letsencrypt``: certificates from an ACME directory."""

    SECTION: ClassVar[Section] = Section(optional=True, strict=True)

    cachefile: str = leaf(absolute(required("/data/acme")))
    hosts: tuple[str, ...] = items(strings(single_ok=True), check=some_hosts)
    email: str | None = leaf(string(), default=None)
    directoryurl: str = leaf(string(), default=DEFAULT_LETSENCRYPT_DIRECTORY)


@attrs.frozen
class TLSConfig:
    """``http.tls``: a certificate chain and key from files, or Let's Encrypt."""

    SECTION: ClassVar[Section] = Section(
        rules=(Rule(rules.tls_enabled, after="letsencrypt"), Rule(rules.tls_files)),
        strict=True,
    )

    certificate: str | None = leaf(string(), default=None)
    key: str | None = leaf(string(), default=None)
    letsencrypt: LetsEncryptConfig | None = section(LetsEncryptConfig, default=None)
    minimumtls: str | None = leaf(
        string(),
        default=None,
        check=one_of(TLS_VERSIONS, "unknown TLS version {value!r}; use tls1.2 or tls1.3"),
    )
    #: Go's suite names; paxd.tls.context maps them to OpenSSL's (unknown names stop it)
    ciphersuites: tuple[str, ...] = items(strings())
    clientcas: tuple[str, ...] = items(strings(single_ok=True))
    clientauth: Any = unimplemented(LEAF)


@attrs.frozen
class HTTPRedirectConfig:
    """``http.redirect`` (paxd extension): ``addr`` (as ``http.addr``) or ``listen``."""

    SECTION: ClassVar[Section] = Section(
        rules=(Rule(rules.redirect_addr_unused, after="addr"),), strict=True
    )

    listen: tuple[str, ...] = items(
        strings(single_ok=True, each=endpoints("tcp:80 or systemd:domain=INET:index=1"))
    )
    addr: str | None = leaf(string(), default=None)


@attrs.frozen
class HTTPConfig:
    """``http``: where and how the registry listens."""

    SECTION: ClassVar[Section] = Section(
        rules=(
            Rule(rules.redirect_needs_tls, after="redirect"),
            Rule(rules.addr_is_listenable),
        ),
        strict=True,
    )

    net: Literal["tcp", "unix"] = leaf(choice("tcp", "unix"), default="tcp")
    #: Go's listen address; see :func:`paxd.listeners.endpoint_descriptions`
    addr: str = leaf(
        string(keep_empty=True),
        default=":5000",
        ignored=Ignored(
            "{path}: not used because {section}.listen is set",
            when=lambda raw, section: "addr" in section and _listed(section.get("listen")),
        ),
    )
    #: paxd extension: Twisted endpoint descriptions; when set, ``addr`` is not used
    listen: tuple[str, ...] = items(
        strings(
            single_ok=True,
            each=endpoints("tcp:5000:interface=127.0.0.1 or systemd:domain=INET:index=0"),
        )
    )
    prefix: str = leaf(
        string(),
        default="",
        check=starts_with_slash,
        ignored=Ignored(
            "{path}: not implemented; paxd serves /v1/ and /v2/ at the root",
            when=lambda raw, section: _text(raw) not in ("", "/"),
        ),
    )
    host: str | None = leaf(string(), default=None, check=url_with_scheme)
    tls: TLSConfig | None = section(TLSConfig, default=None)
    #: paxd extension (``http.redirect``): plain-HTTP listeners (port 80) that answer ACME
    #: HTTP-01 challenges and redirect everything else to https; endpoint descriptions
    redirect: tuple[str, ...] = section(
        HTTPRedirectConfig, default=(), finish=rules.redirect_descriptions
    )
    secret: str | None = leaf(
        string(),
        default=None,
        ignored=Ignored(
            "{path}: not used; paxd keeps upload state in storage, so every replica"
            " resumes any upload without a shared secret",
            when=_written,
        ),
    )
    headers: dict[str, list[str]] = mapping(MapOf(ListOf(LEAF)), header_lists())
    #: paxd extension: processes serving the listeners (``paxd serve --workers N``); >1 needs redis
    workers: int = leaf(integer(minimum=1), default=1)
    #: paxd extension: deadlines, rates and caps per connection (paxd/config/connections.py)
    connections: ConnectionsConfig = section(ConnectionsConfig)
    #: seconds to wait for requests in flight at shutdown (Go duration in the file)
    draintimeout: float = leaf(
        duration(),
        default=0.0,
        ignored=Ignored("{path}: not implemented; paxd stops when its requests end", when=_written),
    )
    relativeurls: Any = unimplemented(LEAF)
    debug: DebugConfig = section(DebugConfig)
    http2: Any = unimplemented()
    h2c: Any = unimplemented()


# --- auth -------------------------------------------------------------------------------------


@attrs.frozen
class HtpasswdConfig:
    """``auth.htpasswd``: HTTP Basic against a bcrypt htpasswd file."""

    SECTION: ClassVar[Section] = Section(strict=True)

    realm: str = leaf(required("basic-realm"))
    #: absolute (a relative path is from the current directory)
    path: str = leaf(absolute(required("/auth/htpasswd")))
    #: paxd extension: users who may push and delete; every other user may only read
    admins: tuple[str, ...] = items(strings(single_ok=True, each=user_name), default=("admin",))
    #: paxd extension: ``read`` lets clients without credentials pull
    anonymous: Literal["none", "read"] = leaf(choice("none", "read"), default="none")


def _auth_unsupported(key: str, name: str, controllers: Sequence[str]) -> tuple[str, str]:
    if name in ("silly", "token"):
        return (
            f"{key}.{name}",
            f"{name!r} authentication is not supported; use {or_list(controllers)}",
        )
    return key, f"unknown access controller {name!r}; use {or_list(controllers)}"


@attrs.frozen
class AuthConfig:
    """``auth``: the access controller (paxd implements htpasswd only)."""

    SECTION: ClassVar[Section] = Section(
        drivers=Drivers(
            noun="access controllers",
            many="keep exactly one (paxd supports htpasswd)",
            unsupported=_auth_unsupported,
        )
    )

    htpasswd: HtpasswdConfig = alternative(HtpasswdConfig)


# --- health, catalog, packs -------------------------------------------------------------------


@attrs.frozen
class StorageDriverHealthConfig:
    """``health.storagedriver``: read, but ``/health`` checks storage on every request."""

    SECTION: ClassVar[Section] = Section(rules=(Rule(rules.storagedriver_unused),))

    enabled: bool = leaf(boolean(), default=False)
    interval: float = leaf(duration(positive=True), default=10.0)
    threshold: int = leaf(integer(minimum=1), default=3)


@attrs.frozen
class HealthConfig:
    """``health``: periodic storage checks reported by ``/health``."""

    storagedriver: StorageDriverHealthConfig = section(StorageDriverHealthConfig)
    # Go's field names differ from the YAML keys here (the overlay accepts both).
    file: Any = unimplemented(aliases=("filecheckers",))
    http: Any = unimplemented(aliases=("httpcheckers",))
    tcp: Any = unimplemented(aliases=("tcpcheckers",))

    @property
    def storagedriver_enabled(self) -> bool:
        """``health.storagedriver.enabled``."""
        return self.storagedriver.enabled

    @property
    def storagedriver_interval(self) -> float:
        """``health.storagedriver.interval`` in seconds."""
        return self.storagedriver.interval

    @property
    def storagedriver_threshold(self) -> int:
        """``health.storagedriver.threshold``."""
        return self.storagedriver.threshold


@attrs.frozen
class CatalogConfig:
    """``catalog``: the largest page ``/_catalog`` returns."""

    maxentries: int = leaf(integer(minimum=1), default=1000)


@attrs.frozen
class PacksConfig:
    """``packs`` (paxd extension): pack-registry behaviour."""

    #: maintain parent tags (``14.x``, ``14.4.x``) pointing at the newest version of their line
    parenttags: bool = leaf(boolean(), default=True)
    #: serve the catalogue's HTML pages to browsers (``/``, ``/packs/<name>``, ``/repositories``)
    catalogue: bool = leaf(boolean(), default=True)


# --- the whole ----------------------------------------------------------------------------------


@attrs.frozen
class Config:
    """The whole configuration, after ``REGISTRY_*`` overrides and validation."""

    SECTION: ClassVar[Section] = Section(misplaced=True)

    version: str = leaf(version, default="0.1")
    #: deprecated ``log.level``, as written (``log``'s rule ``rules.legacy_loglevel`` reads it)
    loglevel: Any = leaf(kept(), default=None)
    log: LogConfig = section(LogConfig)
    storage: StorageConfig = section(StorageConfig)
    http: HTTPConfig = section(HTTPConfig)
    auth: AuthConfig | None = section(AuthConfig, default=None)
    health: HealthConfig = section(HealthConfig)
    catalog: CatalogConfig = section(CatalogConfig)
    packs: PacksConfig = section(PacksConfig)
    notifications: Any = unimplemented()
    #: shared state of several paxd processes (:mod:`paxd.config.redis`); None: this process's own
    redis: RedisConfig | None = section(RedisConfig, default=None)
    middleware: Any = unimplemented()
    reporting: Any = unimplemented()
    proxy: Any = unimplemented()
    #: ``validation.manifests`` (sparse manifests); the rest of the section is warned about
    validation: ValidationConfig = section(ValidationConfig)
    policy: Any = unimplemented()
    compatibility: Any = unimplemented()
    #: one line per accepted-but-ignored key or environment variable (no source prefix)
    warnings: tuple[str, ...] = ()
    #: where the configuration came from (a file name), for messages
    source: str = ""
