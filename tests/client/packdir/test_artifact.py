"""The pack ↔ OCI artifact mapping."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from twisted.trial.unittest import SynchronousTestCase

from paxd.client.packdir.artifact import (
    ManifestError,
    PackArtifact,
    build_artifact,
    pack_tags,
    parse_pack_manifest,
)
from paxd.client.packdir.rules import inspect_pack
from paxd.packs.format import (
    ARCHIVE_MEDIA_TYPE,
    ARTIFACT_TYPE,
    CONFIG_MEDIA_TYPE,
    MESSAGE_ANNOTATION,
    TITLE,
    is_pack_manifest,
)
from tests.client.packdir.support import copy_sample


def artifact_of(root: Path, annotations: dict[str, str] | None = None) -> PackArtifact:
    pack, problems = inspect_pack(root)
    assert pack is not None, problems
    return build_artifact(pack, annotations)


class MappingTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.tmp = Path(self.mktemp())
        self.tmp.mkdir()

    def test_manifest_shape(self) -> None:
        root = copy_sample("cert-manager", self.tmp)
        with artifact_of(root) as art:
            manifest = json.loads(art.manifest)
            self.assertEqual(manifest["schemaVersion"], 2)
            self.assertEqual(manifest["mediaType"], "application/vnd.oci.image.manifest.v1+json")
            self.assertEqual(manifest["artifactType"], ARTIFACT_TYPE)
            self.assertEqual(manifest["config"]["mediaType"], CONFIG_MEDIA_TYPE)
            self.assertEqual(
                [(layer["mediaType"], layer["annotations"][TITLE]) for layer in manifest["layers"]],
                [
                    ("image/png", "logo.png"),
                    ("application/vnd.paxd.pack.values.v1+yaml", "values.yaml"),
                    ("text/markdown", "README.md"),
                    ("application/vnd.paxd.pack.schema.v1+yaml", "schema.yaml"),
                    ("application/vnd.paxd.pack.presets.v1+yaml", "presets.yaml"),
                    (ARCHIVE_MEDIA_TYPE, "content.tar.gz"),
                ],
            )
            self.assertEqual(manifest["annotations"]["io.paxd.pack.displayName"], "Cert Manager")
            self.assertEqual(manifest["annotations"]["io.paxd.pack.layer"], "addon")
            self.assertEqual(manifest["annotations"]["io.paxd.pack.cloudTypes"], "all")
            self.assertEqual(manifest["annotations"]["io.paxd.pack.addonType"], "security")
            self.assertEqual(art.digest, "sha256:" + hashlib.sha256(art.manifest).hexdigest())
            self.assertEqual(art.tags, ["1.14.4"])

    def test_config_is_pack_json_verbatim(self) -> None:
        root = copy_sample("cni-flannel", self.tmp)
        with artifact_of(root) as art:
            assert art.config.data is not None
            self.assertEqual(art.config.data, (root / "pack.json").read_bytes())
            self.assertEqual(
                art.config.digest,
                "sha256:" + hashlib.sha256((root / "pack.json").read_bytes()).hexdigest(),
            )

    def test_every_blob_matches_its_descriptor(self) -> None:
        root = copy_sample("ubuntu-aws", self.tmp)
        with artifact_of(root) as art:
            for blob in art.blobs:
                with blob.open() as fh:
                    data = fh.read()
                self.assertEqual(len(data), blob.size, blob.label)
                self.assertEqual("sha256:" + hashlib.sha256(data).hexdigest(), blob.digest)

    def test_reproducible(self) -> None:
        """Two copies of a pack (other times, other directory) give the same manifest digest."""
        a = copy_sample("ubuntu-aws", self.tmp / "a")
        b = copy_sample("ubuntu-aws", self.tmp / "b")
        for path in b.rglob("*"):
            os.utime(path, (12345, 12345), follow_symlinks=False)
        with artifact_of(a) as one, artifact_of(b) as two:
            self.assertEqual(one.manifest, two.manifest)
            self.assertEqual(one.digest, two.digest)

    def test_content_change_changes_digest(self) -> None:
        root = copy_sample("cni-flannel", self.tmp)
        with artifact_of(root) as before:
            digest = before.digest
        with (root / "manifests" / "kube-flannel.yaml").open("a") as fh:
            fh.write("# one more line\n")
        with artifact_of(root) as after:
            self.assertNotEqual(after.digest, digest)

    def test_group_tag(self) -> None:
        root = copy_sample("ubuntu-aws", self.tmp)
        with artifact_of(root) as art:
            self.assertEqual(art.tags, ["22.04", "lts__22.04"])
        self.assertEqual(pack_tags({"version": "1"}), ["1"])

    def test_message_annotation_leaves_content_alone(self) -> None:
        root = copy_sample("cni-flannel", self.tmp)
        with artifact_of(root) as plain, artifact_of(root, {MESSAGE_ANNOTATION: "why"}) as forced:
            self.assertNotEqual(plain.digest, forced.digest)
            p, f = parse_pack_manifest(plain.manifest), parse_pack_manifest(forced.manifest)
            self.assertEqual(p.content_key(), f.content_key())
            self.assertEqual(f.annotations[MESSAGE_ANNOTATION], "why")
            self.assertNotIn("message", f.summary())

    def test_no_archive_without_a_tree(self) -> None:
        root = copy_sample("cni-flannel", self.tmp)
        for path in sorted(root.rglob("*"), reverse=True):
            if path.relative_to(root).parts[0] == "manifests":
                path.unlink() if path.is_file() else path.rmdir()
        data = json.loads((root / "pack.json").read_text())
        del data["kubeManifests"]
        (root / "pack.json").write_text(json.dumps(data))
        with artifact_of(root) as art:
            self.assertIsNone(parse_pack_manifest(art.manifest).archive())
            self.assertEqual(len(art.layers), 3)

    def test_close_removes_the_archive(self) -> None:
        root = copy_sample("cni-flannel", self.tmp)
        art = artifact_of(root)
        path = art.layers[-1].path
        assert path is not None
        self.assertTrue(path.exists())
        art.close()
        self.assertFalse(path.exists())


class ParseTests(SynchronousTestCase):
    def manifest(self, **changes: Any) -> dict[str, Any]:
        d = "sha256:" + "a" * 64
        m: dict[str, Any] = {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "artifactType": ARTIFACT_TYPE,
            "config": {"mediaType": CONFIG_MEDIA_TYPE, "digest": d, "size": 2},
            "layers": [
                {
                    "mediaType": "image/png",
                    "digest": d,
                    "size": 1,
                    "annotations": {TITLE: "logo.png"},
                },
                {"mediaType": "x", "digest": d, "size": 1, "annotations": {TITLE: "values.yaml"}},
            ],
        }
        m.update(changes)
        return m

    def parse(self, m: dict[str, Any]) -> Any:
        return parse_pack_manifest(json.dumps(m).encode())

    def test_minimal(self) -> None:
        parsed = self.parse(self.manifest())
        self.assertEqual([d.title for d in parsed.files()], ["logo.png", "values.yaml"])
        self.assertIsNone(parsed.archive())

    def test_not_a_pack(self) -> None:
        image = self.manifest(artifactType=None)
        image["config"]["mediaType"] = "application/vnd.oci.image.config.v1+json"
        self.assertFalse(is_pack_manifest(image))
        with self.assertRaises(ManifestError) as caught:
            self.parse(image)
        self.assertIn("not a pack", str(caught.exception))

    def test_title_becoming_a_path_is_refused(self) -> None:
        m = self.manifest()
        m["layers"][1]["annotations"][TITLE] = "../../.bashrc"
        with self.assertRaises(ManifestError) as caught:
            self.parse(m)
        self.assertIn("unexpected title", str(caught.exception))

    def test_bad_digest(self) -> None:
        m = self.manifest()
        m["layers"][0]["digest"] = "sha256:../../x"
        self.assertRaises(ManifestError, self.parse, m)

    def test_two_logos(self) -> None:
        m = self.manifest()
        m["layers"].append(
            {
                "mediaType": "image/svg+xml",
                "digest": m["layers"][0]["digest"],
                "size": 1,
                "annotations": {TITLE: "logo.svg"},
            }
        )
        self.assertRaises(ManifestError, self.parse, m)

    def test_not_json(self) -> None:
        self.assertRaises(ManifestError, parse_pack_manifest, b"\xff")
