"""Tests for :mod:`paxd.config.environ`: ``REGISTRY_*`` overrides, with distribution's semantics."""

from __future__ import annotations

import os
from pathlib import Path

from paxd.config import HtpasswdConfig, load_default_config, parse_config
from paxd.listeners import endpoint_descriptions
from tests.config.support import MINIMAL, SOURCE, ErrorAssertions, parse


class EnvironmentTests(ErrorAssertions):
    """``REGISTRY_*`` overrides, with distribution's semantics."""

    def test_values_are_yaml(self) -> None:
        config = parse(
            MINIMAL,
            {
                "REGISTRY_STORAGE_DELETE_ENABLED": "true",
                "REGISTRY_CATALOG_MAXENTRIES": "20",
                "REGISTRY_HTTP_HEADERS_X-FOO": "[a, b]",
                "REGISTRY_HTTP_SECRET": "0123",
            },
        )
        self.assertTrue(config.storage.delete_enabled)
        self.assertEqual(config.catalog.maxentries, 20)
        self.assertEqual(config.http.headers, {"x-foo": ["a", "b"]})
        self.assertEqual(config.http.secret, "0123")

    def test_names_match_case_insensitively(self) -> None:
        config = parse(MINIMAL, {"REGISTRY_Log_Level": "debug", "registry_log_formatter": "json"})
        self.assertEqual((config.log.level, config.log.formatter), ("debug", "text"))

    def test_existing_map_key_keeps_its_spelling(self) -> None:
        config = parse(
            f"{MINIMAL}http: {{headers: {{X-Foo: [a]}}}}", {"REGISTRY_HTTP_HEADERS_X-FOO": "[b]"}
        )
        self.assertEqual(config.http.headers, {"X-Foo": ["b"]})

    def test_underscores_in_map_keys(self) -> None:
        config = parse(
            f"{MINIMAL}log: {{fields: {{my_field: a}}}}",
            {"REGISTRY_LOG_FIELDS_MY_FIELD": "b", "REGISTRY_LOG_FIELDS_NEW_ONE": "c"},
        )
        self.assertEqual(config.log.fields, {"my_field": "b", "new": {"one": "c"}})

    def test_less_specific_first(self) -> None:
        """``REGISTRY_AUTH`` replaces the section, then the specific variables fill it."""
        environ = {
            "REGISTRY_AUTH_HTPASSWD_REALM": "Registry Realm",
            "REGISTRY_AUTH_HTPASSWD_PATH": "/auth/p",
            "REGISTRY_AUTH": "htpasswd",
        }
        config = parse(
            f"{MINIMAL}auth: {{htpasswd: {{realm: old, path: /old, admins: [x]}}}}", environ
        )
        assert config.auth is not None
        self.assertEqual(
            config.auth.htpasswd, HtpasswdConfig(realm="Registry Realm", path="/auth/p")
        )

    def test_replacing_a_section_drops_its_keys(self) -> None:
        error = self.assertConfigError(
            f"{MINIMAL}auth: {{htpasswd: {{realm: r, path: /p}}}}",
            "auth.htpasswd.path",
            "missing",
            "(the environment sets REGISTRY_AUTH, REGISTRY_AUTH_HTPASSWD_REALM)",
            environ={"REGISTRY_AUTH": "htpasswd", "REGISTRY_AUTH_HTPASSWD_REALM": "r"},
        )
        self.assertNotIn("\n", str(error))

    def test_storage_driver(self) -> None:
        text = "version: 0.1\nstorage: {filesystem: {rootdirectory: /x}, delete: {enabled: true}}\n"
        config = parse(text, {"REGISTRY_STORAGE": "inmemory"})
        self.assertEqual(config.storage.driver, "inmemory")
        self.assertFalse(config.storage.delete_enabled)  # the whole section was replaced
        config = parse(
            text, {"REGISTRY_STORAGE": "inmemory", "REGISTRY_STORAGE_DELETE_ENABLED": "true"}
        )
        self.assertEqual(config.storage.driver, "inmemory")
        self.assertTrue(config.storage.delete_enabled)
        config = parse(MINIMAL, {"REGISTRY_STORAGE_INMEMORY": "", "REGISTRY_LOG_LEVEL": "warn"})
        self.assertEqual(config.storage.driver, "inmemory")

    def test_second_driver_from_environment(self) -> None:
        self.assertConfigError(
            MINIMAL,
            "storage",
            "two storage drivers configured (filesystem, inmemory)",
            "REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY",
            environ={"REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY": "/d"},
        )

    def test_tls_created(self) -> None:
        cert = Path(self.mktemp())
        cert.write_text("c")
        config = parse(
            MINIMAL,
            {"REGISTRY_HTTP_TLS_CERTIFICATE": str(cert), "REGISTRY_HTTP_TLS_KEY": str(cert)},
        )
        assert config.http.tls is not None
        self.assertEqual(config.http.tls.certificate, str(cert.absolute()))
        self.assertConfigError(
            MINIMAL,
            "http.tls.certificate",
            "/nonexistent/c.pem",
            "(the environment sets REGISTRY_HTTP_TLS_CERTIFICATE)",
            environ={
                "REGISTRY_HTTP_TLS_CERTIFICATE": "/nonexistent/c.pem",
                "REGISTRY_HTTP_TLS_KEY": str(cert),
            },
        )

    def test_list_indexes(self) -> None:
        environ = {
            "REGISTRY_HTTP_TLS_LETSENCRYPT_CACHEFILE": "/le",
            "REGISTRY_HTTP_TLS_LETSENCRYPT_HOSTS_0": "a.example.com",
            "REGISTRY_HTTP_TLS_LETSENCRYPT_HOSTS_1": "b.example.com",
            "REGISTRY_HTTP_TLS_LETSENCRYPT_HOSTS_5": "c.example.com",
        }
        config = parse(MINIMAL, environ)
        assert config.http.tls is not None and config.http.tls.letsencrypt is not None
        self.assertEqual(config.http.tls.letsencrypt.hosts, ("a.example.com", "b.example.com"))
        self.assertEqual(len(config.warnings), 1)
        self.assertTrue(config.warnings[0].startswith("REGISTRY_HTTP_TLS_LETSENCRYPT_HOSTS_5: "))
        config = parse(
            f"{MINIMAL}http: {{listen: ['tcp:1', 'tcp:2']}}", {"REGISTRY_HTTP_LISTEN_1": "tcp:3"}
        )
        self.assertEqual(endpoint_descriptions(config.http), ["tcp:1", "tcp:3"])

    def test_unknown_paths_warn(self) -> None:
        config = parse(
            MINIMAL,
            {
                "REGISTRY_FOO": "1",
                "REGISTRY_HTTP_ADDR_X": "1",
                "REGISTRY_LOG__LEVEL": "debug",
                "REGISTRY_": "x",
                "OTHER_LOG_LEVEL": "debug",
            },
        )
        self.assertEqual(config.log.level, "info")
        self.assertEqual(
            sorted(w.split(":")[0] for w in config.warnings),
            ["REGISTRY_FOO", "REGISTRY_HTTP_ADDR_X", "REGISTRY_LOG__LEVEL"],
        )

    def test_empty_value_removes(self) -> None:
        self.assertIsNone(
            parse(
                f"{MINIMAL}auth: {{htpasswd: {{realm: r, path: /p}}}}", {"REGISTRY_AUTH": ""}
            ).auth
        )

    def test_bad_yaml_value(self) -> None:
        self.assertConfigError(
            MINIMAL, "REGISTRY_LOG_LEVEL", "not valid YAML", environ={"REGISTRY_LOG_LEVEL": "[a"}
        )

    def test_wrong_type_names_the_variable(self) -> None:
        self.assertConfigError(
            MINIMAL,
            "storage.delete.enabled",
            "'maybe'",
            "REGISTRY_STORAGE_DELETE_ENABLED",
            environ={"REGISTRY_STORAGE_DELETE_ENABLED": "maybe"},
        )

    def test_health_go_field_names(self) -> None:
        config = parse(
            MINIMAL,
            {
                "REGISTRY_HEALTH_STORAGEDRIVER_ENABLED": "true",
                "REGISTRY_HEALTH_FILECHECKERS": "[{file: /x}]",
            },
        )
        self.assertTrue(config.health.storagedriver_enabled)
        self.assertIn("health.file: not implemented by paxd; ignored", config.warnings)

    def test_environment_is_never_read_implicitly(self) -> None:
        self.patch(os, "environ", {"REGISTRY_LOG_LEVEL": "debug"})
        self.assertEqual(parse_config(MINIMAL, SOURCE).log.level, "info")
        self.assertEqual(load_default_config().log.level, "info")
