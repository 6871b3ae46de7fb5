"""TLS for the daemon, from ``http.tls``: checked before start, wired into the service tree.

Two steps, so that operator mistakes stop ``twistd`` with one line and no traceback:

- :func:`prepare_tls` (in ``Options.postOptions``, before the reactor runs)
  reads and checks the certificate files, or prepares the ACME cache
  directory and a temporary self-signed certificate; it raises
  :class:`~paxd.tls.certificates.TLSSetupError`.
- :func:`build_tls` (in ``makeService``) creates the swappable server TLS,
  the file watcher and SIGHUP handler or the ACME issuing service, and the
  port-80 site when ``http.redirect`` is configured.
"""

from __future__ import annotations

import ipaddress
from typing import Any, Literal
from urllib.parse import urlsplit

import attrs
from twisted.application.service import MultiService
from twisted.logger import Logger
from twisted.web.server import Site

from paxd.config import Config
from paxd.listeners import endpoint_descriptions
from paxd.threadpool import PoolRunner, ThreadPoolService, make_pool
from paxd.tls.certificates import (
    CertificateBundle,
    TLSSetupError,
    bundle_warnings,
    load_bundle,
    temporary_bundle,
    utcnow,
)
from paxd.tls.context import ServerTLS, TLSPolicy, policy_from_config
from paxd.tls.follow import StoredCertificates
from paxd.tls.issuing import AcmeIssuer, IssuingService
from paxd.tls.plain import plain_site
from paxd.tls.reload import CertificateFiles, SighupService
from paxd.tls.responders import HTTP01Responder, IResponder, TLSALPN01Responder
from paxd.tls.store import DirectoryStore, check_directory, prepare_directory

__all__ = ["BuiltTLS", "PreparedTLS", "build_tls", "expected_hosts", "https_port", "prepare_tls"]

log = Logger(namespace="paxd.tls")

#: ACME calls and key generation: one issuance at a time, so two threads are plenty
ACME_THREADS = 2


@attrs.frozen
class PreparedTLS:
    """What :func:`prepare_tls` checked: the policy, the first bundle, and warnings to log."""

    mode: Literal["files", "letsencrypt"]
    policy: TLSPolicy
    bundle: CertificateBundle
    warnings: tuple[str, ...] = ()


@attrs.frozen
class BuiltTLS:
    """The TLS pieces of the service tree."""

    tls: ServerTLS
    #: the port-80 site, when ``http.redirect`` names listeners
    plain: Site | None = None
    issuing: IssuingService | None = None
    files: CertificateFiles | None = None


def expected_hosts(config: Config) -> list[str]:
    """Names and addresses clients will check the certificate against.

    ``http.host``'s host and the specific IP addresses the listeners bind.
    """
    hosts = []
    if config.http.host:
        hostname = urlsplit(config.http.host).hostname
        if hostname:
            hosts.append(hostname)
    for description in endpoint_descriptions(config.http):
        for part in description.replace("\\:", "\0").split(":"):
            if part.startswith("interface="):
                value = part[len("interface=") :].replace("\0", ":")
                try:
                    ip = ipaddress.ip_address(value)
                except ValueError:
                    continue
                if not ip.is_unspecified:
                    hosts.append(str(ip))
    return hosts


def https_port(config: Config) -> int | None:
    """The TLS listener's TCP port, for redirects (``None``: unknown, i.e. the default 443)."""
    for description in endpoint_descriptions(config.http):
        kind, _, rest = description.partition(":")
        if kind in ("tcp", "tcp6", "ssl"):
            port = rest.split(":", 1)[0]
            if port.startswith("port="):
                port = port[len("port=") :]
            if port.isdigit():
                return int(port)
    return None


def prepare_tls(config: Config, *, create: bool = True) -> PreparedTLS | None:
    """Check ``http.tls`` before the daemon starts (blocking; no reactor needed).

    *create*: make the ACME cache directory (``False``, for ``paxd check-config``: only
    check that it could be made).

    :raises TLSSetupError: with a one-line message naming the file or key and the fix.
    """
    tls = config.http.tls
    if tls is None:
        return None
    policy = policy_from_config(tls)
    now = utcnow()
    if tls.letsencrypt is not None:
        le = tls.letsencrypt
        url = urlsplit(le.directoryurl)
        if url.scheme not in ("https", "http") or not url.netloc:
            raise TLSSetupError(
                f"http.tls.letsencrypt.directoryurl: {le.directoryurl!r} is not an http(s) URL;"
                " use e.g. https://acme-v02.api.letsencrypt.org/directory"
            )
        if create:
            prepare_directory(le.cachefile)
        else:
            check_directory(le.cachefile)
        return PreparedTLS(
            mode="letsencrypt", policy=policy, bundle=temporary_bundle(le.hosts, now)
        )
    assert tls.certificate is not None and tls.key is not None
    bundle = load_bundle(tls.certificate, tls.key, now)
    warnings = bundle_warnings(bundle, now, hosts=expected_hosts(config))
    return PreparedTLS(mode="files", policy=policy, bundle=bundle, warnings=tuple(warnings))


def build_tls(
    prepared: PreparedTLS,
    config: Config,
    reactor: Any,
    parent: MultiService,
    disk: PoolRunner,
    *,
    acme_verify: bool | str = True,
    role: Literal["alone", "issuer", "follower"] = "alone",
) -> BuiltTLS:
    """The TLS services under *parent*; *disk* is the file I/O pool's runner.

    *role* (``paxd serve --workers``): the ACME issuer of several workers answers
    HTTP-01 only (a TLS-ALPN-01 check may reach another worker); a follower asks for
    nothing and serves what the issuer stores (:mod:`paxd.tls.follow`).
    """
    tls_config = config.http.tls
    assert tls_config is not None
    # prepared.warnings are logged with the other start-up warnings (paxd.preflight)

    if prepared.mode == "files":
        tls = ServerTLS(prepared.bundle, prepared.policy)
        assert tls_config.certificate is not None and tls_config.key is not None
        files = CertificateFiles(
            tls,
            tls_config.certificate,
            tls_config.key,
            disk,
            reactor,
            hosts=expected_hosts(config),
        )
        files.setServiceParent(parent)
        SighupService(reactor, files.reload).setServiceParent(parent)
        plain = (
            plain_site(None, https_port(config), _default_host(config))
            if config.http.redirect
            else None
        )
        return BuiltTLS(tls=tls, plain=plain, files=files)

    if role == "follower":
        return _follow_acme(prepared, config, reactor, parent)
    return _build_acme(prepared, config, reactor, parent, acme_verify, alpn=role == "alone")


def _follow_acme(
    prepared: PreparedTLS, config: Config, reactor: Any, parent: MultiService
) -> BuiltTLS:
    """A worker other than worker 0: the certificates it stores, no issuer, no port 80."""
    le = config.http.tls.letsencrypt if config.http.tls else None
    assert le is not None
    tls = ServerTLS(prepared.bundle, prepared.policy)
    pool = make_pool("paxd-acme", 1)
    ThreadPoolService(pool).setServiceParent(parent)
    store = DirectoryStore(le.cachefile, PoolRunner(reactor, pool))
    StoredCertificates(le.hosts[0].lower(), store, tls, reactor).setServiceParent(parent)
    return BuiltTLS(tls=tls)


def _build_acme(
    prepared: PreparedTLS,
    config: Config,
    reactor: Any,
    parent: MultiService,
    acme_verify: bool | str,
    alpn: bool = True,
) -> BuiltTLS:
    """The ACME issuing services (``http.tls.letsencrypt``) under *parent*."""
    tls_config = config.http.tls
    assert tls_config is not None
    le = tls_config.letsencrypt
    assert le is not None
    alpn_responder = TLSALPN01Responder()
    tls = ServerTLS(prepared.bundle, prepared.policy, challenges=alpn_responder)
    pool = make_pool("paxd-acme", ACME_THREADS)
    ThreadPoolService(pool).setServiceParent(parent)
    runner = PoolRunner(reactor, pool)
    store = DirectoryStore(le.cachefile, runner)
    responders: list[IResponder] = []
    http01: HTTP01Responder | None = None
    if config.http.redirect:
        # A port-80 listener exists: prefer HTTP-01 there, TLS-ALPN-01 as the fallback.
        http01 = HTTP01Responder()
        responders.append(http01)
    if alpn or http01 is None:
        responders.append(alpn_responder)
    issuer = AcmeIssuer(
        directory_url=le.directoryurl,
        email=le.email,
        store=store,
        runner=runner,
        responders=responders,
        verify=acme_verify,
    )
    issuing = IssuingService(hosts=le.hosts, store=store, issuer=issuer, tls=tls, clock=reactor)
    issuing.setServiceParent(parent)
    plain = (
        plain_site(http01, https_port(config), _default_host(config))
        if config.http.redirect
        else None
    )
    return BuiltTLS(tls=tls, plain=plain, issuing=issuing)


def _default_host(config: Config) -> str | None:
    """Where a request without ``Host`` is redirected."""
    if config.http.host:
        return urlsplit(config.http.host).hostname
    tls = config.http.tls
    if tls is not None and tls.letsencrypt is not None and tls.letsencrypt.hosts:
        return tls.letsencrypt.hosts[0]
    return None
