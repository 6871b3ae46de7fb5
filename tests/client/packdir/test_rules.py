"""The pack rules: what ``paxctl pack validate`` accepts and what it says about the rest."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from twisted.trial.unittest import SynchronousTestCase

from paxd.client.packdir.rules import Problem, errors, inspect_pack, validate_pack
from tests.client.packdir.support import SAMPLES, copy_sample


class PackTestCase(SynchronousTestCase):
    """A sample pack copied into a temporary directory."""

    sample = "cert-manager"

    def setUp(self) -> None:
        self.tmp = Path(self.mktemp())
        self.tmp.mkdir()
        self.pack = copy_sample(self.sample, self.tmp)

    def edit_pack_json(self, **changes: Any) -> None:
        path = self.pack / "pack.json"
        data = json.loads(path.read_text())
        for key, value in changes.items():
            if value is None:
                data.pop(key, None)
            else:
                data[key] = value
        path.write_text(json.dumps(data))

    def error_strings(self) -> list[str]:
        return [str(p) for p in errors(validate_pack(self.pack))]

    def assertOneError(self, *fragments: str) -> str:
        found = self.error_strings()
        self.assertEqual(len(found), 1, found)
        for fragment in fragments:
            self.assertIn(fragment, found[0])
        return found[0]


class SamplesTests(SynchronousTestCase):
    def test_samples_are_valid(self) -> None:
        """The three sample packs pass with neither errors nor warnings."""
        tmp = Path(self.mktemp())
        tmp.mkdir()
        for name in SAMPLES:
            pack, problems = inspect_pack(copy_sample(name, tmp))
            self.assertEqual(problems, [], name)
            assert pack is not None
            self.assertEqual(pack.name, name)

    def test_what_a_pack_holds(self) -> None:
        """The documents present, the logo, and the tree for the archive (sorted, no top files)."""
        tmp = Path(self.mktemp())
        tmp.mkdir()
        pack, _ = inspect_pack(copy_sample("cert-manager", tmp))
        assert pack is not None
        self.assertEqual(pack.logo, "logo.png")
        self.assertEqual(
            pack.documents, ("values.yaml", "README.md", "schema.yaml", "presets.yaml")
        )
        self.assertEqual(
            [(e.path, e.kind) for e in pack.tree],
            [("charts", "dir"), ("charts/cert-manager-v1.14.4.tgz", "file")],
        )
        self.assertEqual(pack.pack_json, (tmp / "cert-manager" / "pack.json").read_bytes())


class MissingFilesTests(PackTestCase):
    def test_not_a_directory(self) -> None:
        path = self.tmp / "file"
        path.write_text("x")
        pack, problems = inspect_pack(path)
        self.assertIsNone(pack)
        self.assertIn("not a directory", str(problems[0]))

    def test_no_pack_json(self) -> None:
        (self.pack / "pack.json").unlink()
        self.assertOneError("pack.json: missing")

    def test_pack_json_not_json(self) -> None:
        (self.pack / "pack.json").write_text('{"name": "x",\n  oops}')
        self.assertOneError("pack.json: not valid JSON (line 2")

    def test_pack_json_not_an_object(self) -> None:
        (self.pack / "pack.json").write_text("[1, 2]")
        self.assertOneError("pack.json: must be a JSON object, not list")

    def test_no_logo(self) -> None:
        (self.pack / "logo.png").unlink()
        self.assertOneError("logo.png: missing: a pack needs a logo")

    def test_two_logos(self) -> None:
        (self.pack / "logo.svg").write_text('<svg xmlns="http://www.w3.org/2000/svg"/>')
        self.assertOneError("a pack has one logo")

    def test_logo_not_a_png(self) -> None:
        (self.pack / "logo.png").write_text("<html>not a logo</html>")
        self.assertOneError("logo.png: not a PNG image")

    def test_no_values(self) -> None:
        (self.pack / "values.yaml").unlink()
        self.assertOneError("values.yaml: missing")

    def test_empty_values_is_fine(self) -> None:
        (self.pack / "values.yaml").write_bytes(b"")
        self.assertEqual(self.error_strings(), [])

    def test_values_not_yaml(self) -> None:
        (self.pack / "values.yaml").write_text("pack:\n  a: [1, 2\n")
        self.assertOneError("values.yaml: not valid YAML (line")

    def test_values_not_a_mapping(self) -> None:
        (self.pack / "values.yaml").write_text("- a\n- b\n")
        self.assertOneError("values.yaml: must be a YAML mapping, not list")

    def test_presets_need_names(self) -> None:
        (self.pack / "presets.yaml").write_text("presets:\n  - displayName: x\n")
        self.assertOneError("presets.yaml: presets[0]: each preset needs a name")

    def test_schema_must_parse(self) -> None:
        (self.pack / "schema.yaml").write_text("a: b: c\n")
        self.assertOneError("schema.yaml: not valid YAML")


class FieldTests(PackTestCase):
    def test_required_fields(self) -> None:
        self.edit_pack_json(displayName=None, layer=None)
        found = self.error_strings()
        self.assertEqual(
            found,
            [
                "pack.json: displayName: required field missing",
                "pack.json: layer: required field missing",
            ],
        )

    def test_layer_not_allowed(self) -> None:
        self.edit_pack_json(layer="addons")
        self.assertOneError(
            "pack.json: layer: 'addons' is not one of kernel, os, k8s, cni, csi, addon"
        )

    def test_name_must_be_a_repository_name(self) -> None:
        self.edit_pack_json(name="Cert_Manager!")
        self.assertOneError("pack.json: name: 'Cert_Manager!' is not a repository name")

    def test_version_must_be_a_tag(self) -> None:
        self.edit_pack_json(version="1.0.0+build5")
        self.assertOneError("pack.json: version: '1.0.0+build5' cannot be a tag")

    def test_version_without_double_underscore(self) -> None:
        self.edit_pack_json(version="a__1")
        self.assertOneError("version", "no '__'")

    def test_group_without_underscore(self) -> None:
        self.edit_pack_json(group="my_group")
        self.assertOneError("pack.json: group:")

    def test_cloud_types_unknown_value_is_a_warning(self) -> None:
        self.edit_pack_json(cloudTypes=["aws", "mars"])
        problems = validate_pack(self.pack)
        self.assertEqual(errors(problems), [])
        self.assertEqual(len(problems), 1)
        self.assertTrue(
            str(problems[0]).startswith(
                "warning: pack.json: cloudTypes[1]: 'mars' is not a known cloud type (all, aws,"
            )
        )

    def test_cloud_types_must_be_a_list(self) -> None:
        self.edit_pack_json(cloudTypes="aws")
        self.assertOneError("pack.json: cloudTypes: must be a list")

    def test_annotations_must_be_strings(self) -> None:
        self.edit_pack_json(annotations={"a": 1})
        self.assertOneError("pack.json: annotations.a: must be a string")

    def test_unknown_field_is_a_warning(self) -> None:
        self.edit_pack_json(colour="blue")
        problems = validate_pack(self.pack)
        self.assertEqual(errors(problems), [])
        self.assertEqual([p.field for p in problems], ["colour"])

    def test_constraints(self) -> None:
        self.edit_pack_json(
            constraints={
                "dependencies": [{"packName": "k", "type": "maybe"}],
                "resources": [{"type": "gpu", "minLimit": -1}],
            }
        )
        self.assertEqual(
            self.error_strings(),
            [
                "pack.json: constraints.dependencies[0].type: 'maybe' is not one of required,"
                " optional, notSupported, upgrade",
                "pack.json: constraints.resources[0].type: 'gpu' is not one of cpu, memory,"
                " diskSize",
                "pack.json: constraints.resources[0].minLimit: must be a number, at least 0",
            ],
        )


class PathTests(PackTestCase):
    def test_chart_missing(self) -> None:
        self.edit_pack_json(charts=["charts/other-1.0.0.tgz"])
        self.assertOneError("pack.json: charts[0]: 'charts/other-1.0.0.tgz' does not exist")

    def test_chart_escaping_the_directory(self) -> None:
        (self.tmp / "x.tgz").write_bytes(b"\x1f\x8b")
        self.edit_pack_json(charts=["../x.tgz"])
        self.assertOneError("pack.json: charts[0]: '../x.tgz' is outside the pack")

    def test_absolute_chart_path(self) -> None:
        self.edit_pack_json(charts=["/etc/passwd"])
        self.assertOneError("is outside the pack")

    def test_chart_not_gzip(self) -> None:
        (self.pack / "charts" / "cert-manager-v1.14.4.tgz").write_text("apiVersion: v2\n")
        self.assertOneError("is not a Helm chart package")

    def test_manifest_must_parse(self) -> None:
        pack = self.pack
        (pack / "manifests").mkdir()
        (pack / "manifests" / "a.yaml").write_text("kind: A\n---\nkind: [B\n")
        self.edit_pack_json(kubeManifests=["manifests/a.yaml"])
        self.assertOneError("manifests/a.yaml: not valid YAML")

    def test_symlink_outside_the_pack(self) -> None:
        (self.tmp / "secret").write_text("s")
        os.symlink("../../secret", self.pack / "charts" / "leak")
        self.assertOneError("charts/leak: symlink points outside the pack")

    def test_absolute_symlink(self) -> None:
        os.symlink("/etc/hostname", self.pack / "host")
        self.assertOneError("host: symlink to an absolute path")

    def test_symlinked_directory_leading_out(self) -> None:
        """A link whose text looks inside but resolves outside through another link."""
        os.symlink("..", self.pack / "charts" / "up")
        os.symlink("charts/up/..", self.pack / "sneaky")
        found = self.error_strings()
        self.assertTrue(any("sneaky: symlink points outside" in f for f in found), found)

    def test_symlink_inside_is_kept(self) -> None:
        os.symlink("cert-manager-v1.14.4.tgz", self.pack / "charts" / "latest.tgz")
        pack, problems = inspect_pack(self.pack)
        self.assertEqual(problems, [])
        assert pack is not None
        links = [(e.path, e.target) for e in pack.tree if e.kind == "symlink"]
        self.assertEqual(links, [("charts/latest.tgz", "cert-manager-v1.14.4.tgz")])

    def test_top_level_file_as_symlink(self) -> None:
        (self.pack / "values.yaml").rename(self.pack / "v.yaml")
        os.symlink("v.yaml", self.pack / "values.yaml")
        self.assertOneError("values.yaml: must be a regular file, not a symlink")

    def test_vcs_directories_are_left_out(self) -> None:
        (self.pack / ".git").mkdir()
        (self.pack / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
        pack, _ = inspect_pack(self.pack)
        assert pack is not None
        self.assertFalse(any(e.path.startswith(".git") for e in pack.tree))

    def test_fifo_refused(self) -> None:
        os.mkfifo(self.pack / "pipe")
        self.assertOneError("pipe: not a regular file, directory or symlink")

    def test_executable_bit_recorded(self) -> None:
        script = self.pack / "install.sh"
        script.write_text("#!/bin/sh\n")
        script.chmod(0o755)
        pack, _ = inspect_pack(self.pack)
        assert pack is not None
        self.assertEqual([e.path for e in pack.tree if e.executable], ["install.sh"])


class ProblemTests(SynchronousTestCase):
    def test_problem_rendering(self) -> None:
        self.assertEqual(str(Problem("pack.json", "bad", "layer")), "pack.json: layer: bad")
        self.assertEqual(str(Problem("a", "b", None, "warning")), "warning: a: b")
