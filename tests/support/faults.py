"""Broken peers on loopback, for testing how clients fail and recover.

- :class:`Forwarder`: a TCP relay to a real server that can be cut (or stalled) and restored on
  the same port
- :class:`SilentServer`: accepts connections and never answers
- :class:`StatusServer`: answers every HTTP request with one status (503 by default)

Each runs in threads of its own, so that a test blocked in a client call
(a synchronous driver) still gets answered, or not answered, as planned.
"""

from __future__ import annotations

import http.server
import socket
import socketserver
import threading
from contextlib import suppress

from tests.integration.harness import free_port


def _pump(
    source: socket.socket, sink: socket.socket, flowing: threading.Event | None = None
) -> None:
    with suppress(OSError):
        while data := source.recv(65536):
            if flowing is not None:
                flowing.wait()  # stalled: hold the bytes, answer nothing
            sink.sendall(data)
    for s in (source, sink):
        with suppress(OSError):
            s.shutdown(socket.SHUT_RDWR)


class Forwarder:
    """Relays loopback connections on :attr:`port` to *target_port*; :meth:`cut` drops them all.

    While cut, the port refuses connections (nothing listens); :meth:`restore`
    listens on the same port again.  :meth:`stall` keeps every connection open
    but relays nothing (a server that stopped answering) until :meth:`restore`.
    """

    def __init__(self, target_port: int, port: int | None = None) -> None:
        self.target_port = target_port
        self.port = port if port is not None else free_port()
        self._listener: socket.socket | None = None
        self._connections: list[socket.socket] = []
        self._lock = threading.Lock()
        self._flowing = threading.Event()
        self._flowing.set()

    def stall(self) -> None:
        """Keep accepting and holding connections, but relay no byte either way."""
        self._flowing.clear()

    def restore(self) -> None:
        """Listen (again) and relay every connection (a stall ends)."""
        self._flowing.set()
        if self._listener is not None:
            return
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def _accept(self, listener: socket.socket) -> None:
        with suppress(OSError):
            while True:
                client, _ = listener.accept()
                try:
                    server = socket.create_connection(("127.0.0.1", self.target_port))
                except OSError:
                    client.close()
                    continue
                with self._lock:
                    self._connections += [client, server]
                for pair in ((client, server), (server, client)):
                    threading.Thread(target=_pump, args=(*pair, self._flowing), daemon=True).start()

    def cut(self) -> None:
        """Stop listening and reset every relayed connection (a stall ends too)."""
        if self._listener is not None:
            # shutdown wakes the thread blocked in accept(); close alone would not
            with suppress(OSError):
                self._listener.shutdown(socket.SHUT_RDWR)
            self._listener.close()
            self._listener = None
        with self._lock:
            connections, self._connections = self._connections, []
        self._flowing.set()  # held pumps find their sockets closed
        for s in connections:
            with suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()


class SilentServer:
    """Accepts connections on :attr:`port` and never sends a byte."""

    def __init__(self) -> None:
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(64)
        self.port: int = self._listener.getsockname()[1]
        self._held: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        with suppress(OSError):
            while True:
                conn, _ = self._listener.accept()
                self._held.append(conn)

    def close(self) -> None:
        """Stop listening and drop every connection."""
        with suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)
        self._listener.close()
        for conn in self._held:
            conn.close()


class StatusServer:
    """An HTTP server on :attr:`port` answering every request with *status* and an S3 error."""

    def __init__(self, status: int = 503, code: str = "ServiceUnavailable") -> None:
        body = (
            f'<?xml version="1.0" encoding="UTF-8"?><Error><Code>{code}</Code>'
            f"<Message>injected by the test</Message></Error>"
        ).encode()
        counter = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def _answer(self) -> None:
                counter.requests += 1
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                self.send_response(status)
                self.send_header("Content-Type", "application/xml")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = _answer

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.requests = 0
        self._server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.port: int = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def close(self) -> None:
        """Stop serving."""
        self._server.shutdown()
        self._server.server_close()
