"""Configuration mistakes that would lower security are refused, not warned about.

An unknown key under ``http``, ``http.tls`` (and its ``letsencrypt``),
``http.redirect``, ``auth.htpasswd`` or a storage driver's section stops the
daemon with "did you mean"; a top level holding keys of deeper sections (the
indentation was lost) stops it too; elsewhere an unknown key is a warning with a
suggestion, and so is a ``REGISTRY_*`` variable that names no key.
"""

from __future__ import annotations

from paxd.config import ConfigError
from tests.config.support import CONFIGS, MINIMAL, SOURCE, ErrorAssertions, parse


class StrictSectionTests(ErrorAssertions):
    def test_misspelt_tls_key_is_refused(self) -> None:
        crt, key = self.tls_files()
        error = self.assertConfigError(
            f"{MINIMAL}http:\n  tls:\n    certficate: {crt}\n    key: {key}\n",
            "http.tls.certficate",
            "unknown key",
            "did you mean 'certificate'?",
            "correct or remove it",
        )
        self.assertIn("under http.tls", str(error))

    def test_every_strict_section(self) -> None:
        cases = {
            "http:\n  adr: ':5000'\n": ("http.adr", "'addr'"),
            "http:\n  tls:\n    letsencrypt:\n      cachefile: /tmp/x\n      hots: [a.example]\n": (
                "http.tls.letsencrypt.hots",
                "'hosts'",
            ),
            "http:\n  redirect:\n    lisen: [tcp:80]\n": ("http.redirect.lisen", "'listen'"),
            "auth:\n  htpasswd:\n    realm: r\n    path: /tmp/h\n    anonymus: read\n": (
                "auth.htpasswd.anonymus",
                "'anonymous'",
            ),
        }
        for text, (key, hint) in cases.items():
            self.assertConfigError(f"{MINIMAL}{text}", key, "unknown key", hint)
        self.assertConfigError(
            "version: 0.1\nstorage:\n  filesystem:\n    rootdirectoy: /tmp/r\n",
            "storage.filesystem.rootdirectoy",
            "did you mean 'rootdirectory'?",
        )
        self.assertConfigError(
            "version: 0.1\nstorage:\n  inmemory:\n    size: 1\n", "storage.inmemory.size"
        )

    def test_key_one_level_too_high_names_its_place(self) -> None:
        """``certificate`` directly under ``http``: the indentation, not the spelling."""
        self.assertConfigError(
            f"{MINIMAL}http:\n  certificate: /x.crt\n",
            "http.certificate",
            "did you mean 'http.tls.certificate'? (check the indentation)",
        )

    def test_environment_reaching_a_strict_section_is_judged_too(self) -> None:
        self.assertConfigError(
            "version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: /tmp/r\n",
            "storage.filesystem.rootdirectry",
            "did you mean 'rootdirectory'?",
            "(the environment sets REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTRY)",
            environ={"REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTRY": "/tmp/q"},
        )

    def test_known_but_unimplemented_keys_still_only_warn(self) -> None:
        config = parse(f"{MINIMAL}http:\n  h2c: {{enabled: true}}\n  relativeurls: true\n")
        self.assertIn("http.h2c: not implemented by paxd; ignored", config.warnings)


class MisplacedKeyTests(ErrorAssertions):
    def assertTopLevelError(self, text: str, *fragments: str) -> ConfigError:
        error = self.assertRaises(ConfigError, parse, text)
        message = str(error)
        self.assertEqual((error.path, error.key), (SOURCE, ""))
        self.assertTrue(message.startswith(f"{SOURCE}: the top level holds keys"), message)
        self.assertNotIn("\n", message)
        for fragment in fragments:
            self.assertIn(fragment, message)
        return error

    def test_seed_with_its_indentation_lost(self) -> None:
        """The guide's YAML flattened: refused, naming where each key belongs."""
        text = (CONFIGS / "seed-flattened.yml").read_text()
        self.assertTopLevelError(
            text,
            "level (log.level)",
            "addr (http.addr",
            "tls (http.tls",
            "letsencrypt (http.tls.letsencrypt)",
            "htpasswd (auth.htpasswd)",
            "realm (auth.htpasswd.realm)",
            "indentation was probably lost",
        )

    def test_the_documented_seed_flattened_line_by_line(self) -> None:
        lines = (CONFIGS / "seed-letsencrypt.yml").read_text().splitlines()
        flat = "\n".join(line.strip() for line in lines) + "\n"
        self.assertTopLevelError(flat, "tls (http.tls", "cachefile (http.tls.letsencrypt")

    def test_one_misplaced_key_is_enough(self) -> None:
        for key in ("rootdirectory", "certificate", "path", "key", "addr", "htpasswd"):
            self.assertTopLevelError(f"{MINIMAL}{key}: x\n", f": {key} (")

    def test_other_sections_warn_with_the_place(self) -> None:
        config = parse(f"{MINIMAL}log:\n  disabled: true\n")
        self.assertEqual(
            config.warnings,
            (
                "log.disabled: unknown key; ignored (did you mean 'log.accesslog.disabled'?"
                " (check the indentation))",
            ),
        )

    def test_unknown_top_level_key_still_warns(self) -> None:
        config = parse(f"{MINIMAL}htpp: {{addr: ':1'}}\n")
        self.assertEqual(config.warnings, ("htpp: unknown key; ignored (did you mean 'http'?)",))


class EnvironmentTests(ErrorAssertions):
    def test_misspelt_variable_names_the_closest(self) -> None:
        config = parse(
            MINIMAL,
            {
                "REGISTRY_HTTP_TLS_CERTFICATE": "/x.crt",
                "REGISTRY_LOGG_LEVEL": "debug",
            },
        )
        self.assertEqual(
            config.warnings,
            (
                "REGISTRY_LOGG_LEVEL: paxd has no configuration key 'logg' here"
                " (did you mean REGISTRY_LOG_LEVEL?); ignored",
                "REGISTRY_HTTP_TLS_CERTFICATE: paxd has no configuration key 'certficate' here"
                " (did you mean REGISTRY_HTTP_TLS_CERTIFICATE?); ignored",
            ),
        )
        self.assertIsNone(config.http.tls)

    def test_variable_inside_a_driver_section_is_judged_as_a_key(self) -> None:
        """``auth.htpasswd`` is a driver's parameter map: the variable makes a key, refused."""
        self.assertConfigError(
            f"{MINIMAL}auth:\n  htpasswd:\n    realm: r\n    path: /tmp/h\n",
            "auth.htpasswd.relm",
            "did you mean 'realm'?",
            environ={"REGISTRY_AUTH_HTPASSWD_RELM": "r"},
        )
