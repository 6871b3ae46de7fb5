"""Packs: the ``pack.json`` rules, the pack directory and its form as an OCI artifact.

:mod:`paxd.packs.rules` checks a pack directory and lists what it holds,
:mod:`paxd.packs.archive` makes the reproducible tar+gzip of its tree, and
:mod:`paxd.packs.artifact` maps the directory to a manifest and blobs and back.
Nothing here touches the network.
"""
