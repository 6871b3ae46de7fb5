"""The start-up service in memory: listeners, the storage probe, systemd's socket, the exit.

The real daemon is started in ``tests/integration/test_startup.py``; here the
same :class:`paxd.startup.Startup` runs on a memory reactor, with endpoints
that bind or fail and storage that answers, fails or hangs, and
:class:`paxd.systemd.notify.SystemdNotifier` sends to a real datagram socket.
"""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
from typing import Any

from twisted.internet.defer import Deferred, fail
from twisted.internet.endpoints import TCP4ServerEndpoint
from twisted.internet.error import CannotListenError
from twisted.internet.protocol import Factory
from twisted.internet.testing import MemoryReactorClock
from twisted.logger import globalLogPublisher
from twisted.trial.unittest import SynchronousTestCase
from zope.interface.verify import verifyObject

from paxd.config import parse_config
from paxd.preflight import Prepared
from paxd.registry.registry import Registry
from paxd.startup import STORAGE_TIMEOUT, Listener, Startup
from paxd.storage.memory import MemoryStorage
from paxd.systemd.notify import INotifier, RecordingNotifier, SystemdNotifier

CONFIG = parse_config("version: 0.1\nstorage: inmemory\n", "/etc/paxd/config.yml")


class _Refusing:
    """An endpoint whose bind fails as a port in use does."""

    def listen(self, factory: Any) -> Deferred[Any]:
        error = OSError(98, "Address already in use")
        return fail(CannotListenError("127.0.0.1", 5000, error))


class _Broken(MemoryStorage):
    def put_content(self, path: str, content: bytes) -> Deferred[None]:
        return fail(OSError(30, "Read-only file system"))


class _Hanging(MemoryStorage):
    def put_content(self, path: str, content: bytes) -> Deferred[None]:
        return Deferred()


class StartupTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.reactor = MemoryReactorClock()
        self.reactor.running = True
        self.stopped: list[bool] = []
        self.reactor.stop = lambda: self.stopped.append(True)  # type: ignore[method-assign]
        self.notifier = RecordingNotifier()
        self.events: list[dict[str, Any]] = []
        globalLogPublisher.addObserver(self.events.append)
        self.addCleanup(globalLogPublisher.removeObserver, self.events.append)

    def start(self, endpoints: list[Any], storage: MemoryStorage | None = None) -> Startup:
        listeners = [
            Listener(e, Factory(), label=f"127.0.0.1:500{i}", key="http.addr", scheme="http")
            for i, e in enumerate(endpoints)
        ]
        for listener in listeners:
            listener.startService()
        startup = Startup(
            reactor=self.reactor,
            registry=Registry(storage or MemoryStorage()),
            prepared=Prepared(CONFIG),
            listeners=listeners,
            notifier=self.notifier,
        )
        startup.startService()
        return startup

    def critical(self) -> list[str]:
        return [e["reason"] for e in self.events if e.get("log_format") == "{reason}"]

    def test_ready_once_bound_and_storage_answered(self) -> None:
        startup = self.start([TCP4ServerEndpoint(self.reactor, 0, interface="127.0.0.1")])
        self.assertTrue(startup.ready)
        self.assertIsNone(startup.exit_status)
        self.assertEqual(self.notifier.sent, ["READY=1\nSTATUS=serving on 127.0.0.1:5000"])
        self.assertEqual(self.stopped, [])
        startup.stopService()
        self.assertEqual(self.notifier.sent[-1], "STOPPING=1")

    def test_a_listener_that_cannot_bind_stops_the_daemon(self) -> None:
        startup = self.start(
            [TCP4ServerEndpoint(self.reactor, 0, interface="127.0.0.1"), _Refusing()]
        )
        self.assertEqual(startup.exit_status, 1)
        self.assertEqual(self.stopped, [True])
        (line,) = self.critical()
        self.assertEqual(
            line,
            "cannot listen on 127.0.0.1:5001 (http.addr in /etc/paxd/config.yml): Address already"
            " in use; another process holds it (see 'ss -ltnp'): stop it, or set another http.addr",
        )
        self.assertEqual(self.notifier.sent, [f"STATUS={line}"])

    def test_storage_that_fails_stops_the_daemon(self) -> None:
        startup = self.start([TCP4ServerEndpoint(self.reactor, 0)], _Broken())
        self.assertEqual(startup.exit_status, 1)
        self.assertFalse(startup.ready)
        self.assertTrue(
            any(m.startswith("inmemory storage is not usable: ") for m in self.critical()),
            self.critical(),
        )
        self.assertFalse([s for s in self.notifier.sent if "READY=1" in s])

    def test_storage_that_hangs_is_given_up_on(self) -> None:
        startup = self.start([TCP4ServerEndpoint(self.reactor, 0)], _Hanging())
        self.assertIsNone(startup.exit_status)
        self.reactor.advance(STORAGE_TIMEOUT)
        self.assertEqual(startup.exit_status, 1)
        self.assertIn(f"no answer in {STORAGE_TIMEOUT:g} s", self.critical()[0])

    def test_created_password_is_logged_once_at_start(self) -> None:
        config = parse_config(
            "version: 0.1\nstorage: inmemory\nauth: {htpasswd: {realm: r, path: /h}}\n", "f"
        )
        startup = Startup(
            reactor=self.reactor,
            registry=Registry(MemoryStorage()),
            prepared=Prepared(config, created_password="Gener4ted"),
            listeners=[],
            notifier=self.notifier,
        )
        startup.startService()
        shown = [e for e in self.events if "Gener4ted" in str(e.get("password"))]
        self.assertEqual(len(shown), 1)


class NotifierTests(SynchronousTestCase):
    def socket_at(self, abstract: bool) -> tuple[socket.socket, str]:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.addCleanup(sock.close)
        sock.settimeout(5)
        if abstract:
            name = f"paxd-unit-{os.getpid()}-{id(self)}"
            sock.bind("\0" + name)
            return sock, "@" + name
        directory = tempfile.mkdtemp(prefix="paxd-n-", dir="/tmp")
        self.addCleanup(shutil.rmtree, directory, True)
        path = os.path.join(directory, "notify")
        sock.bind(path)
        return sock, path

    def test_datagrams_reach_the_socket(self) -> None:
        for abstract in (False, True):
            sock, address = self.socket_at(abstract)
            notifier = SystemdNotifier({"NOTIFY_SOCKET": address})
            verifyObject(INotifier, notifier)
            notifier.ready("serving on\n127.0.0.1:5000")
            self.assertEqual(sock.recv(4096), b"READY=1\nSTATUS=serving on 127.0.0.1:5000")
            notifier.stopping()
            self.assertEqual(sock.recv(4096), b"STOPPING=1")

    def test_nothing_without_systemd(self) -> None:
        SystemdNotifier({}).ready("x")  # no socket, no error
        verifyObject(INotifier, RecordingNotifier())

    def test_a_vanished_socket_is_a_warning_not_a_crash(self) -> None:
        events: list[dict[str, Any]] = []
        globalLogPublisher.addObserver(events.append)
        self.addCleanup(globalLogPublisher.removeObserver, events.append)
        SystemdNotifier({"NOTIFY_SOCKET": "/nonexistent/notify"}).ready("x")
        self.assertTrue(any("could not notify systemd" in e.get("log_format", "") for e in events))
