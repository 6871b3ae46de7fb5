"""Both ends of ``--workers``: the parent's main loop, and what makes a process a worker."""

from __future__ import annotations

import os
import sys
from typing import Any

from twisted.application.service import Service
from twisted.internet.task import LoopingCall
from twisted.logger import Logger, globalLogBeginner

from paxd.listeners import endpoint_descriptions, system_backlog, with_backlog
from paxd.workers import check_workers
from paxd.workers.sockets import Adopted, ListenerError, bind_all
from paxd.workers.supervisor import Supervisor, worker_argv

__all__ = ["ParentWatch", "as_worker", "serve_workers"]

log = Logger(namespace="paxd.workers")


def serve_workers(path: str | None, options: Any, count: int, where: str, observer: Any) -> int:
    """Bind the listeners, run *count* workers until SIGTERM; the exit status.

    *observer* is the log observer (the parent logs workers' starts and exits).
    """
    config = options["parsed"]
    refused = check_workers(config, count, where)
    if refused is not None:
        print(f"paxd: {refused}", file=sys.stderr)
        return 1
    try:
        # the same descriptions, backlog included, as paxd.tap.listen looks for
        backlog = config.http.connections.backlog or system_backlog()
        sockets = bind_all(
            [with_backlog(d, backlog) for d in endpoint_descriptions(config.http)],
            [with_backlog(d, backlog) for d in config.http.redirect],
            count,
        )
    except (OSError, ListenerError) as e:
        print(f"paxd: cannot listen: {e}", file=sys.stderr)
        return 1
    from twisted.internet import reactor

    globalLogBeginner.beginLoggingTo([observer], redirectStandardIO=False)
    config_path = os.path.abspath(path) if path is not None else None
    supervisor = Supervisor(
        reactor,
        count,
        lambda i: worker_argv(config_path, i, count, [a.to_arg() for a in sockets.for_worker(i)]),
        sockets,
    )
    reactor.callWhenRunning(supervisor.start)
    reactor.addSystemEventTrigger("before", "shutdown", supervisor.stop)
    reactor.run()
    return 1 if supervisor.failed else 0


def as_worker(options: Any, worker: str, adopt: list[str]) -> None:
    """Make *options* those of worker ``I/N`` adopting the sockets *adopt* describes."""
    index, count = (int(part) for part in worker.split("/"))
    options["worker"] = (index, count)
    options["adopted"] = [Adopted.from_arg(arg) for arg in adopt]


class ParentWatch(Service):
    """Stops a worker whose parent is gone (killed with -9: nobody would stop the worker)."""

    def __init__(self, reactor: Any, interval: float = 1.0) -> None:
        self.reactor = reactor
        self.parent_pid = os.getppid()
        self._loop = LoopingCall(self._check)
        self._loop.clock = reactor
        self.interval = interval

    def startService(self) -> None:
        super().startService()
        self._loop.start(self.interval, now=False)

    def stopService(self) -> None:
        super().stopService()
        if self._loop.running:
            self._loop.stop()

    def _check(self) -> None:
        if os.getppid() != self.parent_pid:
            log.warn("the paxd parent process is gone: this worker stops")
            self.reactor.stop()
