"""paxctl's pack directories: their rules, their form as an OCI artifact, their archive.

:mod:`paxd.client.packdir.rules` checks a pack directory and lists what it
holds (:mod:`paxd.client.packdir.images` checks the logo),
:mod:`paxd.client.packdir.archive` makes the reproducible tar+gzip of its tree,
and :mod:`paxd.client.packdir.artifact` maps the directory to a manifest and
blobs and back.  The wire format they follow is :mod:`paxd.packs.format`.
Nothing here touches the network, and the daemon never imports it.
"""
