"""A network failure under ``requests`` as one line that says what to do.

``requests`` wraps ``urllib3``, which wraps ``ssl`` and ``socket``: the cause
that matters (an unverified certificate, a refused connection, a name that
does not resolve, a plain-HTTP port spoken to in TLS) is dug out of the chain
and named, with :func:`paxd.client.tlsinfo.diagnose` for certificates.
"""

from __future__ import annotations

import socket
import ssl
from collections.abc import Iterator
from typing import Any

import requests

from paxd.client.errors import PaxctlError
from paxd.client.tlsinfo import diagnose

#: SSL reasons meaning the other side answered in plain HTTP
PLAIN_HTTP_REASONS = ("WRONG_VERSION_NUMBER", "RECORD_LAYER_FAILURE", "PACKET_LENGTH_TOO_LONG")


def root_causes(e: BaseException) -> Iterator[BaseException]:
    """*e* and what it wraps (``requests`` → ``urllib3`` → ``ssl``/``socket``), outermost first."""
    seen: set[int] = set()
    todo: list[BaseException] = [e]
    while todo:
        current = todo.pop(0)
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        inner = [a for a in current.args if isinstance(a, BaseException)]
        reason = getattr(current, "reason", None)
        if isinstance(reason, BaseException):
            inner.append(reason)
        inner += [x for x in (current.__cause__, current.__context__) if x is not None]
        todo.extend(inner)


def first_cause(
    e: BaseException, kind: type[BaseException] | tuple[type[BaseException], ...]
) -> Any:
    """The first of *e*'s causes that is a *kind*, or None."""
    return next((c for c in root_causes(e) if isinstance(c, kind)), None)


def network_error(e: BaseException, host: str, port: int, key: str, timeout: float) -> PaxctlError:
    """The one-line error for *e*, met talking to *host*:*port* (the server *key*)."""
    where = f"{host}:{port}"
    verify = first_cause(e, ssl.SSLCertVerificationError)
    if verify is not None:
        return PaxctlError(diagnose(verify, host, port, key, timeout))
    tls = first_cause(e, ssl.SSLError)
    if tls is not None:
        if any(r in str(tls) for r in PLAIN_HTTP_REASONS):
            error = PaxctlError(
                f"{where} answers plain HTTP, not HTTPS: use http://{key} or"
                " --insecure (the vendor CLI's flag for plain HTTP)"
            )
        else:
            error = PaxctlError(
                f"TLS handshake with {where} failed ({tls.reason or tls}): if the registry"
                f" speaks plain HTTP, use http://{key} or --insecure"
            )
        error.tls_failed = True
        return error
    resolve = first_cause(e, socket.gaierror)
    if resolve is not None:
        return PaxctlError(f"cannot resolve {host}: {resolve.strerror or resolve}")
    if first_cause(e, ConnectionRefusedError) is not None:
        return PaxctlError(
            f"cannot connect to {where}: connection refused (is the registry running?)"
        )
    if isinstance(e, requests.Timeout) or first_cause(e, (TimeoutError, socket.timeout)):
        return PaxctlError(f"timed out talking to {where}")
    if isinstance(e, requests.ConnectionError | requests.exceptions.ChunkedEncodingError):
        inner = first_cause(e, OSError)
        if inner is not None and not isinstance(inner, requests.RequestException):
            return PaxctlError(f"network error talking to {where}: {inner.strerror or inner}")
        return PaxctlError(f"{where} broke off the exchange: is it a registry?")
    return PaxctlError(f"error talking to {where}: {e}")
