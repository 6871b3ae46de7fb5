"""Registry errors as HTTP answers: failures to error documents, and the 404 resource."""

from __future__ import annotations

from collections.abc import Mapping

from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web.iweb import IRequest
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET

from paxd.registry.errors import RegistryError
from paxd.web.request import apply_headers, internal_error, write_error

log = Logger()


def error_for(f: Failure, request: IRequest | None = None) -> RegistryError:
    """The error to send for *f*: a RegistryError as it is; anything else logged, then a 500."""
    if f.check(RegistryError):
        error = f.value
        assert isinstance(error, RegistryError)
        return error
    method = request.method.decode("latin-1", "replace") if request is not None else "?"
    uri = request.uri[:300].decode("latin-1", "replace") if request is not None else "?"
    log.failure("unexpected failure answering {method} {uri}", f, method=method, uri=uri)
    return internal_error()


def not_found(what: str = "not found") -> RegistryError:
    """The 404 for a path that names no endpoint (distribution has no code for it)."""
    return RegistryError("UNSUPPORTED", what, status=404)


def method_not_allowed(method: bytes, allowed: frozenset[bytes]) -> RegistryError:
    """405 UNSUPPORTED naming the methods the resource does answer."""
    names = ", ".join(sorted(m.decode("ascii") for m in allowed))
    return RegistryError(
        "UNSUPPORTED",
        f"method {method.decode('latin-1', 'replace')[:20]} is not allowed here",
        detail={"allowed": names},
        headers={"Allow": names},
    )


class ErrorResource(Resource):
    """A leaf answering every request (whatever the path below it) with one error.

    The one error answer of the web layer and of the auth guard (401 with its
    challenge, 429 for a blocked address).

    :param error: the error document to send, with its status.
    :param headers: more response headers (``WWW-Authenticate``, ``Retry-After``).
    """

    isLeaf = True

    def __init__(self, error: RegistryError, headers: Mapping[bytes, bytes] | None = None) -> None:
        super().__init__()
        self.error = error
        self.headers = dict(headers or {})

    def getChildWithDefault(self, path: bytes, request: IRequest) -> ErrorResource:
        """Stop traversal here: whatever lies below, the answer is this error."""
        return self

    def render(self, request: IRequest) -> int:
        """Write the extra headers and the error document, and finish."""
        for name, value in self.headers.items():
            request.setHeader(name, value)
        # docker looks for it on the 401 to /v2/, even outside a RegistrySite
        apply_headers(request, [])
        write_error(request, self.error)
        return NOT_DONE_YET
