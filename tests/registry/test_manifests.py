"""Tests for :mod:`paxd.registry.manifests`: media types, parsing and referrer descriptors."""

from __future__ import annotations

import json
from typing import Any

from twisted.trial.unittest import SynchronousTestCase

from paxd.registry import manifests
from paxd.registry.errors import RegistryError
from paxd.registry.reference import Digest
from paxd.web.errors import http_status

CONFIG = Digest.of(b"config")
LAYER = Digest.of(b"layer")
CHILD = Digest.of(b"child")
SUBJECT = Digest.of(b"subject")


def descriptor(digest: Digest, media_type: str, size: int = 5, **extra: Any) -> dict[str, Any]:
    """A descriptor dict as a client writes it."""
    return {"mediaType": media_type, "digest": str(digest), "size": size, **extra}


def image(**overrides: Any) -> dict[str, Any]:
    """A minimal OCI image manifest document."""
    doc: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": manifests.OCI_MANIFEST,
        "config": descriptor(CONFIG, "application/vnd.oci.image.config.v1+json"),
        "layers": [descriptor(LAYER, "application/vnd.oci.image.layer.v1.tar+gzip")],
    }
    doc.update(overrides)
    return {k: v for k, v in doc.items() if v is not None}


def index(**overrides: Any) -> dict[str, Any]:
    """A minimal OCI index document."""
    doc: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": manifests.OCI_INDEX,
        "manifests": [descriptor(CHILD, manifests.OCI_MANIFEST)],
    }
    doc.update(overrides)
    return {k: v for k, v in doc.items() if v is not None}


def encode(doc: Any) -> bytes:
    return json.dumps(doc).encode()


class ParseTests(SynchronousTestCase):
    """parse_manifest accepts the four schema-2 media types and checks their structure."""

    def invalid(self, content: bytes, content_type: str | None = None) -> RegistryError:
        with self.assertRaises(RegistryError) as cm:
            manifests.parse_manifest(content, content_type)
        self.assertEqual(cm.exception.code, "MANIFEST_INVALID")
        self.assertEqual(http_status(cm.exception), 400)
        return cm.exception

    def test_oci_image(self) -> None:
        m = manifests.parse_manifest(encode(image()), manifests.OCI_MANIFEST)
        self.assertEqual(m.media_type, manifests.OCI_MANIFEST)
        self.assertFalse(m.is_index)
        self.assertEqual([d.digest for d in m.required_blobs()], [CONFIG, LAYER])
        self.assertEqual(m.required_manifests(), [])
        self.assertIsNone(m.subject)

    def test_docker_schema2(self) -> None:
        doc = image(mediaType=manifests.DOCKER_MANIFEST)
        m = manifests.parse_manifest(encode(doc), manifests.DOCKER_MANIFEST)
        self.assertEqual(m.media_type, manifests.DOCKER_MANIFEST)

    def test_indexes(self) -> None:
        for media_type in (manifests.OCI_INDEX, manifests.DOCKER_LIST):
            m = manifests.parse_manifest(encode(index(mediaType=media_type)), media_type)
            self.assertTrue(m.is_index)
            self.assertEqual(m.media_type, media_type)
            self.assertEqual([d.digest for d in m.required_manifests()], [CHILD])
            self.assertEqual(m.required_blobs(), [])

    def test_content_type_parameters_and_case_ignored(self) -> None:
        m = manifests.parse_manifest(
            encode(image()), "Application/VND.oci.image.manifest.v1+json; charset=utf-8"
        )
        self.assertEqual(m.media_type, manifests.OCI_MANIFEST)

    def test_generic_content_type_uses_json_media_type(self) -> None:
        for content_type in (None, "application/json", "application/octet-stream", ""):
            m = manifests.parse_manifest(encode(index()), content_type)
            self.assertEqual(m.media_type, manifests.OCI_INDEX)

    def test_media_type_inferred_when_absent_everywhere(self) -> None:
        m = manifests.parse_manifest(encode(image(mediaType=None)), None)
        self.assertEqual(m.media_type, manifests.OCI_MANIFEST)
        m = manifests.parse_manifest(encode(index(mediaType=None)), None)
        self.assertEqual(m.media_type, manifests.OCI_INDEX)

    def test_content_type_gives_media_type_when_json_has_none(self) -> None:
        doc = image(mediaType=None)
        m = manifests.parse_manifest(encode(doc), manifests.DOCKER_MANIFEST)
        self.assertEqual(m.media_type, manifests.DOCKER_MANIFEST)

    def test_contradicting_media_type(self) -> None:
        e = self.invalid(encode(image()), manifests.DOCKER_MANIFEST)
        self.assertIn("contradicts", e.message)

    def test_unsupported_media_type(self) -> None:
        self.invalid(encode(image(mediaType=None)), "text/plain")
        self.invalid(encode(image(mediaType="application/vnd.example+json")), None)

    def test_schema1_refused(self) -> None:
        doc = {"schemaVersion": 1, "name": "x", "tag": "y", "fsLayers": []}
        for content_type in (None, manifests.DOCKER_SCHEMA1, manifests.DOCKER_SCHEMA1_SIGNED):
            e = self.invalid(encode(doc), content_type)
            self.assertIn("schema1", e.message)
        e = self.invalid(encode(image()), manifests.DOCKER_SCHEMA1_SIGNED)
        self.assertIn("schema1", e.message)

    def test_not_json(self) -> None:
        for content in (b"", b"not json", b"\xff\xfe", b"[1, 2]", b'"a string"', b"{"):
            self.invalid(content, manifests.OCI_MANIFEST)

    def test_schema_version(self) -> None:
        for version in (None, 3, "2", True, 2.0):
            self.invalid(encode(image(schemaVersion=version)))

    def test_image_structure(self) -> None:
        self.invalid(encode(image(config=None)))
        self.invalid(encode(image(layers=None)))
        self.invalid(encode(image(layers={"a": 1})))
        self.invalid(encode(image(manifests=[])))
        self.invalid(encode(index(layers=[])))
        self.invalid(encode(index(manifests=None)))

    def test_empty_layers_allowed(self) -> None:
        m = manifests.parse_manifest(encode(image(layers=[])), None)
        self.assertEqual(m.layers, ())

    def test_bad_descriptors(self) -> None:
        good = descriptor(LAYER, "application/vnd.oci.image.layer.v1.tar")
        bad = [
            "a string",
            {k: v for k, v in good.items() if k != "mediaType"},
            {k: v for k, v in good.items() if k != "digest"},
            {k: v for k, v in good.items() if k != "size"},
            {**good, "mediaType": "nonsense"},
            {**good, "mediaType": 5},
            {**good, "digest": "sha256:xyz"},
            {**good, "digest": "md5:" + "a" * 32},
            {**good, "size": -1},
            {**good, "size": "5"},
            {**good, "size": True},
            {**good, "size": 1.5},
            {**good, "urls": "http://x"},
            {**good, "urls": [1]},
            {**good, "annotations": {"a": 1}},
            {**good, "annotations": ["a"]},
            {**good, "artifactType": "bad"},
        ]
        for item in bad:
            e = self.invalid(encode(image(layers=[good, item])), None)
            self.assertTrue(e.detail["field"].startswith("layers[1]"), e.detail)

    def test_annotations_must_be_strings(self) -> None:
        self.invalid(encode(image(annotations={"a": 1})))
        self.invalid(encode(image(annotations="x")))
        m = manifests.parse_manifest(encode(image(annotations={"a": "b"})), None)
        self.assertEqual(dict(m.annotations), {"a": "b"})

    def test_subject_and_artifact_type(self) -> None:
        doc = image(
            subject=descriptor(SUBJECT, manifests.OCI_MANIFEST),
            artifactType="application/vnd.example.sbom",
        )
        m = manifests.parse_manifest(encode(doc), None)
        assert m.subject is not None
        self.assertEqual(m.subject.digest, SUBJECT)
        self.assertEqual(m.artifact_type, "application/vnd.example.sbom")
        self.invalid(encode(image(subject={"digest": str(SUBJECT)})))
        self.invalid(encode(image(artifactType="nope")))

    def test_foreign_layers_not_required(self) -> None:
        foreign = descriptor(
            LAYER,
            "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
            urls=["https://example.com/layer"],
        )
        m = manifests.parse_manifest(encode(image(layers=[foreign])), None)
        self.assertEqual([d.digest for d in m.required_blobs()], [CONFIG])
        # without urls it must be present
        del foreign["urls"]
        m = manifests.parse_manifest(encode(image(layers=[foreign])), None)
        self.assertEqual([d.digest for d in m.required_blobs()], [CONFIG, LAYER])
        # a distributable layer with urls must still be present
        normal = descriptor(LAYER, "application/vnd.oci.image.layer.v1.tar", urls=["https://x"])
        m = manifests.parse_manifest(encode(image(layers=[normal])), None)
        self.assertEqual([d.digest for d in m.required_blobs()], [CONFIG, LAYER])


class ReferrerDescriptorTests(SynchronousTestCase):
    """referrer_descriptor: what a referrers index lists for a manifest."""

    def test_artifact_type_from_field(self) -> None:
        doc = image(artifactType="application/vnd.example.sig", annotations={"k": "v"})
        m = manifests.parse_manifest(encode(doc), None)
        d = Digest.of(b"m")
        self.assertEqual(
            m.referrer_descriptor(d, 42),
            {
                "mediaType": manifests.OCI_MANIFEST,
                "digest": str(d),
                "size": 42,
                "artifactType": "application/vnd.example.sig",
                "annotations": {"k": "v"},
            },
        )

    def test_artifact_type_from_config(self) -> None:
        m = manifests.parse_manifest(encode(image()), None)
        entry = m.referrer_descriptor(Digest.of(b"m"), 1)
        self.assertEqual(entry["artifactType"], "application/vnd.oci.image.config.v1+json")
        self.assertNotIn("annotations", entry)

    def test_index_without_artifact_type(self) -> None:
        m = manifests.parse_manifest(encode(index()), None)
        self.assertNotIn("artifactType", m.referrer_descriptor(Digest.of(b"m"), 1))


class StoredTests(SynchronousTestCase):
    """Reading back what storage holds, possibly written by distribution."""

    def test_stored_media_type(self) -> None:
        self.assertEqual(
            manifests.stored_media_type(encode(image(mediaType=manifests.DOCKER_MANIFEST))),
            manifests.DOCKER_MANIFEST,
        )
        self.assertEqual(
            manifests.stored_media_type(encode(index(mediaType=None))), manifests.OCI_INDEX
        )
        self.assertEqual(
            manifests.stored_media_type(encode(image(mediaType=None))), manifests.OCI_MANIFEST
        )
        self.assertEqual(
            manifests.stored_media_type(encode({"schemaVersion": 1})),
            manifests.DOCKER_SCHEMA1_SIGNED,
        )
        self.assertEqual(manifests.stored_media_type(b"garbage"), manifests.OCI_MANIFEST)

    def test_parse_stored(self) -> None:
        self.assertIsNone(manifests.parse_stored(b"garbage"))
        self.assertIsNotNone(manifests.parse_stored(encode(image())))
