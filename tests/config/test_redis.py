"""Tests for :mod:`paxd.config.redis`: distribution's ``redis`` section, 2.8's and 3.x's forms."""

from __future__ import annotations

from tests.config.support import MINIMAL, ErrorAssertions, parse


class RedisSectionTests(ErrorAssertions):
    """``redis`` is read as distribution 2.8 and 3.x write it."""

    def test_absent(self) -> None:
        self.assertIsNone(parse(MINIMAL).redis)
        self.assertIsNone(parse(f"{MINIMAL}redis:\n").redis)

    def test_distribution_28(self) -> None:
        config = parse(
            f"{MINIMAL}redis:\n  addr: redis.local:6380\n  password: s3cret\n  db: 2\n"
            "  dialtimeout: 10ms\n  readtimeout: 2s\n  writetimeout: 4s\n"
            "  pool: {maxidle: 16, maxactive: 8, idletimeout: 300s}\n  tls: {enabled: true}\n"
        )
        redis = config.redis
        assert redis is not None
        self.assertEqual((redis.host, redis.port, redis.db), ("redis.local", 6380, 2))
        self.assertEqual(redis.password, "s3cret")
        self.assertEqual(redis.connect_timeout, 0.01)
        self.assertEqual(redis.socket_timeout, 4.0)
        self.assertEqual((redis.pool.maxactive, redis.pool.idletimeout), (8, 300.0))
        self.assertTrue(redis.tls.on)
        warning = "redis.pool.maxidle: not used (paxd's client keeps the connections it opened)"
        self.assertEqual(config.warnings, (f"{warning}; ignored",))

    def test_distribution_3(self) -> None:
        cert, key = self.tls_files()
        redis = parse(
            f"{MINIMAL}redis:\n  addrs: [10.0.0.5:6379]\n  username: paxd\n  poolsize: 4\n"
            f"  connmaxidletime: 60s\n"
            f"  tls: {{certificate: {cert}, key: {key}, clientcas: [{cert}]}}\n"
        ).redis
        assert redis is not None
        self.assertEqual((redis.host, redis.port, redis.username), ("10.0.0.5", 6379, "paxd"))
        self.assertEqual((redis.pool.maxactive, redis.pool.idletimeout), (4, 60.0))
        self.assertTrue(redis.tls.on)
        self.assertEqual(redis.tls.clientcas, (cert,))
        # go-redis's defaults when no timeout is set
        self.assertEqual((redis.connect_timeout, redis.socket_timeout), (5.0, 3.0))

    def test_environment(self) -> None:
        redis = parse(
            MINIMAL, {"REGISTRY_REDIS_ADDR": "redis:7000", "REGISTRY_REDIS_POOL_MAXACTIVE": "3"}
        ).redis
        assert redis is not None
        self.assertEqual((redis.host, redis.port, redis.pool.maxactive), ("redis", 7000, 3))

    def test_mistakes(self) -> None:
        self.assertConfigError(f"{MINIMAL}redis: {{db: 1}}", "redis.addr", "missing")
        self.assertConfigError(
            f"{MINIMAL}redis: {{addrs: [a:1, b:2]}}", "redis.addrs", "2 addresses", "keep one"
        )
        self.assertConfigError(f"{MINIMAL}redis: {{addr: a:1, addrs: [b:1]}}", "redis.addrs")
        self.assertConfigError(f"{MINIMAL}redis: {{addr: 'a:x'}}", "redis.addr", "'x'")
        self.assertConfigError(
            f"{MINIMAL}redis: {{addr: a:1, poolsize: 2, pool: {{maxactive: 3}}}}",
            "redis.poolsize",
            "keep one",
        )
        self.assertConfigError(
            f"{MINIMAL}redis: {{addr: a:1, mastername: m}}", "redis.mastername", "Sentinel"
        )
        cert, _ = self.tls_files()
        self.assertConfigError(
            f"{MINIMAL}redis: {{addr: a:1, tls: {{certificate: {cert}}}}}", "redis.tls.key"
        )
        self.assertConfigError(
            f"{MINIMAL}redis: {{addr: a:1, tls: {{clientcas: [/nonexistent.pem]}}}}",
            "redis.tls.clientcas.0",
            "does not exist",
        )


class WorkersKeyTests(ErrorAssertions):
    """``http.workers`` (paxd extension): how many processes serve the listeners."""

    def test_default_and_set(self) -> None:
        self.assertEqual(parse(MINIMAL).http.workers, 1)
        self.assertEqual(parse(f"{MINIMAL}http: {{workers: 4}}").http.workers, 4)
        self.assertEqual(parse(MINIMAL, {"REGISTRY_HTTP_WORKERS": "2"}).http.workers, 2)
        self.assertConfigError(f"{MINIMAL}http: {{workers: 0}}", "http.workers", "at least 1")
