"""The access log: one event per request, naming who asked what and how it went.

Each finished request is an event of namespace ``paxd.access`` with the
fields ``client``, ``user`` (the authenticated user, or ``None``),
``method``, ``path`` (with its query), ``protocol``, ``status``, ``bytes``
(body bytes sent), ``bytes_in`` (body bytes received), ``duration`` (seconds
from the request line to the last byte) and ``user_agent``. As text::

    127.0.0.1 alice "GET /v2/ HTTP/1.1" 200 2 0.004s "skopeo/1.13"

As JSON (``log.formatter: json``) the same fields are the line's keys.
Credentials never appear: the ``Authorization`` header is not read here, and
the user is the name the guard verified (:func:`remember_user`).
"""

from __future__ import annotations

from typing import Any

from twisted.logger import Logger
from twisted.web.iweb import IRequest

from paxd.web.forwarded import client_of

__all__ = ["log_request", "remember_user", "user_of"]

log = Logger(namespace="paxd.access")

#: where the guard leaves the verified user name on the request
_USER = "paxd_user"
#: the longest request target logged (a hostile client may send megabytes)
MAX_PATH = 2000

_FORMAT = (
    '{client} {user_or_dash} "{method} {path} {protocol}" {status} {bytes}'
    ' {duration_text} "{user_agent}"'
)


def remember_user(request: IRequest, user: str) -> None:
    """Record on *request* the user the guard authenticated, for the access log."""
    setattr(request, _USER, user)


def user_of(request: IRequest) -> str | None:
    """The user :func:`remember_user` recorded, or ``None`` (anonymous, or no ``auth``)."""
    user = getattr(request, _USER, None)
    return user if isinstance(user, str) else None


def _text(value: bytes | None, limit: int = 300) -> str:
    return (value or b"-")[:limit].decode("latin-1")


def log_request(request: Any, now: float) -> None:
    """Log *request*, finished at *now* (its ``started`` time, if any, gives the duration)."""
    started = getattr(request, "started", None)
    duration = round(now - started, 6) if isinstance(started, float) else None
    user = user_of(request)
    client = client_of(request)
    log.info(
        _FORMAT,
        client=client,
        user=user,
        user_or_dash=user if user is not None else "-",
        method=_text(request.method, 20),
        path=_text(request.uri, MAX_PATH),
        protocol=_text(request.clientproto, 20),
        status=request.code,
        bytes=request.sentLength,
        bytes_in=getattr(request, "body_received", None),
        duration=duration,
        duration_text=f"{duration:.3f}s" if duration is not None else "-",
        user_agent=_text(request.getHeader(b"user-agent")),
    )
