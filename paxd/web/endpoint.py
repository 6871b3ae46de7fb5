"""The base of every API endpoint: method dispatch, write access, async answers, errors.

An endpoint is a small leaf resource built by :class:`~paxd.web.api.APIResource`
for one parsed path (a repository name and what follows it).  Once the method
and the access are checked, the name is validated by asking the registry for
the repository (:meth:`~paxd.registry.registry.Registry.repository`); the
``do_<METHOD>`` handlers then make one call to one of its stores and return a
:class:`Response` (or a Deferred of one), or None when they answered the
request themselves (a streamed blob).  Errors become HTTP in
:mod:`paxd.web.errors`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine
from typing import Any, ClassVar, TypeAlias, cast

import attrs
from twisted.internet.defer import Deferred, maybeDeferred
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web.iweb import IRequest
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET, Request

from paxd.access import Access
from paxd.registry.errors import RegistryError
from paxd.registry.registry import Registry
from paxd.registry.repository import Repository
from paxd.web.errors import error_for, method_not_allowed, write_error

log = Logger()

#: methods that change the registry; refused to read-only clients
WRITE_METHODS = frozenset({b"POST", b"PUT", b"PATCH", b"DELETE"})


@attrs.define
class Response:
    """A complete, small answer.

    :ivar length: the ``Content-Length`` to announce when it is not
        ``len(body)`` (a HEAD answer that has no body).
    """

    status: int
    headers: dict[str, str] = attrs.Factory(dict)
    body: bytes = b""
    length: int | None = None
    #: headers sent once per value (``OCI-Tag``), after :attr:`headers`
    repeated: dict[str, list[str]] = attrs.Factory(dict)


#: what a ``do_<METHOD>`` handler may return
Handled: TypeAlias = (
    "Response | Deferred[Response | None] | Coroutine[Any, Any, Response | None] | None"
)


def json_response(value: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """*value* as a JSON answer."""
    all_headers = {"Content-Type": "application/json"}
    all_headers.update(headers or {})
    return Response(status, all_headers, json.dumps(value).encode("utf-8"))


def send(request: IRequest, response: Response) -> None:
    """Write *response* and finish *request* (no body for HEAD, same Content-Length)."""
    request.setResponseCode(response.status)
    for name, value in response.headers.items():
        request.setHeader(name.encode("latin-1"), value.encode("latin-1"))
    for name, values in response.repeated.items():
        request.responseHeaders.setRawHeaders(name, values)
    length = response.length if response.length is not None else len(response.body)
    request.setHeader(b"Content-Length", b"%d" % length)
    if request.method != b"HEAD" and response.body:
        request.write(response.body)
    request.finish()


def query(request: IRequest, name: str) -> str | None:
    """The first value of query argument *name*, decoded (None if absent)."""
    values = (request.args or {}).get(name.encode("ascii"))
    if not values:
        return None
    value: bytes = values[0]
    return value.decode("utf-8", "replace")


def queries(request: IRequest, name: str) -> list[str]:
    """Every value of query argument *name*, in order, decoded ([] if absent)."""
    values: list[bytes] = (request.args or {}).get(name.encode("ascii")) or []
    return [value.decode("utf-8", "replace") for value in values]


def header(request: IRequest, name: str) -> str | None:
    """A request header, decoded as latin-1 (None if absent)."""
    value = request.getHeader(name.encode("latin-1"))
    return value.decode("latin-1") if value is not None else None


def is_gone(request: IRequest) -> bool:
    """True if *request* can no longer be answered (the client left, or it is finished)."""
    return bool(getattr(request, "_disconnected", False) or getattr(request, "finished", False))


def answer(request: Request, d: Deferred[Response | None]) -> None:
    """Send what *d* produces (or the error it fails with), unless the client has gone."""
    gone: list[bool] = []
    request.notifyFinish().addErrback(lambda _: gone.append(True))

    def respond(response: Response | None) -> None:
        if response is None or gone:
            return
        send(request, response)

    def failed(f: Failure) -> None:
        error = error_for(f, request)
        if gone:
            return
        if getattr(request, "startedWriting", False):
            request.loseConnection()
            return
        write_error(request, error)

    d.addCallback(respond).addErrback(failed).addErrback(
        lambda f: log.failure("could not answer a request", f)
    )


class Endpoint(Resource):
    """One API endpoint for repository *name* (the raw, decoded path text; validated here).

    Subclasses set :attr:`methods` and define ``do_GET``, ``do_PUT``... .
    """

    isLeaf = True
    methods: ClassVar[frozenset[bytes]] = frozenset()
    #: whether the path holds a repository name to validate
    has_name: ClassVar[bool] = True
    #: the repository the path names, once validated (endpoints with a name only)
    repository: Repository

    def __init__(self, registry: Registry, access: Access, prefix: bytes, name: str) -> None:
        super().__init__()
        self.registry = registry
        self.access = access
        self.prefix = prefix.decode("ascii")
        self.name = name

    def allowed(self) -> frozenset[bytes]:
        """The methods this endpoint answers (some depend on the path)."""
        return self.methods

    def render(self, request: IRequest) -> int:
        """Check the method, the access and the name, then run the handler asynchronously."""
        # maybeDeferred also runs the coroutine an ``async def`` handler returns
        d: Deferred[Response | None] = maybeDeferred(self._dispatch, request)
        answer(cast(Request, request), d)
        return NOT_DONE_YET

    def _dispatch(self, request: IRequest) -> Any:
        method: bytes = request.method
        allowed = self.allowed()
        if method not in allowed:
            raise method_not_allowed(method, allowed)
        if method in WRITE_METHODS and not self.access.can_write:
            raise RegistryError(
                "DENIED",
                f"{self.access.describe()} is read-only: pushing and deleting need an"
                " admin account",
            )
        if self.has_name:
            self.repository = self.registry.repository(self.name)
        handler: Callable[[IRequest], Handled] = getattr(self, "do_" + method.decode("ascii"))
        return handler(request)

    def path(self, *parts: str) -> str:
        """An absolute path below this API's prefix: ``<prefix>/<name>/<parts...>``."""
        return "/".join((self.prefix, self.name, *parts))
