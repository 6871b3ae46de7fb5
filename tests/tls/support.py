"""Helpers for the TLS tests: certificates, real TLS clients, pebble, and the real daemon.

Everything here blocks: unit tests call the certificate helpers directly,
integration tests call the rest from a thread (``deferToThread``) when the
reactor runs in the test process, or directly when the daemon is a child
process.
"""

from __future__ import annotations

import datetime
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any
from unittest import SkipTest

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from paxd.tls.certificates import CertificateBundle, self_signed, utcnow
from paxd.tls.selfsigned import make_ca, make_server_certificate

#: the checkout the daemon is started from
REPO_ROOT = Path(__file__).resolve().parents[2]


def in_ci() -> bool:
    """True under CI, where a missing tool fails the test instead of skipping it."""
    return os.environ.get("CI") == "true"


def require_tool(name: str) -> str:
    """The path of executable *name*; skip without it (fail under CI)."""
    path = shutil.which(name)
    if path is None:
        message = f"{name} is not installed"
        if in_ci():
            raise AssertionError(f"{message} (CI=true: install it in .ci/run)")
        raise SkipTest(message)
    return path


def free_port() -> int:
    """A TCP port on 127.0.0.1 nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --- certificates -----------------------------------------------------------------------


def pem_key(key: Any) -> bytes:
    """A private key as unencrypted PKCS#8 PEM."""
    return bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )


def pem_cert(cert: x509.Certificate) -> bytes:
    """A certificate as PEM."""
    return cert.public_bytes(serialization.Encoding.PEM)


class TestCA:
    """A private CA that signs server and client certificates for tests."""

    def __init__(self, name: str = "paxd test CA") -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.cert = make_ca(self.key, name, utcnow())

    def server(
        self,
        hosts: Sequence[str] = ("localhost",),
        ips: Sequence[str] = ("127.0.0.1",),
        now: datetime.datetime | None = None,
        days: int = 90,
    ) -> CertificateBundle:
        """A server certificate for *hosts* and *ips*, chain = (server, CA)."""
        import ipaddress

        key = ec.generate_private_key(ec.SECP256R1())
        cert = make_server_certificate(
            key,
            self.cert,
            self.key,
            list(hosts),
            [ipaddress.ip_address(i) for i in ips],
            now or utcnow(),
            days,
        )
        return CertificateBundle(key=key, chain=(cert, self.cert))

    def client(self, name: str = "client") -> CertificateBundle:
        """A client certificate (extended key usage clientAuth), chain = (client, CA)."""
        key = ec.generate_private_key(ec.SECP256R1())
        now = utcnow()
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
            .issuer_name(self.cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
            .sign(self.key, hashes.SHA256())
        )
        return CertificateBundle(key=key, chain=(cert, self.cert))

    def write(
        self, directory: Path, bundle: CertificateBundle, stem: str = "tls"
    ) -> tuple[str, str]:
        """Write *bundle*'s chain and key as ``stem.crt`` / ``stem.key``; their paths."""
        crt, key = directory / f"{stem}.crt", directory / f"{stem}.key"
        crt.write_bytes(bundle.chain_pem())
        key.write_bytes(bundle.key_pem())
        return str(crt), str(key)

    def write_ca(self, directory: Path, name: str = "ca.crt") -> str:
        """Write the CA certificate; its path."""
        path = directory / name
        path.write_bytes(pem_cert(self.cert))
        return str(path)


def self_signed_bundle(
    hosts: Sequence[str], now: datetime.datetime | None = None, days: int = 30
) -> CertificateBundle:
    """A self-signed EC bundle valid from a few minutes before *now* for *days*."""
    key = ec.generate_private_key(ec.SECP256R1())
    cert = self_signed(key, hosts, now or utcnow(), datetime.timedelta(days=days))
    return CertificateBundle(key=key, chain=(cert,))


def seed_openssl_certificate(directory: Path) -> tuple[str, str]:
    """The seed's command: ``openssl req -newkey rsa:4096 -nodes -sha256 ... -x509``."""
    openssl = require_tool("openssl")
    crt, key = directory / "tls.crt", directory / "tls.key"
    subprocess.run(
        [
            openssl,
            "req",
            "-newkey",
            "rsa:4096",
            "-nodes",
            "-sha256",
            "-keyout",
            str(key),
            "-x509",
            "-days",
            "1825",
            "-out",
            str(crt),
            "-subj",
            "/CN=localhost",
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    return str(crt), str(key)


# --- TLS clients ---------------------------------------------------------------------------


def handshake(
    port: int,
    *,
    server_name: str = "localhost",
    cafile: str | None = None,
    alpn: Sequence[str] | None = None,
    client_cert: tuple[str, str] | None = None,
    host: str = "127.0.0.1",
    timeout: float = 10.0,
) -> tuple[x509.Certificate, str | None]:
    """Handshake with the server; its certificate and the ALPN protocol it chose.

    Without *cafile* nothing is verified (to look at whatever is served).
    """
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if cafile is None:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    else:
        context.load_verify_locations(cafile)
    if alpn:
        context.set_alpn_protocols(list(alpn))
    if client_cert:
        context.load_cert_chain(*client_cert)
    with socket.create_connection((host, port), timeout=timeout) as raw:
        with context.wrap_socket(raw, server_hostname=server_name) as tls:
            der = tls.getpeercert(binary_form=True)
            assert der is not None
            chosen = tls.selected_alpn_protocol()
            if client_cert is None:
                # TLS 1.3 sends the server's verdict on the client after the handshake.
                tls.settimeout(2.0)
                try:
                    tls.sendall(b"GET /health HTTP/1.0\r\nHost: x\r\n\r\n")
                    tls.recv(1)
                except (TimeoutError, ssl.SSLError, OSError) as e:
                    if isinstance(e, ssl.SSLError):
                        raise
            return x509.load_der_x509_certificate(der), chosen


def https_get(
    port: int,
    path: str,
    *,
    server_name: str = "localhost",
    cafile: str | None = None,
    headers: Mapping[str, str] | None = None,
    host: str = "127.0.0.1",
) -> tuple[int, dict[str, str], bytes]:
    """One HTTPS GET (verified against *cafile* when given); status, headers, body."""
    import http.client

    context = (
        ssl.create_default_context(cafile=cafile) if cafile else ssl._create_unverified_context()
    )

    class _Connection(http.client.HTTPSConnection):
        def connect(self) -> None:
            sock = socket.create_connection((host, port), timeout=10)
            self.sock = context.wrap_socket(sock, server_hostname=server_name)

    connection = _Connection(server_name, port, context=context, timeout=10)
    try:
        connection.request("GET", path, headers=dict(headers or {}))
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        connection.close()


def curl(*args: str, timeout: float = 30.0) -> subprocess.CompletedProcess[str]:
    """Run curl with *args* (``-s -S``, the status code written last on stdout)."""
    return subprocess.run(
        [require_tool("curl"), "-sS", "-o", "/dev/null", "-w", "%{http_code}", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def openssl_client(port: int, *args: str) -> subprocess.CompletedProcess[str]:
    """``openssl s_client -connect 127.0.0.1:port ARGS`` with no input."""
    return subprocess.run(
        [require_tool("openssl"), "s_client", "-connect", f"127.0.0.1:{port}", *args],
        input="",
        capture_output=True,
        text=True,
        timeout=30,
    )


def wait_for_port(
    port: int, timeout: float = 15.0, process: subprocess.Popen[Any] | None = None
) -> None:
    """Until something accepts connections on 127.0.0.1:*port*."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise AssertionError(f"the process exited with {process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.05)
    raise AssertionError(f"nothing listens on 127.0.0.1:{port} after {timeout}s")


# --- the real daemon ------------------------------------------------------------------------


def require_daemon() -> None:
    """Skip (fail under CI) when the daemon cannot be imported yet."""
    result = subprocess.run(
        [sys.executable, "-c", "import paxd.tap"],
        env=child_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    if result.returncode != 0:
        message = "paxd.tap does not import: " + result.stderr.strip().splitlines()[-1]
        if in_ci():
            raise AssertionError(message)
        raise SkipTest(message)


def child_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of a child paxd: this checkout first on the path, no REGISTRY_*."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("REGISTRY_")}
    env["PYTHONPATH"] = os.pathsep.join(
        [str(REPO_ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]
    )
    env.update(extra or {})
    return env


class Daemon:
    """``python -m twisted paxd --config FILE`` as a child process, in its own directory."""

    def __init__(self, directory: Path, config: str, env: Mapping[str, str] | None = None) -> None:
        self.directory = directory
        self.config_path = directory / "config.yml"
        self.config_path.write_text(config)
        self.log_path = directory / "paxd.log"
        self.env = child_env(env)
        self.process: subprocess.Popen[bytes] | None = None

    def argv(self) -> list[str]:
        return [
            sys.executable,
            "-m",
            "twisted",
            "--log-format=text",
            "paxd",
            "--config",
            str(self.config_path),
        ]

    def start(self, port: int | None = None, timeout: float = 20.0) -> None:
        """Start it and, with *port*, wait until it listens there."""
        log = open(self.log_path, "ab")
        self.process = subprocess.Popen(
            self.argv(), cwd=self.directory, env=self.env, stdout=log, stderr=subprocess.STDOUT
        )
        log.close()
        if port is not None:
            try:
                wait_for_port(port, timeout, self.process)
            except AssertionError as e:
                raise AssertionError(f"{e}; paxd said:\n{self.log()}") from None

    def run(self, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
        """Run it to completion (for configurations it must refuse)."""
        return subprocess.run(
            self.argv(),
            cwd=self.directory,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def wait_for_log(self, text: str, timeout: float = 30.0) -> str:
        """Until *text* appears in the log; the log."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            log = self.log()
            if text in log:
                return log
            if self.process is not None and self.process.poll() is not None:
                break
            time.sleep(0.1)
        raise AssertionError(f"{text!r} not in the log after {timeout}s:\n{self.log()}")

    def signal(self, signum: int) -> None:
        assert self.process is not None
        self.process.send_signal(signum)

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)


# --- pebble ---------------------------------------------------------------------------------


class Pebble:
    """Debian's pebble ACME test server and pebble-challtestsrv answering DNS with 127.0.0.1."""

    def __init__(self, directory: Path, http_port: int, tls_port: int) -> None:
        self.directory = directory
        self.http_port = http_port
        self.tls_port = tls_port
        self.port = free_port()
        self.management_port = free_port()
        self.dns_port = free_port()
        self.processes: list[subprocess.Popen[bytes]] = []
        self.ca_path = str(directory / "pebble-ca.pem")

    @property
    def directory_url(self) -> str:
        return f"https://127.0.0.1:{self.port}/dir"

    def start(self) -> None:
        pebble = require_tool("pebble")
        challtestsrv = require_tool("pebble-challtestsrv")
        ca = TestCA("pebble test CA")
        bundle = ca.server(hosts=("localhost", "pebble"), ips=("127.0.0.1",))
        cert, key = ca.write(self.directory, bundle, "pebble")
        ca.write_ca(self.directory, "pebble-ca.pem")
        config = {
            "pebble": {
                "listenAddress": f"127.0.0.1:{self.port}",
                "managementListenAddress": f"127.0.0.1:{self.management_port}",
                "certificate": cert,
                "privateKey": key,
                "httpPort": self.http_port,
                "tlsPort": self.tls_port,
                "ocspResponderURL": "",
                "externalAccountBindingRequired": False,
            }
        }
        config_path = self.directory / "pebble-config.json"
        config_path.write_text(json.dumps(config))
        env = dict(
            os.environ,
            PEBBLE_VA_NOSLEEP="1",
            PEBBLE_WFE_NONCEREJECT="0",
            PEBBLE_AUTHZREUSE="0",
        )
        for argv, name in (
            (
                [
                    challtestsrv,
                    "-defaultIPv4",
                    "127.0.0.1",
                    "-defaultIPv6",
                    "",
                    "-dns01",
                    f"127.0.0.1:{self.dns_port}",
                    "-http01",
                    "",
                    "-https01",
                    "",
                    "-tlsalpn01",
                    "",
                    "-management",
                    f"127.0.0.1:{free_port()}",
                ],
                "challtestsrv",
            ),
            (
                [pebble, "-config", str(config_path), "-dnsserver", f"127.0.0.1:{self.dns_port}"],
                "pebble",
            ),
        ):
            log = open(self.directory / f"{name}.log", "ab")
            self.processes.append(
                subprocess.Popen(
                    argv, cwd=self.directory, env=env, stdout=log, stderr=subprocess.STDOUT
                )
            )
            log.close()
        wait_for_port(self.port, process=self.processes[-1])
        wait_for_port(self.management_port, process=self.processes[-1])

    def root(self) -> str:
        """Fetch pebble's issuing root (management ``/roots/0``) into a file; its path."""
        context = ssl.create_default_context(cafile=self.ca_path)
        url = f"https://127.0.0.1:{self.management_port}/roots/0"
        with urllib.request.urlopen(url, context=context, timeout=10) as response:
            pem = response.read()
        path = self.directory / "pebble-root.pem"
        path.write_bytes(pem)
        return str(path)

    def log(self) -> str:
        return "\n".join(
            (self.directory / f"{n}.log").read_text(errors="replace")
            for n in ("pebble", "challtestsrv")
            if (self.directory / f"{n}.log").exists()
        )

    def stop(self) -> None:
        for process in reversed(self.processes):
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(10)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(5)
        self.processes = []


def temporary_directory(prefix: str = "paxd-tls-") -> Path:
    """A new temporary directory (the caller removes it)."""
    return Path(tempfile.mkdtemp(prefix=prefix))


class CapturedLogs:
    """Every event logged while a test runs (``twisted.logger``), for assertions."""

    def __init__(self, case: Any) -> None:
        from twisted.logger import globalLogPublisher

        self.events: list[dict[str, Any]] = []
        observer = self.events.append
        globalLogPublisher.addObserver(observer)  # type: ignore[arg-type]
        case.addCleanup(globalLogPublisher.removeObserver, observer)

    def messages(self, level: str | None = None) -> list[str]:
        """The formatted messages (of *level* only: ``error``, ``critical``, ...)."""
        from twisted.logger import formatEvent

        return [
            formatEvent(e)
            for e in self.events
            if level is None or getattr(e.get("log_level"), "name", None) == level
        ]
