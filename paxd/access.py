"""What an authenticated (or anonymous) client may do: the avatar the realm hands the web layer."""

from __future__ import annotations

import attrs


@attrs.frozen
class Access:
    """A client's identity and rights.

    :ivar user: the authenticated user name, or None for an anonymous client
        (or for an open registry with no ``auth`` section).
    :ivar can_write: may push, tag and delete; otherwise requests that write
        are refused with 403 ``DENIED``.
    """

    user: str | None
    can_write: bool

    def describe(self) -> str:
        """How to name this client in an error message or a log line."""
        return f"user {self.user!r}" if self.user is not None else "anonymous client"


#: The access of every client of a registry that has no ``auth`` section.
OPEN_ACCESS = Access(user=None, can_write=True)
#: The access of an unauthenticated client where ``auth.htpasswd.anonymous: read``.
ANONYMOUS_READ = Access(user=None, can_write=False)
