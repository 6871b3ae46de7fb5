"""The systemd units fit the installation and the sample configuration's layout.

``paxd systemd-unit`` prints units whose ``ExecStart`` is this installation's
paxd, which ``systemd-analyze verify`` accepts as printed; ``systemd/`` holds
the same templates rendered for ``/usr/local/bin/paxd``; and every path the
sample configuration writes (storage, the htpasswd file paxd creates, the ACME
cache) is writable under the units' sandbox, unlike the vendor image's paths.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import subprocess
import sys
import sysconfig
from pathlib import Path

from twisted.trial.unittest import SynchronousTestCase

from paxd.cli import main
from paxd.config import load_config, load_default_config
from paxd.preflight import written_paths
from paxd.systemd.units import LAYOUT, NAMES, Installation, parse_unit, render, writable
from tests.tls.support import require_tool

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "etc" / "paxd" / "config.yml"
SERVICES = ("paxd.service", "paxd-activated.service")


def sandboxes() -> dict[str, dict[str, list[str]]]:
    return {name: parse_unit(render(name, Installation.standard())) for name in SERVICES}


def printed(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = main(argv)
    return status, out.getvalue(), err.getvalue()


class LayoutTests(SynchronousTestCase):
    def sample_variants(self) -> list[object]:
        """The sample as it is, and with its commented Let's Encrypt block in use."""
        text = SAMPLE.read_text()
        (cachefile,) = re.findall(r"^\s*#\s*cachefile:\s*(\S+)", text, re.M)
        letsencrypt = {
            "REGISTRY_HTTP_TLS_LETSENCRYPT_CACHEFILE": cachefile,
            "REGISTRY_HTTP_TLS_LETSENCRYPT_HOSTS": "[registry.example.com]",
        }
        return [load_config(str(SAMPLE), {}), load_config(str(SAMPLE), letsencrypt)]

    def test_every_path_the_sample_writes_is_writable_in_the_sandbox(self) -> None:
        keys = set()
        for config in self.sample_variants():
            paths = [*written_paths(config), ("request bodies", "/tmp")]  # type: ignore[arg-type]
            for key, path in paths:
                keys.add(key)
                for name, settings in sandboxes().items():
                    self.assertTrue(writable(settings, path), f"{name}: {key} {path}")
        self.assertEqual(
            keys,
            {
                "storage.filesystem.rootdirectory",
                "auth.htpasswd.path",
                "http.tls.letsencrypt.cachefile",
                "request bodies",
            },
        )

    def test_the_vendor_images_paths_would_not_be(self) -> None:
        """The check has teeth: the issue's sandbox failure ("Read-only file system")."""
        default = dict(written_paths(load_default_config({})))
        settings = sandboxes()["paxd.service"]
        self.assertFalse(writable(settings, default["storage.filesystem.rootdirectory"]))
        self.assertFalse(writable(settings, default["auth.htpasswd.path"]))

    def test_configuration_and_tls_files_are_read_only(self) -> None:
        settings = sandboxes()["paxd.service"]
        for path in ("/etc/paxd/config.yml", "/etc/paxd/tls.key", "/usr/local/bin/paxd"):
            self.assertFalse(writable(settings, path), path)
        self.assertIn("/etc/paxd/tls.crt", SAMPLE.read_text())

    def test_sample_and_docs_agree_with_the_layout(self) -> None:
        sample = load_config(str(SAMPLE), {})
        assert sample.auth is not None
        self.assertEqual(sample.storage.rootdirectory, LAYOUT["storage"])
        self.assertEqual(sample.auth.htpasswd.path, LAYOUT["htpasswd"])
        docs = (REPO / "docs" / "operations.rst").read_text()
        for path in LAYOUT.values():
            self.assertIn(path, docs)

    def test_sandbox_model(self) -> None:
        settings = parse_unit(
            "[Service]\nProtectSystem=strict\nProtectHome=yes\nPrivateTmp=yes\n"
            "ReadWritePaths=/srv/a -/srv/b\nStateDirectory=paxd\nReadOnlyPaths=/srv/a/ro\n"
        )
        for path, expected in {
            "/srv/a/x": True,
            "/srv/b": True,
            "/srv/a/ro/x": False,
            "/srv/c": False,
            "/var/lib/paxd/registry": True,
            "/var/lib/other": False,
            "/tmp/x": True,
            "/home/u/x": False,
            "/etc/paxd": False,
        }.items():
            self.assertEqual(writable(settings, path), expected, path)
        self.assertTrue(writable(parse_unit("[Service]\nProtectSystem=full\n"), "/var/x"))
        self.assertFalse(writable(parse_unit("[Service]\nProtectSystem=full\n"), "/etc/x"))


class PrintedUnitTests(SynchronousTestCase):
    def test_repository_units_are_the_templates(self) -> None:
        for name in NAMES:
            self.assertEqual(
                (REPO / "systemd" / name).read_text(), render(name, Installation.standard()), name
            )

    def test_exec_start_is_this_installation(self) -> None:
        status, out, _ = printed(["systemd-unit"])
        self.assertEqual(status, 0)
        settings = parse_unit(out)
        (exec_start,) = settings["ExecStart"]
        command = exec_start.split()
        self.assertEqual(command[-2:], ["serve", "/etc/paxd/config.yml"])
        installation = Installation.current()
        self.assertEqual(tuple(command[:-2]), installation.command)
        scripts = (sysconfig.get_path("scripts"), Path(sys.executable).parent)
        self.assertIn(command[0], {sys.executable, *(str(Path(d) / "paxd") for d in scripts)})
        self.assertEqual(settings["Type"], ["notify"])
        if "PYTHONPATH" in installation.environment:  # a checkout, as in this test run
            self.assertIn(f"PYTHONPATH={REPO}", settings["Environment"])
        # the command the unit runs really is paxd
        env = dict(installation.environment)
        result = subprocess.run(
            [*installation.command, "--version"],
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ, **env},
        )
        self.assertTrue(result.stdout.startswith("paxd "), result.stderr)

    def test_systemd_analyze_verify_accepts_the_printed_units(self) -> None:
        analyze = require_tool("systemd-analyze")
        directory = Path(self.mktemp())
        status, _, _ = printed(["systemd-unit", "--dir", str(directory)])
        self.assertEqual(status, 0)
        self.assertEqual(sorted(p.name for p in directory.iterdir()), sorted(NAMES))
        result = subprocess.run(
            [analyze, "verify", *(str(directory / n) for n in NAMES)],
            capture_output=True,
            text=True,
            timeout=120,
        )
        self.assertEqual((result.returncode, result.stderr.strip()), (0, ""))

    def test_another_configuration_file(self) -> None:
        status, out, _ = printed(["systemd-unit", "--config", "/etc/paxd/other.yml"])
        self.assertEqual(status, 0)
        (exec_start,) = parse_unit(out)["ExecStart"]
        self.assertTrue(exec_start.endswith(" serve /etc/paxd/other.yml"), exec_start)

    def test_home_installations_keep_their_code_readable(self) -> None:
        home = Installation(("/home/u/venv/bin/paxd",), in_home=True)
        self.assertEqual(parse_unit(render("paxd.service", home))["ProtectHome"], ["read-only"])
        self.assertEqual(
            parse_unit(render("paxd.service", Installation.standard()))["ProtectHome"], ["yes"]
        )

    def test_activated_unit_keeps_no_capability(self) -> None:
        settings = parse_unit(render("paxd-activated.service", Installation.standard()))
        self.assertEqual(settings["CapabilityBoundingSet"], [""])
        self.assertIn("REGISTRY_HTTP_LISTEN=[systemd:domain=INET:index=0]", settings["Environment"])
