"""A pack directory made from a Helm chart (``paxctl pack build``), as the vendor's CLI makes it.

- ``pack.json`` from ``Chart.yaml``: ``name``, ``version``, a ``displayName``
  (the chart's ``artifacthub.io/displayName`` annotation, else its name in
  words), ``layer`` (``addon`` unless told), ``addonType``, ``cloudTypes``
  (``["all"]`` unless told) and ``charts: [charts/<name>-<version>.tgz]``;
- ``charts/<name>-<version>.tgz``: the chart, packaged;
- ``values.yaml``: a ``pack:`` section (the namespace, the images the chart's
  values name) and the chart's own values, comments and all, under
  ``charts.<name>:``;
- ``README.md``: the chart's, else a few lines from ``Chart.yaml``;
- the logo (mandatory): ``--logo FILE``, else the chart's ``icon`` when it is
  a file of the chart (``icon: logo.png``, ``icon: file://…``); an icon on
  the web is not downloaded: the build stops and says to give ``--logo``.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import attrs
import yaml

from paxd.client.packdir.helm import Chart, ChartError, chart_file, packaged_bytes
from paxd.client.packdir.images import PNG_SIGNATURE, image_problem
from paxd.client.packdir.rules import LAYERS
from paxd.registry.reference import NAME_MAX, NAME_RE, TAG_RE

#: how pack.json is indented (as the examples are)
_INDENT = 2
_PLAIN_KEY_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


@attrs.frozen
class BuildOptions:
    """What the command line says beyond the chart."""

    name: str | None = None
    display_name: str | None = None
    version: str | None = None
    layer: str = "addon"
    addon_type: str | None = None
    cloud_types: tuple[str, ...] = ("all",)
    logo: Path | None = None


@attrs.frozen
class Logo:
    """The pack's logo: its file name in the pack and its bytes."""

    name: str
    data: bytes


def logo_name(data: bytes) -> str | None:
    """``logo.png``, ``logo.svg`` or ``logo.webp`` by what *data* is; None if none of them."""
    if data.startswith(PNG_SIGNATURE):
        return "logo.png"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "logo.webp"
    head = data[:4096].lstrip()
    if head.startswith((b"<?xml", b"<svg", b"<!--")) and b"<svg" in data[:65536]:
        return "logo.svg"
    return None


def _checked_logo(data: bytes, where: str) -> Logo:
    name = logo_name(data)
    if name is None:
        raise ChartError(f"{where}: not a PNG, SVG or WebP image: give --logo FILE")
    problem = image_problem(name, data)
    if problem:
        raise ChartError(f"{where}: {problem}")
    return Logo(name, data)


def find_logo(chart: Chart, given: Path | None) -> Logo:
    """The logo: *given*, else the chart's icon if it is a file of the chart."""
    if given is not None:
        try:
            content = given.read_bytes()
        except OSError as e:
            raise ChartError(f"--logo {given}: {e.strerror or e}") from None
        return _checked_logo(content, f"--logo {given}")
    icon = chart.metadata.get("icon")
    mandatory = "the logo is mandatory: give --logo FILE (a PNG, SVG or WebP image)"
    if not isinstance(icon, str) or not icon.strip():
        raise ChartError(f"{chart.source}: Chart.yaml has no icon; {mandatory}")
    icon = icon.strip()
    parts = urlsplit(icon)
    data: bytes | None
    if parts.scheme == "file":
        if parts.netloc and parts.netloc != "localhost":
            # file://files/icon.png: a path of the chart written as a URL
            data = chart_file(chart, unquote(parts.netloc + parts.path))
        elif parts.path.startswith("/"):
            path = Path(unquote(parts.path))
            data = path.read_bytes() if path.is_file() else None
        else:
            data = chart_file(chart, unquote(parts.path))
    elif parts.scheme:
        raise ChartError(
            f"the chart's icon is {icon}, not a local file (paxctl does not download it);"
            f" {mandatory}"
        )
    else:
        data = chart_file(chart, icon)
    if data is None:
        raise ChartError(f"the chart's icon {icon} is not a file of the chart; {mandatory}")
    return _checked_logo(data, f"the chart's icon {icon}")


def words(name: str) -> str:
    """``cert-manager`` → ``Cert Manager``."""
    return " ".join(w[:1].upper() + w[1:] for w in re.split(r"[-_.]+", name) if w)


def pack_json(chart: Chart, options: BuildOptions) -> dict[str, Any]:
    """``pack.json`` for *chart* (checked: a name and version the registry can take)."""
    name = options.name or chart.name
    if len(name) > NAME_MAX or not NAME_RE.match(name):
        raise ChartError(
            f"{name!r} (the chart's name) is not a pack name: lower-case letters and digits"
            " separated by '.', '_' or '-'; give --name NAME"
        )
    version = options.version or chart.version
    if not TAG_RE.match(version) or "__" in version:
        raise ChartError(
            f"{version!r} (the chart's version) cannot be a tag (letters, digits, '.', '_',"
            " '-'; no '+'): give --pack-version VERSION"
        )
    if options.layer not in LAYERS:
        raise ChartError(f"--layer {options.layer!r} is not one of {', '.join(LAYERS)}")
    annotations = chart.metadata.get("annotations")
    display = options.display_name
    if display is None and isinstance(annotations, dict):
        value = annotations.get("artifacthub.io/displayName")
        display = value if isinstance(value, str) and value.strip() else None
    pack: dict[str, Any] = {
        "name": name,
        "displayName": display or words(chart.name),
        "version": version,
        "layer": options.layer,
    }
    if options.addon_type:
        pack["addonType"] = options.addon_type
    pack["cloudTypes"] = list(options.cloud_types)
    pack["charts"] = [f"charts/{chart.archive_name}"]
    return pack


# -- values.yaml -----------------------------------------------------------------------


def images(values: Any, app_version: str | None) -> list[str]:
    """The container images *values* names (``image.repository`` + ``tag``, ``image: x:y``).

    A guess for the ``pack.content.images`` list, which an air-gapped install
    mirrors: the author checks it.
    """
    found: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            repository = node.get("repository")
            if isinstance(repository, str) and repository:
                registry = node.get("registry")
                ref = f"{registry}/{repository}" if isinstance(registry, str) and registry else ""
                ref = ref or repository
                digest, tag = node.get("digest"), node.get("tag")
                if isinstance(digest, str) and digest:
                    found.add(f"{ref}@{digest}")
                elif isinstance(tag, str | int | float) and str(tag):
                    found.add(f"{ref}:{tag}")
                elif app_version:
                    found.add(f"{ref}:{app_version}")
            image = node.get("image")
            if isinstance(image, str) and ":" in image and " " not in image:
                found.add(image)
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(values)
    return sorted(found)


def _key(name: str) -> str:
    return name if _PLAIN_KEY_RE.match(name) else json.dumps(name)


def _embedded(values_text: str) -> tuple[str, Any]:
    """The chart's values indented under ``charts.<name>:``, and the values parsed.

    Verbatim (comments kept) when re-indenting parses back to the same values;
    else dumped afresh, with a note.
    """
    try:
        parsed = yaml.safe_load(values_text) if values_text.strip() else None
    except yaml.YAMLError as e:
        raise ChartError(f"the chart's values.yaml is not valid YAML ({e})") from None
    if parsed is None:
        return " {}\n", {}
    if not isinstance(parsed, dict):
        raise ChartError("the chart's values.yaml must be a YAML mapping")
    lines = [line for line in values_text.splitlines() if line.strip() not in ("---", "...")]
    body = "".join(f"    {line}\n" if line.strip() else "\n" for line in lines)
    try:
        again = yaml.safe_load("x:\n" + body)
    except yaml.YAMLError:
        again = None
    if isinstance(again, dict) and again.get("x") == parsed:
        return "\n" + body, parsed
    dumped = yaml.safe_dump(parsed, default_flow_style=False, sort_keys=False, indent=2)
    note = "    # the chart's values, re-written (its comments could not be kept)\n"
    return "\n" + note + "".join(f"    {line}\n" for line in dumped.splitlines()), parsed


def values_yaml(chart: Chart) -> str:
    """The pack's ``values.yaml``: ``pack:``, then the chart's values under ``charts.<name>:``."""
    embedded, parsed = _embedded(chart.values_text)
    app = chart.metadata.get("appVersion")
    found = images(parsed, str(app) if app is not None else None)
    listed = "".join(f"      - image: {json.dumps(i)}\n" for i in found) or "      []\n"
    return (
        f"# made by paxctl pack build from the Helm chart {chart.name} {chart.version}\n"
        "pack:\n"
        "  # the namespace the chart is installed into\n"
        f"  namespace: {json.dumps(chart.name)}\n"
        "  content:\n"
        "    # the images the chart's values name (check them: an air-gapped install"
        " mirrors these)\n"
        "    images:\n"
        f"{listed}"
        "\n"
        "charts:\n"
        f"  {_key(chart.name)}:{embedded}"
    )


def readme(chart: Chart, display_name: str) -> bytes:
    """The chart's README.md, else a short one from ``Chart.yaml``."""
    if chart.readme is not None:
        return chart.readme
    meta = chart.metadata
    lines = [f"# {display_name}", ""]
    if isinstance(meta.get("description"), str):
        lines += [meta["description"].strip(), ""]
    app = f" (application version {meta['appVersion']})" if meta.get("appVersion") else ""
    lines.append(f"Made from the Helm chart `{chart.name}` {chart.version}{app}.")
    if isinstance(meta.get("home"), str):
        lines += ["", f"Home: {meta['home']}"]
    return ("\n".join(lines) + "\n").encode("utf-8")


def write_pack(chart: Chart, options: BuildOptions, dest: Path) -> dict[str, Any]:
    """Write the pack directory for *chart* into the empty directory *dest*; its pack.json."""
    pack = pack_json(chart, options)
    logo = find_logo(chart, options.logo)
    archive = packaged_bytes(chart)
    (dest / "charts").mkdir(mode=0o755)
    (dest / "charts" / chart.archive_name).write_bytes(archive)
    (dest / "pack.json").write_text(json.dumps(pack, indent=_INDENT) + "\n", encoding="utf-8")
    (dest / "values.yaml").write_text(values_yaml(chart), encoding="utf-8")
    (dest / "README.md").write_bytes(readme(chart, pack["displayName"]))
    (dest / logo.name).write_bytes(logo.data)
    return pack
