"""What the daemon knows about packs: their wire format and the one version order.

:mod:`paxd.packs.format` names the pack's media types and annotation keys,
recognises a pack manifest and splits ``<group>__<label>`` tags;
:mod:`paxd.packs.versions` orders semantic versions and computes parent tags
(``1.x``, ``1.27.x``).  Both paxctl and the registry import them; nothing here
walks a directory, builds an artifact or touches the network (that is
:mod:`paxd.client.packdir`).
"""
