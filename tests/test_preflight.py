"""``paxd check-config`` and what the daemon checks before it runs (:mod:`paxd.preflight`).

check-config changes nothing on disk, prints every warning ``serve`` would log
(the same lines, from the same place), and prints the configuration it would
run with, which reads back as the same configuration, secrets masked. With no
file given and none at the default path, the vendor image's defaults apply,
with ``REGISTRY_*`` variables.
"""

from __future__ import annotations

import contextlib
import io
import os
from pathlib import Path
from typing import Any

import attrs
import yaml
from twisted.internet.testing import MemoryReactorClock
from twisted.logger import globalLogPublisher
from twisted.trial.unittest import SynchronousTestCase

from paxd import preflight
from paxd.cli import main
from paxd.config import DEFAULT_SOURCE, ConfigError, load_config, parse_config
from paxd.config.dump import MASK, as_yaml
from paxd.registry.registry import Registry
from paxd.startup import Startup
from paxd.storage.memory import MemoryStorage
from paxd.systemd.notify import RecordingNotifier
from tests.auth.support import fast_line
from tests.tls.support import TestCA, self_signed_bundle

#: an MD5 (htpasswd -m) line: skipped with a warning
MD5_LINE = "old:$apr1$r31.....$HqJZimcKQFAMYayBlzkrA/\n"


def run_cli(argv: list[str], environ: dict[str, str] | None = None) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    saved = dict(os.environ)
    os.environ.update(environ or {})
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            status = main(argv)
    finally:
        os.environ.clear()
        os.environ.update(saved)
    return status, out.getvalue(), err.getvalue()


def tree(directory: Path) -> list[str]:
    return sorted(str(p.relative_to(directory)) for p in directory.rglob("*"))


class CheckConfigTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.dir = Path(self.mktemp()).absolute()
        self.dir.mkdir(parents=True)

    def write(self, text: str) -> str:
        path = self.dir / "config.yml"
        path.write_text(f"version: 0.1\n{text}")
        return str(path)

    def test_changes_nothing_on_disk(self) -> None:
        """Missing htpasswd file, storage root and ACME cache: named, none created."""
        config = self.write(
            f"storage:\n  filesystem:\n    rootdirectory: {self.dir}/data/registry\n"
            "http:\n  addr: 127.0.0.1:5000\n  tls:\n    letsencrypt:\n"
            f"      cachefile: {self.dir}/acme\n      hosts: [registry.example]\n"
            f"auth:\n  htpasswd:\n    realm: r\n    path: {self.dir}/auth/htpasswd\n"
        )
        before = tree(self.dir)
        status, out, err = run_cli(["check-config", config])
        self.assertEqual(status, 0, err)
        self.assertEqual(tree(self.dir), before)
        self.assertIn(
            f"auth.htpasswd.path: {self.dir}/auth/htpasswd does not exist; 'paxd serve' will"
            " create it with the user 'admin' and a random password, logged once",
            err,
        )
        self.assertNotIn("password ", out)

    def test_refuses_what_serve_could_not_create(self) -> None:
        blocker = self.dir / "file"
        blocker.write_text("x")
        for body, key in (
            (f"storage:\n  filesystem:\n    rootdirectory: {blocker}/r\n", "rootdirectory"),
            (
                "storage: inmemory\n"
                f"auth:\n  htpasswd:\n    realm: r\n    path: {blocker}/htpasswd\n",
                "auth.htpasswd.path",
            ),
        ):
            status, _, err = run_cli(["check-config", self.write(body)])
            self.assertEqual(status, 1, err)
            self.assertEqual(len(err.strip().splitlines()), 1, err)
            self.assertIn(key, err)
            self.assertIn(f"{blocker} is not a directory", err)

    def test_prints_every_warning_serve_logs(self) -> None:
        """The no-SAN certificate, skipped MD5 lines, unknown keys: check-config and serve agree."""
        bundle = self_signed_bundle([])  # no subjectAltName at all
        crt, key = self.dir / "tls.crt", self.dir / "tls.key"
        crt.write_bytes(bundle.chain_pem())
        key.write_bytes(bundle.key_pem())
        htpasswd = self.dir / "htpasswd"
        htpasswd.write_text(fast_line("admin", "pw") + MD5_LINE)
        config = self.write(
            "storage: inmemory\nlogg: {}\n"
            f"http:\n  addr: 127.0.0.1:5000\n  tls: {{certificate: {crt}, key: {key}}}\n"
            f"auth:\n  htpasswd:\n    realm: r\n    path: {htpasswd}\n"
        )
        status, _, err = run_cli(["check-config", config])
        self.assertEqual(status, 0, err)
        printed = [line.removeprefix("paxd: warning: ") for line in err.splitlines()]
        self.assertTrue(any("has no subjectAltName" in w for w in printed), printed)
        self.assertTrue(any("line 2: user 'old' has an MD5" in w for w in printed), printed)
        self.assertTrue(any("logg: unknown key" in w for w in printed), printed)
        self.assertEqual(printed, list(self.serve_warnings(config)))

    def serve_warnings(self, path: str) -> list[str]:
        """What the daemon's start-up service logs as warnings, for the same file."""
        prepared = preflight.prepare(load_config(path, {}), create=True)
        events: list[dict[str, Any]] = []
        globalLogPublisher.addObserver(events.append)
        self.addCleanup(globalLogPublisher.removeObserver, events.append)
        registry = Registry(MemoryStorage())
        startup = Startup(
            reactor=MemoryReactorClock(),
            registry=registry,
            prepared=prepared,
            listeners=[],
            notifier=RecordingNotifier(),
        )
        startup.startService()
        return [e["text"] for e in events if "text" in e and e["log_namespace"] == "paxd"]

    def test_prints_the_configuration_with_secrets_masked(self) -> None:
        config = self.write("storage: inmemory\nhttp:\n  addr: 127.0.0.1:5000\n")
        status, out, _ = run_cli(["check-config", config], {"REGISTRY_HTTP_SECRET": "s3cr3t-value"})
        self.assertEqual(status, 0)
        self.assertNotIn("s3cr3t-value", out)
        printed = yaml.safe_load(out)
        self.assertEqual(printed["http"]["secret"], MASK)
        self.assertEqual(printed["http"]["addr"], "127.0.0.1:5000")
        self.assertIn("OK (inmemory storage, listening on tcp:5000:interface=127.0.0.1)", out)
        # it reads back as the configuration it describes (the secret aside)
        original = load_config(config, {"REGISTRY_HTTP_SECRET": "s3cr3t-value"})
        again = parse_config(out, "printed")
        self.assertEqual(
            attrs.evolve(again, source="", warnings=()),
            attrs.evolve(
                original, source="", warnings=(), http=attrs.evolve(original.http, secret=MASK)
            ),
        )

    def test_the_sample_round_trips(self) -> None:
        sample = load_config(str(Path(__file__).parents[1] / "etc" / "paxd" / "config.yml"), {})
        again = parse_config(as_yaml(sample), "printed")
        self.assertEqual(
            attrs.evolve(again, source="", warnings=()),
            attrs.evolve(sample, source="", warnings=()),
        )


class DefaultConfigurationTests(SynchronousTestCase):
    """No file given, none at /etc/paxd/config.yml: the vendor image's defaults and REGISTRY_*."""

    def setUp(self) -> None:
        self.patch(preflight, "DEFAULT_CONFIG", self.mktemp())

    def test_built_in_defaults_with_the_environment(self) -> None:
        config = preflight.load(None, {"REGISTRY_HTTP_ADDR": "127.0.0.1:5001"})
        self.assertEqual(config.source, DEFAULT_SOURCE)
        self.assertEqual(config.storage.rootdirectory, "/data/.spectro-server")
        assert config.auth is not None
        self.assertEqual(config.auth.htpasswd.path, "/auth/htpasswd-basic")
        self.assertEqual(config.http.addr, "127.0.0.1:5001")

    def test_check_config_without_a_file(self) -> None:
        status, out, err = run_cli(
            ["check-config"],
            {
                "REGISTRY_STORAGE": "inmemory",
                "REGISTRY_AUTH": "",
                "REGISTRY_HTTP_ADDR": "127.0.0.1:5002",
            },
        )
        self.assertEqual(status, 0, err)
        self.assertIn(f"# {DEFAULT_SOURCE}: OK (inmemory storage", out)

    def test_a_named_file_must_exist(self) -> None:
        self.assertRaises(ConfigError, preflight.load, self.mktemp(), {})


class PrepareTests(SynchronousTestCase):
    def test_serve_creates_and_check_does_not(self) -> None:
        directory = Path(self.mktemp()).absolute()
        text = (
            f"version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: {directory}/root\n"
            f"auth:\n  htpasswd:\n    realm: r\n    path: {directory}/htpasswd\n"
        )
        config = parse_config(text, "f.yml")
        checked = preflight.prepare(config, create=False)
        self.assertIsNone(checked.created_password)
        self.assertFalse(directory.exists())
        prepared = preflight.prepare(config, create=True)
        self.assertIsNotNone(prepared.created_password)
        self.assertEqual(sorted(os.listdir(directory)), ["htpasswd", "root"])
        self.assertEqual(os.listdir(directory / "root"), [])  # the write probe is gone
        # the next start creates nothing, so the password is never shown again
        self.assertIsNone(preflight.prepare(config, create=True).created_password)

    def test_no_authentication_beyond_loopback(self) -> None:
        config = parse_config("version: 0.1\nstorage: inmemory\n", "f.yml")
        (warning,) = preflight.prepare(config, create=False).warnings
        self.assertTrue(warning.startswith("NO AUTHENTICATION: f.yml has no 'auth' section"))
        loopback = parse_config(
            "version: 0.1\nstorage: inmemory\nhttp: {addr: '127.0.0.1:5000'}\n", "f.yml"
        )
        self.assertEqual(preflight.prepare(loopback, create=False).warnings, ())

    def test_tls_certificate_with_san_gives_no_warning(self) -> None:
        directory = Path(self.mktemp()).absolute()
        directory.mkdir()
        ca = TestCA()
        crt, key = ca.write(directory, ca.server())
        config = parse_config(
            "version: 0.1\nstorage: inmemory\nhttp:\n  addr: 127.0.0.1:5000\n"
            f"  tls: {{certificate: {crt}, key: {key}}}\n",
            "f.yml",
        )
        self.assertEqual(preflight.prepare(config, create=False).warnings, ())
