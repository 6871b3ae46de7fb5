"""Tests for :mod:`paxd.config`: distribution's YAML, ``REGISTRY_*`` overrides, errors."""

from __future__ import annotations

import os
from pathlib import Path

import attrs
from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.internet.endpoints import serverFromString
from twisted.internet.testing import MemoryReactor
from twisted.trial.unittest import SkipTest, SynchronousTestCase

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

HERE = Path(__file__).parent
REPO = HERE.parent
CONFIGS = HERE / "configs"
SOURCE = "/etc/paxd/config.yml"
MINIMAL = "version: 0.1\nstorage: inmemory\n"


def parse(text: str, environ: dict[str, str] | None = None) -> Config:
    """Parse *text* as if it were the file SOURCE."""
    return parse_config(text, SOURCE, environ or {})


class ErrorAssertions(SynchronousTestCase):
    """Shared assertion: an error names the file and the key path, on one line."""

    def assertConfigError(
        self, text: str, key: str, *fragments: str, environ: dict[str, str] | None = None
    ) -> ConfigError:
        error = self.assertRaises(ConfigError, parse, text, environ)
        message = str(error)
        self.assertEqual(error.path, SOURCE)
        self.assertEqual(error.key, key)
        self.assertTrue(message.startswith(f"{SOURCE}: {key}: "), message)
        self.assertNotIn("\n", message)
        for fragment in fragments:
            self.assertIn(fragment, message)
        return error


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
        self.assertEqual(config.endpoint_descriptions(), ["tcp:5000"])
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

    def test_config_yml_is_the_default(self) -> None:
        """etc/paxd/config.yml means exactly what DEFAULT_CONFIG_TEXT means."""
        from_file = load_config(str(REPO / "etc" / "paxd" / "config.yml"), {})
        self.assertEqual(
            attrs.evolve(from_file, source=""), attrs.evolve(load_default_config({}), source="")
        )

    def test_quickstart(self) -> None:
        """Plain HTTP on loopback, ./data relative to the current directory, delete on, no auth."""
        config = load_config(str(REPO / "etc" / "paxd" / "quickstart.yml"), {})
        self.assertEqual(config.endpoint_descriptions(), ["tcp:5000:interface=127.0.0.1"])
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
        warned = sorted(w.split(":")[0] for w in config.warnings)
        self.assertEqual(
            warned,
            [
                "health.storagedriver",
                "http.debug",
                "http.draintimeout",
                "http.secret",
                "log.hooks",
                "notifications",
                "redis",
                "storage.cache",
                "storage.filesystem.maxthreads",
                "storage.maintenance.uploadpurging",
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

    def test_syntax_error_has_line_and_column(self) -> None:
        error = self.assertRaises(ConfigError, parse, "version: 0.1\nstorage:\n  inmemory: {\n")
        self.assertTrue(str(error).startswith(f"{SOURCE}: line "), str(error))
        error = self.assertRaises(ConfigError, parse, "version: 0.1\n  storage: x: y\n")
        self.assertEqual(
            str(error),
            f"{SOURCE}: line 2, column 10: YAML syntax error: mapping values are not allowed"
            " here; check the indentation and quoting",
        )

    def test_duplicate_key(self) -> None:
        error = self.assertRaises(ConfigError, parse, MINIMAL + "storage: inmemory\n")
        self.assertIn("line 3", str(error))
        self.assertIn("'storage' appears twice", str(error))

    def test_merge_keys_may_override(self) -> None:
        text = (
            "version: 0.1\nstorage: inmemory\nbase: &b {level: warn}\n"
            "log:\n  <<: *b\n  level: debug\n"
        )
        self.assertEqual(parse(text).log.level, "debug")

    def test_empty_and_not_a_mapping(self) -> None:
        self.assertIn("empty", str(self.assertRaises(ConfigError, parse, "# nothing\n")))
        self.assertIn("a list", str(self.assertRaises(ConfigError, parse, "- version\n")))

    def test_error_attributes(self) -> None:
        error = ConfigError("f.yml", "a.b", "bad\nthing")
        self.assertEqual((error.path, error.key, error.message), ("f.yml", "a.b", "bad thing"))
        self.assertEqual(str(error), "f.yml: a.b: bad thing")
        self.assertEqual(str(ConfigError("f.yml", "", "gone")), "f.yml: gone")


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
            "version: 0.1\nstorage: {s3: {bucket: b}}",
            "storage",
            "storage: driver 's3' is not supported yet; use filesystem or inmemory",
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
    """``http``: addresses, headers, TLS files."""

    def endpoints(self, http: str) -> list[str]:
        return parse(f"{MINIMAL}http: {http}\n").endpoint_descriptions()

    def test_addresses(self) -> None:
        self.assertEqual(self.endpoints("{}"), ["tcp:5000"])
        self.assertEqual(self.endpoints("{addr: ':8080'}"), ["tcp:8080"])
        self.assertEqual(
            self.endpoints("{addr: 192.168.122.77:25000}"),
            ["tcp:25000:interface=192.168.122.77"],
        )
        self.assertEqual(self.endpoints("{addr: '[::1]:5000'}"), ["tcp6:5000:interface=\\:\\:1"])
        self.assertEqual(self.endpoints("{addr: '[::]:443'}"), ["tcp6:443:interface=\\:\\:"])
        self.assertEqual(
            self.endpoints("{net: unix, addr: /run/paxd.sock}"), ["unix:/run/paxd.sock"]
        )

    def test_descriptions_parse_in_twisted(self) -> None:
        """The escaping is what Twisted's endpoint parser expects."""
        endpoint = serverFromString(MemoryReactor(), self.endpoints("{addr: '[fe80::1]:5000'}")[0])
        self.assertEqual(endpoint._interface, "fe80::1")
        self.assertEqual(endpoint._port, 5000)
        endpoint = serverFromString(MemoryReactor(), self.endpoints("{net: unix, addr: '/a:b'}")[0])
        self.assertEqual(endpoint._address, "/a:b")

    def test_listen_extension(self) -> None:
        listen = ["tcp:5000:interface=127.0.0.1", "systemd:domain=INET:index=0"]
        config = parse(f"{MINIMAL}http: {{listen: [{', '.join(listen)}]}}\n")
        self.assertEqual(config.endpoint_descriptions(), listen)
        self.assertEqual(config.warnings, ())
        config = parse(f"{MINIMAL}http: {{addr: ':1', listen: 'tcp:6000'}}\n")
        self.assertEqual(config.endpoint_descriptions(), ["tcp:6000"])
        self.assertIn("http.addr: not used because http.listen is set", config.warnings)
        self.assertConfigError(f"{MINIMAL}http: {{listen: [bogus]}}", "http.listen.0", "bogus")

    def test_bad_addresses(self) -> None:
        cases = {
            "127.0.0.1:99999": "99999",
            "127.0.0.1:http": "'http' is not a number",
            "5000": "no port",
            "localhost:5000": "use an IP address",
            "::1:5000": "brackets",
            "[127.0.0.1]:5000": "only IPv6",
        }
        for addr, fragment in cases.items():
            self.assertConfigError(f"{MINIMAL}http: {{addr: '{addr}'}}", "http.addr", fragment)
        self.assertConfigError(f"{MINIMAL}http: {{net: udp}}", "http.net", "'udp'")

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

    def test_draintimeout(self) -> None:
        self.assertEqual(
            parse(f"{MINIMAL}http: {{draintimeout: 1h2m3.5s}}").http.draintimeout, 3723.5
        )
        self.assertEqual(parse(f"{MINIMAL}http: {{draintimeout: 250ms}}").http.draintimeout, 0.25)
        self.assertEqual(parse(f"{MINIMAL}http: {{draintimeout: 0}}").http.draintimeout, 0.0)
        self.assertConfigError(
            f"{MINIMAL}http: {{draintimeout: 10 s}}", "http.draintimeout", "duration"
        )

    def tls_files(self) -> tuple[str, str]:
        base = Path(self.mktemp()).absolute()
        base.mkdir()
        (base / "c.pem").write_text("c")
        (base / "k.pem").write_text("k")
        return str(base / "c.pem"), str(base / "k.pem")

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

    def test_tls_missing_files(self) -> None:
        cert, key = self.tls_files()
        missing = cert + ".missing"
        error = self.assertConfigError(
            f"{MINIMAL}http: {{tls: {{certificate: {missing}, key: {key}}}}}",
            "http.tls.certificate",
            missing,
            "does not exist",
        )
        self.assertNotIn(key, str(error))
        self.assertConfigError(
            f"{MINIMAL}http: {{tls: {{certificate: {cert}, key: {missing}}}}}",
            "http.tls.key",
            missing,
        )
        directory = os.path.dirname(cert)
        self.assertConfigError(
            f"{MINIMAL}http: {{tls: {{certificate: {directory}, key: {key}}}}}",
            "http.tls.certificate",
            "is a directory",
        )

    def test_tls_unreadable_key(self) -> None:
        if os.getuid() == 0:
            raise SkipTest("root reads every file")
        cert, key = self.tls_files()
        os.chmod(key, 0)
        self.addCleanup(os.chmod, key, 0o600)
        self.assertConfigError(
            f"{MINIMAL}http: {{tls: {{certificate: {cert}, key: {key}}}}}",
            "http.tls.key",
            key,
            "not readable",
        )

    def test_tls_inconsistent(self) -> None:
        cert, key = self.tls_files()
        self.assertConfigError(
            f"{MINIMAL}http: {{tls: {{certificate: {cert}}}}}", "http.tls.key", "missing"
        )
        self.assertConfigError(
            f"{MINIMAL}http: {{tls: {{certificate: {cert}, key: {key},"
            " letsencrypt: {cachefile: /c, hosts: [a]}}}",
            "http.tls",
            "both",
        )
        self.assertConfigError(
            f"{MINIMAL}http: {{tls: {{certificate: {cert}, key: {key}, minimumtls: ssl3}}}}",
            "http.tls.minimumtls",
            "'ssl3'",
        )
        self.assertConfigError(
            f"{MINIMAL}http: {{tls: {{letsencrypt: {{hosts: [a]}}}}}}",
            "http.tls.letsencrypt.cachefile",
            "missing",
        )

    def test_tls_without_certificate_is_plain_http(self) -> None:
        config = parse(f"{MINIMAL}http: {{tls: {{minimumtls: tls1.2}}}}\n")
        self.assertIsNone(config.http.tls)
        self.assertEqual(len(config.warnings), 1)
        self.assertIn("plain HTTP", config.warnings[0])


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
    """``log``, ``health``, ``catalog``, ``packs``, and keys paxd does not implement."""

    def test_defaults(self) -> None:
        config = parse(MINIMAL)
        self.assertEqual(
            attrs.evolve(config, warnings=(), source=""),
            Config(storage=attrs.evolve(config.storage)),
        )
        self.assertEqual(config.log.level, "info")
        self.assertEqual(config.catalog.maxentries, 1000)
        self.assertTrue(config.packs.parenttags)
        self.assertEqual(config.http.addr, ":5000")

    def test_log(self) -> None:
        config = parse(f"{MINIMAL}log: {{level: DEBUG, formatter: logstash, fields: {{a: 1}}}}")
        self.assertEqual((config.log.level, config.log.formatter), ("debug", "logstash"))
        self.assertEqual(config.log.fields, {"a": 1})
        self.assertConfigError(
            f"{MINIMAL}log: {{level: verbose}}", "log.level", "'verbose'", "debug"
        )
        self.assertConfigError(f"{MINIMAL}log: {{formatter: xml}}", "log.formatter", "'xml'")

    def test_legacy_loglevel(self) -> None:
        config = parse(f"{MINIMAL}loglevel: warn\n")
        self.assertEqual(config.log.level, "warn")
        self.assertIn("loglevel: deprecated; use log.level", config.warnings)

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

    def test_unimplemented_keys_warn_once_each(self) -> None:
        config = parse(
            f"{MINIMAL}notifications: {{endpoints: []}}\nredis: {{addr: x}}\n"
            "http: {debug: {addr: ':5001'}, http2: {disabled: true}}\nproxy:\n"
        )
        self.assertEqual(
            config.warnings,
            (
                "notifications: not implemented by paxd; ignored",
                "redis: not implemented by paxd; ignored",
                "http.debug: not implemented by paxd; ignored",
                "http.http2: not implemented by paxd; ignored",
            ),
        )

    def test_unknown_keys_suggest(self) -> None:
        config = parse(f"{MINIMAL}htpp: {{addr: ':1'}}\nlog: {{levle: info}}\n")
        self.assertEqual(
            config.warnings,
            (
                "htpp: unknown key; ignored (did you mean 'http'?)",
                "log.levle: unknown key; ignored (did you mean 'level'?)",
            ),
        )


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
        self.assertEqual(config.endpoint_descriptions(), ["tcp:1", "tcp:3"])

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
            config.endpoint_descriptions()

    def test_default_text_is_exported(self) -> None:
        self.assertTrue(DEFAULT_CONFIG_TEXT.startswith("version: 0.1\n"))
