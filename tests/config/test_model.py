"""Tests for :mod:`paxd.config.model`: each section's keys, defaults, types and checks."""

from __future__ import annotations

import os

import attrs

from paxd.config import Config, HtpasswdConfig
from tests.config.support import MINIMAL, ErrorAssertions, parse


class StorageTests(ErrorAssertions):
    """``storage``: exactly one driver, in any of the forms distribution accepts."""

    def test_inmemory_forms(self) -> None:
        for text in ("storage: inmemory", "storage: {inmemory: {}}", "storage:\n  inmemory:\n"):
            config = parse(f"version: 0.1\n{text}\n")
            self.assertEqual(
                (config.storage.driver, config.storage.rootdirectory), ("inmemory", None)
            )

    def test_filesystem_default_root(self) -> None:
        config = parse("version: 0.1\nstorage: {filesystem: }\n")
        self.assertEqual(config.storage.rootdirectory, "/var/lib/registry")
        self.assertEqual(
            parse("version: 0.1\nstorage: filesystem\n").storage.rootdirectory, "/var/lib/registry"
        )

    def test_relative_root_is_from_current_directory(self) -> None:
        config = parse("version: 0.1\nstorage: {filesystem: {rootdirectory: some/dir}}\n")
        self.assertEqual(config.storage.rootdirectory, os.path.join(os.getcwd(), "some", "dir"))

    def test_options(self) -> None:
        config = parse(
            "version: 0.1\nstorage:\n  inmemory:\n  delete: {enabled: true}\n"
            "  maintenance: {readonly: {enabled: yes}}\n  redirect: {disable: true}\n"
        )
        self.assertTrue(config.storage.delete_enabled)
        self.assertTrue(config.storage.readonly)
        self.assertTrue(config.storage.redirect_disabled)

    def test_two_drivers(self) -> None:
        self.assertConfigError(
            "version: 0.1\nstorage: {inmemory: , filesystem: {rootdirectory: /x}}",
            "storage",
            "storage: two storage drivers configured (filesystem, inmemory); keep exactly one",
        )

    def test_no_driver(self) -> None:
        self.assertConfigError(
            "version: 0.1\nstorage: {delete: {enabled: true}}", "storage", "no storage driver"
        )
        self.assertConfigError("version: 0.1\nlog: {}", "storage", "missing")

    def test_unsupported_driver(self) -> None:
        self.assertConfigError(
            "version: 0.1\nstorage: {gcs: {bucket: b}}",
            "storage",
            "storage: driver 'gcs' is not supported yet; use filesystem, inmemory or s3",
        )

    def test_wrong_types(self) -> None:
        self.assertConfigError(
            "version: 0.1\nstorage: {inmemory: , delete: {enabled: maybe}}",
            "storage.delete.enabled",
            "expected true or false",
            "'maybe'",
        )
        self.assertConfigError(
            "version: 0.1\nstorage: {inmemory: , delete: true}", "storage.delete", "mapping"
        )
        self.assertConfigError(
            "version: 0.1\nstorage: {filesystem: /data}", "storage.filesystem", "mapping"
        )
        self.assertConfigError(
            "version: 0.1\nstorage: {filesystem: {rootdirectory: [a]}}",
            "storage.filesystem.rootdirectory",
            "a list",
        )


class HTTPTests(ErrorAssertions):
    """``http``: section type, headers, strings as written, TLS files."""

    def test_wrong_section_type(self) -> None:
        self.assertConfigError(f"{MINIMAL}http: 5", "http", "expected a mapping", "'5'")

    def test_headers(self) -> None:
        config = parse(f"{MINIMAL}http: {{headers: {{X-A: [b, 1]}}}}\n")
        self.assertEqual(config.http.headers, {"X-A": ["b", "1"]})
        self.assertConfigError(
            f"{MINIMAL}http: {{headers: {{X-A: b}}}}", "http.headers.X-A", "list"
        )
        self.assertConfigError(f"{MINIMAL}http: {{headers: [a]}}", "http.headers", "mapping")
        self.assertConfigError(
            f"{MINIMAL}http: {{headers: {{X-A: [{{a: b}}]}}}}", "http.headers.X-A.0", "mapping"
        )

    def test_strings_keep_their_text(self) -> None:
        """As Go decodes into a string field: ``secret: 0123`` is "0123", not 83."""
        config = parse(f"{MINIMAL}http: {{secret: 0123, host: 'https://r.example'}}\n")
        self.assertEqual(config.http.secret, "0123")
        self.assertEqual(config.http.host, "https://r.example")
        self.assertConfigError(f"{MINIMAL}http: {{host: r.example}}", "http.host", "scheme")
        self.assertConfigError(f"{MINIMAL}http: {{prefix: v}}", "http.prefix", "'/'")

    def test_tls(self) -> None:
        cert, key = self.tls_files()
        config = parse(
            f"{MINIMAL}http: {{tls: {{certificate: {cert}, key: {key}, minimumtls: tls1.3,"
            f" clientcas: [{cert}]}}}}\n"
        )
        assert config.http.tls is not None
        self.assertEqual(
            (config.http.tls.certificate, config.http.tls.key, config.http.tls.minimumtls),
            (cert, key, "tls1.3"),
        )
        self.assertEqual(config.http.tls.clientcas, (cert,))


class AuthTests(ErrorAssertions):
    """``auth``: exactly one controller, htpasswd only."""

    def test_htpasswd_with_extensions(self) -> None:
        config = parse(
            f"{MINIMAL}auth:\n  htpasswd: {{realm: r, path: /p, admins: [root, ops],"
            " anonymous: read}\n"
        )
        assert config.auth is not None
        self.assertEqual(
            config.auth.htpasswd,
            HtpasswdConfig(realm="r", path="/p", admins=("root", "ops"), anonymous="read"),
        )

    def test_no_auth(self) -> None:
        self.assertIsNone(parse(MINIMAL).auth)
        self.assertIsNone(parse(f"{MINIMAL}auth:\n").auth)
        self.assertIsNone(parse(f"{MINIMAL}auth: {{}}\n").auth)

    def test_errors(self) -> None:
        self.assertConfigError(
            f"{MINIMAL}auth: {{token: {{realm: r}}}}", "auth.token", "use htpasswd"
        )
        self.assertConfigError(f"{MINIMAL}auth: silly", "auth.silly", "not supported")
        self.assertConfigError(f"{MINIMAL}auth: ldap", "auth", "unknown access controller 'ldap'")
        self.assertConfigError(
            f"{MINIMAL}auth: {{htpasswd: {{realm: r, path: p}}, token: {{}}}}",
            "auth",
            "two access controllers configured (htpasswd, token); keep exactly one",
        )
        self.assertConfigError(
            f"{MINIMAL}auth: {{htpasswd: {{path: /p}}}}", "auth.htpasswd.realm", "missing"
        )
        self.assertConfigError(
            f"{MINIMAL}auth: {{htpasswd: {{realm: r}}}}", "auth.htpasswd.path", "missing"
        )
        self.assertConfigError(
            f"{MINIMAL}auth: {{htpasswd: {{realm: r, path: /p, anonymous: write}}}}",
            "auth.htpasswd.anonymous",
            "'write'",
        )
        self.assertConfigError(
            f"{MINIMAL}auth: {{htpasswd: {{realm: r, path: /p, admins: ['a:b']}}}}",
            "auth.htpasswd.admins.0",
        )


class OtherSectionTests(ErrorAssertions):
    """``log``, ``health``, ``catalog``, ``packs``."""

    def test_defaults(self) -> None:
        config = parse(MINIMAL)
        self.assertEqual(
            attrs.evolve(config, warnings=(), source=""),
            Config(storage=attrs.evolve(config.storage)),
        )
        self.assertEqual(config.log.level, "info")
        self.assertEqual(config.catalog.maxentries, 1000)
        self.assertTrue(config.packs.parenttags)
        self.assertTrue(config.packs.catalogue)
        self.assertEqual(config.http.addr, ":5000")

    def test_log(self) -> None:
        config = parse(f"{MINIMAL}log: {{level: DEBUG, formatter: logstash, fields: {{a: 1}}}}")
        self.assertEqual((config.log.level, config.log.formatter), ("debug", "logstash"))
        self.assertEqual(config.log.fields, {"a": 1})
        self.assertConfigError(
            f"{MINIMAL}log: {{level: verbose}}", "log.level", "'verbose'", "debug"
        )
        self.assertConfigError(f"{MINIMAL}log: {{formatter: xml}}", "log.formatter", "'xml'")

    def test_catalog_packs_health(self) -> None:
        config = parse(
            f"{MINIMAL}catalog: {{maxentries: 7}}\npacks: {{parenttags: false}}\n"
            "health: {storagedriver: {enabled: true, interval: 1m, threshold: 5}}\n"
        )
        self.assertEqual(config.catalog.maxentries, 7)
        self.assertFalse(config.packs.parenttags)
        self.assertEqual(
            (
                config.health.storagedriver_enabled,
                config.health.storagedriver_interval,
                config.health.storagedriver_threshold,
            ),
            (True, 60.0, 5),
        )
        self.assertConfigError(
            f"{MINIMAL}catalog: {{maxentries: 0}}", "catalog.maxentries", "at least 1"
        )
        self.assertConfigError(
            f"{MINIMAL}catalog: {{maxentries: lots}}", "catalog.maxentries", "whole number"
        )
        self.assertConfigError(
            f"{MINIMAL}packs: {{parenttags: 1}}", "packs.parenttags", "true or false"
        )
        self.assertFalse(parse(f"{MINIMAL}packs: {{catalogue: false}}").packs.catalogue)
        self.assertConfigError(
            f"{MINIMAL}packs: {{catalogue: off-ish}}", "packs.catalogue", "true or false"
        )


class ShapeTests(ErrorAssertions):
    """Behaviour the model's declarations carry beyond the sections' own tests."""

    def test_driver_named_alone(self) -> None:
        """``auth: htpasswd`` names the controller; its keys are then missing."""
        self.assertConfigError(f"{MINIMAL}auth: htpasswd", "auth.htpasswd.realm", "missing")
        config = parse("version: 0.1\nstorage: filesystem\n")
        self.assertEqual((config.storage.driver, config.storage.inmemory), ("filesystem", None))

    def test_host_that_urlsplit_refuses(self) -> None:
        self.assertConfigError(
            f"{MINIMAL}http: {{host: 'http://['}}", "http.host", "not a URL with a scheme"
        )

    def test_nested_sections_and_flat_names(self) -> None:
        config = parse(
            "version: 0.1\nstorage: {inmemory: , delete: {enabled: true}}\n"
            "log: {accesslog: {disabled: true}}\n"
        )
        self.assertTrue(config.storage.delete.enabled and config.storage.delete_enabled)
        self.assertTrue(config.log.accesslog.disabled and config.log.accesslog_disabled)
        self.assertIsNone(config.storage.filesystem)

    def test_unimplemented_values_are_kept(self) -> None:
        config = parse(
            f"{MINIMAL}proxy: {{remoteurl: 'x:1'}}\nhttp: {{http2: {{disabled: true}}}}\n"
        )
        self.assertEqual(config.proxy, {"remoteurl": "x:1"})
        self.assertEqual(config.http.http2, {"disabled": True})


class ConnectionsTests(ErrorAssertions):
    """``http.connections`` (paxd extension): deadlines and caps, with safe defaults."""

    def test_defaults(self) -> None:
        c = parse(MINIMAL).http.connections
        self.assertEqual(
            (c.headertimeout, c.idletimeout, c.bodytimeout, c.bodyminrate, c.maxperclient),
            (30.0, 60.0, 30.0, 1024, 128),
        )
        self.assertEqual(c.backlog, 0)  # the system's somaxconn

    def test_values_and_environment(self) -> None:
        c = parse(
            f"{MINIMAL}http: {{connections: {{headertimeout: 5s, maxperclient: 0, backlog: 9}}}}",
            {"REGISTRY_HTTP_CONNECTIONS_BODYMINRATE": "0"},
        ).http.connections
        self.assertEqual(
            (c.headertimeout, c.maxperclient, c.backlog, c.bodyminrate), (5.0, 0, 9, 0)
        )

    def test_trusted_proxies(self) -> None:
        c = parse(
            f"{MINIMAL}http: {{connections: {{trustedproxies: [10.0.0.5, '192.168.0.0/24']}}}}"
        ).http.connections
        self.assertEqual(c.trustedproxies, ("10.0.0.5", "192.168.0.0/24"))
        self.assertEqual(parse(MINIMAL).http.connections.trustedproxies, ())
        self.assertConfigError(
            f"{MINIMAL}http: {{connections: {{trustedproxies: [haproxy]}}}}",
            "http.connections.trustedproxies.0",
            "not an IP address or network",
        )

    def test_errors(self) -> None:
        self.assertConfigError(
            f"{MINIMAL}http: {{connections: {{headertimeout: 0s}}}}",
            "http.connections.headertimeout",
            "more than zero",
        )
        self.assertConfigError(
            f"{MINIMAL}http: {{connections: {{maxperclient: -1}}}}",
            "http.connections.maxperclient",
            "at least 0",
        )
        self.assertConfigError(
            f"{MINIMAL}http: {{connections: {{bodyminrate: fast}}}}",
            "http.connections.bodyminrate",
            "whole number",
        )
