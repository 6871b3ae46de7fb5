"""Unit tests for :mod:`paxd.workers`: what it refuses, the sockets it binds, the log tag."""

from __future__ import annotations

import io
import json
import os
import socket

from twisted.logger import Logger
from twisted.trial.unittest import SynchronousTestCase

from paxd.cli import log_observer
from paxd.config import parse_config
from paxd.workers import check_workers
from paxd.workers.sockets import Adopted, ListenerError, bind_all, parse_description

BASE = "version: 0.1\nstorage: {filesystem: {rootdirectory: /tmp/x}}\n"


class CheckTests(SynchronousTestCase):
    def test_one_worker_needs_nothing(self) -> None:
        self.assertIsNone(check_workers(parse_config(BASE, "c.yml"), 1, "--workers 1"))

    def test_needs_redis_and_shared_storage(self) -> None:
        refused = check_workers(parse_config(BASE, "c.yml"), 2, "--workers 2")
        self.assertIn("--workers 2 needs shared state: configure redis:", refused or "")
        memory = parse_config("version: 0.1\nstorage: inmemory\nredis: {addr: r:1}\n", "c.yml")
        self.assertIn("inmemory storage is one process's", check_workers(memory, 2, "x") or "")
        self.assertIsNone(
            check_workers(parse_config(BASE + "redis: {addr: r:1}\n", "c.yml"), 3, "x")
        )


class SocketTests(SynchronousTestCase):
    def test_parse(self) -> None:
        self.assertEqual(
            parse_description("tcp6:5000:interface=\\:\\:1:backlog=9"),
            ("tcp6", ["5000"], {"interface": "::1", "backlog": "9"}),
        )
        adopted = Adopted("unix:/run/a,b.sock", 7, "UNIX")
        self.assertEqual(Adopted.from_arg(adopted.to_arg()), adopted)

    def test_a_reuseport_socket_per_worker_on_one_port(self) -> None:
        sockets = bind_all(["tcp:0:interface=127.0.0.1"], [], 2)
        self.addCleanup(sockets.close)
        one, two = (w[0] for w in sockets.registry)
        self.assertNotEqual(one.fd, two.fd)
        ports = set()
        for adopted in (one, two):
            sock = socket.socket(fileno=os.dup(adopted.fd))
            self.addCleanup(sock.close)
            self.assertEqual(sock.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT), 1)
            ports.add(sock.getsockname()[1])
        self.assertEqual(len(ports), 1)
        # both accept connections to that port
        with socket.create_connection(("127.0.0.1", ports.pop()), timeout=2):
            pass

    def test_unix_shared_and_redirect_for_worker_0(self) -> None:
        path = os.path.join(self.mktemp() + "d", "s.sock")
        os.makedirs(os.path.dirname(path))
        sockets = bind_all([f"unix:{path}"], ["tcp:0:interface=127.0.0.1"], 2)
        self.addCleanup(sockets.close)
        self.assertEqual(sockets.registry[0], sockets.registry[1])
        self.assertEqual(len(sockets.for_worker(0)), 2)
        self.assertEqual(len(sockets.for_worker(1)), 1)

    def test_unshareable_listener(self) -> None:
        error = self.assertRaises(ListenerError, bind_all, ["ssl:443"], [], 2)
        self.assertIn("tcp:, tcp6:, unix: and systemd:", str(error))


class LogTagTests(SynchronousTestCase):
    def test_text_and_json_carry_the_worker(self) -> None:
        config = parse_config(BASE, "c.yml").log
        text = io.StringIO()
        log = Logger(namespace="paxd.test", observer=log_observer(config, text, worker=1))
        log.info("hello {who}", who="there")
        self.assertIn("[w1:paxd.test#info] hello there", text.getvalue())
        lines = io.StringIO()
        json_config = parse_config(BASE + "log: {formatter: json}\n", "c.yml").log
        log = Logger(namespace="paxd.test", observer=log_observer(json_config, lines, worker=2))
        log.info("hello")
        self.assertEqual(json.loads(lines.getvalue().strip("\x1e\n"))["worker"], 2)
