"""``paxctl pack build``: a pack from a Helm chart directory or ``.tgz``, checked by the rules."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import yaml
from twisted.trial.unittest import SynchronousTestCase

from paxd.client.packdir.helm import ChartError, load_chart, packaged_bytes
from paxd.client.packdir.helmpack import BuildOptions, images, values_yaml, write_pack
from paxd.client.packdir.rules import errors, inspect_pack
from tests.client.packdir.support import EXAMPLES, make_png
from tests.client.test_cli import CLITestCase

CHART_YAML = """\
apiVersion: v2
name: hello-web
description: A small web server
version: 1.4.2
appVersion: "2.0.1"
icon: files/icon.png
home: https://example.com/hello
"""

VALUES = """\
# how many pods
replicaCount: 2

image:
  # the server
  repository: example.com/hello/web
  tag: ""   # defaults to appVersion
sidecar:
  image: example.com/hello/sidecar:0.3
"""


def make_chart_dir(root: Path, *, chart_yaml: str = CHART_YAML, values: str = VALUES) -> Path:
    """A chart directory like ``helm create`` makes, with an icon and a .helmignore."""
    chart = root / "hello-web-src"
    (chart / "templates").mkdir(parents=True)
    (chart / "files").mkdir()
    (chart / "Chart.yaml").write_text(chart_yaml)
    (chart / "values.yaml").write_text(values)
    (chart / "templates" / "deployment.yaml").write_text("kind: Deployment\n")
    (chart / "files" / "icon.png").write_bytes(make_png())
    (chart / ".helmignore").write_text("# editor files\n*.swp\nscratch/\n")
    (chart / "notes.swp").write_text("ignored")
    (chart / "scratch").mkdir()
    (chart / "scratch" / "x.txt").write_text("ignored")
    return chart


def make_chart_tgz(path: Path, files: dict[str, bytes]) -> Path:
    """A packaged chart: every file under ``<name>/``, as ``helm package`` writes it."""
    with tarfile.open(path, "w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


class ChartTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.tmp = Path(self.mktemp())
        self.tmp.mkdir()

    def build(self, chart: Path, **options: object) -> Path:
        dest = self.tmp / f"pack-{len(list(self.tmp.iterdir()))}"
        dest.mkdir()
        write_pack(load_chart(chart), BuildOptions(**options), dest)  # type: ignore[arg-type]
        return dest

    def test_from_a_directory(self) -> None:
        dest = self.build(make_chart_dir(self.tmp), addon_type="monitoring")
        pack = json.loads((dest / "pack.json").read_text())
        self.assertEqual(
            pack,
            {
                "name": "hello-web",
                "displayName": "Hello Web",
                "version": "1.4.2",
                "layer": "addon",
                "addonType": "monitoring",
                "cloudTypes": ["all"],
                "charts": ["charts/hello-web-1.4.2.tgz"],
            },
        )
        self.assertEqual((dest / "logo.png").read_bytes(), make_png())
        # the chart packaged as helm lays it out: under hello-web/, .helmignore honoured
        with tarfile.open(dest / "charts" / "hello-web-1.4.2.tgz") as tar:
            names = tar.getnames()
        self.assertIn("hello-web/Chart.yaml", names)
        self.assertIn("hello-web/templates/deployment.yaml", names)
        self.assertNotIn("hello-web/notes.swp", names)
        self.assertFalse(any(n.startswith("hello-web/scratch") for n in names), names)
        readme = (dest / "README.md").read_text()
        self.assertIn("# Hello Web", readme)
        self.assertIn("A small web server", readme)
        pack_dir, problems = inspect_pack(dest)
        self.assertIsNotNone(pack_dir, problems)
        self.assertEqual(errors(problems), [])

    def test_values_keep_the_charts_comments(self) -> None:
        dest = self.build(make_chart_dir(self.tmp))
        text = (dest / "values.yaml").read_text()
        self.assertIn("    # how many pods\n    replicaCount: 2\n", text)
        values = yaml.safe_load(text)
        self.assertEqual(values["charts"]["hello-web"], yaml.safe_load(VALUES))
        self.assertEqual(values["pack"]["namespace"], "hello-web")
        self.assertEqual(
            values["pack"]["content"]["images"],
            [{"image": "example.com/hello/sidecar:0.3"}, {"image": "example.com/hello/web:2.0.1"}],
        )

    def test_values_that_cannot_be_reindented_are_rewritten(self) -> None:
        tricky = "a: 1\n---\n"  # a second, empty document
        chart = make_chart_dir(self.tmp, values="key: |\n  text\nother: [1, 2]\n" + tricky)
        with self.assertRaises(ChartError):  # two documents: not one mapping
            self.build(chart)
        chart2 = make_chart_dir(self.tmp / "b", values="")
        values = yaml.safe_load((self.build(chart2) / "values.yaml").read_text())
        self.assertEqual(values["charts"]["hello-web"], {})

    def test_from_a_tgz_with_the_icon_inside(self) -> None:
        tgz = make_chart_tgz(
            self.tmp / "hello-web-1.4.2.tgz",
            {
                "hello-web/Chart.yaml": CHART_YAML.encode(),
                "hello-web/values.yaml": VALUES.encode(),
                "hello-web/README.md": b"# The chart's own README\n",
                "hello-web/files/icon.png": make_png(),
            },
        )
        dest = self.build(tgz)
        # copied byte for byte
        self.assertEqual((dest / "charts" / "hello-web-1.4.2.tgz").read_bytes(), tgz.read_bytes())
        self.assertEqual((dest / "README.md").read_text(), "# The chart's own README\n")
        self.assertEqual(errors(inspect_pack(dest)[1]), [])

    def test_the_example_chart(self) -> None:
        """The sample pack's chart, with the sample's logo."""
        tgz = EXAMPLES / "cert-manager" / "charts" / "cert-manager-v1.14.4.tgz"
        dest = self.build(tgz, logo=EXAMPLES / "cert-manager" / "logo.png", addon_type="security")
        self.assertEqual(json.loads((dest / "pack.json").read_text())["version"], "v1.14.4")
        self.assertEqual(errors(inspect_pack(dest)[1]), [])

    def test_logo_is_mandatory(self) -> None:
        web = CHART_YAML.replace("icon: files/icon.png", "icon: https://example.com/icon.png")
        with self.assertRaises(ChartError) as caught:
            self.build(make_chart_dir(self.tmp, chart_yaml=web))
        self.assertIn("https://example.com/icon.png, not a local file", str(caught.exception))
        self.assertIn("the logo is mandatory: give --logo FILE", str(caught.exception))
        none = CHART_YAML.replace("icon: files/icon.png\n", "")
        with self.assertRaises(ChartError) as caught:
            self.build(make_chart_dir(self.tmp / "b", chart_yaml=none))
        self.assertIn("Chart.yaml has no icon", str(caught.exception))
        # --logo wins, and file:// icons are local files
        logo = self.tmp / "mine.svg"
        logo.write_text('<svg xmlns="http://www.w3.org/2000/svg"/>')
        dest = self.build(make_chart_dir(self.tmp / "c", chart_yaml=web), logo=logo)
        self.assertTrue((dest / "logo.svg").is_file())
        local = CHART_YAML.replace("icon: files/icon.png", "icon: file://files/icon.png")
        self.assertTrue(
            (self.build(make_chart_dir(self.tmp / "d", chart_yaml=local)) / "logo.png").is_file()
        )

    def test_a_logo_that_is_not_an_image(self) -> None:
        bad = self.tmp / "logo.png"
        bad.write_text("not an image")
        with self.assertRaises(ChartError) as caught:
            self.build(make_chart_dir(self.tmp), logo=bad)
        self.assertIn("not a PNG, SVG or WebP image", str(caught.exception))

    def test_names_and_versions_the_registry_cannot_take(self) -> None:
        upper = CHART_YAML.replace("name: hello-web", "name: Hello_Web")
        with self.assertRaises(ChartError) as caught:
            self.build(make_chart_dir(self.tmp, chart_yaml=upper))
        self.assertIn("give --name NAME", str(caught.exception))
        build = CHART_YAML.replace("version: 1.4.2", "version: 1.4.2+build.7")
        with self.assertRaises(ChartError) as caught:
            self.build(make_chart_dir(self.tmp / "b", chart_yaml=build))
        self.assertIn("--pack-version", str(caught.exception))
        dest = self.build(
            make_chart_dir(self.tmp / "c", chart_yaml=build), name="hello", version="1.4.2-7"
        )
        pack = json.loads((dest / "pack.json").read_text())
        self.assertEqual((pack["name"], pack["version"]), ("hello", "1.4.2-7"))

    def test_not_a_chart(self) -> None:
        (self.tmp / "empty").mkdir()
        for path in (self.tmp / "empty", self.tmp / "missing"):
            with self.assertRaises(ChartError):
                load_chart(path)
        junk = self.tmp / "junk.tgz"
        junk.write_bytes(b"not gzip")
        with self.assertRaises(ChartError):
            load_chart(junk)

    def test_packaging_is_reproducible(self) -> None:
        chart = load_chart(make_chart_dir(self.tmp))
        first = packaged_bytes(chart)
        for path in chart.source.rglob("*"):
            path.touch()
        self.assertEqual(packaged_bytes(chart), first)

    def test_images_guess(self) -> None:
        values = {
            "a": {"image": {"registry": "r.io", "repository": "x/y", "tag": 3}},
            "b": [{"repository": "z", "digest": "sha256:" + "0" * 64}],
            "c": {"repository": "w"},
        }
        self.assertEqual(images(values, "9.9"), ["r.io/x/y:3", "w:9.9", "z@sha256:" + "0" * 64])

    def test_values_yaml_parses(self) -> None:
        chart = load_chart(make_chart_dir(self.tmp))
        self.assertIsInstance(yaml.safe_load(values_yaml(chart)), dict)


class BuildCommandTests(CLITestCase):
    def test_build_and_validate(self) -> None:
        chart = make_chart_dir(self.tmp)
        status, out, err = self.paxctl(
            "pack", "build", str(chart), str(self.tmp / "out"), "--cloud-types", "aws,azure"
        )
        self.assertEqual(status, 0, err)
        self.assertIn("built hello-web 1.4.2 (addon)", out)
        self.assertEqual(
            json.loads((self.tmp / "out" / "pack.json").read_text())["cloudTypes"],
            ["aws", "azure"],
        )
        status, out, _ = self.paxctl("pack", "validate", str(self.tmp / "out"))
        self.assertEqual(status, 0, out)

    def test_failure_leaves_nothing(self) -> None:
        web = CHART_YAML.replace("icon: files/icon.png", "icon: https://example.com/i.png")
        chart = make_chart_dir(self.tmp, chart_yaml=web)
        status, _, err = self.paxctl("pack", "build", str(chart), str(self.tmp / "out"))
        self.assertEqual(status, 1)
        self.assertIn("paxctl: the chart's icon is https://example.com/i.png", err)
        self.assertEqual(sorted(p.name for p in self.tmp.iterdir()), ["hello-web-src"])

    def test_target_must_be_new_or_empty(self) -> None:
        (self.tmp / "out").mkdir()
        (self.tmp / "out" / "x").write_text("x")
        status, _, err = self.paxctl(
            "pack", "build", str(make_chart_dir(self.tmp)), str(self.tmp / "out")
        )
        self.assertEqual(status, 1)
        self.assertIn("not an empty directory", err)

    def test_force_needs_push(self) -> None:
        status, _, err = self.paxctl(
            "pack", "build", str(make_chart_dir(self.tmp)), str(self.tmp / "o"), "-f", "-m", "x"
        )
        self.assertEqual(status, 2)
        self.assertIn("go with --push", err)
