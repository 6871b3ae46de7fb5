"""``paxd serve --workers N``: the parent that binds the ports and keeps N workers running.

The parent binds every listener (:mod:`paxd.workers.sockets`), then spawns N
worker processes (``python -m paxd serve --worker I/N --adopt FD,FAMILY,DESC
...``) that adopt the sockets with Twisted's
:class:`~twisted.internet.endpoints.AdoptedStreamServerEndpoint` and run the
whole daemon, as Twisted's "multiple processes" howto describes.  It serves
nothing itself.

- A worker that exits is started again, after 0.5 s doubling to 30 s while it
  keeps dying within :data:`MIN_UPTIME` of its start; after
  :data:`MAX_QUICK_FAILURES` such exits in a row the parent stops everything
  and exits 1 (a worker that cannot serve would only loop).
- SIGTERM or SIGINT: every worker gets SIGTERM, is killed after
  :data:`STOP_TIMEOUT`, and the parent exits 0 (1 if it had given up).
- A worker whose parent dies stops by itself (it checks once a second).
"""

from __future__ import annotations

import os
import signal
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.protocol import ProcessProtocol
from twisted.logger import Logger
from twisted.python.failure import Failure

from paxd.workers.sockets import WorkerSockets

__all__ = ["MAX_QUICK_FAILURES", "MIN_UPTIME", "STOP_TIMEOUT", "Supervisor", "worker_argv"]

log = Logger(namespace="paxd.workers")

#: a worker that exits sooner than this after its start is failing, not just ending
MIN_UPTIME = 10.0
#: quick exits in a row after which the parent gives up
MAX_QUICK_FAILURES = 5
#: seconds workers get to finish after SIGTERM before SIGKILL
STOP_TIMEOUT = 10.0
_FIRST_DELAY = 0.5
_MAX_DELAY = 30.0


def worker_argv(
    config_path: str | None, index: int, count: int, adopted: Sequence[str]
) -> list[str]:
    """The command line of worker *index* of *count* (*config_path* None: paxd's default)."""
    argv = [sys.executable, "-m", "paxd", "serve", "--worker", f"{index}/{count}"]
    for arg in adopted:
        argv += ["--adopt", arg]
    return [*argv, config_path] if config_path is not None else argv


class _Worker(ProcessProtocol):
    def __init__(self, supervisor: Supervisor, index: int) -> None:
        self.supervisor = supervisor
        self.index = index
        self.started = 0.0
        self.pid: int | None = None
        self.quick_failures = 0

    def connectionMade(self) -> None:
        assert self.transport is not None
        self.pid = self.transport.pid

    def processEnded(self, reason: Failure) -> None:
        value = reason.value
        code = getattr(value, "exitCode", None)
        sig = getattr(value, "signal", None)
        self.supervisor.ended(self, code, sig)


class Supervisor:
    """Spawns and watches the workers; see the module docstring.

    :param argv_for: worker index → its command line.
    :param sockets: kept open here for the workers' restarts; closed at the end.
    """

    def __init__(
        self,
        reactor: Any,
        count: int,
        argv_for: Callable[[int], list[str]],
        sockets: WorkerSockets,
        env: dict[str, str] | None = None,
    ) -> None:
        self.reactor = reactor
        self.count = count
        self.argv_for = argv_for
        self.sockets = sockets
        self.env = dict(os.environ if env is None else env)
        self.workers = [_Worker(self, i) for i in range(count)]
        self.stopping = False
        #: True when the parent gave up on a failing worker (exit status 1)
        self.failed = False
        self._running: set[int] = set()
        self._stopped: Deferred[None] | None = None
        self._devnull = os.open(os.devnull, os.O_RDONLY)

    def start(self) -> None:
        """Spawn every worker."""
        log.info("starting {count} workers", count=self.count)
        for worker in self.workers:
            self._spawn(worker)

    def _spawn(self, worker: _Worker) -> None:
        if self.stopping:
            return
        fds: dict[int, int | str] = {0: self._devnull, 1: 1, 2: 2}
        for adopted in self.sockets.for_worker(worker.index):
            fds[adopted.fd] = adopted.fd
        argv = self.argv_for(worker.index)
        worker.started = time.monotonic()
        self.reactor.spawnProcess(worker, argv[0], argv, env=self.env, childFDs=fds)
        self._running.add(worker.index)
        log.info("worker {index} started (pid {pid})", index=worker.index, pid=worker.pid)

    def ended(self, worker: _Worker, code: int | None, sig: int | None) -> None:
        """A worker exited (*code*) or was killed (*sig*)."""
        self._running.discard(worker.index)
        how = f"was killed by signal {sig}" if sig else f"exited with status {code}"
        if self.stopping:
            log.info("worker {index} {how}", index=worker.index, how=how)
            if not self._running and self._stopped is not None:
                self._finish()
            return
        quick = time.monotonic() - worker.started < MIN_UPTIME
        worker.quick_failures = worker.quick_failures + 1 if quick else 0
        if worker.quick_failures >= MAX_QUICK_FAILURES:
            log.critical(
                "worker {index} {how} {count} times in a row within {uptime:.0f}s of its start:"
                " stopping paxd (see its messages above)",
                index=worker.index,
                how=how,
                count=worker.quick_failures,
                uptime=MIN_UPTIME,
            )
            self.failed = True
            self.reactor.stop()
            return
        delay = min(_FIRST_DELAY * 2 ** max(worker.quick_failures - 1, 0), _MAX_DELAY)
        log.warn(
            "worker {index} (pid {pid}) {how}; starting it again in {delay:.1f}s",
            index=worker.index,
            pid=worker.pid,
            how=how,
            delay=delay,
        )
        self.reactor.callLater(delay, self._spawn, worker)

    def stop(self) -> Deferred[None]:
        """SIGTERM every worker; SIGKILL those left after :data:`STOP_TIMEOUT`. Fires when done."""
        self.stopping = True
        self._stopped = Deferred()
        if not self._running:
            self._finish()
            return self._stopped
        self._signal(signal.SIGTERM)
        self._kill_call = self.reactor.callLater(STOP_TIMEOUT, self._signal, signal.SIGKILL)
        return self._stopped

    def _signal(self, sig: int) -> None:
        for worker in self.workers:
            if worker.index in self._running and worker.pid:
                try:
                    os.kill(worker.pid, sig)
                except ProcessLookupError:
                    pass

    def _finish(self) -> None:
        call = getattr(self, "_kill_call", None)
        if call is not None and call.active():
            call.cancel()
        self.sockets.close()
        os.close(self._devnull)
        stopped, self._stopped = self._stopped, None
        if stopped is not None:
            stopped.callback(None)
