"""HTTP to one registry, on ``requests``: TLS, authentication, and errors as one line.

``requests`` (with ``urllib3`` underneath) does the HTTP: a keep-alive
connection pool per registry, one retry of a request whose pooled connection
the server had closed (the body is rewound), redirects for reads (with the
credentials dropped when the redirect leaves the registry's host, e.g. for
blob storage).  paxctl keeps on top what the library does not know:

- the registry's challenges: on a 401 the request is retried once with Basic
  credentials, or a Bearer token fetched from the challenge's realm; from then
  on the header is sent up front, so that large bodies are not sent twice;
- plain HTTP or HTTPS when the user did not say (``--insecure``);
- every network failure as one line that says what to do
  (:mod:`paxd.client.neterrors`, with the x509 diagnosis of
  :mod:`paxd.client.tlsinfo`).
"""

from __future__ import annotations

import json
import ssl
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlencode, urljoin, urlsplit

import attrs
import requests
import urllib3
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from paxd import __version__
from paxd.client.config import Credentials, Server
from paxd.client.errors import PaxctlError, RegistryAPIError
from paxd.client.neterrors import network_error

USER_AGENT = f"paxctl/{__version__}"
#: a request whose connection broke before any answer is sent once more (its body rewound);
#: connecting is retried twice, with a short back-off
RETRY = Retry(
    total=3,
    connect=2,
    read=1,
    status=0,
    other=0,
    redirect=0,
    allowed_methods=None,
    backoff_factor=0.1,
    raise_on_redirect=False,
    raise_on_status=False,
    respect_retry_after_header=False,
)

Body = bytes | IO[bytes] | None


@attrs.frozen
class Response:
    """A response; ``body`` is read unless it was asked for as a stream (then ``raw`` is open)."""

    status: int
    reason: str
    headers: Mapping[str, str]
    body: bytes
    url: str
    raw: requests.Response | None = None

    def header(self, name: str) -> str | None:
        """One header's value, or ``None``."""
        return self.headers.get(name)

    def json(self) -> Any:
        """The body parsed as JSON (a :class:`PaxctlError` if it is not)."""
        try:
            return json.loads(self.body)
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise PaxctlError(f"the registry answered {self.url} with something not JSON") from None

    def iter_body(self, size: int) -> Iterator[bytes]:
        """A streamed body in pieces of at most *size* bytes."""
        assert self.raw is not None
        return self.raw.iter_content(size)

    def read_rest(self) -> bytes:
        """The rest of a streamed body (b"" if it was read already)."""
        return self.raw.content if self.raw is not None else self.body

    def close(self) -> None:
        """Give a streamed response's connection up (a body left unread)."""
        if self.raw is not None:
            self.raw.close()


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


class _BodyReader:
    """A file body of known length, as ``requests`` streams it (its length, rewinding on retry)."""

    def __init__(self, fh: IO[bytes], length: int) -> None:
        self.fh = fh
        self.length = length
        self.start = fh.tell()

    def __len__(self) -> int:
        # requests sends len() - tell(): the length from where the body starts
        return self.start + self.length

    def read(self, n: int = -1) -> bytes:
        return self.fh.read(n)

    def __iter__(self) -> Iterator[bytes]:
        # what makes requests stream the body (urllib3 then calls read())
        while chunk := self.read(1 << 16):
            yield chunk

    def tell(self) -> int:
        return self.fh.tell()

    def seek(self, offset: int, whence: int = 0) -> int:
        return self.fh.seek(offset, whence)


class _Adapter(HTTPAdapter):
    """``requests``' adapter with paxctl's TLS context (the system CAs plus the user's)."""

    def __init__(self, context: ssl.SSLContext) -> None:
        self._context = context
        super().__init__(max_retries=RETRY)

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        kwargs["ssl_context"] = self._context
        super().init_poolmanager(*args, **kwargs)


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
        self._session: requests.Session | None = None
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

    @property
    def session(self) -> requests.Session:
        """The keep-alive session (made on first use, with the TLS context of the moment)."""
        if self._session is None:
            session = requests.Session()
            session.headers.update(
                {"User-Agent": USER_AGENT, "Accept-Encoding": "identity", "Accept": "*/*"}
            )
            session.verify = not self.insecure
            if self.insecure:
                # the user asked for it (--insecure): no warning on every request
                urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
            adapter = _Adapter(self.ssl_context())
            session.mount("https://", adapter)
            session.mount("http://", HTTPAdapter(max_retries=RETRY))
            self._session = session
        return self._session

    def close(self) -> None:
        """Close the keep-alive connections."""
        if self._session is not None:
            self._session.close()
            self._session = None

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
        return network_error(e, host, port, self.server.key, min(self.timeout, 10))

    def _send(
        self, method: str, url: str, headers: dict[str, str], body: Any, stream: bool
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

    def _send_once(
        self, method: str, url: str, headers: dict[str, str], body: Any, stream: bool
    ) -> Response:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port or (443 if parts.scheme == "https" else 80)
        try:
            raw = self.session.request(
                method,
                url,
                headers=headers,
                data=body,
                stream=stream,
                timeout=self.timeout,
                # explicit: an environment's REQUESTS_CA_BUNDLE would override the session's
                verify=not self.insecure,
                # reads follow redirects (blob storage); writes must not re-send a consumed body
                allow_redirects=method in ("GET", "HEAD"),
            )
        except requests.RequestException as e:
            raise self._network_error(e, host, port) from None
        except OSError as e:  # pragma: no cover - requests wraps these; just in case
            raise self._network_error(e, host, port) from None
        if stream:
            return Response(raw.status_code, raw.reason or "", raw.headers, b"", raw.url, raw)
        try:
            content = raw.content
        except requests.RequestException as e:
            raise self._network_error(e, host, port) from None
        return Response(raw.status_code, raw.reason or "", raw.headers, content, raw.url)

    def answers_plain_http(self) -> bool:
        """Does the port speak plain HTTP?  Asked only when insecure and not told a scheme.

        Plain HTTP is asked first because a TLS server answers a plain request at once
        (distribution: 400 "Client sent an HTTP request to an HTTPS server"; others
        close the connection), while a plain server may wait a long time on a TLS
        ClientHello, which has no end of line.  No credentials are sent.
        """
        host = f"[{self.server.host}]" if ":" in self.server.host else self.server.host
        url = f"http://{host}:{self.server.port_for('http')}/"
        try:
            with requests.Session() as probe:
                resp = probe.get(
                    url,
                    headers={"User-Agent": USER_AGENT},
                    timeout=min(self.timeout, 10.0),
                    allow_redirects=False,
                    stream=True,
                )
                body = next(resp.iter_content(4096), b"")
                resp.close()
        except (requests.RequestException, OSError):
            return False
        return not (resp.status_code == 400 and b"HTTPS" in body)

    def _settle_scheme(self) -> None:
        if self._scheme_known or not self.insecure:
            return
        # Without a port, https://host means 443; port 80 is no sign of what 443 speaks.
        plain = self.server.port is not None and self.answers_plain_http()
        self.scheme = "http" if plain else "https"
        self._scheme_known = True

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
        all_headers = dict(headers or {})
        sent_body: Any = body
        if body is not None and not isinstance(body, bytes):
            if length is None:
                raise ValueError("a file body needs its length")
            # an empty stream would go chunked: an empty body is sent as b""
            sent_body = _BodyReader(body, length) if length else b""
        elif body is None and method in ("POST", "PUT", "PATCH"):
            all_headers["Content-Length"] = "0"
        start = body.tell() if body is not None and not isinstance(body, bytes) else 0
        for _ in range(3):
            sent = dict(all_headers)
            if authenticate and self._authorization and self._is_ours(url):
                sent["Authorization"] = self._authorization
            response = self._send(method, url, sent, sent_body, stream)
            if response.status != 401 or not authenticate:
                return response
            # a 401 is the registry's own (redirects are followed for reads only)
            url = response.url if self._is_ours(response.url) else url
            self.auth_required = True
            response.close()
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
        headers = {}
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
        token = data.get("token") or data.get("access_token") if isinstance(data, dict) else None
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
            response = attrs.evolve(response, body=response.read_rest(), raw=None)
        if response.status == 401:
            raise self.unauthorized(response)
        raise api_error(response, what)
