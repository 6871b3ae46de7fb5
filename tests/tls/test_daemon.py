"""The real daemon over TLS, with real clients (curl, openssl s_client, Python's ssl).

Each test starts ``python -m twisted paxd --config FILE`` from this checkout
on loopback ports. A missing tool skips the test, except under CI.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import bcrypt
from twisted.trial.unittest import SynchronousTestCase

from tests.tls.support import (
    Daemon,
    TestCA,
    child_env,
    curl,
    free_port,
    handshake,
    https_get,
    openssl_client,
    require_daemon,
    seed_openssl_certificate,
    wait_for_port,
)

HTPASSWD_USER, HTPASSWD_PASSWORD = "admin", "s3cret-pass"


class DaemonCase(SynchronousTestCase):
    def setUp(self) -> None:
        require_daemon()
        self.dir = Path(self.mktemp()).absolute()
        self.dir.mkdir(parents=True)
        self.port = free_port()

    def start(self, http: str, *, auth: bool = False, env: dict[str, str] | None = None) -> Daemon:
        config = (
            f"version: 0.1\nstorage:\n  inmemory:\nhttp:\n  addr: 127.0.0.1:{self.port}\n{http}"
        )
        if auth:
            htpasswd = self.dir / "htpasswd"
            hashed = bcrypt.hashpw(HTPASSWD_PASSWORD.encode(), bcrypt.gensalt(rounds=4))
            htpasswd.write_bytes(HTPASSWD_USER.encode() + b":" + hashed + b"\n")
            config += f"auth:\n  htpasswd:\n    realm: basic-realm\n    path: {htpasswd}\n"
        daemon = Daemon(self.dir, config, env)
        self.addCleanup(daemon.stop)
        daemon.start(self.port)
        self.addCleanup(lambda: self.assertNotIn("Traceback", daemon.log()))
        return daemon


class SeedCertificateTests(DaemonCase):
    """The seed's deployment: ``openssl req -x509`` certificate, htpasswd, curl --cacert."""

    def test_seed_certificate(self) -> None:
        crt, key = seed_openssl_certificate(self.dir)
        daemon = self.start(f"  tls:\n    certificate: {crt}\n    key: {key}\n", auth=True)
        log = daemon.wait_for_log("has no subjectAltName")
        self.assertIn("http.tls.certificate", log)
        resolve = f"localhost:{self.port}:127.0.0.1"
        health = curl(
            "--cacert", crt, "--resolve", resolve, f"https://localhost:{self.port}/health"
        )
        self.assertEqual(health.stdout, "200", health.stderr)
        catalog = curl(
            "--cacert",
            crt,
            "--resolve",
            resolve,
            "-u",
            f"{HTPASSWD_USER}:{HTPASSWD_PASSWORD}",
            f"https://localhost:{self.port}/v1/_catalog",
        )
        self.assertEqual(catalog.stdout, "200", catalog.stderr)
        anonymous = curl(
            "--cacert", crt, "--resolve", resolve, f"https://localhost:{self.port}/v1/_catalog"
        )
        self.assertEqual(anonymous.stdout, "401", anonymous.stderr)
        # the default minimum is TLS 1.2
        old = openssl_client(self.port, "-tls1_1")
        self.assertNotEqual(old.returncode, 0)
        self.assertNotIn("Cipher is TLS", old.stdout)
        current = openssl_client(self.port, "-tls1_2")
        self.assertEqual(current.returncode, 0, current.stderr)


class PolicyTests(DaemonCase):
    """``minimumtls: tls1.3``, ``clientcas`` and the port-80 listener, in one daemon."""

    def test_policy(self) -> None:
        server_ca, client_ca = TestCA("server CA"), TestCA("client CA")
        crt, key = server_ca.write(self.dir, server_ca.server())
        cafile = server_ca.write_ca(self.dir)
        client_crt, client_key = client_ca.write(self.dir, client_ca.client(), "client")
        clientcas = client_ca.write_ca(self.dir, "client-ca.crt")
        plain = free_port()
        self.start(
            f"  tls:\n    certificate: {crt}\n    key: {key}\n    minimumtls: tls1.3\n"
            f"    clientcas: [{clientcas}]\n"
            f"  redirect:\n    addr: 127.0.0.1:{plain}\n"
        )
        url = f"https://localhost:{self.port}/health"
        resolve = f"localhost:{self.port}:127.0.0.1"
        # clientcas: no client certificate, no answer
        refused = curl("--cacert", cafile, "--resolve", resolve, url)
        self.assertNotEqual(refused.returncode, 0)
        self.assertEqual(refused.stdout, "000")
        accepted = curl(
            "--cacert", cafile, "--resolve", resolve, "--cert", client_crt, "--key", client_key, url
        )
        self.assertEqual(accepted.stdout, "200", accepted.stderr)
        # minimumtls
        tls12 = openssl_client(self.port, "-tls1_2", "-cert", client_crt, "-key", client_key)
        self.assertNotEqual(tls12.returncode, 0)
        tls13 = openssl_client(self.port, "-tls1_3", "-cert", client_crt, "-key", client_key)
        self.assertEqual(tls13.returncode, 0, tls13.stderr)
        # port 80: a redirect, never registry content, credentials or not
        wait_for_port(plain)
        redirect = subprocess.run(
            [
                "curl",
                "-sS",
                "-D",
                "-",
                "-o",
                "/dev/null",
                "-u",
                "admin:secret",
                f"http://127.0.0.1:{plain}/v2/_catalog?n=1",
            ],
            capture_output=True,
            text=True,
            timeout=30,
        )
        self.assertIn("HTTP/1.1 308", redirect.stdout)
        self.assertIn(
            f"location: https://127.0.0.1:{self.port}/v2/_catalog?n=1", redirect.stdout.lower()
        )


class ReloadTests(DaemonCase):
    """Replaced files are served after SIGHUP, without a restart or a dropped listener."""

    def test_sighup(self) -> None:
        ca = TestCA()
        crt, key = ca.write(self.dir, ca.server())
        cafile = ca.write_ca(self.dir)
        daemon = self.start(f"  tls:\n    certificate: {crt}\n    key: {key}\n")
        first, _ = handshake(self.port, cafile=cafile)
        new = ca.server()
        ca.write(self.dir, new)
        daemon.signal(signal.SIGHUP)
        daemon.wait_for_log(f"serial {new.serial:x}")
        second, _ = handshake(self.port, cafile=cafile)
        self.assertNotEqual(first.serial_number, second.serial_number)
        self.assertEqual(second.serial_number, new.serial)
        # A broken replacement is refused, and the daemon keeps serving the last good one.
        Path(key).write_text("garbage")
        daemon.signal(signal.SIGHUP)
        daemon.wait_for_log("still serving the previous certificate")
        third, _ = handshake(self.port, cafile=cafile)
        self.assertEqual(third.serial_number, new.serial)


class BadInputTests(SynchronousTestCase):
    """Operator mistakes: one clear line, exit status 1, no traceback."""

    def setUp(self) -> None:
        require_daemon()
        self.dir = Path(self.mktemp()).absolute()
        self.dir.mkdir(parents=True)
        ca = TestCA()
        self.crt, self.key = ca.write(self.dir, ca.server())

    def serve(self, tls: str) -> tuple[int, str]:
        config = self.dir / "config.yml"
        config.write_text(
            f"version: 0.1\nstorage:\n  inmemory:\nhttp:\n  addr: 127.0.0.1:{free_port()}\n{tls}"
        )
        result = subprocess.run(
            [sys.executable, "-m", "paxd", "serve", str(config)],
            env=child_env(),
            capture_output=True,
            text=True,
            timeout=60,
        )
        self.assertNotIn("Traceback", result.stdout + result.stderr)
        return result.returncode, result.stderr.strip()

    def test_missing_file(self) -> None:
        Path(self.key).unlink()
        code, err = self.serve(f"  tls: {{certificate: {self.crt}, key: {self.key}}}\n")
        self.assertEqual(code, 1)
        self.assertEqual(len(err.splitlines()), 1, err)
        self.assertIn("http.tls.key", err)
        self.assertIn("does not exist", err)

    def test_garbage_pem(self) -> None:
        Path(self.crt).write_text("-----BEGIN CERTIFICATE-----\nnope\n-----END CERTIFICATE-----\n")
        code, err = self.serve(f"  tls: {{certificate: {self.crt}, key: {self.key}}}\n")
        self.assertEqual(code, 1)
        self.assertEqual(len(err.splitlines()), 1, err)
        self.assertIn("http.tls.certificate", err)
        self.assertIn("not a valid PEM certificate chain", err)

    def test_mismatched_key(self) -> None:
        _, other_key = TestCA().write(self.dir, TestCA().server(), "other")
        code, err = self.serve(f"  tls: {{certificate: {self.crt}, key: {other_key}}}\n")
        self.assertEqual(code, 1)
        self.assertEqual(len(err.splitlines()), 1, err)
        self.assertIn("does not match the certificate", err)


class ACMEFailureTests(DaemonCase):
    """An ACME server that is not there, or not one: the daemon serves on, and says why."""

    def letsencrypt(self, url: str) -> Daemon:
        return self.start(
            "  tls:\n    letsencrypt:\n"
            f"      cachefile: {self.dir}/acme\n      hosts: [registry.example]\n"
            f"      directoryurl: {url}\n"
        )

    def assert_still_serving(self) -> None:
        """The temporary self-signed certificate answers, for the configured host."""
        status, _, _ = https_get(self.port, "/health", server_name="registry.example")
        self.assertEqual(status, 200)
        certificate, _ = handshake(self.port, server_name="registry.example")
        self.assertIn("registry.example", certificate.subject.rfc4514_string())

    def test_unreachable(self) -> None:
        url = f"https://127.0.0.1:{free_port()}/directory"
        daemon = self.letsencrypt(url)
        log = daemon.wait_for_log("could not obtain a certificate")
        self.assertIn(f"cannot reach the ACME server at {url}", log)
        self.assertIn("Connection refused", log)
        self.assert_still_serving()

    def test_not_a_directory(self) -> None:
        www = self.dir / "www"
        www.mkdir()
        (www / "dir").write_text("hello, I am not ACME\n")
        port = free_port()
        server = subprocess.Popen(
            [sys.executable, "-m", "http.server", "--bind", "127.0.0.1", str(port)],
            cwd=www,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.addCleanup(server.wait, 10)
        self.addCleanup(server.terminate)
        wait_for_port(port, process=server)
        daemon = self.letsencrypt(f"http://127.0.0.1:{port}/dir")
        log = daemon.wait_for_log("could not obtain a certificate")
        self.assertIn(f"http://127.0.0.1:{port}/dir is not an ACME v2 directory", log)
        self.assert_still_serving()
        daemon.stop()
        (self.dir / "paxd.log").unlink()
        daemon = self.letsencrypt(f"http://127.0.0.1:{port}/missing")
        log = daemon.wait_for_log("could not obtain a certificate")
        self.assertIn("the ACME server answered HTTP 404", log)
