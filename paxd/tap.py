"""``twistd paxd``: command-line options and the service tree, wiring only.

Reading this module should tell a newcomer what a running paxd is made of:
thread pools, a storage driver, the registry domain, the web site (with its
guard when ``auth`` is configured) and one listener per endpoint.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from twisted.application.internet import StreamServerEndpointService
from twisted.application.service import IService, MultiService, Service
from twisted.internet.endpoints import serverFromString
from twisted.logger import Logger
from twisted.python import usage
from twisted.web.resource import IResource

from paxd import __version__
from paxd.access import OPEN_ACCESS, Access
from paxd.auth.htpasswd import HtpasswdError, check_file, ensure_htpasswd
from paxd.config import Config, ConfigError, load_config
from paxd.listeners import endpoint_descriptions
from paxd.memory import MemoryTrimService
from paxd.registry.index import IRegistryIndex
from paxd.registry.registry import Registry
from paxd.storage.interface import IStorageDriver
from paxd.threadpool import PoolRunner, ThreadPoolService, make_pool
from paxd.tls.certificates import TLSSetupError
from paxd.tls.context import wrap_tls
from paxd.web.plainport import RefuseTLSFactory
from paxd.web.request import RegistrySite
from paxd.web.root import APIResource, RegistryRoot

log = Logger(namespace="paxd")

DEFAULT_CONFIG = "/etc/paxd/config.yml"
#: file I/O pool: enough threads that a stalled read delays only its own client
DISK_THREADS = 16
#: bcrypt pool: bcrypt is CPU-bound, so no more threads than it is worth
AUTH_THREADS = 2
#: blob bodies sent from local files (sendfile, TLS encryption): CPU-bound mostly
TRANSFER_THREADS = 4


class Options(usage.Options):
    """``twistd paxd --config FILE``."""

    synopsis = "[--config FILE]"
    longdesc = (
        "Run the paxd pack registry: Docker distribution's API under /v1/ and /v2/, "
        "configured with distribution's YAML and REGISTRY_* environment variables."
    )
    optParameters = [
        [
            "config",
            "c",
            DEFAULT_CONFIG,
            "The registry configuration file (Docker distribution YAML).",
        ],
    ]

    def opt_version(self) -> None:
        """Print the version and exit."""
        print(f"paxd {__version__}")
        raise SystemExit(0)

    def postOptions(self) -> None:
        # Operator mistakes stop the daemon here, with one line and no traceback.
        try:
            config = load_config(self["config"], os.environ)
            self["parsed"] = config
            check_listeners(config)
            # TLS files are read and checked here, before anything listens.
            self["tls"] = prepare_tls(config) if config.http.tls else None
            self["created_password"] = prepare_htpasswd(config)
        except (ConfigError, TLSSetupError, HtpasswdError) as e:
            # SystemExit, not UsageError: twistd would print its whole usage text first.
            raise SystemExit(f"paxd: {e}") from None


def prepare_tls(config: Config) -> Any:
    """Read and check the TLS files (or the ACME cache) before anything listens."""
    # Imported here: the ACME client (acme, josepy, requests) costs ~7 MiB of
    # resident memory that a daemon without http.tls should not pay.
    from paxd.tls.wiring import prepare_tls as prepare

    return prepare(config)


def make_storage(config: Config, runner: PoolRunner) -> IStorageDriver:
    """The storage driver the configuration names."""
    if config.storage.driver == "inmemory":
        from paxd.storage.memory import MemoryStorage

        return MemoryStorage()
    from paxd.storage.filesystem import FilesystemStorage

    assert config.storage.rootdirectory is not None
    return FilesystemStorage(config.storage.rootdirectory, runner)


def make_index(
    config: Config, driver: IStorageDriver, reactor: Any, parent: MultiService
) -> IRegistryIndex | None:
    """The shared index when ``redis:`` is set; else None (the registry's own, in memory)."""
    if config.redis is None:
        log.info(
            "no redis: configured: the catalog, _packs and tag locks live in this process;"
            " run no other paxd on this storage (configure redis:, see docs/replicas.rst)"
        )
        return None
    from paxd.shared.wiring import shared_index

    return shared_index(config, driver, reactor, parent)


class RegistryStartup(Service):
    """Builds the registry's indexes when the daemon starts, and logs the configuration warnings."""

    def __init__(self, registry: Registry, config: Config) -> None:
        self.registry = registry
        self.config = config

    def startService(self) -> None:
        super().startService()
        for warning in self.config.warnings:
            log.warn("{source}: {warning}", source=self.config.source, warning=warning)
        d = self.registry.start()
        d.addCallback(
            lambda _: log.info(
                "registry ready ({driver} storage)", driver=self.registry.driver.name
            )
        )
        d.addErrback(lambda f: log.failure("could not build the registry's indexes", f))


def prepare_htpasswd(config: Config) -> str | None:
    """Create a missing htpasswd file (returning its admin password) and check the file.

    Runs before the reactor, so that an unreadable or malformed file stops the
    daemon with one line rather than failing the first login.
    """
    if config.auth is None:
        return None
    path = config.auth.htpasswd.path
    password = ensure_htpasswd(path)
    check_file(path)
    return password


def make_api_factory(
    config: Config,
    registry: Registry,
    reactor: Any,
    parent: MultiService,
    password: str | None = None,
) -> Callable[[bytes], IResource]:
    """What serves ``/v1`` and ``/v2``: open, or behind the htpasswd guard."""

    def api_for(access: Access, prefix: bytes) -> IResource:
        return APIResource(registry, access, prefix)

    if config.auth is None:
        return lambda prefix: api_for(OPEN_ACCESS, prefix)

    from paxd.auth.guard import make_guarded_api_factory
    from paxd.auth.htpasswd import HtpasswdChecker
    from paxd.auth.throttle import Throttle

    htpasswd = config.auth.htpasswd
    if password is not None:
        log.warn(
            "created {path} with user 'admin' and password {password}: change it with"
            " 'paxd htpasswd {path} set admin'",
            path=htpasswd.path,
            password=password,
        )
    pool = make_pool("paxd-auth", AUTH_THREADS)
    ThreadPoolService(pool).setServiceParent(parent)
    checker = HtpasswdChecker(htpasswd.path, PoolRunner(reactor, pool), clock=reactor)
    checker.load()
    return make_guarded_api_factory(
        api_for,
        checker,
        realm_name=htpasswd.realm,
        admins=frozenset(htpasswd.admins),
        anonymous_read=htpasswd.anonymous == "read",
        throttle=Throttle(reactor),
    )


def _endpoint(reactor: Any, description: str, adopted: Any) -> Any:
    """The endpoint of *description*: parsed, or (a worker) the socket its parent bound.

    None: a worker other than worker 0 does not serve port 80.
    """
    if adopted is None:
        return serverFromString(reactor, description)
    from twisted.internet.endpoints import AdoptedStreamServerEndpoint

    from paxd.workers.sockets import FAMILIES

    for socket in adopted:
        if socket.description == description:
            return AdoptedStreamServerEndpoint(reactor, socket.fd, FAMILIES[socket.family])
    return None


def listen(
    config: Config,
    site: RegistrySite,
    tls: Any,
    reactor: Any,
    top: MultiService,
    adopted: Any = None,
) -> None:
    """One listening service per endpoint: the registry's, and port 80's redirects.

    :param adopted: a worker's sockets (:class:`paxd.workers.sockets.Adopted`), bound by its
        parent; None: bind them here.
    """
    descriptions = endpoint_descriptions(config.http)
    # One TLS factory for every listener: a renewed certificate reaches them all.
    # Without TLS, a client trying HTTPS first is refused at once, not left to time out.
    factory = wrap_tls(tls.tls, site, clock=reactor) if tls else RefuseTLSFactory(site)
    for description in descriptions:
        endpoint = _endpoint(reactor, description, adopted)
        StreamServerEndpointService(endpoint, factory).setServiceParent(top)
        log.info(
            "listening on {description} ({scheme})",
            description=description,
            scheme="https" if tls else "http",
        )
    if tls is not None and tls.plain is not None:
        # Port 80: ACME HTTP-01 and redirects to https, never registry content.
        for description in config.http.redirect:
            endpoint = _endpoint(reactor, description, adopted)
            if endpoint is None:
                continue
            StreamServerEndpointService(endpoint, tls.plain).setServiceParent(top)
            log.info(
                "listening on {description} (http: redirects to https)", description=description
            )
    if config.auth is None and not all(is_loopback(d) for d in descriptions):
        log.warn(
            "NO AUTHENTICATION: {source} has no 'auth' section and paxd listens beyond"
            " loopback, so anyone who can reach it may push and delete. Add"
            " auth.htpasswd (see docs/configuration.rst).",
            source=config.source,
        )


def makeService(options: Options, reactor: Any = None) -> IService:
    """The whole daemon as one service tree."""
    if reactor is None:
        from twisted.internet import reactor  # the one place the global reactor is named
    config: Config = options["parsed"]
    top = MultiService()
    # Free heap pages go back to the system between large transfers (paxd/memory.py).
    trimmer = MemoryTrimService(reactor)
    trimmer.setServiceParent(top)

    disk_pool = make_pool("paxd-disk", DISK_THREADS)
    ThreadPoolService(disk_pool).setServiceParent(top)
    disk = PoolRunner(reactor, disk_pool)
    transfer_pool = make_pool("paxd-transfer", TRANSFER_THREADS)
    ThreadPoolService(transfer_pool).setServiceParent(top)

    storage = make_storage(config, disk)
    registry = Registry(
        storage,
        delete_enabled=config.storage.delete_enabled,
        readonly=config.storage.readonly,
        max_page=config.catalog.maxentries,
        parent_tags=config.packs.parenttags,
        index=make_index(config, storage, reactor, top),
    )
    RegistryStartup(registry, config).setServiceParent(top)

    root = RegistryRoot(
        registry,
        headers=config.http.headers,
        api_factory=make_api_factory(config, registry, reactor, top, options["created_password"]),
    )
    site = RegistrySite(
        root,
        runner=disk,
        headers=config.http.headers,
        access_log=not config.log.accesslog_disabled,
        transfer=PoolRunner(reactor, transfer_pool),
    )

    worker = options.get("worker")
    if worker is not None:
        from paxd.workers.run import ParentWatch

        ParentWatch(reactor).setServiceParent(top)
    tls = None
    if options["tls"]:
        from paxd.tls.wiring import build_tls

        # with --workers, worker 0 alone asks for ACME certificates; the others read them
        if worker is None:
            tls = build_tls(options["tls"], config, reactor, top, disk)
        else:
            tls = build_tls(
                options["tls"], config, reactor, top, disk,
                role="issuer" if worker[0] == 0 else "follower",
            )  # fmt: skip
    listen(config, site, tls, reactor, top, options.get("adopted"))
    return top


def check_listeners(config: Config) -> None:
    """Parse every endpoint description now, so a bad one is a message, not a traceback.

    :raises ConfigError: naming the key, e.g. a systemd socket index nothing passed in.
    """
    keys = "http.listen" if config.http.listen else "http.addr"
    for key, descriptions in (
        (keys, endpoint_descriptions(config.http)),
        ("http.redirect", config.http.redirect),
    ):
        for i, description in enumerate(descriptions):
            try:
                serverFromString(None, description)  # parsing only: nothing is bound
            except IndexError:
                raise ConfigError(
                    config.source,
                    f"{key}.{i}" if key != "http.addr" else key,
                    f"{description!r}: no such inherited socket; start paxd from its systemd"
                    " .socket unit (LISTEN_FDS), or listen on tcp:PORT",
                ) from None
            except (ValueError, KeyError, TypeError) as e:
                raise ConfigError(
                    config.source,
                    f"{key}.{i}" if key != "http.addr" else key,
                    f"{description!r} is not a usable Twisted endpoint description ({e})",
                ) from None


def is_loopback(description: str) -> bool:
    """True if an endpoint description binds only a loopback interface (or a unix socket)."""
    if description.startswith("unix:"):
        return True
    for part in description.replace("\\:", "\0").split(":"):
        if part.startswith("interface="):
            value = part[len("interface=") :].replace("\0", ":")
            return value.startswith("127.") or value in ("::1", "localhost")
    return False
