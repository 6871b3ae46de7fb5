"""Wiring shared state: one Redis client and pool per daemon, for the index and the throttle."""

from __future__ import annotations

from typing import Any

from twisted.application.service import MultiService
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase
from twisted.web.resource import Resource

from paxd.auth.throttlestate import InProcessThrottleState
from paxd.config import parse_config
from paxd.shared.index import RedisIndex
from paxd.shared.throttle import RedisThrottleState
from paxd.storage.memory import MemoryStorage
from paxd.tap import make_index, make_protect
from paxd.threadpool import ThreadPoolService

CONFIG = """\
version: 0.1
storage:
  inmemory: {{}}
auth:
  htpasswd:
    realm: paxd
    path: {path}
"""

# nothing listens there: no connection is made while wiring
REDIS = """\
redis:
  addr: 127.0.0.1:9
"""


class SharedWiringTests(SynchronousTestCase):
    def wire(self, extra: str = "") -> tuple[Any, Any, MultiService]:
        path = self.mktemp()
        with open(path, "w") as f:
            f.write("admin:$2y$05$" + "a" * 53 + "\n")
        config = parse_config(CONFIG.format(path=path) + extra, "f.yml", {})
        parent = MultiService()
        clock = Clock()
        index = make_index(config, MemoryStorage(), clock, parent)
        protect = make_protect(config, clock, parent)
        gate = protect(lambda access: Resource(), True)
        return index, gate.throttle, parent  # type: ignore[attr-defined]

    def test_throttle_shares_the_index_client_and_pool(self) -> None:
        index, throttle, parent = self.wire(REDIS)
        assert isinstance(index, RedisIndex)
        self.assertIsInstance(throttle.state, RedisThrottleState)
        self.assertIs(throttle.state.client, index._client)
        pools = [s.pool.name for s in parent if isinstance(s, ThreadPoolService)]
        self.assertEqual(sorted(pools), ["paxd-auth", "paxd-redis"])

    def test_without_redis_the_throttle_is_this_process_own(self) -> None:
        index, throttle, _ = self.wire()
        self.assertIsNone(index)
        self.assertIsInstance(throttle.state, InProcessThrottleState)
