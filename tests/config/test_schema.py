"""Tests for :mod:`paxd.config.schema`: the model is the one schema, and it extends by a class."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import attrs
from twisted.trial.unittest import SynchronousTestCase

from paxd.config import Config, ConfigError
from paxd.config.context import Context
from paxd.config.decode import count, decode, or_list
from paxd.config.environ import apply_environment, is_driver_map
from paxd.config.schema import (
    LEAF,
    Drivers,
    Kind,
    ListOf,
    MapOf,
    Section,
    Struct,
    alternative,
    fields_of,
    items,
    leaf,
    section,
    unimplemented,
)
from paxd.config.values import boolean, integer, string, strings
from paxd.config.yamlload import load_yaml

#: The shape the REGISTRY_* overlay walks (distribution's Go types), as it was before the
#: model became the one schema: a key that leaves the model, or changes kind, shows here.
OVERLAY_SHAPE = """\
auth: map of any
catalog: section
catalog.maxentries: leaf
compatibility: any
health: section
health.file: any (or filecheckers)
health.http: any (or httpcheckers)
health.storagedriver: section
health.storagedriver.enabled: leaf
health.storagedriver.interval: leaf
health.storagedriver.threshold: leaf
health.tcp: any (or tcpcheckers)
http: section
http.addr: leaf
http.connections: section
http.connections.backlog: leaf
http.connections.bodyminrate: leaf
http.connections.bodytimeout: leaf
http.connections.headertimeout: leaf
http.connections.idletimeout: leaf
http.connections.maxperclient: leaf
http.connections.trustedproxies: list of leaf
http.debug: section
http.debug.addr: leaf
http.debug.prometheus: section
http.debug.prometheus.enabled: leaf
http.debug.prometheus.path: leaf
http.draintimeout: leaf
http.h2c: any
http.headers: map of list of leaf
http.host: leaf
http.http2: any
http.listen: list of leaf
http.net: leaf
http.prefix: leaf
http.redirect: section
http.redirect.addr: leaf
http.redirect.listen: list of leaf
http.relativeurls: leaf
http.secret: leaf
http.tls: section
http.tls.certificate: leaf
http.tls.ciphersuites: list of leaf
http.tls.clientauth: leaf
http.tls.clientcas: list of leaf
http.tls.key: leaf
http.tls.letsencrypt: section
http.tls.letsencrypt.cachefile: leaf
http.tls.letsencrypt.directoryurl: leaf
http.tls.letsencrypt.email: leaf
http.tls.letsencrypt.hosts: list of leaf
http.tls.minimumtls: leaf
http.workers: leaf
log: section
log.accesslog: section
log.accesslog.disabled: leaf
log.fields: map of any
log.formatter: leaf
log.hooks: list of any
log.level: leaf
log.reportcaller: leaf
loglevel: leaf
middleware: any
notifications: any
packs: section
packs.catalogue: leaf
packs.parenttags: leaf
policy: any
proxy: any
redis: section
redis.addr: leaf
redis.addrs: list of leaf
redis.clientname: any
redis.connmaxidletime: leaf
redis.db: leaf
redis.dialtimeout: leaf
redis.mastername: leaf
redis.maxidleconns: any
redis.maxretries: any
redis.password: leaf
redis.pool: section
redis.pool.idletimeout: leaf
redis.pool.maxactive: leaf
redis.pool.maxidle: any
redis.poolsize: leaf
redis.readtimeout: leaf
redis.tls: section
redis.tls.certificate: leaf
redis.tls.clientcas: list of leaf
redis.tls.enabled: leaf
redis.tls.key: leaf
redis.username: leaf
redis.writetimeout: leaf
reporting: any
storage: map of any
validation: section
validation.disabled: leaf
validation.enabled: leaf
validation.manifests: section
validation.manifests.indexes: section
validation.manifests.indexes.platformlist: list of section
validation.manifests.indexes.platforms: leaf
validation.manifests.sparse: leaf
validation.manifests.urls: any
version: leaf
"""


def _describe(kind: Kind) -> str:
    if is_driver_map(kind):
        return "map of any"  # Go's map[string]Parameters
    if isinstance(kind, Struct):
        return "section"
    if isinstance(kind, ListOf):
        return f"list of {_describe(kind.item)}"
    if isinstance(kind, MapOf):
        return f"map of {_describe(kind.value)}"
    return "leaf" if kind == LEAF else "any"


def _shape(cls: type, prefix: str = "") -> list[str]:
    lines = []
    for field in fields_of(cls):
        path = f"{prefix}.{field.key}" if prefix else field.key
        aliases = "".join(f" (or {alias})" for alias in field.spec.aliases)
        lines.append(f"{path}: {_describe(field.spec.kind)}{aliases}")
        if isinstance(field.spec.kind, Struct) and not is_driver_map(field.spec.kind):
            lines += _shape(field.spec.kind.cls, path)
    return lines


@attrs.frozen
class _Cache:
    """A section a later issue might add."""

    addrs: tuple[str, ...] = items(strings(single_ok=True))
    db: int = leaf(integer(minimum=0), default=0)
    pool: Any = unimplemented(why="not used by this test")


@attrs.frozen
class _Disk:
    path: str = leaf(string(), default="/d")


@attrs.frozen
class _Cloud:
    bucket: str = leaf(string(), default="b")
    secure: bool = leaf(boolean(), default=True)


def _unsupported(key: str, name: str, drivers: Sequence[str]) -> tuple[str, str]:
    return key, f"no {name!r}; use {or_list(drivers)}"


@attrs.frozen
class _Store:
    SECTION: ClassVar[Section] = Section(
        drivers=Drivers(
            noun="stores", many="keep one", unsupported=_unsupported, name_field="name", sort=True
        )
    )

    name: str = "disk"
    disk: _Disk | None = alternative(_Disk, default_driver=True)
    cloud: _Cloud | None = alternative(_Cloud)
    tape: Any = alternative(_Disk)


@attrs.frozen
class _Root:
    cache: _Cache | None = section(_Cache, default=None)
    store: _Store = section(_Store)


class ModelTests(SynchronousTestCase):
    """The attrs classes are what the overlay walks."""

    def test_overlay_shape(self) -> None:
        self.assertEqual(sorted(_shape(Config)), sorted(OVERLAY_SHAPE.splitlines()))

    def test_messages_helpers(self) -> None:
        self.assertEqual(or_list(["filesystem", "inmemory"]), "filesystem or inmemory")
        self.assertEqual(or_list(["a", "b", "c"]), "a, b or c")
        self.assertEqual(or_list(["htpasswd"]), "htpasswd")
        self.assertEqual(count(2, "storage drivers"), "two storage drivers")
        self.assertEqual(count(7, "x"), "7 x")


class ExtensionTests(SynchronousTestCase):
    """A new section or driver is a class and a field: decoding and the overlay follow."""

    def parse(self, text: str, environ: dict[str, str] | None = None) -> tuple[_Root, Context]:
        ctx = Context("f.yml")
        tree = load_yaml(text, "f.yml", "")
        apply_environment(tree, environ or {}, ctx, _Root)
        root: _Root = decode(ctx, _Root, tree, "")
        return root, ctx

    def test_new_section_from_file_and_environment(self) -> None:
        root, ctx = self.parse(
            "cache: {addrs: [a:1], pool: {size: 3}, dbb: 1}\n",
            {"REGISTRY_CACHE_DB": "2", "REGISTRY_CACHE_ADDRS_1": "b:2", "REGISTRY_CACHE_X": "1"},
        )
        self.assertEqual(root.cache, _Cache(addrs=("a:1", "b:2"), db=2, pool={"size": 3}))
        self.assertEqual(
            ctx.warnings,
            [
                "REGISTRY_CACHE_X: paxd has no configuration key 'x' here; ignored",
                "cache.pool: not used by this test; ignored",
                "cache.dbb: unknown key; ignored (did you mean 'db'?)",
            ],
        )
        self.assertEqual(ctx.env_paths["REGISTRY_CACHE_DB"], "cache.db")

    def test_new_section_checks(self) -> None:
        error = self.assertRaises(ConfigError, self.parse, "cache: {db: -1}\n")
        self.assertEqual(str(error), "f.yml: cache.db: must be at least 0, got -1")
        self.assertIsNone(self.parse("{}\n")[0].cache)

    def test_new_driver(self) -> None:
        root, _ = self.parse("store: {cloud: {secure: false}}\n")
        self.assertEqual(root.store, _Store(name="cloud", disk=None, cloud=_Cloud(secure=False)))
        self.assertEqual(self.parse("{}\n")[0].store, _Store())
        error = self.assertRaises(ConfigError, self.parse, "{}\n", {"REGISTRY_STORE": "floppy"})
        self.assertEqual(
            str(error),
            "f.yml: store: no 'floppy'; use disk, cloud or tape"
            " (the environment sets REGISTRY_STORE)",
        )
        error = self.assertRaises(
            ConfigError,
            self.parse,
            "store: {disk: {path: /x}}\n",
            {"REGISTRY_STORE_CLOUD_BUCKET": "c"},
        )
        self.assertEqual(
            str(error),
            "f.yml: store: two stores configured (cloud, disk); keep one"
            " (the environment sets REGISTRY_STORE_CLOUD_BUCKET)",
        )
