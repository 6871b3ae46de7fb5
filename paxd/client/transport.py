"""HTTP to one registry: connections, TLS, authentication, and errors as one line.

Synchronous, on ``http.client``: one keep-alive connection per registry, a
second one only for redirects to another host (blob storage).  On a 401 the
request is retried once with Basic credentials (or a Bearer token from the
challenge's realm, for registries with token auth); from then on the header is
sent up front, so that large bodies are not sent twice.
"""

from __future__ import annotations

import http.client
import json
import socket
import ssl
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlencode, urljoin, urlsplit

import attrs

from paxd import __version__
from paxd.client.config import Credentials, Server
from paxd.client.errors import PaxctlError, RegistryAPIError
from paxd.client.tlsinfo import diagnose

USER_AGENT = f"paxctl/{__version__}"
#: how many bytes http.client sends per write of a file body
BLOCK_SIZE = 1 << 16
_RETRYABLE = (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError)
#: SSL reasons meaning the other side answered in plain HTTP
_PLAIN_HTTP_REASONS = ("WRONG_VERSION_NUMBER", "RECORD_LAYER_FAILURE", "PACKET_LENGTH_TOO_LONG")

Body = bytes | IO[bytes] | None


@attrs.frozen
class Response:
    """A response; ``body`` is read unless it was asked for as a stream (then ``raw`` is open)."""

    status: int
    reason: str
    headers: http.client.HTTPMessage
    body: bytes
    url: str
    raw: http.client.HTTPResponse | None = None

    def header(self, name: str) -> str | None:
        """One header's value, or ``None``."""
        return self.headers.get(name)

    def json(self) -> Any:
        """The body parsed as JSON (a :class:`PaxctlError` if it is not)."""
        try:
            return json.loads(self.body)
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise PaxctlError(f"the registry answered {self.url} with something not JSON") from None


def parse_challenge(value: str) -> tuple[str, dict[str, str]]:
    """``Bearer realm="x",service="y"`` → ``("bearer", {"realm": "x", "service": "y"})``."""
    scheme, _, rest = value.strip().partition(" ")
    params: dict[str, str] = {}
    while rest:
        key, _, rest = rest.strip().partition("=")
        if rest.startswith('"'):
            val, _, rest = rest[1:].partition('"')
        else:
            val, _, rest = rest.partition(",")
        params[key.strip().lower()] = val
        rest = rest.lstrip().removeprefix(",")
    return scheme.lower(), params


def api_error(resp: Response, what: str = "") -> RegistryAPIError:
    """The error a non-success *resp* means, with the registry's own code and message."""
    code = None
    message = ""
    try:
        errors = json.loads(resp.body).get("errors")
        if isinstance(errors, list) and errors:
            first = errors[0]
            code = str(first.get("code") or "") or None
            message = str(first.get("message") or "")
            if len(errors) > 1:
                message += f" (and {len(errors) - 1} more)"
    except (ValueError, AttributeError):
        pass
    if code is None:
        code = f"HTTP {resp.status}"
        message = resp.reason or "error"
    if what:
        message = f"{message} ({what})" if message else what
    return RegistryAPIError(message, code, resp.status)


class Transport:
    """Requests to one registry.

    :param server: where.
    :param insecure: accept plain HTTP and unverified certificates.
    :param ca_files: extra CAs to trust (PEM files).
    :param credentials: for Basic auth, if any.
    :param plain_http: ``True`` if the server is known to speak plain HTTP,
        ``None`` to find out: HTTPS, unless *insecure* and the port answers plain
        HTTP (see :meth:`answers_plain_http`).
    """

    def __init__(
        self,
        server: Server,
        *,
        insecure: bool = False,
        ca_files: list[Path] | None = None,
        credentials: Credentials | None = None,
        plain_http: bool | None = None,
        timeout: float = 60.0,
    ) -> None:
        self.server = server
        self.insecure = insecure
        self.ca_files = list(ca_files or [])
        self.credentials = credentials
        self.timeout = timeout
        if server.scheme is not None:
            self.scheme = server.scheme
        else:
            self.scheme = "http" if plain_http else "https"
        #: the scheme is settled once a connection succeeded or the user named it
        self._scheme_known = server.scheme is not None or bool(plain_http)
        self._conn: http.client.HTTPConnection | None = None
        self._authorization: str | None = None
        #: set once the server asked for credentials (so that a 401 is not "no credentials")
        self.auth_required = False

    # -- addresses ------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        """``scheme://host:port``."""
        host = f"[{self.server.host}]" if ":" in self.server.host else self.server.host
        return f"{self.scheme}://{host}:{self.server.port_for(self.scheme)}"

    def url(self, target: str, query: Mapping[str, str] | None = None) -> str:
        """An absolute URL for a path or a (maybe relative) Location header."""
        url = urljoin(self.base_url + "/", target)
        if query:
            url += ("&" if "?" in url else "?") + urlencode(query)
        return url

    def ssl_context(self) -> ssl.SSLContext:
        """The TLS context: the system CAs plus *ca_files*, or no verification when insecure."""
        ctx = ssl.create_default_context()
        if self.insecure:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            return ctx
        for path in self.ca_files:
            try:
                ctx.load_verify_locations(cafile=str(path))
            except (OSError, ssl.SSLError) as e:
                raise PaxctlError(f"cannot use {path} as a CA certificate: {e}") from None
        return ctx

    # -- connections ----------------------------------------------------------------

    def _open(self, scheme: str, host: str, port: int) -> http.client.HTTPConnection:
        if scheme == "https":
            return http.client.HTTPSConnection(
                host,
                port,
                timeout=self.timeout,
                context=self.ssl_context(),
                blocksize=BLOCK_SIZE,
            )
        return http.client.HTTPConnection(host, port, timeout=self.timeout, blocksize=BLOCK_SIZE)

    def close(self) -> None:
        """Close the keep-alive connection."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _is_ours(self, url: str) -> bool:
        parts = urlsplit(url)
        return (
            parts.scheme,
            parts.hostname,
            parts.port or (443 if parts.scheme == "https" else 80),
        ) == (
            self.scheme,
            self.server.host.lower(),
            self.server.port_for(self.scheme),
        )

    def _network_error(self, e: BaseException, host: str, port: int) -> PaxctlError:
        where = f"{host}:{port}"
        if isinstance(e, ssl.SSLCertVerificationError):
            return PaxctlError(diagnose(e, host, port, self.server.key, min(self.timeout, 10)))
        if isinstance(e, ssl.SSLError):
            if any(r in str(e) for r in _PLAIN_HTTP_REASONS):
                error = PaxctlError(
                    f"{where} answers plain HTTP, not HTTPS: use http://{self.server.key} or"
                    " --insecure (the vendor CLI's flag for plain HTTP)"
                )
            else:
                error = PaxctlError(
                    f"TLS handshake with {where} failed ({e.reason or e}): if the registry"
                    f" speaks plain HTTP, use http://{self.server.key} or --insecure"
                )
            error.tls_failed = True
            return error
        if isinstance(e, socket.gaierror):
            return PaxctlError(f"cannot resolve {host}: {e.strerror or e}")
        if isinstance(e, ConnectionRefusedError):
            return PaxctlError(
                f"cannot connect to {where}: connection refused (is the registry running?)"
            )
        if isinstance(e, TimeoutError | socket.timeout):
            return PaxctlError(f"timed out talking to {where}")
        if isinstance(e, http.client.HTTPException):
            return PaxctlError(
                f"{where} broke off the exchange ({type(e).__name__}): is it a registry?"
            )
        if isinstance(e, OSError):
            return PaxctlError(f"network error talking to {where}: {e.strerror or e}")
        return PaxctlError(f"error talking to {where}: {e}")

    def _send_once(
        self, method: str, url: str, headers: dict[str, str], body: Body, stream: bool
    ) -> Response:
        parts = urlsplit(url)
        path = parts.path or "/"
        if parts.query:
            path += "?" + parts.query
        own = self._is_ours(url)
        host = parts.hostname or ""
        port = parts.port or (443 if parts.scheme == "https" else 80)
        start = body.tell() if body is not None and not isinstance(body, bytes) else 0
        for attempt in range(2):
            reused = own and self._conn is not None
            if own:
                if self._conn is None:
                    self._conn = self._open(parts.scheme, host, port)
                conn = self._conn
            else:
                conn = self._open(parts.scheme, host, port)
            try:
                conn.request(method, path, body=body, headers=headers)
                raw = conn.getresponse()
                if stream:
                    return Response(raw.status, raw.reason, raw.headers, b"", url, raw)
                data = raw.read()
                if not own or raw.will_close:
                    conn.close()
                    if own:
                        self._conn = None
                return Response(raw.status, raw.reason, raw.headers, data, url)
            except _RETRYABLE as e:
                # A keep-alive connection the server closed meanwhile: once more on a fresh one.
                conn.close()
                if own:
                    self._conn = None
                if not reused or attempt:
                    raise self._network_error(e, host, port) from None
                if body is not None and not isinstance(body, bytes):
                    body.seek(start)
            except (OSError, http.client.HTTPException) as e:
                conn.close()
                if own:
                    self._conn = None
                raise self._network_error(e, host, port) from None
        raise AssertionError("unreachable")  # pragma: no cover

    def answers_plain_http(self) -> bool:
        """Does the port speak plain HTTP?  Asked only when insecure and not told a scheme.

        Plain HTTP is asked first because a TLS server answers a plain request at once
        (distribution: 400 "Client sent an HTTP request to an HTTPS server"; others
        close the connection), while a plain server may wait a long time on a TLS
        ClientHello, which has no end of line.  No credentials are sent.
        """
        host, port = self.server.host, self.server.port_for("http")
        conn = http.client.HTTPConnection(host, port, timeout=min(self.timeout, 10.0))
        try:
            conn.request("GET", "/", headers={"User-Agent": USER_AGENT})
            resp = conn.getresponse()
            body = resp.read(4096)
        except (OSError, http.client.HTTPException):
            return False
        finally:
            conn.close()
        return not (resp.status == 400 and b"HTTPS" in body)

    def _settle_scheme(self) -> None:
        if self._scheme_known or not self.insecure:
            return
        # Without a port, https://host means 443; port 80 is no sign of what 443 speaks.
        plain = self.server.port is not None and self.answers_plain_http()
        self.scheme = "http" if plain else "https"
        self._scheme_known = True

    def _send(
        self, method: str, url: str, headers: dict[str, str], body: Body, stream: bool
    ) -> Response:
        try:
            response = self._send_once(method, url, headers, body, stream)
        except PaxctlError as e:
            # Not told a scheme: HTTPS first, and plain HTTP if allowed and that is what answers.
            if self._scheme_known or not self.insecure or not e.tls_failed:
                raise
            self.scheme = "http"
            self._scheme_known = True
            self.close()
            if body is not None and not isinstance(body, bytes):
                body.seek(0)
            response = self._send_once(
                method, url.replace("https://", "http://", 1), headers, body, stream
            )
        self._scheme_known = True
        return response

    # -- requests -------------------------------------------------------------------

    def request(
        self,
        method: str,
        target: str,
        *,
        headers: Mapping[str, str] | None = None,
        body: Body = None,
        length: int | None = None,
        query: Mapping[str, str] | None = None,
        stream: bool = False,
        authenticate: bool = True,
    ) -> Response:
        """Send a request (authenticating on a 401) and return the response, whatever its status.

        :param target: a path such as ``/v2/`` or an absolute URL (a Location header).
        :param body: bytes, or a binary file positioned at the start of the body.
        :param length: the body's length when it is a file.
        """
        self._settle_scheme()
        url = self.url(target, query)
        all_headers = {"User-Agent": USER_AGENT, **(headers or {})}
        if body is not None:
            size = len(body) if isinstance(body, bytes) else length
            if size is None:
                raise ValueError("a file body needs its length")
            all_headers["Content-Length"] = str(size)
        elif method in ("POST", "PUT", "PATCH"):
            all_headers["Content-Length"] = "0"
        start = body.tell() if body is not None and not isinstance(body, bytes) else 0
        for _ in range(3):
            sent = dict(all_headers)
            if authenticate and self._authorization and self._is_ours(url):
                sent["Authorization"] = self._authorization
            response = self._send(method, url, sent, body, stream)
            url = response.url
            if response.status != 401 or not authenticate:
                return response
            self.auth_required = True
            if response.raw is not None:
                response.raw.read()
            if not self._answer_challenge(response, sent.get("Authorization")):
                return response
            if body is not None and not isinstance(body, bytes):
                body.seek(start)
        return response

    def _answer_challenge(self, response: Response, tried: str | None) -> bool:
        """Set the Authorization header a 401 asks for; false if there is nothing new to try."""
        scheme, params = parse_challenge(response.header("WWW-Authenticate") or "")
        if scheme == "bearer" and "realm" in params:
            token = self._fetch_token(params)
            if token is None:
                return False
            self._authorization = f"Bearer {token}"
        elif self.credentials is not None:
            self._authorization = "Basic " + self.credentials.encode()
        else:
            return False
        return self._authorization != tried

    def _fetch_token(self, params: dict[str, str]) -> str | None:
        query = {k: v for k, v in params.items() if k in ("service", "scope")}
        headers = {"User-Agent": USER_AGENT}
        if self.credentials is not None:
            headers["Authorization"] = "Basic " + self.credentials.encode()
        url = params["realm"] + ("?" + urlencode(query) if query else "")
        resp = self._send("GET", url, headers, None, False)
        if resp.status != 200:
            return None
        try:
            data = json.loads(resp.body)
        except ValueError:
            return None
        token = data.get("token") or data.get("access_token")
        return str(token) if token else None

    def unauthorized(self, response: Response) -> PaxctlError:
        """The error for a 401 that credentials did not cure."""
        key = self.server.key
        if self.credentials is None:
            return RegistryAPIError(
                f"{key} requires credentials: run `paxctl login {key}`", "UNAUTHORIZED", 401
            )
        return RegistryAPIError(
            f"{key} refused the credentials of user {self.credentials.username!r}:"
            " wrong username or password",
            "UNAUTHORIZED",
            401,
        )

    def expect(self, response: Response, *statuses: int, what: str = "") -> Response:
        """Return *response* if its status is one of *statuses*, else raise its error."""
        if response.status in statuses:
            return response
        if response.raw is not None:
            response = attrs.evolve(response, body=response.raw.read(), raw=None)
        if response.status == 401:
            raise self.unauthorized(response)
        raise api_error(response, what)
