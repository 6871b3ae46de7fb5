"""Helpers shared by the auth tests: the real ``htpasswd`` tool, log capture, counting bcrypt."""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
from collections.abc import Callable
from typing import Any, cast

import bcrypt
from twisted.internet.defer import Deferred
from twisted.logger import ILogObserver, Logger, formatEvent
from twisted.trial.unittest import SkipTest

from paxd.auth.htpasswd import hash_password


def htpasswd_tool() -> str:
    """The path of apache2-utils' ``htpasswd``; skip the test without it (fail under CI=true)."""
    path = shutil.which("htpasswd")
    if path is None:
        if os.environ.get("CI", "").lower() == "true":
            raise AssertionError("htpasswd (apache2-utils) is required when CI=true")
        raise SkipTest("htpasswd (apache2-utils) is not installed")
    return path


def htpasswd_line(*options: str, user: str, password: str) -> str:
    """One ``user:hash`` line made by the real ``htpasswd -n -b OPTIONS user password``."""
    out = subprocess.run(
        [htpasswd_tool(), "-n", "-b", *options, user, password],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return out.strip() + "\n"


def htpasswd_verify(path: str, user: str, password: str) -> bool:
    """Whether the real ``htpasswd -vb`` accepts *password* for *user* in *path*."""
    result = subprocess.run(
        [htpasswd_tool(), "-vb", path, user, password], capture_output=True, text=True
    )
    return result.returncode == 0


def fast_line(user: str, password: str) -> str:
    """A ``user:$2y$04$…`` line (the lowest cost, to keep tests quick)."""
    return user + ":" + hash_password(password.encode("utf-8"), 4).decode("ascii") + "\n"


class CapturedLog:
    """A :class:`Logger` whose events are kept, with helpers to read them."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self.log = Logger(observer=cast(ILogObserver, self.events.append))

    def messages(self, level: str | None = None) -> list[str]:
        """Every formatted message (of *level*: ``warn``, ``error``…)."""
        return [
            formatEvent(e) for e in self.events if level is None or e["log_level"].name == level
        ]


class CountingCheckpw:
    """Wraps the real ``bcrypt.checkpw``, counting calls and noting the threads they ran on."""

    def __init__(self) -> None:
        self.calls = 0
        self.threads: list[threading.Thread] = []
        #: the hash each call checked against
        self.hashes: list[bytes] = []
        self._lock = threading.Lock()

    def __call__(self, password: bytes, hashed: bytes) -> bool:
        with self._lock:
            self.calls += 1
            self.threads.append(threading.current_thread())
            self.hashes.append(hashed)
        return bcrypt.checkpw(password, hashed)


class HeldRunner:
    """A runner that holds each call until :meth:`release`: to see concurrent requests overlap."""

    def __init__(self) -> None:
        self.pending: list[tuple[Deferred[Any], Callable[[], Any]]] = []

    def run(self, f: Callable[..., Any], *args: Any, **kwargs: Any) -> Deferred[Any]:
        d: Deferred[Any] = Deferred()
        self.pending.append((d, lambda: f(*args, **kwargs)))
        return d

    def release(self) -> None:
        """Run every held call (and any they lead to), delivering the results."""
        while self.pending:
            d, call = self.pending.pop(0)
            try:
                result = call()
            except Exception as e:
                d.errback(e)
            else:
                d.callback(result)
