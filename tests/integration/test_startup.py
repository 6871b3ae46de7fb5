"""Start-up that tells the truth, under ``paxd serve`` and ``twistd -n paxd`` alike.

A listener that cannot bind, a storage root that cannot be created or
written, an htpasswd or TLS file that cannot be read: the real daemon exits
non-zero within five seconds with one line naming the address or file, the
key and the fix. systemd's readiness protocol is checked with a real
``AF_UNIX`` datagram socket standing in for systemd: ``READY=1`` arrives
only once the port accepts connections and storage answered, and never when
start-up fails.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

from twisted.trial.unittest import SynchronousTestCase

from tests.tls.support import TestCA, child_env, free_port, in_ci, require_daemon

TWISTD = "import sys; from twisted.scripts.twistd import run; sys.argv[0] = 'twistd'; run()"
#: the issue's bound on a failed start
FAIL_WITHIN = 5.0

Argv = Callable[[str], list[str]]


def serve_argv(config: str) -> list[str]:
    return [sys.executable, "-m", "paxd", "serve", config]


def twistd_argv(config: str) -> list[str]:
    return [sys.executable, "-c", TWISTD, "-n", "--pidfile=", "paxd", "--config", config]


RUNNERS: dict[str, Argv] = {"paxd serve": serve_argv, "twistd -n paxd": twistd_argv}


class Outcome:
    """A finished run: exit status, seconds taken, and what it wrote."""

    def __init__(self, code: int, seconds: float, out: str, err: str) -> None:
        self.code, self.seconds, self.out, self.err = code, seconds, out, err

    @property
    def text(self) -> str:
        return self.out + self.err

    def lines_with(self, fragment: str) -> list[str]:
        return [line for line in self.text.splitlines() if fragment in line]


class StartupCase(SynchronousTestCase):
    def setUp(self) -> None:
        require_daemon()
        self.dir = Path(self.mktemp()).absolute()
        self.dir.mkdir(parents=True)

    def write_config(self, body: str) -> str:
        path = self.dir / "config.yml"
        path.write_text(f"version: 0.1\n{body}")
        return str(path)

    def run_to_end(self, argv: list[str], env: dict[str, str] | None = None) -> Outcome:
        started = time.monotonic()
        result = subprocess.run(
            argv, env=child_env(env), capture_output=True, text=True, timeout=60, cwd=self.dir
        )
        return Outcome(result.returncode, time.monotonic() - started, result.stdout, result.stderr)

    def start_cost(self) -> float:
        """Seconds to start Python and import what the daemon imports, on this machine now.

        On a loaded machine (two cores, several test runs) that alone can take longer
        than five seconds; the bound is on what paxd does after it.
        """
        started = time.monotonic()
        subprocess.run(
            [sys.executable, "-c", "import paxd.tap, paxd.tls.wiring, twisted.scripts.twistd"],
            env=child_env(),
            capture_output=True,
            timeout=60,
            check=True,
        )
        return time.monotonic() - started

    def assert_gives_up_in_time(self, outcome: Outcome, context: str) -> None:
        self.assertLess(outcome.seconds - self.start_cost(), FAIL_WITHIN, context)

    def assert_fails_fast(self, config: str, *fragments: str) -> None:
        """Both runners: non-zero within five seconds, the reason once, no traceback."""
        for runner, argv in RUNNERS.items():
            outcome = self.run_to_end(argv(config))
            context = f"{runner}: {outcome.text}"
            self.assertNotEqual(outcome.code, 0, context)
            self.assert_gives_up_in_time(outcome, context)
            self.assertNotIn("Traceback", outcome.text, context)
            self.assertNotIn("registry ready", outcome.text, context)
            (line,) = outcome.lines_with(fragments[0])
            for fragment in fragments:
                self.assertIn(fragment, line, context)


class FailFastTests(StartupCase):
    def test_port_in_use(self) -> None:
        with socket.socket() as holder:
            holder.bind(("127.0.0.1", 0))
            holder.listen()
            port = holder.getsockname()[1]
            config = self.write_config(f"storage: inmemory\nhttp:\n  addr: 127.0.0.1:{port}\n")
            self.assert_fails_fast(
                config,
                f"cannot listen on 127.0.0.1:{port}",
                f"(http.addr in {config})",
                "Address already in use",
                "set another http.addr",
            )

    def test_second_listener_in_use(self) -> None:
        """Every listener counts: the first binds, the second cannot, the daemon stops."""
        with socket.socket() as holder:
            holder.bind(("127.0.0.1", 0))
            holder.listen()
            busy = holder.getsockname()[1]
            config = self.write_config(
                "storage: inmemory\nhttp:\n"
                f"  listen: ['tcp:{free_port()}:interface=127.0.0.1',"
                f" 'tcp:{busy}:interface=127.0.0.1']\n"
            )
            self.assert_fails_fast(config, "cannot listen on", "http.listen.1")

    def test_storage_root_cannot_be_created(self) -> None:
        blocker = self.dir / "a-file"
        blocker.write_text("not a directory\n")
        config = self.write_config(
            f"storage:\n  filesystem:\n    rootdirectory: {blocker}/data\n"
            "http:\n  addr: 127.0.0.1:0\n"
        )
        self.assert_fails_fast(
            config,
            "storage.filesystem.rootdirectory",
            f"cannot create or write into {blocker}/data",
            "Not a directory",
            "or choose another directory",
        )

    def test_storage_root_read_only(self) -> None:
        """A root paxd may not write into (read-only, as outside a unit's ReadWritePaths)."""
        root = self.dir / "data"
        root.mkdir()
        config = self.write_config(
            f"storage:\n  filesystem:\n    rootdirectory: {root}\nhttp:\n  addr: 127.0.0.1:0\n"
        )
        if os.getuid() != 0:
            root.chmod(0o555)
            self.addCleanup(root.chmod, 0o755)
            self.assert_fails_fast(config, "storage.filesystem.rootdirectory", "Permission denied")
            return
        # root writes anywhere: make the directory a read-only mount in a private namespace
        unshare = shutil.which("unshare")
        probe = subprocess.run(
            [unshare or "unshare", "--mount", "true"], capture_output=True, check=False
        )
        if unshare is None or probe.returncode != 0:
            message = "cannot make a read-only mount here (unshare --mount)"
            if in_ci():
                raise AssertionError(message)
            self.skipTest(message)
        for runner, argv in RUNNERS.items():
            shell = f'mount --bind -o ro "{root}" "{root}" && exec "$@"'
            outcome = self.run_to_end([unshare, "--mount", "sh", "-c", shell, "sh", *argv(config)])
            context = f"{runner}: {outcome.text}"
            self.assertEqual(outcome.code, 1, context)
            self.assert_gives_up_in_time(outcome, context)
            (line,) = outcome.lines_with("storage.filesystem.rootdirectory")
            self.assertIn("Read-only file system", line)
            self.assertIn("ReadWritePaths=", line)

    def test_htpasswd_unreadable(self) -> None:
        htpasswd = self.dir / "htpasswd"
        htpasswd.mkdir()  # a directory: unreadable as a file, even by root
        config = self.write_config(
            "storage: inmemory\nhttp:\n  addr: 127.0.0.1:0\n"
            f"auth:\n  htpasswd:\n    realm: r\n    path: {htpasswd}\n"
        )
        self.assert_fails_fast(
            config, "auth.htpasswd.path", f"cannot read htpasswd file {htpasswd}", "readable"
        )

    def test_tls_key_unreadable(self) -> None:
        ca = TestCA()
        crt, key = ca.write(self.dir, ca.server())
        os.unlink(key)
        os.mkdir(key)
        config = self.write_config(
            "storage: inmemory\nhttp:\n  addr: 127.0.0.1:0\n"
            f"  tls: {{certificate: {crt}, key: {key}}}\n"
        )
        self.assert_fails_fast(config, "http.tls.key", key, "is a directory; name the file itself")


class NotifyTests(StartupCase):
    """``Type=notify``: a datagram socket where systemd's would be."""

    def notify_socket(self, abstract: bool = False) -> tuple[socket.socket, str]:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.addCleanup(sock.close)
        if abstract:
            name = f"paxd-test-{os.getpid()}-{time.monotonic_ns()}"
            sock.bind("\0" + name)
            return sock, "@" + name
        # a socket path must be short (108 bytes): not under the test's deep temporary tree
        directory = tempfile.mkdtemp(prefix="paxd-notify-", dir="/tmp")
        self.addCleanup(shutil.rmtree, directory, True)
        path = os.path.join(directory, "notify")
        sock.bind(path)
        return sock, path

    def receive(self, sock: socket.socket, timeout: float) -> list[str]:
        sock.settimeout(timeout)
        try:
            return [sock.recv(4096).decode()]
        except TimeoutError:
            return []

    def ready_when_serving(self, argv: Argv, abstract: bool) -> None:
        sock, address = self.notify_socket(abstract)
        port = free_port()
        config = self.write_config(
            f"storage:\n  filesystem:\n    rootdirectory: {self.dir / 'data'}\n"
            f"http:\n  addr: 127.0.0.1:{port}\n"
        )
        process = subprocess.Popen(
            argv(config),
            env=child_env({"NOTIFY_SOCKET": address}),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            cwd=self.dir,
        )
        self.addCleanup(lambda: process.poll() is None and process.kill())
        messages = self.receive(sock, 30)
        self.assertEqual(len(messages), 1, "no notification within 30 s")
        lines = messages[0].splitlines()
        self.assertEqual(lines[0], "READY=1")
        self.assertIn(f"STATUS=serving on 127.0.0.1:{port}", lines)
        # At READY=1 the port accepts and storage answers: no retry loop needed.
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=10) as answer:
            self.assertEqual(answer.status, 200)
        process.terminate()
        out, _ = process.communicate(timeout=30)
        # twistd re-raises the SIGTERM it stopped on; systemd counts that as a clean stop
        self.assertIn(process.returncode, (0, -15), out.decode())
        self.assertIn("STOPPING=1", self.receive(sock, 5))

    def test_ready_under_serve(self) -> None:
        self.ready_when_serving(serve_argv, abstract=False)

    def test_ready_under_twistd_abstract_socket(self) -> None:
        self.ready_when_serving(twistd_argv, abstract=True)

    def test_no_ready_when_start_fails(self) -> None:
        sock, address = self.notify_socket()
        with socket.socket() as holder:
            holder.bind(("127.0.0.1", 0))
            holder.listen()
            port = holder.getsockname()[1]
            config = self.write_config(f"storage: inmemory\nhttp:\n  addr: 127.0.0.1:{port}\n")
            for runner, argv in RUNNERS.items():
                outcome = self.run_to_end(argv(config), {"NOTIFY_SOCKET": address})
                self.assertEqual(outcome.code, 1, f"{runner}: {outcome.text}")
                sent = []
                while message := self.receive(sock, 0.5):
                    sent += message
                self.assertFalse([m for m in sent if "READY=1" in m], sent)
                # systemctl status shows why
                self.assertTrue(
                    any(m.startswith("STATUS=cannot listen on") for m in sent), f"{runner}: {sent}"
                )


class DefaultConfigurationTests(StartupCase):
    def test_serve_without_a_file_runs_on_the_built_in_defaults(self) -> None:
        """As ``docker run -e REGISTRY_…`` runs the vendor image: defaults plus the environment."""
        if os.path.lexists("/etc/paxd/config.yml"):
            self.skipTest("/etc/paxd/config.yml exists on this machine")
        port = free_port()
        env = {
            "REGISTRY_STORAGE": "inmemory",
            "REGISTRY_AUTH": "",
            "REGISTRY_HTTP_ADDR": f"127.0.0.1:{port}",
        }
        process = subprocess.Popen(
            [sys.executable, "-m", "paxd", "serve"],
            env=child_env(env),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            cwd=self.dir,
        )
        self.addCleanup(lambda: process.poll() is None and process.kill())
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5) as r:
                    self.assertEqual(r.status, 200)
                    # the vendor image's security headers come from the built-in defaults
                    self.assertEqual(r.headers["X-Frame-Options"], "DENY")
                    break
            except OSError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise
                time.sleep(0.1)
        process.terminate()
        out, _ = process.communicate(timeout=30)
        self.assertEqual(process.returncode, 0, out.decode())
        self.assertIn(b"registry ready (inmemory storage)", out)
