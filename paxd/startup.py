"""Start-up that tells the truth: every listener bound, storage answering, or an exit.

:class:`Listener` is Twisted's :class:`StreamServerEndpointService` that
reports the outcome of its bind (:meth:`Listener.bound`) instead of logging a
traceback and carrying on. :class:`Startup`, the last service of the tree:

1. logs the start-up warnings (:mod:`paxd.preflight`) and, once, the password of
   an htpasswd file just created;
2. starts building the registry's indexes;
3. waits for every listener, then for a storage probe (at most
   :data:`STORAGE_TIMEOUT` seconds);
4. tells systemd ``READY=1`` (:mod:`paxd.systemd.notify`) and logs
   "registry ready".

Any failure — a port in use, storage that does not answer, indexes that cannot
be read — is one line at level critical naming the address or key and the fix,
then the reactor stops and :attr:`Startup.exit_status` is 1: ``paxd serve``
returns it, and under ``twistd`` :func:`exit_with_status` makes the process
exit with it.  The one exception is network storage (S3) that is down: an
outage, not a mistake in the configuration, so the daemon comes up, answers
503 naming the storage (``/health`` says why) and builds its indexes once
storage answers (tried again after 1 s, doubling up to every 30 s).
"""

from __future__ import annotations

import errno
import os
import sys
from collections.abc import Sequence
from typing import Any

from twisted.application.internet import StreamServerEndpointService
from twisted.application.service import Service
from twisted.internet.defer import CancelledError, Deferred, DeferredList
from twisted.internet.error import CannotListenError
from twisted.internet.interfaces import IListeningPort, IProtocolFactory, IStreamServerEndpoint
from twisted.logger import Logger
from twisted.python.failure import Failure

from paxd.preflight import Prepared
from paxd.registry.registry import Registry
from paxd.storage.interface import StorageUnavailable
from paxd.systemd.notify import INotifier

__all__ = ["STORAGE_TIMEOUT", "Listener", "Startup", "exit_with_status"]

log = Logger(namespace="paxd")

#: how long storage may take to answer the start-up probe (the daemon must give up in 5 s)
STORAGE_TIMEOUT = 4.0
#: network storage down at start: the indexes are built again after, at first, and at most
RETRY_FIRST, RETRY_MAX = 1.0, 30.0


class Listener(StreamServerEndpointService):
    """One listening endpoint whose bind outcome is reported, not just logged.

    :param label: the address as the operator wrote it (``127.0.0.1:5000``).
    :param key: the configuration key that names it (``http.addr``).
    :param scheme: ``http``, ``https``, or what the listener serves, for the log.
    """

    def __init__(
        self,
        endpoint: IStreamServerEndpoint,
        factory: IProtocolFactory,
        *,
        label: str,
        key: str,
        scheme: str,
    ) -> None:
        super().__init__(endpoint, factory)
        self.label = label
        self.key = key
        self.scheme = scheme
        self._outcome: IListeningPort | Failure | None = None
        self._waiters: list[Deferred[IListeningPort]] = []

    def privilegedStartService(self) -> None:
        """Bind (as Twisted's service does: before privileges are shed under twistd)."""
        Service.privilegedStartService(self)

        def bound(port: IListeningPort) -> IListeningPort:
            self._settle(port)
            return port

        def failed(reason: Failure) -> None:
            if not reason.check(CancelledError):
                self._settle(reason)

        self._waitingForPort = self.endpoint.listen(self.factory).addCallbacks(bound, failed)

    def _settle(self, outcome: IListeningPort | Failure) -> None:
        self._outcome = outcome
        waiters, self._waiters = self._waiters, []
        for d in waiters:
            self._fire(d)

    def _fire(self, d: Deferred[IListeningPort]) -> None:
        outcome = self._outcome
        if isinstance(outcome, Failure):
            d.errback(outcome)
        elif outcome is not None:
            d.callback(outcome)

    def bound(self) -> Deferred[IListeningPort]:
        """Fires with the listening port once bound, or fails with why it could not bind."""
        d: Deferred[IListeningPort] = Deferred()
        if self._outcome is None:
            self._waiters.append(d)
        else:
            self._fire(d)
        return d

    def failure_message(self, reason: Failure, source: str) -> str:
        """One line: the address, the key, why, and what to do."""
        error = reason.value
        cause = getattr(error, "socketError", None) or error
        number = getattr(cause, "errno", None)
        why = getattr(cause, "strerror", None) or str(cause)
        if number == errno.EADDRINUSE:
            fix = f"another process holds it (see 'ss -ltnp'): stop it, or set another {self.key}"
        elif number == errno.EACCES:
            fix = (
                "ports below 1024 need CAP_NET_BIND_SERVICE (the systemd unit grants it):"
                f" run under that unit, or set a port from 1024 up in {self.key}"
            )
        elif number == errno.EADDRNOTAVAIL:
            fix = f"this machine has no such address: correct {self.key}"
        else:
            fix = f"correct {self.key}"
        if not isinstance(error, CannotListenError) and number is None:
            why = f"{type(error).__name__}: {error}"
        return f"cannot listen on {self.label} ({self.key} in {source}): {why}; {fix}"


class Startup(Service):
    """Brings the daemon up, or takes it down with one line; see the module docstring.

    :param notifier: systemd's notification socket (or a recording fake).
    """

    name = "paxd-startup"

    def __init__(
        self,
        *,
        reactor: Any,
        registry: Registry,
        prepared: Prepared,
        listeners: Sequence[Listener],
        notifier: INotifier,
    ) -> None:
        self.reactor = reactor
        self.registry = registry
        self.prepared = prepared
        self.listeners = list(listeners)
        self.notifier = notifier
        #: ``None`` while all is well; 1 once start-up failed
        self.exit_status: int | None = None
        self.ready = False
        self._delay = RETRY_FIRST
        self._retry: Any = None

    def startService(self) -> None:
        super().startService()
        for warning in self.prepared.warnings:
            log.warn("{text}", text=warning)  # not "warning": trial takes that for warnings.warn
        config = self.prepared.config
        if self.prepared.created_password is not None and config.auth is not None:
            # Shown once: the file now exists, so the next start says nothing.
            log.warn(
                "created {path} with user 'admin' and password {password}: change it with"
                " 'paxd htpasswd {path} set admin'",
                path=config.auth.htpasswd.path,
                password=self.prepared.created_password,
            )
        self._index()
        Deferred.fromCoroutine(self._come_up()).addErrback(
            lambda f: self.fail(f"start-up failed: {f.getErrorMessage()}")
        )

    def _outage(self, f: Failure | BaseException) -> bool:
        """True for network storage (S3) that is down: served as 503s, not a failed start.

        A local disk that cannot be used is a mistake to fix (the start fails);
        an object store that is down now is an outage that passes, and the
        daemon then answers 503 naming it, ``/health`` says why, and the
        indexes are built once it answers, without a restart.
        """
        error = f.value if isinstance(f, Failure) else f
        cause = (
            error if isinstance(error, StorageUnavailable) else getattr(error, "__cause__", None)
        )
        return self.prepared.config.storage.driver == "s3" and isinstance(cause, StorageUnavailable)

    def _index(self) -> None:
        self._retry = None
        self.registry.start().addErrback(self._not_indexed)

    def _not_indexed(self, f: Failure) -> None:
        config = self.prepared.config
        if not self._outage(f):
            self.fail(
                f"could not read the registry's indexes from {self.registry.driver.name} storage:"
                f" {f.getErrorMessage()}; check storage.{config.storage.driver} in {config.source}"
            )
            return
        if not self.running:
            return
        log.error(
            "could not build the registry's indexes ({reason}); trying again in {delay:g} s",
            reason=f.getErrorMessage(),
            delay=self._delay,
        )
        self._retry = self.reactor.callLater(self._delay, self._index)
        self._delay = min(self._delay * 2, RETRY_MAX)

    async def _come_up(self) -> None:
        source = self.prepared.config.source
        results = await DeferredList([lst.bound() for lst in self.listeners], consumeErrors=True)
        for listener, (ok, result) in zip(self.listeners, results, strict=True):
            if not ok:
                assert isinstance(result, Failure)
                self.fail(listener.failure_message(result, source))
                return
        for listener, (_, port) in zip(self.listeners, results, strict=True):
            log.info(
                "listening on {address} ({scheme})",
                address=_address(port),
                label=listener.label,
                scheme=listener.scheme,
            )
        if not await self._storage_answers():
            return
        if self.exit_status is not None:
            return
        self.ready = True
        addresses = ", ".join(lst.label for lst in self.listeners)
        self.notifier.ready(f"serving on {addresses}")
        log.info("registry ready ({driver} storage)", driver=self.registry.driver.name)

    async def _storage_answers(self) -> bool:
        """Probe storage (at most :data:`STORAGE_TIMEOUT` s); False once start-up failed."""
        source = self.prepared.config.source
        driver = self.prepared.config.storage.driver
        probe = self.registry.check_health()
        late: list[bool] = []

        def give_up() -> None:
            late.append(True)
            probe.cancel()

        timer = self.reactor.callLater(STORAGE_TIMEOUT, give_up)
        try:
            await probe
        except Exception as e:
            cause = e.__cause__ or e  # check_health wraps the driver's error
            reason = f"no answer in {STORAGE_TIMEOUT:g} s" if late else str(cause)
            if self._outage(e) or (late and driver == "s3"):
                log.error(
                    "{driver} storage is not answering at start ({reason}): serving 503s"
                    " until it does",
                    driver=driver,
                    reason=reason,
                )
            else:
                self.fail(
                    f"{driver} storage is not usable: {reason}; check storage.{driver} in {source}"
                )
                return False
        finally:
            if timer.active():
                timer.cancel()
        return True

    def fail(self, message: str) -> None:
        """Log *message* (one line) and stop the reactor; the exit status becomes 1."""
        if self.exit_status is not None:
            return
        self.exit_status = 1
        log.critical("{reason}", reason=message)  # not "message": legacy observers own it
        self.notifier.status(message)
        self.reactor.callWhenRunning(self.reactor.stop)

    def stopService(self) -> Any:
        if self._retry is not None and self._retry.active():
            self._retry.cancel()
        self.notifier.stopping()
        return super().stopService()


def _address(port: IListeningPort) -> str:
    host = port.getHost()
    name = getattr(host, "host", None)
    number = getattr(host, "port", None)
    if name is not None and number is not None:
        return f"[{name}]:{number}" if ":" in name else f"{name}:{number}"
    return str(getattr(host, "name", host))


def exit_with_status(startup: Startup) -> None:
    """At interpreter exit, exit with *startup*'s status if it failed (for ``twistd``).

    twistd and ``python -m twisted`` exit 0 whenever the reactor stops; registered
    with :mod:`atexit` by the wiring, this makes a failed start exit 1, so that
    systemd's ``Restart=on-failure`` and ``systemctl start`` see the failure.
    """
    if startup.exit_status:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):
                pass
        os._exit(startup.exit_status)
