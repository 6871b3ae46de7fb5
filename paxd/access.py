"""What an authenticated (or anonymous) client may do: the avatar the realm hands the web layer."""

from __future__ import annotations

from collections.abc import Callable

import attrs


def every_repository(name: str) -> bool:
    """The read rule of every client today: any client let in may read every repository."""
    return True


@attrs.frozen
class Access:
    """A client's identity and rights.

    :ivar user: the authenticated user name, or None for an anonymous client
        (or for an open registry with no ``auth`` section).
    :ivar can_write: may push, tag and delete; otherwise requests that write
        are refused with 403 ``DENIED``.
    :ivar readable: which repositories the client may read, by name.  Every
        client the guard lets in reads every repository today (anonymous
        clients only where ``auth.htpasswd.anonymous: read``); the domain asks
        this predicate wherever an answer could tell one repository's content
        to a client through another (an anonymous blob mount), so that
        per-repository rules only have to change it.
    """

    user: str | None
    can_write: bool
    readable: Callable[[str], bool] = attrs.field(default=every_repository, repr=False)

    def describe(self) -> str:
        """How to name this client in an error message or a log line."""
        return f"user {self.user!r}" if self.user is not None else "anonymous client"

    def may_read(self, name: str) -> bool:
        """True if the client may read repository *name* (a name already validated)."""
        return self.readable(name)


#: The access of every client of a registry that has no ``auth`` section.
OPEN_ACCESS = Access(user=None, can_write=True)
#: The access of an unauthenticated client where ``auth.htpasswd.anonymous: read``.
ANONYMOUS_READ = Access(user=None, can_write=False)
