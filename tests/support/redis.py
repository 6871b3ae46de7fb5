"""A real Redis for tests: Debian's ``redis-server`` on a loopback port, started by the test run.

:func:`shared_redis` starts one server per test process on first use (about
20 ms) and stops it when the process exits; tests keep apart by a key prefix
of their own (:func:`new_prefix`).  A test that stops and restarts Redis
starts its own :class:`RedisServer`.  No persistence: a restarted server is
empty, as after a crash without a snapshot.

Where ``redis-server`` is missing the tests skip, except under CI
(``CI=true``), where that is a failure (:func:`tests.integration.harness.require_tool`).
"""

from __future__ import annotations

import atexit
import itertools
import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import redis

from paxd.config.redis import RedisConfig
from paxd.shared.client import RedisClient, make_redis
from paxd.threadpool import IRunner, SynchronousRunner
from tests.integration.harness import free_port, require_tool

START_TIMEOUT = 10.0
_counter = itertools.count()


class RedisServer:
    """One ``redis-server`` process on 127.0.0.1, with its directory in a temporary tree."""

    def __init__(self, port: int | None = None) -> None:
        self.binary = require_tool("redis-server")
        self.port = port or free_port()
        self.directory = Path(tempfile.mkdtemp(prefix="paxd-redis-"))
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        """``127.0.0.1:PORT``."""
        return f"127.0.0.1:{self.port}"

    def start(self) -> RedisServer:
        """Start the server and wait until it accepts connections."""
        log = open(self.directory / "redis.log", "ab")
        self.process = subprocess.Popen(
            [
                self.binary,
                "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                "--appendonly", "no", "--dir", str(self.directory), "--protected-mode", "no",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )  # fmt: skip
        log.close()
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"redis-server exited: {self.logs()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    if redis.Redis(port=self.port).ping():
                        return self
            except (OSError, redis.RedisError):
                time.sleep(0.02)
        raise RuntimeError(f"redis-server did not start in {START_TIMEOUT}s: {self.logs()}")

    def stop(self) -> None:
        """Kill the server (its data goes with it)."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)
        self.process = None

    def remove(self) -> None:
        """Stop and delete the directory."""
        self.stop()
        shutil.rmtree(self.directory, ignore_errors=True)

    def logs(self) -> str:
        """The server's log, for failure messages."""
        try:
            return (self.directory / "redis.log").read_text(errors="replace")[-2000:]
        except OSError:
            return ""

    def config(self, **overrides: object) -> RedisConfig:
        """``redis:`` for this server (short timeouts: a stopped server fails fast)."""
        values: dict[str, object] = {"addr": self.address, "dialtimeout": 1.0, "readtimeout": 2.0}
        values.update(overrides)
        return RedisConfig(**values)  # type: ignore[arg-type]

    def client(self, runner: IRunner | None = None) -> RedisClient:
        """A paxd client of this server (synchronous by default: unit tests)."""
        return RedisClient(make_redis(self.config()), runner or SynchronousRunner(), self.address)


_shared: list[RedisServer] = []


def shared_redis() -> RedisServer:
    """The test process's Redis (started on first use, stopped at exit)."""
    if not _shared:
        server = RedisServer().start()
        atexit.register(server.remove)
        _shared.append(server)
    if _shared[0].process is None or _shared[0].process.poll() is not None:
        _shared[0].start()
    return _shared[0]


def new_prefix() -> str:
    """A key prefix no other test uses."""
    return f"t{os.getpid()}-{next(_counter)}-{uuid.uuid4().hex[:6]}:"
