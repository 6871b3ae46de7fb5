"""``paxctl check SERVER``: the connection diagnosed step by step, as an operator needs it.

DNS, TCP, TLS (issuer, SANs against the name used, expiry, the chain the
server sends), ``/health``, the API root, the credentials, and the role (read,
write).  Each failure says what to do.  Exit status 1 if any step failed.
"""

from __future__ import annotations

import itertools
import json
import socket
import ssl
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import attrs

from paxd.client.commands import Context, connect, env_credentials, resolve_server
from paxd.client.config import Server
from paxd.client.errors import PaxctlError
from paxd.client.registry import RegistryClient
from paxd.client.tlsinfo import CertInfo, describe, diagnose, fetch_chain, is_ip, name_matches
from paxd.client.transport import Transport

TIMEOUT = 10.0
#: a certificate expiring sooner than this is worth a warning
EXPIRY_WARNING = timedelta(days=30)
#: the repository the write test starts (and cancels) an upload in
PROBE_REPOSITORY = "paxctl-check"
PLAIN_HTTP_ADVICE = (
    "the console needs https: set http.tls.certificate and key in the registry's config"
    " (paxctl needs --insecure or http:// for plain HTTP)"
)


@attrs.frozen
class Step:
    """One line of the diagnosis."""

    status: str  # "ok", "warn", "FAIL", "info"
    title: str
    detail: str
    advice: str = ""


class Diagnosis:
    """Collects the steps and prints each as it is found."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.steps: list[Step] = []

    def add(self, status: str, title: str, detail: str, advice: str = "") -> None:
        step = Step(status, title, detail, advice)
        self.steps.append(step)
        self.ctx.out(f"{status:<5} {title:<12} {detail}")
        if advice:
            self.ctx.out(f"{'':<5} {'':<12} -> {advice}")

    @property
    def failed(self) -> bool:
        return any(s.status == "FAIL" for s in self.steps)


def check(ctx: Context, args: Any) -> int:
    """Run the diagnosis for ``args.server`` (or the default registry)."""
    server = resolve_server(ctx, args.server)
    report = Diagnosis(ctx)
    entry = ctx.store.get(server.key)
    insecure = bool(args.insecure or (entry and entry.insecure))
    scheme = server.scheme or ("http" if entry and entry.plain_http else "https")
    host = server.host

    if check_dns(report, host) is None:
        return 1
    port = server.port_for(scheme)
    if not check_tcp(report, host, port):
        return 1

    # TLS
    ca_files = ([Path(args.ca_cert)] if args.ca_cert else []) + ctx.store.ca_files(server)
    explicit_port = server.port is not None
    if scheme == "https" and server.scheme is None and explicit_port:
        if Transport(server).answers_plain_http():
            scheme = "http"
    if scheme == "https":
        scheme = check_tls(report, server, port, ca_files, insecure)
    else:
        report.add("warn", "TLS", f"{server.key} is used over plain HTTP", PLAIN_HTTP_ADVICE)

    # The HTTP side
    plain = scheme == "http"
    credentials = env_credentials() or (entry.credentials if entry else None)
    anonymous = Transport(
        Server(server.key, host, server.port, scheme),
        insecure=True if plain else insecure,
        ca_files=ca_files,
        plain_http=plain,
        timeout=TIMEOUT,
    )
    if scheme == "https" and report.failed and not insecure:
        anonymous.insecure = True  # diagnose the rest anyway
    try:
        check_http(report, anonymous, credentials, ctx, server, insecure or plain, ca_files)
    except PaxctlError as e:
        report.add("FAIL", "HTTP", str(e))
    summary = "failed" if report.failed else "ok"
    ctx.out(f"{server.key}: {summary}")
    return 1 if report.failed else 0


def check_dns(report: Diagnosis, host: str) -> list[str] | None:
    """The addresses *host* resolves to, or None (reported) when it does not."""
    if is_ip(host):
        report.add("ok", "DNS", f"{host} is an IP address: no lookup")
        return [host]
    try:
        infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as e:
        report.add(
            "FAIL",
            "DNS",
            f"cannot resolve {host} ({e})",
            "check the name, or this machine's DNS",
        )
        return None
    addresses = sorted({str(i[4][0]) for i in infos})
    report.add("ok", "DNS", f"{host} -> {', '.join(addresses)}")
    return addresses


def check_tcp(report: Diagnosis, host: str, port: int) -> bool:
    """Whether *host*:*port* accepts a connection (reported either way)."""
    started = time.monotonic()
    try:
        socket.create_connection((host, port), timeout=TIMEOUT).close()
    except ConnectionRefusedError:
        report.add(
            "FAIL",
            "TCP",
            f"{host}:{port} refused the connection",
            "is the registry running, and listening there (http.addr)? a firewall?",
        )
        return False
    except OSError as e:
        report.add(
            "FAIL",
            "TCP",
            f"cannot connect to {host}:{port} ({e.strerror or e})",
            "check routes and firewalls between here and the registry",
        )
        return False
    report.add(
        "ok",
        "TCP",
        f"{host}:{port} accepts connections ({(time.monotonic() - started) * 1000:.0f} ms)",
    )
    return True


def check_tls(
    report: Diagnosis, server: Server, port: int, ca_files: list[Path], insecure: bool
) -> str:
    """The certificate and chain; returns the scheme to go on with."""
    host = server.host
    try:
        chain = fetch_chain(host, port, TIMEOUT)
    except (OSError, ssl.SSLError) as e:
        text = str(e)
        if (
            "WRONG_VERSION_NUMBER" in text
            or "wrong version" in text
            or "http request" in text.lower()
        ):
            report.add(
                "warn", "TLS", f"{host}:{port} speaks plain HTTP, not HTTPS", PLAIN_HTTP_ADVICE
            )
            return "http"
        report.add(
            "FAIL",
            "TLS",
            f"no TLS handshake with {host}:{port} ({e})",
            "is it the registry's port?",
        )
        return "https"
    infos = [i for i in (describe(der) for der in chain) if i is not None]
    if not infos:
        report.add("warn", "TLS", "the server sent no certificate that could be read")
        return "https"
    leaf = infos[0]
    report.add("info", "certificate", f"{leaf.subject}, issued by {leaf.issuer}")
    report.add("info", "SANs", leaf.names())
    check_name(report, leaf, host)
    check_expiry(report, leaf)
    check_chain(report, infos)
    check_trust(report, server, port, ca_files, insecure)
    return "https"


def check_name(report: Diagnosis, leaf: CertInfo, host: str) -> None:
    """Is the certificate valid for the name (or address) paxctl was given?"""
    if not name_matches(leaf, host):
        if is_ip(host) and not leaf.ip_addresses:
            report.add(
                "FAIL",
                "name",
                f"certificate has no IP SAN for {host}",
                f"regenerate with `paxctl cert self-signed --ip {host}`, or use a DNS name",
            )
        else:
            report.add(
                "FAIL",
                "name",
                f"certificate is not valid for {host} (valid for {leaf.names()})",
                f"use one of those names, or regenerate the certificate with a SAN for {host}",
            )
    else:
        report.add("ok", "name", f"{host} is one of the certificate's names")


def check_trust(
    report: Diagnosis, server: Server, port: int, ca_files: list[Path], insecure: bool
) -> None:
    """Does this machine (with *ca_files*) trust the chain?"""
    host = server.host
    ctx = ssl.create_default_context()
    for path in ca_files:
        try:
            ctx.load_verify_locations(cafile=str(path))
        except (OSError, ssl.SSLError) as e:
            report.add("FAIL", "trust", f"cannot read CA file {path} ({e})")
    try:
        with (
            socket.create_connection((host, port), timeout=TIMEOUT) as sock,
            ctx.wrap_socket(sock, server_hostname=host) as _tls,
        ):
            pass
        extra = f" (with {', '.join(map(str, ca_files))})" if ca_files else ""
        report.add("ok", "trust", f"the chain verifies against this machine's CAs{extra}")
    except ssl.SSLCertVerificationError as e:
        status = "warn" if insecure else "FAIL"
        # the name was reported above: keep only the trust part of the diagnosis
        advice = diagnose(e, host, port, server.key, TIMEOUT).removeprefix("x509: ")
        advice = advice.split("; and ")[0]
        report.add(status, "trust", f"verification failed: {e.verify_message}", advice)
    except (OSError, ssl.SSLError) as e:
        report.add("FAIL", "trust", f"TLS handshake failed ({e})")


def check_expiry(report: Diagnosis, leaf: CertInfo) -> None:
    now = datetime.now(UTC)
    if leaf.not_after < now:
        report.add(
            "FAIL", "expiry", f"expired on {leaf.not_after:%Y-%m-%d}", "renew the certificate"
        )
    elif leaf.not_before > now:
        report.add(
            "FAIL",
            "expiry",
            f"not valid before {leaf.not_before:%Y-%m-%d}",
            "check both machines' clocks",
        )
    elif leaf.not_after - now < EXPIRY_WARNING:
        report.add("warn", "expiry", f"expires on {leaf.not_after:%Y-%m-%d}", "renew it soon")
    else:
        report.add("ok", "expiry", f"valid until {leaf.not_after:%Y-%m-%d}")


def check_chain(report: Diagnosis, infos: list[CertInfo]) -> None:
    """Is the chain the server sends linked, and does it reach a root?"""
    for child, parent in itertools.pairwise(infos):
        if child.issuer != parent.subject:
            report.add(
                "FAIL",
                "chain",
                f"out of order: {child.subject} is not issued by the next certificate"
                f" ({parent.subject})",
                "serve the certificates in order: server, intermediates, root",
            )
            return
    last = infos[-1]
    if len(infos) == 1 and last.self_issued:
        report.add(
            "warn",
            "chain",
            "a self-signed certificate",
            "give it to the console as the CA (or use a CA-signed one); paxctl trusts it with"
            " --ca-cert or certs.d",
        )
    elif last.self_issued:
        report.add(
            "ok", "chain", f"complete: {len(infos)} certificates, up to the root {last.subject}"
        )
    else:
        report.add(
            "warn",
            "chain",
            f"{len(infos)} certificate(s), ending at one issued by {last.issuer}",
            "the console wants the chain from server to root: paste server, intermediate(s)"
            " and root in its certificate field, or serve them all",
        )


def check_http(
    report: Diagnosis,
    anonymous: Transport,
    credentials: Any,
    ctx: Context,
    server: Server,
    insecure: bool,
    ca_files: list[Path],
) -> None:
    """The HTTP side: ``/health``, the API root, the credentials, then the role."""
    check_health(report, anonymous)
    found = find_api(report, anonymous)
    if found is None:
        return
    api, needs_auth = found
    client = connect(
        ctx,
        Server(server.key, server.host, server.port, anonymous.scheme),
        insecure=insecure or anonymous.insecure,
        credentials=credentials,
    )
    client.t.ca_files = ca_files
    if needs_auth:
        if credentials is None:
            report.add(
                "warn",
                "credentials",
                "none stored for this registry",
                f"run `paxctl login {server.key}`",
            )
            return
        resp = client.t.request("GET", api + "/")
        if resp.status == 401:
            report.add(
                "FAIL",
                "credentials",
                f"refused for user {credentials.username!r}",
                f"wrong username or password: run `paxctl login {server.key}` again",
            )
            return
        report.add("ok", "credentials", f"accepted for user {credentials.username!r}")
    client.api = api
    check_role(report, client, api)


def check_health(report: Diagnosis, anonymous: Transport) -> None:
    """``/health``, without credentials (the vendor's registry answers ``{"status":"UP"}``)."""
    resp = anonymous.request("GET", "/health", authenticate=False)
    if resp.status == 200:
        try:
            status = json.loads(resp.body).get("status", "?")
        except (ValueError, AttributeError):
            status = "?"
        report.add("ok", "/health", f"200, status {status}")
    else:
        report.add(
            "warn",
            "/health",
            f"{resp.status} {resp.reason}",
            "the vendor's registry answers /health; Docker distribution has none"
            " (harmless for paxctl)",
        )


def find_api(report: Diagnosis, anonymous: Transport) -> tuple[str, bool] | None:
    """The API root (``/v1`` or ``/v2``) and whether it wants credentials; None if neither."""
    api = None
    for root in ("/v1", "/v2"):
        resp = anonymous.request("GET", root + "/", authenticate=False)
        if resp.status != 404:
            api = root
            break
    if api is None:
        report.add("FAIL", "API", "neither /v1/ nor /v2/ answers", "is this a registry?")
        return None
    needs_auth = resp.status == 401
    report.add(
        "ok",
        "API",
        f"{api}/ answers {resp.status}" + (" (credentials required)" if needs_auth else " (open)"),
    )
    return api, needs_auth


def check_role(report: Diagnosis, client: RegistryClient, api: str) -> None:
    """Can the user read (list the catalog) and write (start an upload, then cancel it)?"""
    resp = client.t.request("GET", api + "/_catalog", query={"n": "1"})
    if resp.status == 200:
        report.add("ok", "read", "the catalog can be listed")
    else:
        report.add(
            "FAIL",
            "read",
            f"listing the catalog answers {resp.status}",
            "the user may lack read rights",
        )
        return
    resp = client.t.request("POST", f"{api}/{PROBE_REPOSITORY}/blobs/uploads/")
    if resp.status == 202:
        location = resp.header("Location")
        if location:
            client.cancel_upload(client.t.url(location))
        report.add("ok", "write", "uploads can be started (the test upload was cancelled)")
    elif resp.status in (401, 403):
        report.add(
            "info",
            "write",
            "read-only: this user cannot push",
            "log in as a read-write user to push",
        )
    else:
        report.add("warn", "write", f"starting an upload answers {resp.status} {resp.reason}")
