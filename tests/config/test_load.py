"""Tests for :mod:`paxd.config.load`: files, the built-in default, the vendor's examples."""

from __future__ import annotations

import os
from pathlib import Path

import attrs
from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from paxd.config import (
    DEFAULT_CONFIG_TEXT,
    DEFAULT_LETSENCRYPT_DIRECTORY,
    Config,
    ConfigError,
    HtpasswdConfig,
    LetsEncryptConfig,
    load_config,
    load_default_config,
    parse_config,
)
from paxd.listeners import endpoint_descriptions
from tests.config.support import CONFIGS, MINIMAL, REPO, SOURCE, ErrorAssertions, parse


class SeedTests(SynchronousTestCase):
    """The vendor's documented configurations work unchanged."""

    def test_docker_run_example(self) -> None:
        """The seed's ``docker run -e ...`` example over the image's default configuration."""
        certs = Path(self.mktemp())
        certs.mkdir()
        (certs / "tls.crt").write_text("certificate")
        (certs / "tls.key").write_text("key")
        environ = {
            "REGISTRY_LOG_LEVEL": "info",
            "REGISTRY_AUTH": "htpasswd",
            "REGISTRY_AUTH_HTPASSWD_REALM": "Registry Realm",
            "REGISTRY_AUTH_HTPASSWD_PATH": "/auth/htpasswd-basic",
            "REGISTRY_HTTP_TLS_CERTIFICATE": str(certs / "tls.crt"),
            "REGISTRY_HTTP_TLS_KEY": str(certs / "tls.key"),
            "PATH": "/usr/bin",
        }
        config = load_default_config(environ)
        self.assertEqual(config.log.level, "info")
        assert config.auth is not None
        self.assertEqual(
            config.auth.htpasswd,
            HtpasswdConfig(realm="Registry Realm", path="/auth/htpasswd-basic"),
        )
        assert config.http.tls is not None
        self.assertEqual(config.http.tls.certificate, str((certs / "tls.crt").absolute()))
        self.assertEqual(config.http.tls.key, str((certs / "tls.key").absolute()))
        self.assertIsNone(config.http.tls.letsencrypt)
        self.assertEqual(config.storage.driver, "filesystem")
        self.assertEqual(config.storage.rootdirectory, "/data/.spectro-server")
        self.assertEqual(endpoint_descriptions(config.http), ["tcp:5000"])
        self.assertEqual(config.http.headers["X-Frame-Options"], ["DENY"])

    def test_default_configuration(self) -> None:
        """The image's defaults: filesystem storage, htpasswd auth, the security headers."""
        config = load_default_config({})
        self.assertEqual(config.log.level, "info")
        self.assertEqual(config.log.fields, {"service": "registry"})
        self.assertEqual(config.storage.rootdirectory, "/data/.spectro-server")
        self.assertFalse(config.storage.delete_enabled)
        assert config.auth is not None
        self.assertEqual(config.auth.htpasswd.realm, "basic-realm")
        self.assertEqual(config.auth.htpasswd.path, "/auth/htpasswd-basic")
        self.assertEqual(
            config.http.headers["Content-Security-Policy"],
            ["img-src 'self'; script-src 'self'; style-src 'self'"],
        )
        self.assertEqual(config.http.headers["X-XSS-Protection"], ["1; mode=block"])
        self.assertEqual(len(config.http.headers), 6)
        self.assertIsNone(config.http.tls)
        self.assertEqual(config.warnings, (config.warnings[0],))
        self.assertIn("storage.cache", config.warnings[0])

    def test_letsencrypt_seed(self) -> None:
        """The seed's Let's Encrypt configuration loads as written."""
        path = str(CONFIGS / "seed-letsencrypt.yml")
        config = load_config(path, {})
        self.assertEqual(config.source, path)
        self.assertEqual(config.version, "0.1")
        self.assertEqual(config.log.level, "debug")
        self.assertEqual(config.storage.driver, "inmemory")
        self.assertIsNone(config.storage.rootdirectory)
        self.assertEqual(config.http.addr, ":5000")
        assert config.http.tls is not None
        self.assertIsNone(config.http.tls.certificate)
        self.assertEqual(
            config.http.tls.letsencrypt,
            LetsEncryptConfig(
                cachefile="/etc/spectro/letsencrypt",
                email="admin@example.com",
                hosts=("registry.example.com",),
                directoryurl=DEFAULT_LETSENCRYPT_DIRECTORY,
            ),
        )
        assert config.auth is not None
        self.assertEqual(config.auth.htpasswd.realm, "basic-realm")
        self.assertEqual(config.auth.htpasswd.path, "/auth/htpasswd-basic")
        self.assertEqual(config.warnings, ())


class SampleFileTests(SynchronousTestCase):
    """etc/paxd/*.yml and the distribution sample fixture."""

    def test_config_yml_is_the_default_in_the_installed_layout(self) -> None:
        """etc/paxd/config.yml is DEFAULT_CONFIG_TEXT with the paths of the systemd layout.

        (Issue 12 changed this deliberately: the sample, the units and the docs agree on
        /etc/paxd and /var/lib/paxd; the built-in default keeps the vendor image's paths.)
        """
        from_file = load_config(str(REPO / "etc" / "paxd" / "config.yml"), {})
        default = load_default_config({})
        assert from_file.auth is not None and default.auth is not None
        self.assertEqual(from_file.storage.rootdirectory, "/var/lib/paxd/registry")
        self.assertEqual(from_file.auth.htpasswd.path, "/var/lib/paxd/htpasswd")
        moved = attrs.evolve(
            default,
            source="",
            storage=attrs.evolve(default.storage, filesystem=from_file.storage.filesystem),
            auth=from_file.auth,
        )
        self.assertEqual(attrs.evolve(from_file, source=""), moved)

    def test_quickstart(self) -> None:
        """Plain HTTP on loopback, ./data relative to the current directory, delete on, no auth."""
        config = load_config(str(REPO / "etc" / "paxd" / "quickstart.yml"), {})
        self.assertEqual(endpoint_descriptions(config.http), ["tcp:5000:interface=127.0.0.1"])
        self.assertIsNone(config.http.tls)
        self.assertEqual(config.storage.rootdirectory, os.path.abspath("data"))
        self.assertTrue(config.storage.delete_enabled)
        self.assertIsNone(config.auth)
        self.assertEqual(config.log.level, "info")
        self.assertEqual(config.warnings, ())

    def test_distribution_sample(self) -> None:
        """A full distribution configuration: implemented keys read, others warned about once."""
        config = load_config(str(CONFIGS / "distribution-sample.yml"), {})
        self.assertEqual(config.log.level, "warn")
        self.assertEqual(config.log.formatter, "json")
        self.assertTrue(config.log.accesslog_disabled)
        self.assertTrue(config.storage.delete_enabled)
        self.assertTrue(config.storage.redirect_disabled)
        self.assertFalse(config.storage.readonly)
        self.assertEqual(config.http.host, "https://registry.example.com")
        self.assertEqual(config.http.secret, "asecretforlocaldevelopment")
        self.assertEqual(config.http.draintimeout, 90.0)
        self.assertTrue(config.health.storagedriver_enabled)
        self.assertEqual(config.catalog.maxentries, 500)
        assert config.redis is not None
        self.assertEqual((config.redis.host, config.redis.port), ("localhost", 6379))
        warned = sorted(w.split(":")[0] for w in config.warnings)
        self.assertEqual(
            warned,
            [
                "health.storagedriver",
                "http.draintimeout",
                "http.secret",
                "log.hooks",
                "notifications",
                "storage.cache",
                "storage.filesystem.maxthreads",
            ],
        )


class VersionTests(ErrorAssertions):
    """``version`` must be 0.1."""

    def test_float_and_string(self) -> None:
        self.assertEqual(parse(MINIMAL).version, "0.1")
        self.assertEqual(parse('version: "0.1"\nstorage: inmemory').version, "0.1")

    def test_other_versions(self) -> None:
        self.assertConfigError("version: 0.2\nstorage: inmemory", "version", "'0.2'", "0.1")
        self.assertConfigError("version: 0.10\nstorage: inmemory", "version", "'0.10'")
        self.assertConfigError("version: 1\nstorage: inmemory", "version")
        self.assertConfigError("version: [0.1]\nstorage: inmemory", "version", "a list")

    def test_missing(self) -> None:
        self.assertConfigError("storage: inmemory", "version", "missing", "version: 0.1")


class FileErrorTests(SynchronousTestCase):
    """Problems with the file itself name the file."""

    def test_missing_file(self) -> None:
        path = self.mktemp()
        error = self.assertRaises(ConfigError, load_config, path, {})
        self.assertEqual(str(error), f"{path}: {error.message}")
        self.assertIn("no such file", str(error))

    def test_directory(self) -> None:
        path = self.mktemp()
        os.mkdir(path)
        self.assertIn("is a directory", str(self.assertRaises(ConfigError, load_config, path, {})))

    def test_not_utf8(self) -> None:
        path = self.mktemp()
        Path(path).write_bytes(b"version: 0.1\nlog: {level: \xff}\n")
        self.assertIn("UTF-8", str(self.assertRaises(ConfigError, load_config, path, {})))

    def test_empty_and_not_a_mapping(self) -> None:
        self.assertIn("empty", str(self.assertRaises(ConfigError, parse, "# nothing\n")))
        self.assertIn("a list", str(self.assertRaises(ConfigError, parse, "- version\n")))


class RobustnessTests(SynchronousTestCase):
    """Whatever the operator writes, the result is a Config or a ConfigError."""

    @settings(max_examples=300, deadline=None)
    @given(
        st.recursive(
            st.none() | st.booleans() | st.integers() | st.text(max_size=8),
            lambda inner: (
                st.lists(inner, max_size=3)
                | st.dictionaries(
                    st.sampled_from(
                        [
                            "storage",
                            "http",
                            "auth",
                            "log",
                            "tls",
                            "addr",
                            "inmemory",
                            "filesystem",
                            "htpasswd",
                            "headers",
                            "delete",
                            "enabled",
                            "letsencrypt",
                            "hosts",
                            "x",
                        ]
                    ),
                    inner,
                    max_size=4,
                )
            ),
            max_leaves=12,
        ),
        st.dictionaries(
            st.sampled_from(
                [
                    "REGISTRY_STORAGE",
                    "REGISTRY_AUTH",
                    "REGISTRY_HTTP_TLS",
                    "REGISTRY_HTTP_HEADERS_A",
                    "REGISTRY_LOG_FIELDS_0",
                    "REGISTRY_HTTP_LISTEN_0",
                    "REGISTRY_STORAGE_DELETE",
                ]
            ),
            st.sampled_from(["", "x", "[a]", "{a: b}", "1", "true", "{", "inmemory"]),
            max_size=3,
        ),
    )
    def test_never_a_traceback(self, tree: object, environ: dict[str, str]) -> None:
        import yaml

        text = yaml.safe_dump(
            {"version": 0.1, "content": tree, **(tree if isinstance(tree, dict) else {})}
        )
        try:
            config = parse_config(text, SOURCE, environ)
        except ConfigError as e:
            self.assertEqual(e.path, SOURCE)
            self.assertNotIn("\n", str(e))
        else:
            self.assertIsInstance(config, Config)
            endpoint_descriptions(config.http)

    def test_default_text_is_exported(self) -> None:
        self.assertTrue(DEFAULT_CONFIG_TEXT.startswith("version: 0.1\n"))
