"""Authentication and access control: htpasswd through twisted.cred.

:mod:`.htpasswd` checks passwords (bcrypt in a thread pool, with an HMAC
cache), :mod:`.realm` turns a login into an :class:`~paxd.access.Access`,
:mod:`.guard` puts Basic authentication in front of ``/v1`` and ``/v2`` on
public Twisted API, with :mod:`.throttle`'s failure table refusing addresses
that fail too often, and :mod:`.users` is ``paxd htpasswd``.
"""
