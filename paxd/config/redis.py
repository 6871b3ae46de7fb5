"""``redis``: where the state several paxd processes share lives (Docker distribution's section).

Both of distribution's forms are read: 2.8's ``addr`` and ``pool`` and 3.x's
``addrs`` (one address: paxd speaks to one Redis server, not to a Cluster
or through Sentinel) with its ``poolsize``/``maxidleconns``/``connmaxidletime``
spellings. Without the section paxd keeps its state in its own memory and runs
as one process (see ``docs/replicas.rst``).
"""

from __future__ import annotations

from typing import Any, ClassVar

import attrs

from paxd.config.context import Context
from paxd.config.files import readable_file
from paxd.config.schema import Converter, Rule, Section, items, leaf, section, unimplemented
from paxd.config.values import boolean, duration, integer, string, strings
from paxd.config.yamlload import is_null

__all__ = ["DEFAULT_REDIS_PORT", "RedisConfig", "RedisPoolConfig", "RedisTLSConfig"]

DEFAULT_REDIS_PORT = 6379
#: go-redis's defaults, used when a timeout is not set (distribution 2.8 waits for ever)
DEFAULT_DIAL_TIMEOUT = 5.0
DEFAULT_READ_TIMEOUT = 3.0


def _optional(convert: Converter) -> Converter:
    """*convert*, or None when the key is not set (a 3.x spelling of a 2.8 key)."""

    def optional(ctx: Context, value: Any, key: str, default: Any) -> Any:
        return None if is_null(value) else convert(ctx, value, key, 0)

    return optional


_ONE_SERVER = "paxd speaks to one Redis server (not a Cluster, not through Sentinel)"


@attrs.frozen
class RedisPoolConfig:
    """``redis.pool`` (distribution 2.8): the connection pool."""

    #: redis-py keeps the connections it opened; accepted, not used
    maxidle: Any = unimplemented(why="not used (paxd's client keeps the connections it opened)")
    #: the most connections (and threads waiting on Redis) at once
    maxactive: int = leaf(integer(minimum=1), default=16)
    #: a connection idle this long is checked with PING before it is used again
    idletimeout: float = leaf(duration(), default=300.0)


def _tls_files(ctx: Context, values: dict[str, Any], section: dict[str, Any], key: str) -> None:
    if bool(values["certificate"]) != bool(values["key"]):
        missing = "key" if values["certificate"] else "certificate"
        ctx.fail(f"{key}.{missing}", "missing; a client certificate needs both certificate and key")
    for name in ("certificate", "key"):
        if values[name]:
            values[name] = readable_file(ctx, values[name], f"{key}.{name}")
    values["clientcas"] = tuple(
        readable_file(ctx, path, f"{key}.clientcas.{i}")
        for i, path in enumerate(values["clientcas"])
    )


@attrs.frozen
class RedisTLSConfig:
    """``redis.tls``: TLS to Redis (2.8's ``enabled``; 3.x's client certificate and CAs)."""

    SECTION: ClassVar[Section] = Section(rules=(Rule(_tls_files),))

    enabled: bool = leaf(boolean(), default=False)
    certificate: str | None = leaf(string(), default=None)
    key: str | None = leaf(string(), default=None)
    #: the CAs that sign the server's certificate (default: the system's)
    clientcas: tuple[str, ...] = items(strings(single_ok=True))

    @property
    def on(self) -> bool:
        """TLS is used: ``enabled``, or 3.x's certificate or CAs given."""
        return self.enabled or bool(self.certificate or self.clientcas)


def _split(address: str) -> tuple[str, int]:
    host, sep, port = address.rpartition(":")
    if not sep:
        return address, DEFAULT_REDIS_PORT
    return host.strip("[]") or "localhost", int(port)


def _no_sentinel(ctx: Context, value: str | None, key: str) -> None:
    if value:
        ctx.fail(key, f"Sentinel is not supported: {_ONE_SERVER}; give the master's addr instead")


def _one_address(ctx: Context, values: dict[str, Any], section: dict[str, Any], key: str) -> None:
    """Exactly one of ``addr`` and ``addrs``, naming one server as ``HOST:PORT``."""
    addr, addrs = values["addr"], values["addrs"]
    if addr and addrs:
        ctx.fail(f"{key}.addrs", "set, and so is addr; keep one of them (addr: HOST:PORT)")
    if len(addrs) > 1:
        ctx.fail(f"{key}.addrs", f"{len(addrs)} addresses given; {_ONE_SERVER}: keep one")
    address = addr or (addrs[0] if addrs else None)
    where = f"{key}.addr" if addr or not addrs else f"{key}.addrs.0"
    if not address:
        ctx.fail(where, "missing; set the Redis server's address, e.g. addr: localhost:6379")
    _, sep, port = address.rpartition(":")
    if sep and (not port.isdigit() or not 0 < int(port) < 65536):
        ctx.fail(where, f"{address!r}: port {port!r} is not a number from 1 to 65535")
    if not sep and not address.strip():
        ctx.fail(where, "empty; write HOST:PORT, e.g. localhost:6379")


def _pool(ctx: Context, values: dict[str, Any], section: dict[str, Any], key: str) -> None:
    """3.x's ``poolsize`` and ``connmaxidletime``: ``pool.maxactive`` and ``pool.idletimeout``."""
    pool = values["pool"]
    raw_pool = section.get("pool")
    written = raw_pool if isinstance(raw_pool, dict) else {}
    changes: dict[str, Any] = {}
    for new, old in (("poolsize", "maxactive"), ("connmaxidletime", "idletimeout")):
        if values[new] is None:
            continue
        if not is_null(written.get(old)):
            ctx.fail(f"{key}.{new}", f"set, and so is {key}.pool.{old}; keep one of them")
        changes[old] = values[new]
    if changes:
        values["pool"] = attrs.evolve(pool, **changes)


@attrs.frozen
class RedisConfig:
    """``redis``: the shared state of several paxd processes (see the module docstring)."""

    SECTION: ClassVar[Section] = Section(optional=True, rules=(Rule(_one_address), Rule(_pool)))

    #: distribution 2.8: ``HOST:PORT``
    addr: str | None = leaf(string(), default=None)
    #: distribution 3.x: a list of one ``HOST:PORT``
    addrs: tuple[str, ...] = items(strings(single_ok=True))
    username: str | None = leaf(string(), default=None)
    password: str | None = leaf(string(), default=None)
    db: int = leaf(integer(minimum=0), default=0)
    dialtimeout: float = leaf(duration(), default=0.0)
    readtimeout: float = leaf(duration(), default=0.0)
    writetimeout: float = leaf(duration(), default=0.0)
    pool: RedisPoolConfig = section(RedisPoolConfig)
    tls: RedisTLSConfig = section(RedisTLSConfig)
    #: distribution 3.x's pool keys (go-redis names) for ``pool.maxactive`` and ``pool.idletimeout``
    poolsize: int | None = leaf(_optional(integer(minimum=1)), default=None)
    maxidleconns: Any = unimplemented(
        why="not used (paxd's client keeps the connections it opened)"
    )
    connmaxidletime: float | None = leaf(_optional(duration()), default=None)
    mastername: str | None = leaf(string(), default=None, check=_no_sentinel)
    clientname: Any = unimplemented()
    maxretries: Any = unimplemented(why="not used (paxd retries whole requests, not commands)")

    @property
    def host(self) -> str:
        """The server's host name or address."""
        return _split(self.address)[0]

    @property
    def port(self) -> int:
        """The server's TCP port."""
        return _split(self.address)[1]

    @property
    def address(self) -> str:
        """``HOST:PORT`` as configured (``addr``, else the one of ``addrs``)."""
        return self.addr or self.addrs[0]

    @property
    def connect_timeout(self) -> float:
        """``dialtimeout`` in seconds (go-redis's 5 s when unset)."""
        return self.dialtimeout or DEFAULT_DIAL_TIMEOUT

    @property
    def socket_timeout(self) -> float:
        """The longer of ``readtimeout`` and ``writetimeout`` (go-redis's 3 s when unset)."""
        return max(self.readtimeout, self.writetimeout) or DEFAULT_READ_TIMEOUT
