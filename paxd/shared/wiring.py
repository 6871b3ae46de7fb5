"""The shared index in the service tree: its thread pool, client and watcher, from ``redis:``."""

from __future__ import annotations

from typing import Any

from twisted.application.service import MultiService, Service
from twisted.logger import Logger

from paxd.config import Config
from paxd.shared.client import RedisClient, make_redis
from paxd.shared.index import RedisIndex
from paxd.storage.interface import IStorageDriver
from paxd.threadpool import PoolRunner, ThreadPoolService, make_pool

__all__ = ["shared_index"]

log = Logger(namespace="paxd")

#: Redis calls are short: a few threads keep up with many requests
MAX_REDIS_THREADS = 16


class _Closing(Service):
    """Stops the index's watcher and closes the Redis connections with the daemon."""

    def __init__(self, index: RedisIndex, client: RedisClient) -> None:
        self.index = index
        self.client = client

    def stopService(self) -> None:
        super().stopService()
        self.index.stop()
        self.client.close()


def shared_index(
    config: Config, driver: IStorageDriver, reactor: Any, parent: MultiService
) -> RedisIndex:
    """The RedisIndex ``redis:`` describes, its pool and its shutdown under *parent*."""
    redis_config = config.redis
    assert redis_config is not None
    threads = min(redis_config.pool.maxactive, MAX_REDIS_THREADS)
    pool = make_pool("paxd-redis", threads)
    ThreadPoolService(pool).setServiceParent(parent)
    client = RedisClient(make_redis(redis_config), PoolRunner(reactor, pool), redis_config.address)
    index = RedisIndex(client, driver, reactor, parent_tags=config.packs.parenttags)
    _Closing(index, client).setServiceParent(parent)
    log.info(
        "shared state in Redis at {address} (db {db}): catalog, _packs and tag locks are"
        " shared with every paxd process using it",
        address=redis_config.address,
        db=redis_config.db,
    )
    return index
