"""Where paxd listens: ``http.addr`` (distribution's form) → Twisted endpoint descriptions.

``http.listen`` (a paxd extension) is already a list of Twisted endpoint
descriptions; ``http.addr`` is Go's ``HOST:PORT`` (or a socket path with
``net: unix``), translated here: ``:5000`` → ``tcp:5000``,
``127.0.0.1:5000`` → ``tcp:5000:interface=127.0.0.1``, ``[::1]:5000`` →
``tcp6:5000:interface=\\:\\:1``, ``/run/paxd.sock`` → ``unix:/run/paxd.sock``.

Nothing here reads the configuration file: :mod:`paxd.config` calls
:func:`addr_descriptions` while it validates (and turns an
:class:`AddressError` into its own error naming the key), and the wiring calls
:func:`endpoint_descriptions` on the validated ``http`` section.
"""

from __future__ import annotations

import ipaddress
from typing import Protocol

__all__ = [
    "DEFAULT_BACKLOG",
    "SOMAXCONN",
    "AddressError",
    "HTTPListeners",
    "addr_descriptions",
    "endpoint_descriptions",
    "escape",
    "is_description",
    "system_backlog",
    "with_backlog",
]

#: where Linux says how long a listen queue may be
SOMAXCONN = "/proc/sys/net/core/somaxconn"
#: the backlog when the system does not say (Linux's somaxconn default since 5.4)
DEFAULT_BACKLOG = 4096
#: endpoint types whose descriptions take ``backlog=``
_BACKLOG_TYPES = frozenset({"tcp", "tcp6", "unix", "ssl"})


class AddressError(ValueError):
    """``http.addr`` cannot be translated; ``str()`` says why and how to write it."""


class HTTPListeners(Protocol):
    """What :func:`endpoint_descriptions` reads (``paxd.config.HTTPConfig`` has it)."""

    @property
    def addr(self) -> str: ...

    @property
    def net(self) -> str: ...

    @property
    def listen(self) -> tuple[str, ...]: ...


def escape(text: str) -> str:
    """Escape a value for a Twisted endpoint description."""
    return text.replace("\\", "\\\\").replace(":", "\\:").replace("=", "\\=")


def is_description(text: str) -> bool:
    """Whether *text* has the shape of an endpoint description (``TYPE:ARGS``)."""
    return ":" in text


def endpoint_descriptions(http: HTTPListeners) -> list[str]:
    """Twisted server endpoint descriptions for the registry's listeners.

    ``http.listen`` as given, or ``http.addr`` translated (:func:`addr_descriptions`).

    :raises AddressError: only for a section the configuration did not validate.
    """
    if http.listen:
        return list(http.listen)
    return addr_descriptions(http.addr, http.net)


def addr_descriptions(addr: str, net: str = "tcp", listen_key: str = "http.listen") -> list[str]:
    """Go's listen address *addr* (network *net*) as endpoint descriptions.

    *listen_key* is the key an error message suggests for Twisted endpoints instead.

    :raises AddressError: with a one-line reason and the way to write it.
    """
    if net == "unix":
        if not addr:
            raise AddressError("missing; with net: unix, set the socket path")
        return [f"unix:{escape(addr)}"]
    host, sep, port = addr.rpartition(":")
    if not sep:
        raise AddressError(f"{addr!r} has no port; write HOST:PORT, e.g. :5000 or 127.0.0.1:5000")
    if not port.isdigit() or not 0 <= int(port) <= 65535:
        raise AddressError(
            f"{addr!r}: port {port!r} is not a number from 0 to 65535; write e.g. :5000"
        )
    number = int(port)
    if not host:
        return [f"tcp:{number}"]
    bracketed = host.startswith("[") and host.endswith("]")
    literal = host[1:-1] if bracketed else host
    try:
        ip = ipaddress.ip_address(literal)
    except ValueError:
        if ":" in literal and not bracketed:
            hint = "put an IPv6 address in brackets, e.g. [::1]:5000"
        else:
            hint = (
                "use an IP address (e.g. 127.0.0.1:5000, [::1]:5000, or :5000 for all),"
                f" or Twisted endpoints in {listen_key}"
            )
        raise AddressError(f"{addr!r}: {host!r} is not an IP address; {hint}") from None
    if ip.version == 6:
        if not bracketed:
            raise AddressError(
                f"{addr!r}: put the IPv6 address in brackets, e.g. [{literal}]:{number}"
            )
        return [f"tcp6:{number}:interface={escape(literal)}"]
    if bracketed:
        raise AddressError(
            f"{addr!r}: only IPv6 addresses go in brackets; write {literal}:{number}"
        )
    return [f"tcp:{number}:interface={literal}"]


def system_backlog(path: str = SOMAXCONN) -> int:
    """The longest listen queue the system allows (``net.core.somaxconn``), or the default."""
    try:
        with open(path) as f:
            value = int(f.read().strip())
    except (OSError, ValueError):
        return DEFAULT_BACKLOG
    return value if value > 0 else DEFAULT_BACKLOG


def with_backlog(description: str, backlog: int) -> str:
    """*description* with ``backlog=`` *backlog* if it is a tcp, tcp6, unix or ssl endpoint
    without one (Twisted's default is 50: a burst of connections would wait on SYN retries).

    A description that sets its own ``backlog=``, and other types (``systemd:``,
    whose socket systemd made), are returned as they are.
    """
    parts = description.replace("\\:", "\0").split(":")
    if parts[0] not in _BACKLOG_TYPES or any(p.startswith("backlog=") for p in parts[1:]):
        return description
    return f"{description}:backlog={backlog}"
