"""The listening sockets of ``paxd serve --workers N``: bound by the parent, adopted by workers.

For a TCP listener (``tcp:`` / ``tcp6:``, which ``http.addr`` becomes) the
parent binds one socket per worker, all with ``SO_REUSEPORT`` on the same
address: the kernel spreads new connections over them evenly, where one
shared socket would let whichever worker wakes first accept a whole burst.
The parent keeps every socket open, so a worker that dies loses no queued
connection: its restart adopts the same socket.  A unix socket or a socket
systemd passed in (``systemd:``) is one socket, shared by every worker.

The port-80 listeners (``http.redirect``) go to worker 0 alone: it answers
the ACME HTTP-01 challenges it asked for itself.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Sequence

import attrs

from paxd.listeners import is_description

__all__ = ["Adopted", "WorkerSockets", "bind_all", "parse_description"]

FAMILIES = {"INET": socket.AF_INET, "INET6": socket.AF_INET6, "UNIX": socket.AF_UNIX}
_BACKLOG = 50


class ListenerError(ValueError):
    """A listener ``--workers`` cannot share; ``str()`` says which and what to use."""


@attrs.frozen
class Adopted:
    """A listening socket a worker adopts: what the description was, its fd and family."""

    description: str
    fd: int
    family: str  # a key of FAMILIES

    def to_arg(self) -> str:
        """The form a worker gets on its command line."""
        return f"{self.fd},{self.family},{self.description}"

    @classmethod
    def from_arg(cls, text: str) -> Adopted:
        """Back from :meth:`to_arg`."""
        fd, family, description = text.split(",", 2)
        return cls(description, int(fd), family)


def parse_description(description: str) -> tuple[str, list[str], dict[str, str]]:
    """A Twisted endpoint description's kind, positional and keyword arguments (unescaped)."""
    parts: list[str] = []
    current: list[str] = []
    escaped = False
    for char in description:
        if escaped:
            current.append(char)
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == ":":
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    kind, args, kwargs = parts[0], [], {}
    for part in parts[1:]:
        key, sep, value = part.partition("=")
        if sep:
            kwargs[key] = value
        else:
            args.append(part)
    return kind, args, kwargs


def _tcp_sockets(kind: str, args: list[str], kwargs: dict[str, str], count: int) -> list[int]:
    family = socket.AF_INET6 if kind == "tcp6" else socket.AF_INET
    port = int(kwargs.get("port") or args[0])
    interface = kwargs.get("interface") or ("::" if kind == "tcp6" else "")
    backlog = int(kwargs.get("backlog", _BACKLOG))
    fds = []
    for _ in range(count):
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((interface, port))
        if port == 0:  # every worker's socket on the one port the first was given
            port = sock.getsockname()[1]
        sock.listen(backlog)
        sock.set_inheritable(True)
        fds.append(sock.detach())
    return fds


def _unix_socket(args: list[str], kwargs: dict[str, str]) -> int:
    path = kwargs.get("address") or args[0]
    if os.path.exists(path) and not os.path.isfile(path):
        os.unlink(path)  # a socket left by an earlier run (Twisted's unix endpoint does the same)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(path)
    if "mode" in kwargs:
        os.chmod(path, int(kwargs["mode"], 8))
    sock.listen(int(kwargs.get("backlog", _BACKLOG)))
    sock.set_inheritable(True)
    return sock.detach()


@attrs.frozen
class WorkerSockets:
    """Every listening socket, and which worker adopts which."""

    #: per worker: the registry's listeners
    registry: list[list[Adopted]]
    #: worker 0's port-80 listeners
    redirect: list[Adopted]

    def for_worker(self, index: int) -> list[Adopted]:
        """What worker *index* adopts."""
        return self.registry[index] + (self.redirect if index == 0 else [])

    def close(self) -> None:
        """Close every socket (the parent, at the end)."""
        fds = {a.fd for a in self.redirect} | {a.fd for w in self.registry for a in w}
        for fd in fds:
            try:
                os.close(fd)
            except OSError:
                pass


def _bind(description: str, count: int) -> list[Adopted]:
    """*count* sockets for *description* (one shared, unless it is TCP)."""
    if not is_description(description):
        raise ListenerError(f"{description!r} is not an endpoint description")
    kind, args, kwargs = parse_description(description)
    if kind in ("tcp", "tcp6"):
        family = "INET6" if kind == "tcp6" else "INET"
        return [Adopted(description, fd, family) for fd in _tcp_sockets(kind, args, kwargs, count)]
    if kind == "unix":
        return [Adopted(description, _unix_socket(args, kwargs), "UNIX")] * count
    if kind == "systemd":
        domain = kwargs.get("domain", "INET")
        fd = 3 + int(kwargs.get("index", "0"))
        os.set_inheritable(fd, True)
        return [Adopted(description, fd, domain)] * count
    raise ListenerError(
        f"{description!r}: --workers shares tcp:, tcp6:, unix: and systemd: listeners only;"
        " for TLS set http.tls and listen on tcp:"
    )


def bind_all(registry: Sequence[str], redirect: Sequence[str], count: int) -> WorkerSockets:
    """Bind every listener for *count* workers (see the module docstring).

    :raises OSError: a port in use, an address not ours; ListenerError: a listener kind
        that cannot be shared.
    """
    per_description = [_bind(d, count) for d in registry]
    workers = [[sockets[i] for sockets in per_description] for i in range(count)]
    return WorkerSockets(workers, [_bind(d, 1)[0] for d in redirect])
