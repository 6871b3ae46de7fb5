"""What paxctl reports instead of a traceback."""

from __future__ import annotations


class PaxctlError(Exception):
    """A failure shown as one line, ``paxctl: [CODE: ]message``, exit status 1.

    :param code: the registry's error code (``MANIFEST_UNKNOWN``…) or ``None``.
    """

    exit_status = 1
    #: the TLS handshake itself failed (not the certificate): maybe a plain-HTTP server
    tls_failed = False

    def __init__(self, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code

    def __str__(self) -> str:
        return f"{self.code}: {self.message}" if self.code else self.message


class UsageError(PaxctlError):
    """The command line is wrong (exit status 2, like argparse)."""

    exit_status = 2


class RegistryAPIError(PaxctlError):
    """An error answer from the registry, with its HTTP status."""

    def __init__(self, message: str, code: str | None, status: int) -> None:
        super().__init__(message, code)
        self.status = status
