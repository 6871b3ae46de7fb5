"""Shared state in the service tree, from ``redis:``: one client and pool, index, throttle."""

from __future__ import annotations

from typing import Any

from twisted.application.service import MultiService, Service
from twisted.logger import Logger

from paxd.config import Config
from paxd.shared.client import RedisClient, make_redis
from paxd.shared.index import RedisIndex
from paxd.shared.throttle import RedisThrottleState
from paxd.storage.interface import IStorageDriver
from paxd.threadpool import PoolRunner, ThreadPoolService, make_pool

__all__ = ["redis_client", "shared_index", "shared_throttle_state"]

log = Logger(namespace="paxd")

#: Redis calls are short: a few threads keep up with many requests
MAX_REDIS_THREADS = 16

#: the name of the service holding a service tree's one Redis client
_CLIENT_SERVICE = "paxd-redis-client"


class _ClientService(Service):
    """Holds the tree's Redis client, and closes its connections with the daemon."""

    def __init__(self, client: RedisClient) -> None:
        self.client = client

    def stopService(self) -> None:
        super().stopService()
        self.client.close()


class _Closing(Service):
    """Stops the index's watcher with the daemon (before the client closes)."""

    def __init__(self, index: RedisIndex) -> None:
        self.index = index

    def stopService(self) -> None:
        super().stopService()
        self.index.stop()


def redis_client(config: Config, reactor: Any, parent: MultiService) -> RedisClient:
    """The one Redis client of *parent*'s tree (made with its ``paxd-redis`` pool at first use)."""
    try:
        holder = parent.getServiceNamed(_CLIENT_SERVICE)
    except KeyError:
        pass
    else:
        assert isinstance(holder, _ClientService)
        return holder.client
    redis_config = config.redis
    assert redis_config is not None
    threads = min(redis_config.pool.maxactive, MAX_REDIS_THREADS)
    pool = make_pool("paxd-redis", threads)
    ThreadPoolService(pool).setServiceParent(parent)
    client = RedisClient(make_redis(redis_config), PoolRunner(reactor, pool), redis_config.address)
    holder = _ClientService(client)
    holder.setName(_CLIENT_SERVICE)
    holder.setServiceParent(parent)
    return client


def shared_index(
    config: Config, driver: IStorageDriver, reactor: Any, parent: MultiService
) -> RedisIndex:
    """The RedisIndex ``redis:`` describes, on the tree's client; its shutdown under *parent*."""
    redis_config = config.redis
    assert redis_config is not None
    client = redis_client(config, reactor, parent)
    index = RedisIndex(client, driver, reactor, parent_tags=config.packs.parenttags)
    _Closing(index).setServiceParent(parent)
    log.info(
        "shared state in Redis at {address} (db {db}): catalog, _packs and tag locks are"
        " shared with every paxd process using it",
        address=redis_config.address,
        db=redis_config.db,
    )
    return index


def shared_throttle_state(config: Config, reactor: Any, parent: MultiService) -> RedisThrottleState:
    """The login throttle's table in Redis (on the tree's client), shared by every replica."""
    return RedisThrottleState(redis_client(config, reactor, parent), reactor)
