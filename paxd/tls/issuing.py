"""Certificates from an ACME v2 directory (Let's Encrypt): the issuer and the issuing service.

Shaped like txacme, on the maintained ``acme`` library's ``ClientV2``:

- :class:`AcmeSession` wraps the blocking ``ClientV2`` (network, JWS signing);
  each of its methods runs in the ACME thread pool, never on the reactor.
- :class:`AcmeIssuer` obtains one certificate: an order for every host,
  each authorization answered by the first responder whose challenge type
  the server offers (HTTP-01 on port 80 when there is such a listener,
  TLS-ALPN-01 on the TLS listener), then finalization.
- :class:`IssuingService` keeps the certificate fresh: it loads the stored
  one at start, issues when there is none or it expires within 30 days,
  checks again on a timer (the clock is injected), retries failures with
  a growing delay, logs every ACME error verbatim, logs an error once a day
  from 15 days before expiry while renewal keeps failing, and swaps each new
  certificate into the running listener.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import josepy as jose
import requests
from acme import challenges, client, crypto_util, errors, messages
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from twisted.application.service import Service
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure

from paxd import __version__
from paxd.threadpool import IRunner
from paxd.tls.certificates import CertificateBundle, TLSSetupError, parse_bundle
from paxd.tls.context import ServerTLS
from paxd.tls.responders import IResponder, TLSALPN01Responder, alpn_challenge
from paxd.tls.store import ICertificateStore

__all__ = [
    "AcmeIssuer",
    "AcmeSession",
    "IssuingService",
    "describe_acme_error",
    "new_account_key",
]

log = Logger(namespace="paxd.acme")


#: how long an order may take from the answered challenges to the certificate
ORDER_TIMEOUT = datetime.timedelta(seconds=120)
#: network timeout of one ACME request, in seconds
REQUEST_TIMEOUT = 30


def new_account_key() -> bytes:
    """A new ACME account key (ECDSA P-256), PEM (blocking: call it in the pool)."""
    return ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def describe_acme_error(error: BaseException, directory_url: str = "") -> str:
    """One line for an ACME failure: the server's problem document verbatim where there is one."""
    if isinstance(error, errors.ValidationError):
        parts = []
        for authzr in error.failed_authzrs:
            for challb in authzr.body.challenges:
                if challb.error is not None:
                    parts.append(
                        f"{authzr.body.identifier.value}: {challb.chall.typ}: {challb.error}"
                    )
        return "validation failed: " + "; ".join(parts)
    if isinstance(error, messages.Error | TLSSetupError):
        return str(error)
    if isinstance(error, requests.exceptions.SSLError):
        return (
            f"TLS error talking to the ACME server at {directory_url}: {_reason(error)}"
            " (is its certificate trusted? REQUESTS_CA_BUNDLE names extra CAs)"
        )
    if isinstance(error, requests.exceptions.ConnectionError | requests.exceptions.Timeout):
        return f"cannot reach the ACME server at {directory_url}: {_reason(error)}"
    if isinstance(error, errors.ClientError) and error.args:
        response = error.args[0]
        if isinstance(response, requests.Response):
            return (
                f"the ACME server answered HTTP {response.status_code} for {response.url}"
                " (check http.tls.letsencrypt.directoryurl)"
            )
    if isinstance(error, errors.TimeoutError):
        return "the ACME server did not finish the order in time"
    if isinstance(error, errors.IssuanceError):
        return f"issuance failed: {error.error}"
    text = " ".join(str(error).split())
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def _reason(error: BaseException) -> str:
    """The innermost reason of a requests/urllib3 error, without the object reprs."""
    reason: BaseException = error
    while True:
        inner = reason.args[0] if reason.args else None
        inner = getattr(inner, "reason", inner)
        if not isinstance(inner, BaseException):
            break
        reason = inner
    text = str(reason)
    # urllib3 writes "<HTTPConnection object at 0x...>: Failed to establish ...": keep the why
    if ">: " in text:
        text = text.split(">: ", 1)[1]
    return " ".join(text.split())


class AcmeSession:
    """A registered ACME account on one directory (blocking; use it from one pool thread).

    :raises TLSSetupError: from :meth:`connect` when the URL is not an ACME directory.
    """

    def __init__(self, acme: client.ClientV2, key: jose.JWK) -> None:
        self.acme = acme
        self.key = key

    @classmethod
    def connect(
        cls,
        directory_url: str,
        account_key_pem: bytes,
        email: str | None,
        verify: bool | str = True,
    ) -> AcmeSession:
        """Fetch the directory and register the account (or find it, if the key has one)."""
        key = jose.JWKEC.load(account_key_pem)
        net = client.ClientNetwork(
            key,
            alg=jose.ES256,
            verify_ssl=verify,  # type: ignore[arg-type]  # a CA bundle path works too
            user_agent=f"paxd/{__version__}",
            timeout=REQUEST_TIMEOUT,
        )
        not_acme = f"http.tls.letsencrypt.directoryurl: {directory_url} is not an ACME v2 directory"
        hint = "use e.g. https://acme-v02.api.letsencrypt.org/directory"
        try:
            response = net.get(directory_url)
            body = response.json()
        except errors.ClientError as e:
            if e.args and isinstance(e.args[0], requests.Response):
                raise  # an HTTP error status: described by describe_acme_error
            raise TLSSetupError(f"{not_acme} ({e}); {hint}") from None
        except ValueError:
            body = None
        if not isinstance(body, dict) or not {"newNonce", "newAccount", "newOrder"} <= set(body):
            raise TLSSetupError(f"{not_acme}; {hint}")
        acme = client.ClientV2(messages.Directory.from_json(body), net)
        registration = messages.NewRegistration.from_data(email=email, terms_of_service_agreed=True)
        try:
            acme.new_account(registration)
        except errors.ConflictError as e:
            # The key already has an account (a restart): use it.
            net.account = messages.RegistrationResource(
                uri=e.location, body=messages.Registration()
            )
        return cls(acme, key)

    def new_order(self, csr_pem: bytes) -> messages.OrderResource:
        """Order a certificate for the CSR's names."""
        return self.acme.new_order(csr_pem)

    def answer(
        self, challb: messages.ChallengeBody, response: challenges.ChallengeResponse
    ) -> None:
        """Tell the server the challenge is ready to be validated."""
        self.acme.answer_challenge(challb, response)

    def finalize(self, order: messages.OrderResource) -> messages.OrderResource:
        """Wait for the authorizations, finalize, and fetch the certificate chain."""
        deadline = datetime.datetime.now() + ORDER_TIMEOUT
        return self.acme.poll_and_finalize(order, deadline)


def _key_and_csr(hosts: Sequence[str]) -> tuple[bytes, bytes]:
    key = new_account_key()  # the same kind of key: P-256
    return key, crypto_util.make_csr(key, list(hosts))


class Issuer(Protocol):
    """What the issuing service asks for a certificate."""

    def issue(self, hosts: Sequence[str]) -> Deferred[CertificateBundle]:
        """A new certificate for *hosts*."""


class AcmeIssuer:
    """Obtains certificates from one ACME directory, every blocking step in *runner*'s pool."""

    def __init__(
        self,
        *,
        directory_url: str,
        email: str | None,
        store: ICertificateStore,
        runner: IRunner,
        responders: Sequence[IResponder],
        verify: bool | str = True,
        connect: Callable[..., AcmeSession] = AcmeSession.connect,
    ) -> None:
        self.directory_url = directory_url
        self.email = email
        self.store = store
        self.runner = runner
        self.responders = list(responders)
        self.verify = verify
        self._connect = connect
        self._session: AcmeSession | None = None

    def issue(self, hosts: Sequence[str]) -> Deferred[CertificateBundle]:
        """Order, validate and fetch a certificate for *hosts*."""
        return Deferred.fromCoroutine(self._issue(list(hosts)))

    async def _account(self) -> AcmeSession:
        if self._session is None:
            pem = await self.store.get_account_key()
            if pem is None:
                pem = await self.runner.run(new_account_key)
                await self.store.store_account_key(pem)
                log.info("created a new ACME account key")
            self._session = await self.runner.run(
                self._connect, self.directory_url, pem, self.email, self.verify
            )
        return self._session

    async def _issue(self, hosts: list[str]) -> CertificateBundle:
        try:
            session = await self._account()
        except Exception:
            self._session = None
            raise
        key_pem, csr_pem = await self.runner.run(_key_and_csr, hosts)
        started: list[tuple[IResponder, str, str]] = []
        try:
            order = await self.runner.run(session.new_order, csr_pem)
            for authzr in order.authorizations:
                if authzr.body.status == messages.STATUS_VALID:
                    continue
                responder, challb = self._pick(authzr)
                name = authzr.body.identifier.value
                response, validation = challb.chall.response_and_validation(session.key)
                token = challb.chall.encode("token")
                if isinstance(responder, TLSALPN01Responder):
                    # the validation certificate needs a new key: make it in the pool
                    certificate, key = await self.runner.run(alpn_challenge, name, validation)
                    responder.add(name, certificate, key)
                else:
                    responder.start_responding(name, token, validation)
                started.append((responder, name, token))
                log.info("answering {type} for {name}", type=responder.challenge_type, name=name)
                await self.runner.run(session.answer, challb, response)
            order = await self.runner.run(session.finalize, order)
        except Exception:
            self._session = None  # the next attempt starts afresh (directory, account)
            raise
        finally:
            for responder, name, token in started:
                responder.stop_responding(name, token)
        assert order.fullchain_pem is not None
        return parse_bundle(
            order.fullchain_pem.encode("ascii"),
            key_pem,
            certificate_label="the ACME server's certificate",
            key_label="the new key",
        )

    def _pick(self, authzr: messages.AuthorizationResource) -> tuple[IResponder, Any]:
        offered = {challb.chall.typ: challb for challb in authzr.body.challenges}
        for responder in self.responders:
            if responder.challenge_type in offered:
                return responder, offered[responder.challenge_type]
        raise TLSSetupError(
            f"the ACME server offers {', '.join(sorted(offered)) or 'no challenges'} for"
            f" {authzr.body.identifier.value}, and paxd answers only"
            f" {', '.join(r.challenge_type for r in self.responders)}"
        )


def _day(seconds: float) -> datetime.datetime:
    return datetime.datetime.fromtimestamp(seconds, datetime.UTC)


class IssuingService(Service):
    """Keeps the TLS listener's certificate issued and renewed (txacme's ``AcmeIssuingService``).

    :ivar current: the certificate from the store or the issuer, once there is one.
    """

    def __init__(
        self,
        *,
        hosts: Sequence[str],
        store: ICertificateStore,
        issuer: Issuer,
        tls: ServerTLS,
        clock: IReactorTime,
        renew_before: datetime.timedelta = datetime.timedelta(days=30),
        panic_before: datetime.timedelta = datetime.timedelta(days=15),
        check_interval: float = 12 * 3600.0,
        retry_delays: Sequence[float] = (60.0, 300.0, 900.0, 3600.0),
        panic_interval: float = 24 * 3600.0,
    ) -> None:
        self.hosts = list(hosts)
        self.name_in_store = self.hosts[0].lower()
        self.store = store
        self.issuer = issuer
        self.tls = tls
        self.clock = clock
        self.renew_before = renew_before
        self.panic_before = panic_before
        self.check_interval = check_interval
        self.retry_delays = tuple(retry_delays)
        self.panic_interval = panic_interval
        self.current: CertificateBundle | None = None
        self.failures = 0
        self._last_panic: float | None = None
        self._next: IDelayedCall | None = None
        self._issuing: Deferred[Any] | None = None
        self._waiters: list[Deferred[CertificateBundle]] = []
        self._ready: list[Deferred[CertificateBundle]] = []

    # --- the service ---

    def startService(self) -> None:
        super().startService()
        d = self.store.get(self.name_in_store)
        d.addCallback(self._loaded)
        d.addErrback(self._load_failed)
        d.addBoth(lambda _: self._check())

    def stopService(self) -> None:
        super().stopService()
        if self._next is not None and self._next.active():
            self._next.cancel()
        self._next = None

    # --- public ---

    def renew_now(self) -> Deferred[CertificateBundle]:
        """Issue a new certificate now, whatever the current one's expiry (operators, tests)."""
        return self._issue()

    def when_ready(self) -> Deferred[CertificateBundle]:
        """The certificate from the store or the ACME server, once there is one.

        Fires at once if there is one; never starts an issuance itself.
        """
        d: Deferred[CertificateBundle] = Deferred()
        if self.current is not None:
            d.callback(self.current)
        else:
            self._ready.append(d)
        return d

    # --- the timer ---

    def _now(self) -> datetime.datetime:
        return _day(self.clock.seconds())

    def _loaded(self, bundle: CertificateBundle | None) -> None:
        if bundle is None:
            log.info(
                "no stored certificate for {hosts}: serving a temporary self-signed one"
                " until the ACME server issues one",
                hosts=", ".join(self.hosts),
            )
            return
        missing = [h for h in self.hosts if not bundle.covers(h)]
        if missing:
            log.info(
                "the stored certificate does not cover {missing}: a new one will be issued",
                missing=", ".join(missing),
            )
            return
        if bundle.not_after <= self._now():
            log.info("the stored certificate has expired: a new one will be issued")
            return
        self._install(bundle)
        log.info(
            "using the stored certificate for {hosts}, valid until {not_after}",
            hosts=", ".join(self.hosts),
            not_after=bundle.not_after.isoformat(),
        )

    def _load_failed(self, failure: Failure) -> None:
        log.error(
            "cannot read the stored certificate: {why}; a new one will be issued",
            why=failure.getErrorMessage(),
        )

    def _install(self, bundle: CertificateBundle) -> None:
        self.tls.swap(bundle)
        self.current = bundle
        ready, self._ready = self._ready, []
        for d in ready:
            d.callback(bundle)

    def _schedule(self, delay: float) -> None:
        if not self.running:
            return
        if self._next is not None and self._next.active():
            self._next.cancel()
        self._next = self.clock.callLater(delay, self._check)

    def _check(self) -> None:
        self._next = None
        if not self.running:
            return
        if self.current is not None and self.current.not_after - self._now() > self.renew_before:
            self._schedule(self.check_interval)
            return
        if self.current is not None:
            log.info(
                "the certificate expires on {not_after}: renewing it",
                not_after=self.current.not_after.isoformat(),
            )
        self._issue().addErrback(lambda _: None)  # failures are logged and retried by _issue

    def _issue(self) -> Deferred[CertificateBundle]:
        waiter: Deferred[CertificateBundle] = Deferred()
        self._waiters.append(waiter)
        if self._issuing is None:
            log.info("requesting a certificate for {hosts}", hosts=", ".join(self.hosts))
            self._issuing = self.issuer.issue(self.hosts)
            self._issuing.addCallbacks(self._issued, self._failed)  # type: ignore[arg-type]
            self._issuing.addBoth(self._notify)
        return waiter

    def _notify(self, result: CertificateBundle | Failure) -> None:
        """Hand the issuance's outcome to everyone waiting for it."""
        waiters, self._waiters = self._waiters, []
        self._issuing = None
        for waiter in waiters:
            if isinstance(result, Failure):
                waiter.errback(result)
            else:
                waiter.callback(result)

    async def _stored(self, bundle: CertificateBundle) -> CertificateBundle:
        await self.store.store(self.name_in_store, bundle)
        return bundle

    def _issued(self, bundle: CertificateBundle) -> Deferred[CertificateBundle]:
        d = Deferred.fromCoroutine(self._stored(bundle))

        def stored(bundle: CertificateBundle) -> CertificateBundle:
            self.failures = 0
            self._last_panic = None
            self._install(bundle)
            log.info(
                "issued a certificate for {hosts}, valid until {not_after}",
                hosts=", ".join(self.hosts),
                not_after=bundle.not_after.isoformat(),
            )
            self._schedule(self.check_interval)
            return bundle

        def not_stored(failure: Failure) -> CertificateBundle:
            # Serve it anyway; it will be issued again after a restart.
            self._install(bundle)
            log.error(
                "issued a certificate but cannot store it: {why}", why=failure.getErrorMessage()
            )
            self._schedule(self.check_interval)
            return bundle

        d.addCallbacks(stored, not_stored)
        return d

    def _failed(self, failure: Failure) -> Failure:
        delay = self.retry_delays[min(self.failures, len(self.retry_delays) - 1)]
        self.failures += 1
        error = failure.value
        why = (
            describe_acme_error(error, getattr(self.issuer, "directory_url", ""))
            if isinstance(error, Exception)
            else str(error)
        )
        log.error(
            "could not obtain a certificate for {hosts} (attempt {attempt}): {why};"
            " retrying in {delay:.0f}s",
            hosts=", ".join(self.hosts),
            attempt=self.failures,
            why=why,
            delay=delay,
        )
        self._panic()
        self._schedule(delay)
        return failure

    def _panic(self) -> None:
        """An error once a day while the certificate is close to expiry and renewal fails."""
        if self.current is None:
            return
        left = self.current.not_after - self._now()
        if left > self.panic_before:
            return
        now = self.clock.seconds()
        if self._last_panic is not None and now - self._last_panic < self.panic_interval:
            return
        self._last_panic = now
        log.critical(
            "the TLS certificate for {hosts} expires in {days} days ({not_after}) and renewal"
            " keeps failing: clients will be refused after that; fix the ACME errors above",
            hosts=", ".join(self.hosts),
            days=max(0, left.days),
            not_after=self.current.not_after.isoformat(),
        )
