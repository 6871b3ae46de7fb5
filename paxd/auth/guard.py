"""The HTTP Basic guard in front of ``/v1`` and ``/v2``, on public Twisted API only.

Two resources, one in front of the other, built from Twisted's public parts:

- :class:`ThrottleGate` refuses a client address known to have failed too
  often: 429 ``TOOMANYREQUESTS`` with ``Retry-After``, before its credentials
  are even looked at (the policy is :class:`~paxd.auth.throttle.Throttle`);
- :class:`RegistryGuard` decodes ``Authorization`` with a
  :class:`~twisted.web.guard.BasicCredentialFactory`, logs in through
  :meth:`Portal.login <twisted.cred.portal.Portal.login>` (the htpasswd
  checker and :class:`~paxd.auth.realm.RegistryRealm`) and answers through a
  :class:`~twisted.web.util.DeferredResource`.  Credentials the checker has
  not verified yet are checked through the throttle: admitted (or refused
  with a 429) before bcrypt, in turn with other addresses, their outcome
  counted.

They answer as Docker distribution does:

- 401 carries ``WWW-Authenticate: Basic realm="<realm>"`` and distribution's
  error JSON (``UNAUTHORIZED``), the same for every failure: unknown user,
  wrong password, or an ``Authorization`` header that is malformed, too long,
  of another scheme or not UTF-8 (never a 500);
- with anonymous reads, a request without credentials (or with empty Basic
  credentials) may GET and HEAD, and anything else gets the 401 challenge, so
  that the client sends credentials;
- a failure that is not about credentials (a bug) is logged and answered 500
  with distribution's error JSON.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from twisted.cred.checkers import AllowAnonymousAccess, ICredentialsChecker
from twisted.cred.credentials import Anonymous, ICredentials, IUsernamePassword
from twisted.cred.error import LoginFailed, Unauthorized
from twisted.cred.portal import Portal
from twisted.internet.defer import Deferred
from twisted.logger import Logger
from twisted.python.components import proxyForInterface
from twisted.python.failure import Failure
from twisted.web.guard import BasicCredentialFactory
from twisted.web.iweb import IRequest
from twisted.web.resource import IResource
from twisted.web.util import DeferredResource
from zope.interface import implementer

from paxd.access import Access
from paxd.auth.realm import RegistryRealm
from paxd.auth.throttle import Throttle, TooManyAttempts
from paxd.registry.errors import RegistryError
from paxd.web.accesslog import remember_user
from paxd.web.errors import ErrorResource, internal_error
from paxd.web.forwarded import client_of

log = Logger()

#: longer ``Authorization`` headers are refused unread (user and password fit in far less)
MAX_AUTHORIZATION = 4096
#: Basic credentials with an empty user and password: no credentials at all
EMPTY_BASIC = (b"basic og==", b"basic")

#: what an unauthenticated client may do where anonymous reads are on
READ_METHODS = frozenset({b"GET", b"HEAD"})


def _quote(value: bytes) -> bytes:
    return b'"' + value.replace(b"\\", b"\\\\").replace(b'"', b'\\"') + b'"'


def challenge_resource(realm_name: str) -> ErrorResource:
    """The 401 ``UNAUTHORIZED`` answer with its ``WWW-Authenticate: Basic realm=…`` challenge."""
    challenge = b"Basic realm=" + _quote(realm_name.encode("utf-8"))
    return ErrorResource(RegistryError("UNAUTHORIZED"), {b"www-authenticate": challenge})


def too_many_requests_resource(retry_after: int, blocked: bool = True) -> ErrorResource:
    """The 429 ``TOOMANYREQUESTS`` answer for a blocked (or busy) client address."""
    message = (
        "too many failed logins from this address; try again later"
        if blocked
        else "too many logins from this address are being checked; try again shortly"
    )
    return ErrorResource(
        RegistryError("TOOMANYREQUESTS", message), {b"retry-after": b"%d" % retry_after}
    )


def client_address(request: IRequest) -> str:
    """The client's address: the peer's, or behind a trusted proxy whom it forwards for."""
    return client_of(request)


def _secret_of(credentials: ICredentials) -> tuple[bytes, bytes]:
    """The user and password as bytes (what the throttle recognises credentials by)."""
    if not IUsernamePassword.providedBy(credentials):
        return b"", b""
    user, password = credentials.username, credentials.password
    return (
        user.encode("utf-8") if isinstance(user, str) else user,
        password.encode("utf-8") if isinstance(password, str) else password,
    )


def _never(credentials: ICredentials) -> bool:
    return False


def _user_of(credentials: ICredentials) -> str | None:
    """The user name the client claimed, for the failure table (None if not UTF-8)."""
    if not IUsernamePassword.providedBy(credentials):
        return None
    name = credentials.username
    if isinstance(name, bytes):
        try:
            return name.decode("utf-8")
        except UnicodeDecodeError:
            return None
    return str(name)


def _is_ping(request: IRequest) -> bool:
    """True for the API's base endpoint (``/v2/``), whatever lies before it."""
    return not [p for p in request.postpath if p]


@implementer(IResource)
class _Transparent:
    """An :class:`IResource` in front of the API that consumes no path segment."""

    isLeaf = False

    def resource_for(self, request: IRequest) -> IResource:
        """What answers *request*."""
        raise NotImplementedError

    def getChildWithDefault(self, path: bytes, request: IRequest) -> IResource:
        """Give the segment back to the resource below, which traverses it itself."""
        request.postpath.insert(0, request.prepath.pop())
        return self.resource_for(request)

    def render(self, request: IRequest) -> Any:
        """A request for the guard's own path (``/v2`` without the slash)."""
        return self.resource_for(request).render(request)

    def putChild(self, path: bytes, child: IResource) -> None:
        """Children live in the API behind it, never here."""
        raise NotImplementedError("the guard has no children of its own")


class ThrottleGate(_Transparent):
    """The throttle as its own resource: 429 for a blocked address, else *inner* answers.

    :param inner: the guard (or anything) to pass the request on to.
    :param throttle: the failure table the guard feeds.
    """

    def __init__(self, inner: IResource, throttle: Throttle) -> None:
        self.inner = inner
        self.throttle = throttle

    def getChildWithDefault(self, path: bytes, request: IRequest) -> IResource:
        """429 for a blocked address; otherwise the lookup is *inner*'s, untouched."""
        retry = self.throttle.retry_after(client_address(request))
        if retry is not None:
            self.throttle.note_refused()
            return too_many_requests_resource(retry)
        return self.inner.getChildWithDefault(path, request)

    def resource_for(self, request: IRequest) -> IResource:
        """429 for a blocked address, else *inner*."""
        retry = self.throttle.retry_after(client_address(request))
        if retry is None:
            return self.inner
        self.throttle.note_refused()
        return too_many_requests_resource(retry)


class _LoggedIn(proxyForInterface(IResource, "resource")):  # type: ignore[misc]
    """The avatar, calling the realm's logout once the request it rendered has finished."""

    def __init__(self, resource: IResource, logout: Callable[[], object]) -> None:
        super().__init__(resource)
        self.logout = logout

    def getChildWithDefault(self, path: bytes, request: IRequest) -> IResource:
        return _LoggedIn(self.resource.getChildWithDefault(path, request), self.logout)

    def render(self, request: IRequest) -> Any:
        # every twisted.web request has notifyFinish; IRequest does not declare it
        request.notifyFinish().addBoth(lambda _: self.logout())  # type: ignore[attr-defined]
        return self.resource.render(request)


class RegistryGuard(_Transparent):
    """Basic authentication through a portal, answering as distribution does (module doc).

    :param portal: a portal over the htpasswd checker (and, for anonymous
        reads, :class:`~twisted.cred.checkers.AllowAnonymousAccess`).
    :param realm_name: the realm named in the challenge.
    :param throttle: admits, queues and counts every check of credentials not
        yet verified (its gate, :class:`ThrottleGate`, stands in front).
    :param anonymous_read: whether requests without credentials may GET and HEAD.
    :param challenge_base: whether the base path (``/v2/``) challenges even
        where anonymous reads are on (the API's ping; not the catalogue's ``/``).
    :param verified: whether the checker has verified these credentials
        already (then no bcrypt runs, and the throttle is not asked).
    """

    def __init__(
        self,
        portal: Portal,
        realm_name: str,
        throttle: Throttle,
        *,
        anonymous_read: bool,
        challenge_base: bool = True,
        verified: Callable[[ICredentials], bool] | None = None,
    ) -> None:
        self.portal = portal
        self.credential_factory = BasicCredentialFactory(realm_name.encode("utf-8"))
        self.realm_name = realm_name
        self.throttle = throttle
        self.anonymous_read = anonymous_read
        self.challenge_base = challenge_base
        self.verified = verified or _never

    def challenge(self) -> IResource:
        """The 401 asking for credentials."""
        return challenge_resource(self.realm_name)

    def resource_for(self, request: IRequest) -> IResource:
        """The resource this request may see: the user's API or a 401 (or, for a bug, a 500)."""
        header = request.getHeader(b"authorization")
        if header is not None and header.strip().lower() in EMPTY_BASIC:
            # containers/image sends "user:pass" = ":" when it holds no credentials
            header = None
        if not header:
            # The base endpoint still challenges: OCI clients (skopeo, docker) only send
            # the credentials they hold after the ping to /v2/ has asked for them.
            pinged = self.challenge_base and _is_ping(request)
            if self.anonymous_read and request.method in READ_METHODS and not pinged:
                return self._login(Anonymous(), None, request)
            # Not a failure: clients ask without credentials first, by design.
            return self.challenge()
        address = client_address(request)
        credentials = self._decode(header, request)
        if credentials is None:
            self.throttle.record_failure(address, None)
            return self.challenge()
        return self._login(credentials, address, request)

    def _login(
        self, credentials: ICredentials, address: str | None, request: IRequest
    ) -> IResource:
        """The avatar for *credentials*, once the portal has decided (through the throttle
        if they came from *address* and are not verified yet)."""
        user = _user_of(credentials)

        def succeeded(result: tuple[Any, Any, Callable[[], object]]) -> IResource:
            if address is not None and user is not None:
                remember_user(request, user)
            _interface, avatar, logout = result
            return _LoggedIn(avatar, logout)

        def failed(f: Failure) -> IResource:
            if f.check(TooManyAttempts):
                assert isinstance(f.value, TooManyAttempts)
                self.throttle.note_refused()
                return too_many_requests_resource(f.value.retry_after, f.value.blocked)
            if f.check(Unauthorized, LoginFailed):
                if address is not None:
                    # the claimed user name only: never the password or the Authorization header
                    log.debug("failed login as {user!r} from {address}", user=user, address=address)
                return self.challenge()
            log.failure("the login failed unexpectedly", f)
            return ErrorResource(internal_error())

        def login() -> Deferred[Any]:
            return self.portal.login(credentials, None, IResource)

        if address is None or self.verified(credentials):
            d = login()
        else:
            name, password = _secret_of(credentials)
            key = self.throttle.credentials_key(name, password)
            d = self.throttle.login(address, key, user, login)
        d.addCallbacks(succeeded, failed)
        return DeferredResource(d)

    def _decode(self, header: bytes, request: IRequest) -> ICredentials | None:
        """Basic credentials from an ``Authorization`` header, or None for anything malformed."""
        if len(header) > MAX_AUTHORIZATION:
            return None
        scheme, _, encoded = header.strip().partition(b" ")
        if scheme.lower() != self.credential_factory.scheme:
            return None
        try:
            credentials: ICredentials = self.credential_factory.decode(encoded.strip(), request)
        except LoginFailed:
            return None
        except Exception:
            log.failure("could not decode an Authorization header")
            return None
        return credentials


def guarded(
    resource_for: Callable[[Access], IResource],
    checker: ICredentialsChecker,
    *,
    realm_name: str,
    admins: frozenset[str],
    anonymous_read: bool,
    throttle: Throttle,
    challenge_base: bool = True,
    verified: Callable[[ICredentials], bool] | None = None,
) -> IResource:
    """*resource_for*'s resources behind the throttle and the guard: one per client's access.

    :param resource_for: builds what one client may see, for its access.
    :param checker: the htpasswd checker.
    :param realm_name: ``auth.htpasswd.realm``.
    :param admins: ``auth.htpasswd.admins``: who may push and delete.
    :param anonymous_read: ``auth.htpasswd.anonymous == "read"``.
    :param throttle: shared by everything guarded, so that failures count once per address.
    :param challenge_base: see :class:`RegistryGuard`.
    :param verified: the checker's :meth:`~paxd.auth.htpasswd.HtpasswdChecker.is_verified`.
    """
    checkers: list[ICredentialsChecker] = [checker]
    if anonymous_read:
        checkers.append(AllowAnonymousAccess())
    realm = RegistryRealm(resource_for, admins, anonymous_read)
    guard = RegistryGuard(
        Portal(realm, checkers),
        realm_name,
        throttle,
        anonymous_read=anonymous_read,
        challenge_base=challenge_base,
        verified=verified,
    )
    return ThrottleGate(guard, throttle)


def make_guarded_api_factory(
    registry_api_for: Callable[[Access, bytes], IResource],
    checker: ICredentialsChecker,
    *,
    realm_name: str,
    admins: frozenset[str],
    anonymous_read: bool,
    throttle: Throttle,
    verified: Callable[[ICredentials], bool] | None = None,
) -> Callable[[bytes], IResource]:
    """An ``api_factory`` for :class:`paxd.web.root.RegistryRoot`: each API behind the guard.

    :param registry_api_for: builds the API under *prefix* for one client's access.
    The other parameters are :func:`guarded`'s; *throttle* is shared by ``/v1`` and ``/v2``.
    """

    def api_factory(prefix: bytes) -> IResource:
        return guarded(
            lambda access: registry_api_for(access, prefix),
            checker,
            realm_name=realm_name,
            admins=admins,
            anonymous_read=anonymous_read,
            throttle=throttle,
            verified=verified,
        )

    return api_factory
