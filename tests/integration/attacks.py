"""Hostile and measuring clients on raw sockets, for the tests of a daemon under attack.

Everything here blocks: call it through ``deferToThread`` (or from threads of
its own).  Each function returns what it saw, for the test to judge and the
report to quote.
"""

from __future__ import annotations

import http.client
import re
import selectors
import socket
import statistics
import threading
import time
from collections.abc import Mapping
from pathlib import Path

import attrs

MiB = 1024 * 1024


def ready(
    read: list[socket.socket], write: list[socket.socket], timeout: float
) -> tuple[list[socket.socket], list[socket.socket]]:
    """The sockets of *read* that can be read and of *write* that can be written (epoll:
    no FD_SETSIZE limit, unlike select)."""
    with selectors.DefaultSelector() as selector:
        for sock in set(read) | set(write):
            events = (selectors.EVENT_READ if sock in read else 0) | (
                selectors.EVENT_WRITE if sock in write else 0
            )
            selector.register(sock, events)
        if not read and not write:
            time.sleep(timeout)
            return [], []
        found = selector.select(timeout)
    readable = [key.fileobj for key, mask in found if mask & selectors.EVENT_READ]
    writable = [key.fileobj for key, mask in found if mask & selectors.EVENT_WRITE]
    return readable, writable  # type: ignore[return-value]


def request_head(
    method: str, path: str, length: int, headers: Mapping[str, str] | None = None
) -> bytes:
    """A request line and headers announcing a body of *length* bytes."""
    lines = [f"{method} {path} HTTP/1.1", "Host: registry.test", f"Content-Length: {length}"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


@attrs.frozen
class Pushed:
    """What a client pushing a body saw.

    :ivar status: the final status received (0: none).
    :ivar sent: body bytes the kernel took from the client (what the server
        read plus what socket buffers hold: an upper bound of the server's reads).
    :ivar answered: seconds from the head to the answer (None: no answer).
    :ivar ended: seconds until the server closed (EOF, reset or broken pipe).
    """

    status: int
    sent: int
    answered: float | None
    ended: float | None
    response: bytes


def push_body(
    host: str,
    port: int,
    head: bytes,
    length: int,
    *,
    limit: float = 30.0,
    source: str | None = None,
) -> Pushed:
    """Send *head*, then zeros up to *length* as fast as the server takes them, reading back."""
    sock = socket.create_connection(
        (host, port), timeout=10, source_address=(source, 0) if source else None
    )
    sock.setblocking(False)
    start = time.monotonic()
    pending = head
    sent = 0
    zeros = bytes(256 * 1024)
    received = b""
    answered: float | None = None
    ended: float | None = None
    eof = False
    try:
        while time.monotonic() - start < limit:
            writing = bool(pending) or sent < length
            readable, writable = ready([] if eof else [sock], [sock] if writing else [], 0.2)
            now = time.monotonic() - start
            if readable:
                try:
                    data = sock.recv(65536)
                except ConnectionResetError:
                    ended = now
                    break
                if not data:
                    eof = True  # half-closed: the server may still read (and drop) some
                    if not writing:
                        ended = now
                        break
                received += data
                if answered is None and _final(received):
                    answered = now
            if writable:
                try:
                    if pending:
                        pending = pending[sock.send(pending) :]
                    else:
                        sent += sock.send(zeros[: min(len(zeros), length - sent)])
                except (BrokenPipeError, ConnectionResetError):
                    ended = now
                    break
            if eof and not writing:
                ended = now
                break
    finally:
        sock.close()
    return Pushed(_final(received), sent, answered, ended, received[:2000])


def _final(data: bytes) -> int:
    """The status of the first final (non-1xx) response in *data*; 0 if none yet."""
    for match in re.finditer(rb"HTTP/1\.1 (\d{3}) ", data):
        status = int(match.group(1))
        if status >= 200:
            return status
    return 0


def bytes_read_in_log(log_text: str) -> list[int]:
    """What the daemon logged reading of each body it answered before reading it."""
    found = re.findall(r"answered before its body: (\d+) body bytes read", log_text)
    return [int(n) for n in found]


def process_io(pid: int) -> dict[str, int]:
    """``/proc/<pid>/io``: ``wchar`` (bytes passed to write calls), ``write_bytes`` (to disk)."""
    values = {}
    for line in Path(f"/proc/{pid}/io").read_text().splitlines():
        name, _, value = line.partition(":")
        values[name.strip()] = int(value)
    return values


def tree_size(path: str | Path) -> int:
    """Bytes in every file below *path*."""
    return sum(p.stat().st_size for p in Path(path).rglob("*") if p.is_file())


@attrs.frozen
class Trickled:
    """How a trickling connection ended: when it was cut (None: never) and what it got."""

    cut: float | None
    response: bytes


def trickle(
    host: str, port: int, payload: bytes, every: float, limit: float, count: int
) -> list[Trickled]:
    """*count* new connections, each sending one byte of *payload* every *every* seconds."""
    socks = [socket.create_connection((host, port), timeout=10) for _ in range(count)]
    return trickle_on(socks, payload, every, limit)


def trickle_on(
    socks: list[socket.socket], payload: bytes | None, every: float, limit: float
) -> list[Trickled]:
    """On each of *socks*, one byte of *payload* (None: zeros) every *every* seconds, until
    the server cuts it or *limit* seconds have passed; the sockets are closed at the end."""
    for s in socks:
        s.setblocking(False)
    start = time.monotonic()
    cut: list[float | None] = [None] * len(socks)
    got = [b""] * len(socks)
    index = {s: i for i, s in enumerate(socks)}
    position = 0
    next_send = start
    while time.monotonic() - start < limit and any(c is None for c in cut):
        now = time.monotonic()
        if now >= next_send and (payload is None or position < len(payload)):
            byte = b"\0" if payload is None else payload[position : position + 1]
            for i, s in enumerate(socks):
                if cut[i] is None:
                    try:
                        s.send(byte)
                    except OSError:
                        cut[i] = now - start
            position += 1
            next_send += every
        live = [s for i, s in enumerate(socks) if cut[i] is None]
        readable, _ = ready(live, [], 0.05)
        for s in readable:
            i = index[s]
            try:
                data = s.recv(4096)
            except OSError:
                data = b""
            got[i] += data
            if not data:
                cut[i] = time.monotonic() - start
    for s in socks:
        s.close()
    return [Trickled(c, g) for c, g in zip(cut, got, strict=True)]


@attrs.frozen
class Latencies:
    """Pull latencies, in milliseconds, and how many pulls failed."""

    samples: list[float]
    failures: int

    @property
    def median(self) -> float:
        return statistics.median(self.samples) if self.samples else float("nan")

    @property
    def p99(self) -> float:
        if not self.samples:
            return float("nan")
        ordered = sorted(self.samples)
        return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]

    @property
    def worst(self) -> float:
        return max(self.samples) if self.samples else float("nan")

    def describe(self) -> str:
        return (
            f"{len(self.samples)} pulls: median {self.median:.1f} ms, p99 {self.p99:.1f} ms,"
            f" max {self.worst:.1f} ms, {self.failures} failed"
        )


class Puller:
    """A normal client pulling one blob over and over (a new connection each time), in a thread."""

    def __init__(self, host: str, port: int, path: str, size: int, pause: float = 0.05) -> None:
        self.host, self.port, self.path, self.size, self.pause = host, port, path, size, pause
        self.samples: list[float] = []
        self.failures = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> Puller:
        self._thread.start()
        return self

    def stop(self) -> Latencies:
        self._stop.set()
        self._thread.join(30)
        return Latencies(list(self.samples), self.failures)

    def _run(self) -> None:
        while not self._stop.is_set():
            t0 = time.monotonic()
            try:
                conn = http.client.HTTPConnection(self.host, self.port, timeout=10)
                conn.request("GET", self.path)
                resp = conn.getresponse()
                body = resp.read()
                conn.close()
                if resp.status != 200 or len(body) != self.size:
                    raise OSError(f"{resp.status}, {len(body)} bytes")
            except OSError:
                self.failures += 1
            else:
                self.samples.append((time.monotonic() - t0) * 1000)
            self._stop.wait(self.pause)


def open_many(
    host: str, port: int, count: int, source: str | None = None
) -> tuple[list[socket.socket], float]:
    """*count* connections opened one after another; and how long that took."""
    t0 = time.monotonic()
    socks = [
        socket.create_connection(
            (host, port), timeout=30, source_address=(source, 0) if source else None
        )
        for _ in range(count)
    ]
    return socks, time.monotonic() - t0


def ask_all(socks: list[socket.socket], request: bytes, limit: float = 60.0) -> list[int]:
    """Send *request* on every socket; the status each answers with (0: none, closed)."""
    for s in socks:
        s.sendall(request)
        s.setblocking(False)
    got = {s: b"" for s in socks}
    done: dict[socket.socket, int] = {}
    start = time.monotonic()
    while len(done) < len(socks) and time.monotonic() - start < limit:
        live = [s for s in socks if s not in done]
        readable, _ = ready(live, [], 0.5)
        for s in readable:
            try:
                data = s.recv(65536)
            except OSError:
                data = b""
            got[s] += data
            status = _final(got[s])
            if status or not data:
                done[s] = status
    return [done.get(s, 0) for s in socks]
