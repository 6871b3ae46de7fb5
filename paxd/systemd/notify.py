"""systemd's readiness protocol (``sd_notify``): a datagram to ``$NOTIFY_SOCKET``.

With ``Type=notify`` systemd waits for ``READY=1`` before it considers the
service started, so ``systemctl start paxd`` fails when paxd exits instead.
The protocol is one ``AF_UNIX`` datagram of ``KEY=VALUE`` lines to the socket
named by ``$NOTIFY_SOCKET`` (a path, or ``@name`` for the abstract namespace);
systemd documents it as a stable interface and gives a dependency-free
implementation in ``sd_notify(3)``. These few lines follow that one rather
than pull in a library: ``systemd-python`` and ``cysystemd`` are C extensions
needing libsystemd's headers, and ``sdnotify`` (pure Python) has had no release
since 2017. Without ``$NOTIFY_SOCKET`` (not under systemd) nothing is sent.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping

from twisted.logger import Logger
from zope.interface import Interface, implementer

__all__ = ["INotifier", "RecordingNotifier", "SystemdNotifier"]

log = Logger(namespace="paxd.systemd")


class INotifier(Interface):
    """Tells the service manager how start-up and shutdown are going."""

    def ready(status: str) -> None:
        """Start-up is complete (``READY=1``), with a one-line *status*."""

    def stopping() -> None:
        """Shutdown has begun (``STOPPING=1``)."""

    def status(status: str) -> None:
        """A one-line status (``STATUS=``), e.g. why start-up failed."""


@implementer(INotifier)
class SystemdNotifier:
    """Sends each state to ``$NOTIFY_SOCKET`` of *environ*; does nothing without it."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        self.address = environ.get("NOTIFY_SOCKET") or None

    def ready(self, status: str) -> None:
        self._send(f"READY=1\nSTATUS={_line(status)}")

    def stopping(self) -> None:
        self._send("STOPPING=1")

    def status(self, status: str) -> None:
        self._send(f"STATUS={_line(status)}")

    def _send(self, state: str) -> None:
        address = self.address
        if address is None:
            return
        if address.startswith("@"):
            address = "\0" + address[1:]  # Linux's abstract namespace
        elif not address.startswith("/"):
            log.warn(
                "NOTIFY_SOCKET={address!r} is not a socket path; not notifying", address=address
            )
            return
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as s:
                s.setblocking(False)  # a full queue must never stall the reactor
                s.connect(address)
                s.sendall(state.encode("utf-8"))
        except OSError as e:
            log.warn(
                "could not notify systemd at {address}: {reason}",
                address=self.address,
                reason=e.strerror or str(e),
            )


@implementer(INotifier)
class RecordingNotifier:
    """Keeps every state it is told, as the datagrams :class:`SystemdNotifier` would send."""

    def __init__(self) -> None:
        self.sent: list[str] = []

    def ready(self, status: str) -> None:
        self.sent.append(f"READY=1\nSTATUS={_line(status)}")

    def stopping(self) -> None:
        self.sent.append("STOPPING=1")

    def status(self, status: str) -> None:
        self.sent.append(f"STATUS={_line(status)}")


def _line(text: str) -> str:
    return " ".join(text.split())


def environ_notifier() -> SystemdNotifier:
    """The notifier for this process (reads ``os.environ``: only the wiring calls this)."""
    return SystemdNotifier(os.environ)
