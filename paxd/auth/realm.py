"""The realm: turns an authenticated user name into the registry API that user may use."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from twisted.cred.checkers import ANONYMOUS
from twisted.cred.error import Unauthorized
from twisted.cred.portal import IRealm
from twisted.web.resource import IResource
from zope.interface import implementer

from paxd.access import ANONYMOUS_READ, Access


def _logout() -> None:
    """Nothing to release: avatars hold no per-login state."""


@implementer(IRealm)
class RegistryRealm:
    """Hands each client an :class:`~twisted.web.resource.IResource` built for its :class:`Access`.

    :param api_for: builds the API resource for one client's access.
    :param admins: the users who may push and delete; every other user may only read.
    :param anonymous_read: whether unauthenticated clients may read.
    """

    def __init__(
        self,
        api_for: Callable[[Access], IResource],
        admins: frozenset[str],
        anonymous_read: bool,
    ) -> None:
        self.api_for = api_for
        self.admins = frozenset(admins)
        self.anonymous_read = anonymous_read

    def access_for(self, avatarId: Any) -> Access:
        """The rights of *avatarId* (a user name, or ``ANONYMOUS``).

        :raises Unauthorized: for an anonymous client where anonymous reads are off.
        """
        if avatarId is ANONYMOUS or avatarId == ANONYMOUS:
            if not self.anonymous_read:
                raise Unauthorized("anonymous access is not allowed")
            return ANONYMOUS_READ
        user = avatarId.decode("utf-8") if isinstance(avatarId, bytes) else str(avatarId)
        return Access(user=user, can_write=user in self.admins)

    def requestAvatar(
        self, avatarId: Any, mind: object, *interfaces: Any
    ) -> tuple[Any, IResource, Callable[[], None]]:
        """``(IResource, the API for this client, logout)``."""
        if IResource not in interfaces:
            raise NotImplementedError("RegistryRealm only provides IResource avatars")
        return IResource, self.api_for(self.access_for(avatarId)), _logout
