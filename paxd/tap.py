"""``twistd paxd``: command-line options and the service tree, wiring only.

Reading this module should tell a newcomer what a running paxd is made of:
thread pools, a storage driver, the registry domain, the web site (with its
guard when ``auth`` is configured), one listener per endpoint, and the start-up
service that waits for them all (:mod:`paxd.startup`). What is checked before
the reactor runs is :mod:`paxd.preflight`'s.
"""

from __future__ import annotations

import atexit
import os
from collections.abc import Callable
from typing import Any, Literal

from twisted.application.service import IService, MultiService
from twisted.internet.endpoints import serverFromString
from twisted.logger import Logger
from twisted.python import usage
from twisted.web.resource import IResource

from paxd import __version__
from paxd.access import OPEN_ACCESS, Access
from paxd.config import Config, ConfigError
from paxd.listeners import endpoint_descriptions, system_backlog, with_backlog
from paxd.maintenance import add_maintenance
from paxd.memory import MemoryTrimService
from paxd.preflight import DEFAULT_CONFIG, Prepared, load, prepare
from paxd.registry.index import IRegistryIndex
from paxd.registry.references import ReferenceChecks
from paxd.registry.registry import Registry
from paxd.startup import Listener, Startup, exit_with_status
from paxd.storage.interface import IStorageDriver
from paxd.systemd.notify import environ_notifier
from paxd.threadpool import PoolRunner, ThreadPoolService, make_pool
from paxd.tls.context import wrap_tls
from paxd.tls.plainhttp import RefusePlainHTTPFactory
from paxd.web.limits import ConnectionLimits
from paxd.web.plainport import RefuseTLSFactory
from paxd.web.request import RegistrySite
from paxd.web.root import APIResource, RegistryRoot

log = Logger(namespace="paxd")

#: file I/O pool: enough threads that a stalled read delays only its own client
DISK_THREADS = 16
#: bcrypt pool: bcrypt is CPU-bound, so no more threads than it is worth
AUTH_THREADS = 2
#: the catalogue's pool (README rendering, CPU-bound)
PAGES_THREADS = 1
#: S3 pool: requests to S3 wait on the network, so many at once (at most maxconnections)
S3_THREADS = 32
#: blob bodies sent from local files (sendfile, TLS encryption): CPU-bound mostly
TRANSFER_THREADS = 4


class Options(usage.Options):
    """``twistd paxd [--config FILE]``."""

    synopsis = "[--config FILE]"
    longdesc = (
        "Run the paxd pack registry: Docker distribution's API under /v1/ and /v2/, "
        "configured with distribution's YAML and REGISTRY_* environment variables. "
        f"Without --config, {DEFAULT_CONFIG} is read; when it does not exist either, the "
        "vendor image's built-in defaults are used (REGISTRY_* variables still apply)."
    )
    optParameters = [
        [
            "config",
            "c",
            None,
            f"The registry configuration file (Docker distribution YAML); default {DEFAULT_CONFIG}"
            " or, when it does not exist, the built-in defaults.",
        ],
    ]

    def opt_version(self) -> None:
        """Print the version and exit."""
        print(f"paxd {__version__}")
        raise SystemExit(0)

    def postOptions(self) -> None:
        # Operator mistakes stop the daemon here, with one line and no traceback.
        try:
            config = load(self["config"], os.environ)
            prepared = prepare(config, create=True)
        except ConfigError as e:
            # SystemExit, not UsageError: twistd would print its whole usage text first.
            raise SystemExit(f"paxd: {e}") from None
        self["parsed"] = config
        self["prepared"] = prepared
        self["tls"] = prepared.tls


def make_storage(
    config: Config, runner: PoolRunner, reactor: Any = None, parent: MultiService | None = None
) -> IStorageDriver:
    """The storage driver the configuration names.

    *runner* is the disk pool (filesystem); S3 gets a pool of its own, started
    and stopped with *parent*, so that a slow S3 never holds up the disk.
    """
    if config.storage.driver == "inmemory":
        from paxd.storage.memory import MemoryStorage

        return MemoryStorage()
    if config.storage.s3 is not None:
        return make_s3_storage(config, reactor, parent)
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


def make_s3_storage(config: Config, reactor: Any, parent: MultiService | None) -> IStorageDriver:
    """The S3 driver over its own thread pool: one blocking boto3 call per thread at a time.

    Imported here: boto3 costs tens of MiB that other drivers should not pay.
    """
    from paxd.storage.s3 import S3Storage

    assert config.storage.s3 is not None and parent is not None
    options = config.storage.s3.options()
    # each thread holds at most one connection; readers reopen through the same client
    pool = make_pool("paxd-s3", min(S3_THREADS, options.maxconnections))
    ThreadPoolService(pool).setServiceParent(parent)
    driver = S3Storage(options, PoolRunner(reactor, pool))
    log.info("storage: {storage}", storage=driver.describe())
    return driver


#: what serves every client, from what one client may see (for its access); its flag:
#: whether the base path challenges where anonymous reads are on (the API's ping)
Protect = Callable[[Callable[[Access], IResource], bool], IResource]


def api_factory(registry: Registry, protect: Protect) -> Callable[[bytes], IResource]:
    """``/v1`` and ``/v2``, each as *protect* lets clients in."""
    return lambda prefix: protect(lambda access: APIResource(registry, access, prefix), True)


def make_catalogue(
    config: Config, registry: Registry, protect: Protect, reactor: Any, parent: MultiService
) -> IResource | None:
    """The catalogue's pages (``packs.catalogue``), behind the same guard as the API."""
    if not config.packs.catalogue:
        return None
    from paxd.web.catalogue.resources import Catalogue

    # READMEs are rendered in a pool of their own, so a burst of new ones
    # queues there instead of taking the disk pool's threads.
    pool = make_pool("paxd-pages", PAGES_THREADS)
    ThreadPoolService(pool).setServiceParent(parent)
    catalogue = Catalogue(registry, PoolRunner(reactor, pool), config.http.host)
    # the catalogue's "/" is no API ping: anonymous reads see it without a challenge
    return protect(catalogue.resource_for, False)


def _open_access(resource_for: Callable[[Access], IResource], ping: bool) -> IResource:
    return resource_for(OPEN_ACCESS)


def make_protect(
    config: Config, reactor: Any, parent: MultiService, metrics: Any = None
) -> Protect:
    """Open access without ``auth``; else the htpasswd guard (one checker, one throttle)."""
    if config.auth is None:
        return _open_access

    from paxd.auth.guard import guarded
    from paxd.auth.htpasswd import HtpasswdChecker
    from paxd.auth.throttle import Throttle

    htpasswd = config.auth.htpasswd
    pool = make_pool("paxd-auth", AUTH_THREADS)
    ThreadPoolService(pool).setServiceParent(parent)
    checker = HtpasswdChecker(htpasswd.path, PoolRunner(reactor, pool), clock=reactor)
    checker.load(log_warnings=False)  # paxd.preflight read the file: its warnings are logged
    # shared by everything guarded: failures count once per address
    # one check at a time per bcrypt thread, in turn across client addresses
    state = None
    if config.redis is not None:  # replicas: failures count against one limit across them
        from paxd.shared.wiring import shared_throttle_state

        state = shared_throttle_state(config, reactor, parent)
    throttle = Throttle(reactor, state, concurrency=AUTH_THREADS, observer=metrics)

    def protect(resource_for: Callable[[Access], IResource], ping: bool) -> IResource:
        return guarded(
            resource_for,
            checker,
            realm_name=htpasswd.realm,
            admins=frozenset(htpasswd.admins),
            anonymous_read=htpasswd.anonymous == "read",
            throttle=throttle,
            challenge_base=ping,
            verified=checker.is_verified,
        )

    return protect


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
) -> list[Listener]:
    """One listening service per endpoint: the registry's, and port 80's redirects.

    :param adopted: a worker's sockets (:class:`paxd.workers.sockets.Adopted`), bound by its
        parent; None: bind them here.
    """
    descriptions = endpoint_descriptions(config.http)
    # One TLS factory for every listener: a renewed certificate reaches them all.
    # Without TLS, a client trying HTTPS first is refused at once, not left to time out;
    # with TLS, a client speaking plain HTTP is told so (a 400, as Go answers).
    factory = (
        RefusePlainHTTPFactory(wrap_tls(tls.tls, site, clock=reactor))
        if tls
        else RefuseTLSFactory(site)
    )
    backlog = config.http.connections.backlog or system_backlog()
    if config.http.listen:
        keyed = [(f"http.listen.{i}", d, d) for i, d in enumerate(descriptions)]
    else:
        keyed = [("http.addr", config.http.addr or d, d) for d in descriptions]
    if tls is not None and tls.plain is not None:
        # Port 80: ACME HTTP-01 and redirects to https, never registry content.
        keyed += [(f"http.redirect.{i}", d, d) for i, d in enumerate(config.http.redirect)]
    listeners = []
    for key, label, description in keyed:
        redirect = key.startswith("http.redirect.")
        endpoint = _endpoint(reactor, with_backlog(description, backlog), adopted)
        if endpoint is None:
            continue
        listener = Listener(
            endpoint,
            tls.plain if redirect else factory,
            label=label,
            key=key,
            scheme="http: redirects to https" if redirect else "https" if tls else "http",
        )
        listener.setServiceParent(top)
        listeners.append(listener)
    return listeners


def make_registry(
    config: Config, storage: IStorageDriver, metrics: Any, reactor: Any, top: MultiService
) -> Registry:
    """The registry domain over *storage* (timed by *metrics*, if any), as configured."""
    if metrics is not None:
        from paxd.metrics.storage import InstrumentedStorage

        storage = InstrumentedStorage(storage, metrics)
    return Registry(
        storage,
        delete_enabled=config.storage.delete_enabled,
        readonly=config.storage.readonly,
        max_page=config.catalog.maxentries,
        parent_tags=config.packs.parenttags,
        index=make_index(config, storage, reactor, top),
        references=ReferenceChecks.configured(
            config.validation.sparse,
            config.validation.index_platforms,
            config.validation.platformlist,
        ),
        redirect=config.storage.redirects,
        # online collection needs every push to say what it references first
        record_intents=config.storage.maintenance.gc.enabled and not config.storage.readonly,
    )


def make_site(
    config: Config,
    registry: Registry,
    metrics: Any,
    reactor: Any,
    top: MultiService,
    transfer: PoolRunner | None = None,
) -> RegistrySite:
    """The site: the API (and catalogue) behind the configured guard.

    :param transfer: the transfer pool, which sends blob bodies from local files.
    """
    protect = make_protect(config, reactor, top, metrics)
    root = RegistryRoot(
        registry,
        headers=config.http.headers,
        api_factory=api_factory(registry, protect),
        catalogue=make_catalogue(config, registry, protect, reactor, top),
        clock=reactor,
    )
    return RegistrySite(
        root,
        headers=config.http.headers,
        access_log=not config.log.accesslog_disabled,
        limits=connection_limits(config),
        observer=request_observer(metrics),
        transfer=transfer,
    )


def makeService(options: Options, reactor: Any = None) -> IService:
    """The whole daemon as one service tree (its last service is :class:`Startup`)."""
    under_twistd = reactor is None
    if reactor is None:
        from twisted.internet import reactor  # the one place the global reactor is named
    config: Config = options["parsed"]
    prepared: Prepared = options["prepared"]
    top = MultiService()
    # Free heap pages go back to the system between large transfers (paxd/memory.py).
    trimmer = MemoryTrimService(reactor)
    trimmer.setServiceParent(top)

    disk_pool = make_pool("paxd-disk", DISK_THREADS)
    ThreadPoolService(disk_pool).setServiceParent(top)
    disk = PoolRunner(reactor, disk_pool)
    transfer_pool = make_pool("paxd-transfer", TRANSFER_THREADS)
    ThreadPoolService(transfer_pool).setServiceParent(top)

    metrics = make_metrics(config)
    storage = make_storage(config, disk, reactor, top)
    registry = make_registry(config, storage, metrics, reactor, top)
    add_operations(config, registry, metrics, reactor, disk, top)
    site = make_site(config, registry, metrics, reactor, top, PoolRunner(reactor, transfer_pool))
    worker = options.get("worker")
    if worker is not None:
        from paxd.workers.run import ParentWatch

        ParentWatch(reactor).setServiceParent(top)
    tls = None
    if options["tls"]:
        from paxd.tls.wiring import build_tls

        # with --workers, worker 0 alone asks for ACME certificates; the others read them
        role: Literal["alone", "issuer", "follower"] = (
            "alone" if worker is None else "issuer" if worker[0] == 0 else "follower"
        )
        tls = build_tls(options["tls"], config, reactor, top, disk, role=role)
    startup = Startup(
        reactor=reactor,
        registry=registry,
        prepared=prepared,
        listeners=listen(config, site, tls, reactor, top, options.get("adopted"))
        + debug_listeners(config, registry, metrics, reactor, top, worker),
        notifier=environ_notifier(),
    )
    startup.setServiceParent(top)
    if under_twistd:
        # twistd exits 0 whenever the reactor stops: a failed start must not.
        atexit.register(exit_with_status, startup)
    return top


def connection_limits(config: Config) -> ConnectionLimits:
    """``http.connections`` as the site enforces it."""
    connections = config.http.connections
    return ConnectionLimits(
        header_timeout=connections.headertimeout,
        idle_timeout=connections.idletimeout,
        body_window=connections.bodytimeout,
        body_min_rate=connections.bodyminrate,
        max_per_client=connections.maxperclient,
        trusted_proxies=connections.trustedproxies,
    )


def make_metrics(config: Config) -> Any:
    """The daemon's :class:`~paxd.metrics.Metrics` if ``http.debug`` serves them, else None."""
    debug = config.http.debug
    if not (debug.addr and debug.prometheus.enabled):
        return None
    from paxd.metrics import Metrics

    return Metrics()


def request_observer(metrics: Any) -> Any:
    """What the site tells of each request (None without metrics)."""
    if metrics is None:
        return None
    from paxd.metrics.http import RequestMetrics

    return RequestMetrics(metrics)


def add_operations(
    config: Config,
    registry: Registry,
    metrics: Any,
    reactor: Any,
    disk: PoolRunner,
    top: MultiService,
) -> None:
    """Housekeeping: collection, purging, leftovers (reported to *metrics*, if any)."""
    add_maintenance(
        config,
        registry,
        reactor,
        disk,
        top,
        observe_gc=metrics.collected if metrics is not None else None,
        observe_purge=metrics.purged_uploads if metrics is not None else None,
    )


def debug_listeners(
    config: Config, registry: Registry, metrics: Any, reactor: Any, top: MultiService, worker: Any
) -> list[Listener]:
    """Distribution's debug listener (``http.debug``): ``/debug/health`` and the metrics.

    With ``--workers``, worker 0 alone serves it (its own metrics: see docs/operations.rst).
    """
    descriptions = config.http.debug.descriptions
    if not descriptions or (worker is not None and worker[0] != 0):
        return []
    from twisted.web.server import Site

    from paxd.metrics.debug import DebugRoot

    if metrics is not None:
        metrics.watch_cache(registry.context.cache)
        metrics.watch_upload_states(registry.upload_states)
    path = config.http.debug.prometheus.path
    site = Site(DebugRoot(registry, metrics.registry if metrics is not None else None, path))
    site.displayTracebacks = False
    listeners = []
    for i, description in enumerate(descriptions):
        endpoint = serverFromString(reactor, description)
        listener = Listener(
            endpoint, site, label=description, key=f"http.debug.addr.{i}", scheme="debug, http"
        )
        listener.setServiceParent(top)
        listeners.append(listener)
    return listeners
