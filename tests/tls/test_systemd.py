"""The systemd units: ``systemd-analyze verify``, their hardening, real socket activation."""

from __future__ import annotations

import configparser
import re
import shutil
import subprocess
import sys
from pathlib import Path

from twisted.trial.unittest import SynchronousTestCase

from tests.tls.support import (
    REPO_ROOT,
    TestCA,
    child_env,
    free_port,
    handshake,
    require_daemon,
    require_tool,
    wait_for_port,
)

UNITS = REPO_ROOT / "systemd"
NAMES = ("paxd.service", "paxd.socket", "paxd-activated.service")


def read_unit(name: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None, delimiters=("=",))
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read(UNITS / name)
    return parser


class VerifyTests(SynchronousTestCase):
    def test_verify(self) -> None:
        """``systemd-analyze verify`` accepts the units without a word of complaint."""
        analyze = require_tool("systemd-analyze")
        directory = Path(self.mktemp())
        directory.mkdir()
        # verify wants ExecStart's program to exist: point it at one that does
        true = shutil.which("true")
        assert true is not None
        for name in NAMES:
            text = (UNITS / name).read_text().replace("/usr/local/bin/paxd", true)
            (directory / name).write_text(text)
        result = subprocess.run(
            [analyze, "verify", *(str(directory / n) for n in NAMES)],
            capture_output=True,
            text=True,
            timeout=120,
        )
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(result.stderr.strip(), "")

    def test_hardening(self) -> None:
        standalone = read_unit("paxd.service")["Service"]
        activated = read_unit("paxd-activated.service")["Service"]
        for service in (standalone, activated):
            self.assertEqual(service["User"], "paxd")
            self.assertEqual(service["NoNewPrivileges"], "yes")
            self.assertEqual(service["ProtectSystem"], "strict")
            self.assertIn("/var/lib/paxd", service["ReadWritePaths"])
            # Issue 12: the configuration directory is read-only to paxd (it writes only under
            # its StateDirectory, /var/lib/paxd), and systemd waits for READY=1.
            self.assertNotIn("/etc/paxd", service["ReadWritePaths"])
            self.assertEqual(service["Type"], "notify")
        self.assertEqual(standalone["AmbientCapabilities"], "CAP_NET_BIND_SERVICE")
        self.assertEqual(standalone["CapabilityBoundingSet"], "CAP_NET_BIND_SERVICE")
        self.assertEqual(activated["CapabilityBoundingSet"], "")
        self.assertEqual(activated["AmbientCapabilities"], "")

    def test_socket(self) -> None:
        """443 is file descriptor 0 and 80 is 1, as paxd-activated.service tells paxd."""
        text = (UNITS / "paxd.socket").read_text()
        self.assertEqual(re.findall(r"^ListenStream=(.*)$", text, re.M), ["443", "80"])
        self.assertIn("Service=paxd-activated.service", text)
        activated = (UNITS / "paxd-activated.service").read_text()
        self.assertIn("REGISTRY_HTTP_LISTEN=[systemd:domain=INET:index=0]", activated)
        self.assertIn("REGISTRY_HTTP_REDIRECT_LISTEN=[systemd:domain=INET:index=1]", activated)


class SocketActivationTests(SynchronousTestCase):
    def test_activation(self) -> None:
        """Sockets passed in as systemd does: TLS on the first, redirects on the second."""
        activate = require_tool("systemd-socket-activate")
        require_daemon()
        directory = Path(self.mktemp()).absolute()
        directory.mkdir(parents=True)
        ca = TestCA()
        bundle = ca.server()
        crt, key = ca.write(directory, bundle)
        cafile = ca.write_ca(directory)
        config = directory / "config.yml"
        config.write_text(
            "version: 0.1\nstorage:\n  inmemory:\nhttp:\n"
            f"  tls: {{certificate: {crt}, key: {key}}}\n"
        )
        tls_port, plain_port = free_port(), free_port()
        # the environment paxd-activated.service sets
        env = child_env(
            {
                "REGISTRY_HTTP_LISTEN": "[systemd:domain=INET:index=0]",
                "REGISTRY_HTTP_REDIRECT_LISTEN": "[systemd:domain=INET:index=1]",
            }
        )
        # systemd itself always sets LISTEN_FDNAMES (Twisted requires it); this tool needs --fdname
        argv = [
            activate,
            "-l",
            f"127.0.0.1:{tls_port}",
            "-l",
            f"127.0.0.1:{plain_port}",
            "--fdname=paxd.socket:paxd.socket",
        ]
        for name in ("REGISTRY_HTTP_LISTEN", "REGISTRY_HTTP_REDIRECT_LISTEN", "PYTHONPATH"):
            argv += ["-E", f"{name}={env[name]}"]
        argv += [sys.executable, "-m", "paxd", "serve", str(config)]
        log = directory / "paxd.log"
        with open(log, "wb") as out:
            process = subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT)
        self.addCleanup(process.wait, 15)
        self.addCleanup(process.terminate)
        wait_for_port(tls_port, process=process)
        # systemd-socket-activate starts paxd on the first connection
        served, _ = handshake(tls_port, cafile=cafile, timeout=30)
        self.assertEqual(served.serial_number, bundle.serial)
        redirect = subprocess.run(
            [
                require_tool("curl"),
                "-sS",
                "-o",
                "/dev/null",
                "-w",
                "%{http_code} %{redirect_url}",
                f"http://localhost:{plain_port}/v2/",
            ],
            capture_output=True,
            text=True,
            timeout=30,
        )
        self.assertEqual(redirect.stdout, "308 https://localhost/v2/", log.read_text())
