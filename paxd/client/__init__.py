"""paxctl: the pack author's command-line client.

A synchronous program on ``requests`` (no Twisted here: a CLI waits for one
answer at a time).  :mod:`.cli` is the front door, :mod:`.commands`,
:mod:`.build` and :mod:`.check` do the work, :mod:`.registry` speaks the
distribution API through :mod:`.transport` (with :mod:`.neterrors` and
:mod:`.tlsinfo` for diagnoses), :mod:`.config` keeps the credentials,
:mod:`.progress` draws the bars, and :mod:`.packdir` turns pack directories
(and Helm charts) into OCI artifacts and back.  It shares :mod:`paxd.oci` and :mod:`paxd.packs` (the
pack format, the version order) with the daemon; the daemon never imports it.
"""
