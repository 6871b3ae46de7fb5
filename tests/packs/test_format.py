"""Tests for :mod:`paxd.packs.format`: recognising a pack manifest, tag groups."""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from paxd.oci import OCI_MANIFEST
from paxd.packs.format import (
    ARTIFACT_TYPE,
    CONFIG_MEDIA_TYPE,
    GROUP_RE,
    is_pack_manifest,
    join_tag,
    split_tag,
)


class TagHelperTests(SynchronousTestCase):
    def test_split_and_join(self) -> None:
        self.assertEqual(split_tag("lts__14.4.3"), ("lts", "14.4.3"))
        self.assertEqual(split_tag("14.4.3"), (None, "14.4.3"))
        self.assertEqual(join_tag("14.4.3", "lts"), "lts__14.4.3")
        self.assertEqual(join_tag("14.4.3", None), "14.4.3")

    def test_group_grammar(self) -> None:
        """No underscore in a group, so that ``<group>__<label>`` splits one way only."""
        for good in ("lts", "edge-1", "v1.2"):
            self.assertTrue(GROUP_RE.match(good), good)
        for bad in ("", "a_b", "-a", "a" * 65):
            self.assertFalse(GROUP_RE.match(bad), bad)


class IsPackManifestTests(SynchronousTestCase):
    def test_by_artifact_type_or_config(self) -> None:
        config = {"mediaType": "application/vnd.oci.image.config.v1+json"}
        self.assertTrue(
            is_pack_manifest({"mediaType": OCI_MANIFEST, "artifactType": ARTIFACT_TYPE})
        )
        self.assertTrue(is_pack_manifest({"config": {"mediaType": CONFIG_MEDIA_TYPE}}))
        self.assertFalse(is_pack_manifest({"mediaType": OCI_MANIFEST, "config": config}))
        self.assertFalse(is_pack_manifest({"config": "not a descriptor"}))
        self.assertFalse(is_pack_manifest([ARTIFACT_TYPE]))
