"""paxctl: the pack author's command-line client.

A synchronous program on the standard library's ``http.client`` and ``ssl``
(no Twisted here: a CLI waits for one answer at a time).  :mod:`.cli` is the
front door, :mod:`.commands` and :mod:`.check` do the work, :mod:`.registry`
speaks the distribution API through :mod:`.transport`, :mod:`.config`
keeps the credentials, and :mod:`.packdir` turns pack directories into OCI
artifacts and back.  It shares :mod:`paxd.oci` and :mod:`paxd.packs` (the
pack format, the version order) with the daemon; the daemon never imports it.
"""
