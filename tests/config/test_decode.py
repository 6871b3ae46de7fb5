"""Tests for :mod:`paxd.config.decode`: keys paxd does not implement or know."""

from __future__ import annotations

from tests.config.support import MINIMAL, ErrorAssertions, parse


class KeyTests(ErrorAssertions):
    """Keys paxd does not implement are warned about once each; unknown keys get a suggestion."""

    def test_unimplemented_keys_warn_once_each(self) -> None:
        config = parse(
            f"{MINIMAL}notifications: {{endpoints: []}}\nreporting: {{bugsnag: {{}}}}\n"
            "http: {h2c: {enabled: true}, http2: {disabled: true}}\nproxy:\n"
        )
        self.assertEqual(
            config.warnings,
            (
                "notifications: not implemented by paxd; ignored",
                "reporting: not implemented by paxd; ignored",
                "http.h2c: not implemented by paxd; ignored",
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

    def test_warnings_keep_their_order(self) -> None:
        """Section by section: unknown and unimplemented keys, keys set but unused, then inner."""
        config = parse(
            f"{MINIMAL}loglevel: warn\n"
            "log: {accesslog: {x: 1}, hooks: [a]}\n"
            "http: {draintimeout: 1s, secret: s, prefix: /r, addr: ':1', listen: [tcp:2],"
            " h2c: {a: 1}, tls: {minimumtls: tls1.2}}\n"
            "health: {storagedriver: {x: 1}}\n"
        )
        self.assertEqual(
            config.warnings,
            (
                "log.hooks: not implemented by paxd; ignored",
                "loglevel: deprecated; use log.level",
                "log.accesslog.x: unknown key; ignored",
                "http.h2c: not implemented by paxd; ignored",
                "http.addr: not used because http.listen is set",
                "http.prefix: not implemented; paxd serves /v1/ and /v2/ at the root",
                "http.secret: not used; paxd keeps upload state in storage, so every replica"
                " resumes any upload without a shared secret",
                "http.draintimeout: not implemented; paxd stops when its requests end",
                "http.tls: no certificate configured, so paxd serves plain HTTP; minimumtls"
                " ignored",
                "health.storagedriver.x: unknown key; ignored",
                "health.storagedriver: /health checks storage on every request instead;"
                " interval and threshold are not used",
            ),
        )
        self.assertEqual(config.log.level, "warn")
