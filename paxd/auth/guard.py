"""The HTTP Basic guard in front of ``/v1`` and ``/v2``.

Built from Twisted's own parts: a :class:`~twisted.cred.portal.Portal` over
the htpasswd checker and :class:`~paxd.auth.realm.RegistryRealm`, and a
:class:`~twisted.web.guard.HTTPAuthSessionWrapper` with a
:class:`~twisted.web.guard.BasicCredentialFactory`.  The wrapper is adapted so
that it answers as Docker distribution does:

- 401 carries ``WWW-Authenticate: Basic realm="<realm>"`` and distribution's
  error JSON (``UNAUTHORIZED``), the same for every failure: unknown user,
  wrong password, or an ``Authorization`` header that is malformed, too long,
  of another scheme or not UTF-8 (never a 500);
- a client address that failed too often gets 429 ``TOOMANYREQUESTS`` with
  ``Retry-After``, before its credentials are even looked at;
- with anonymous reads, a request without credentials may GET and HEAD, and
  anything else gets the 401 challenge, so that the client sends credentials.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from twisted.cred.checkers import AllowAnonymousAccess, ICredentialsChecker
from twisted.cred.credentials import Anonymous, ICredentials, IUsernamePassword
from twisted.cred.error import LoginFailed, Unauthorized
from twisted.cred.portal import Portal
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web.guard import BasicCredentialFactory, HTTPAuthSessionWrapper
from twisted.web.iweb import IRequest
from twisted.web.resource import IResource, Resource
from twisted.web.util import DeferredResource

from paxd.auth.avatar import Access
from paxd.auth.realm import RegistryRealm
from paxd.auth.throttle import Throttle
from paxd.registry.errors import RegistryError
from paxd.web.errors import http_headers, http_status

log = Logger()

#: longer ``Authorization`` headers are refused unread (user and password fit in far less)
MAX_AUTHORIZATION = 4096
#: Basic credentials with an empty user and password: no credentials at all
EMPTY_BASIC = (b"basic og==", b"basic")

#: what an unauthenticated client may do where anonymous reads are on
READ_METHODS = frozenset({b"GET", b"HEAD"})


class ErrorResource(Resource):
    """A leaf that answers every request with one distribution error document.

    :param error: the error to send (its status, JSON body and headers).
    :param headers: more response headers (``WWW-Authenticate``).
    """

    isLeaf = True

    def __init__(self, error: RegistryError, headers: dict[bytes, bytes] | None = None) -> None:
        super().__init__()
        self.error = error
        self.headers = dict(headers or {})

    def getChildWithDefault(self, path: bytes, request: IRequest) -> ErrorResource:
        """Stop traversal here: whatever lies below, the answer is this error."""
        return self

    def render(self, request: IRequest) -> bytes:
        """Write the status, the headers and (except for HEAD) the JSON body."""
        request.setResponseCode(http_status(self.error))
        request.setHeader(b"content-type", b"application/json")
        # distribution sends it on every response; docker looks for it on the 401 to /v2/
        request.setHeader(b"docker-distribution-api-version", b"registry/2.0")
        for name, value in http_headers(self.error).items():
            request.setHeader(name.encode("latin-1"), value.encode("latin-1"))
        for name_b, value_b in self.headers.items():
            request.setHeader(name_b, value_b)
        body = self.error.to_json()
        if request.method == b"HEAD":
            request.setHeader(b"content-length", b"%d" % len(body))
            return b""
        return body


def _quote(value: bytes) -> bytes:
    return b'"' + value.replace(b"\\", b"\\\\").replace(b'"', b'\\"') + b'"'


def challenge_resource(realm_name: str) -> ErrorResource:
    """The 401 ``UNAUTHORIZED`` answer with its ``WWW-Authenticate: Basic realm=…`` challenge."""
    challenge = b"Basic realm=" + _quote(realm_name.encode("utf-8"))
    return ErrorResource(RegistryError("UNAUTHORIZED"), {b"www-authenticate": challenge})


def too_many_requests_resource(retry_after: int) -> ErrorResource:
    """The 429 ``TOOMANYREQUESTS`` answer for a blocked client address."""
    return ErrorResource(
        RegistryError(
            "TOOMANYREQUESTS", "too many failed logins from this address; try again later"
        ),
        {b"retry-after": str(retry_after).encode("ascii")},
    )


def client_address(request: IRequest) -> str:
    """The peer's host (an IP address as text) or, for other transports, the address as text."""
    address = request.getClientAddress()
    host = getattr(address, "host", None)
    return host if isinstance(host, str) else str(address)


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


class RegistryGuard(HTTPAuthSessionWrapper):
    """:class:`HTTPAuthSessionWrapper` answering as distribution does (see the module doc).

    :param portal: a portal over the htpasswd checker (and, for anonymous
        reads, :class:`~twisted.cred.checkers.AllowAnonymousAccess`).
    :param realm_name: the realm named in the challenge.
    :param throttle: the failure table consulted and fed on every login.
    :param anonymous_read: whether requests without credentials may GET and HEAD.
    """

    def __init__(
        self, portal: Portal, realm_name: str, throttle: Throttle, *, anonymous_read: bool
    ) -> None:
        self._factory = BasicCredentialFactory(realm_name.encode("utf-8"))
        super().__init__(portal, [self._factory])
        self.realm_name = realm_name
        self.throttle = throttle
        self.anonymous_read = anonymous_read

    def _challenge(self) -> IResource:
        return challenge_resource(self.realm_name)

    def _authorizedResource(self, request: IRequest) -> IResource:
        """The resource this request may see: the user's API, a 401, or a 429."""
        address = client_address(request)
        retry = self.throttle.retry_after(address)
        if retry is not None:
            return too_many_requests_resource(retry)

        header = request.getHeader(b"authorization")
        if header is not None and header.strip().lower() in EMPTY_BASIC:
            # containers/image sends "user:pass" = ":" when it holds no credentials
            header = None
        if not header:
            # The base endpoint still challenges: OCI clients (skopeo, docker) only send
            # the credentials they hold after the ping to /v2/ has asked for them.
            is_ping = not [p for p in request.postpath if p]
            if self.anonymous_read and request.method in READ_METHODS and not is_ping:
                return DeferredResource(self._login(Anonymous()))
            # Not a failure: clients ask without credentials first, by design.
            return self._challenge()

        credentials = self._decode(header, request)
        if credentials is None:
            self._failed(address, None)
            return self._challenge()
        user = _user_of(credentials)

        def succeeded(result: Any) -> Any:
            if user is not None:
                self.throttle.record_success(address, user)
            return result

        def failed(f: Failure) -> Failure:
            if f.check(Unauthorized, LoginFailed):
                self._failed(address, user)
            return f

        d = self._portal.login(credentials, None, IResource)
        d.addCallbacks(succeeded, failed)
        d.addCallbacks(self._loginSucceeded, self._loginFailed)
        return DeferredResource(d)

    def _failed(self, address: str, user: str | None) -> None:
        """Count a failed login; say so when it gets the address blocked."""
        if self.throttle.record_failure(address, user):
            log.warn(
                "too many failed logins from {address} (last as {user!r}):"
                " refusing it for {seconds} seconds",
                address=address,
                user=user,
                seconds=self.throttle.block_for,
            )

    def _decode(self, header: bytes, request: IRequest) -> ICredentials | None:
        """Basic credentials from an ``Authorization`` header, or None for anything malformed."""
        if len(header) > MAX_AUTHORIZATION:
            return None
        scheme, _, encoded = header.strip().partition(b" ")
        if scheme.lower() != self._factory.scheme:
            return None
        try:
            credentials: ICredentials = self._factory.decode(encoded.strip(), request)
        except LoginFailed:
            return None
        except Exception:
            log.failure("could not decode an Authorization header")
            return None
        return credentials

    def _loginFailed(self, result: Failure) -> IResource:
        """One generic 401 for every credential failure; anything else is a logged 500."""
        if result.check(Unauthorized, LoginFailed):
            return self._challenge()
        return super()._loginFailed(result)


def make_guarded_api_factory(
    registry_api_for: Callable[[Access, bytes], IResource],
    checker: ICredentialsChecker,
    *,
    realm_name: str,
    admins: frozenset[str],
    anonymous_read: bool,
    throttle: Throttle,
) -> Callable[[bytes], IResource]:
    """An ``api_factory`` for :class:`paxd.web.root.RegistryRoot`: each API behind the guard.

    :param registry_api_for: builds the API under *prefix* for one client's access.
    :param checker: the htpasswd checker.
    :param realm_name: ``auth.htpasswd.realm``.
    :param admins: ``auth.htpasswd.admins``: who may push and delete.
    :param anonymous_read: ``auth.htpasswd.anonymous == "read"``.
    :param throttle: shared by ``/v1`` and ``/v2``, so that failures count once per address.
    """
    checkers: list[ICredentialsChecker] = [checker]
    if anonymous_read:
        checkers.append(AllowAnonymousAccess())

    def api_factory(prefix: bytes) -> IResource:
        realm = RegistryRealm(
            lambda access: registry_api_for(access, prefix), admins, anonymous_read
        )
        return RegistryGuard(
            Portal(realm, checkers), realm_name, throttle, anonymous_read=anonymous_read
        )

    return api_factory
