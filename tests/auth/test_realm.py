"""The realm: user → Access → the API resource."""

from __future__ import annotations

from twisted.cred.checkers import ANONYMOUS
from twisted.cred.error import Unauthorized
from twisted.cred.portal import IRealm
from twisted.trial.unittest import SynchronousTestCase
from twisted.web.resource import IResource, Resource
from zope.interface.verify import verifyObject

from paxd.access import ANONYMOUS_READ, Access
from paxd.auth.realm import RegistryRealm


class AccessResource(Resource):
    def __init__(self, access: Access) -> None:
        super().__init__()
        self.access = access


def realm(anonymous_read: bool = False) -> RegistryRealm:
    return RegistryRealm(AccessResource, frozenset({"admin", "ops"}), anonymous_read)


class RealmTests(SynchronousTestCase):
    def avatar(self, r: RegistryRealm, avatar_id: object) -> Access:
        interface, resource, logout = r.requestAvatar(avatar_id, None, IResource)
        self.assertIs(interface, IResource)
        logout()
        assert isinstance(resource, AccessResource)
        return resource.access

    def test_interface(self) -> None:
        verifyObject(IRealm, realm())

    def test_admins_write_others_read(self) -> None:
        r = realm()
        self.assertEqual(self.avatar(r, "admin"), Access("admin", True))
        self.assertEqual(self.avatar(r, "ops"), Access("ops", True))
        self.assertEqual(self.avatar(r, "spectro"), Access("spectro", False))
        self.assertEqual(self.avatar(r, b"admin"), Access("admin", True))

    def test_anonymous_only_when_enabled(self) -> None:
        self.assertRaises(Unauthorized, realm().requestAvatar, ANONYMOUS, None, IResource)
        self.assertEqual(self.avatar(realm(anonymous_read=True), ANONYMOUS), ANONYMOUS_READ)

    def test_other_interfaces_refused(self) -> None:
        from zope.interface import Interface

        class IOther(Interface):
            pass

        self.assertRaises(NotImplementedError, realm().requestAvatar, "admin", None, IOther)
