"""``paxctl pack build PACK_NAME TARGET_DIR``: a pack directory from a Helm chart, as the vendor's.

The chart is PACK_NAME (a chart directory or a packaged ``.tgz``; the
vendor's CLI calls it that); the pack is written to TARGET_DIR (which must
not exist, or be empty), checked as ``paxctl pack validate`` checks, and with
``-p/--push`` pushed as ``paxctl pack push`` pushes.  What goes where:
:mod:`paxd.client.packdir.helmpack`.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from paxd.client import commands
from paxd.client.errors import PaxctlError, UsageError
from paxd.client.packdir.helm import ChartError, load_chart
from paxd.client.packdir.helmpack import BuildOptions, write_pack
from paxd.client.packdir.rules import LAYERS, errors, inspect_pack

DESCRIPTION = """\
Make a pack directory from a Helm chart, as the vendor's `spectro pack build`:

  pack.json      from Chart.yaml: name, version, displayName (the chart's
                 artifacthub.io/displayName annotation, else its name in words),
                 layer (addon unless --layer), addonType, cloudTypes, charts
  charts/NAME-VERSION.tgz
                 the chart (a .tgz as given; a directory packaged as `helm
                 package` would, honouring .helmignore, reproducibly)
  values.yaml    a pack: section (namespace, the images the chart's values name)
                 and the chart's values, comments kept, under charts.NAME:
  README.md      the chart's, else a few lines from Chart.yaml
  logo           mandatory: --logo FILE, else the chart's icon when it is a file
                 of the chart (icon: logo.png or file://...); an icon on the web
                 is not downloaded

The result passes `paxctl pack validate`; -p/--push pushes it. TARGET_DIR must
not exist or be empty; nothing is left there if the build fails.
"""


def add_build_command(
    psub: Any,
    parents: list[argparse.ArgumentParser],
    registry_options: Callable[[argparse.ArgumentParser], None],
) -> None:
    """Add ``pack build`` to the ``pack`` commands *psub*."""
    p = psub.add_parser(
        "build",
        help="make a pack from a Helm chart (and push it with -p)",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        parents=parents,
    )
    p.add_argument(
        "chart", metavar="PACK_NAME", help="the Helm chart: a chart directory or a packaged .tgz"
    )
    p.add_argument("dir", metavar="TARGET_DIR", help="where to write the pack")
    p.add_argument("--name", help="the pack's name (default: the chart's)")
    p.add_argument("--display-name", metavar="TEXT", help="the pack's display name")
    p.add_argument(
        "--pack-version", metavar="VERSION", help="the pack's version (default: the chart's)"
    )
    p.add_argument(
        "--layer", default="addon", choices=LAYERS, help="the pack's layer (default: addon)"
    )
    p.add_argument(
        "--addon-type",
        metavar="TYPE",
        help="what the add-on is: logging, monitoring, load balancer, authentication,"
        " ingress, security, ...",
    )
    p.add_argument(
        "--cloud-types",
        metavar="TYPES",
        default="all",
        help="comma-separated cloud types (default: all), e.g. aws,azure,vsphere",
    )
    p.add_argument("--logo", metavar="FILE", help="the logo (PNG, SVG or WebP)")
    p.add_argument("-p", "--push", action="store_true", help="push the pack once built")
    registry_options(p)
    p.add_argument("-f", "--force", action="store_true", help="with --push: overwrite a tag")
    p.add_argument("-m", "--message", help="with --push --force: why the tag is overwritten")
    p.add_argument(
        "--skip-digest-check", action="store_true", help="with --push: see `pack push --help`"
    )
    p.set_defaults(handler=build)


def _options(args: Any) -> BuildOptions:
    cloud = tuple(c.strip() for c in str(args.cloud_types).split(",") if c.strip())
    if not cloud:
        raise UsageError("--cloud-types: give at least one, e.g. all")
    return BuildOptions(
        name=args.name,
        display_name=args.display_name,
        version=args.pack_version,
        layer=args.layer,
        addon_type=args.addon_type,
        cloud_types=cloud,
        logo=Path(args.logo) if args.logo else None,
    )


def build(ctx: commands.Context, args: Any) -> int:
    """Build the pack in a directory beside TARGET_DIR, check it, rename it into place."""
    if (args.force or args.message) and not args.push:
        raise UsageError("--force and --message go with --push")
    dest = Path(args.dir)
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise PaxctlError(f"{dest} exists and is not an empty directory: build into a new one")
    options = _options(args)
    try:
        chart = load_chart(Path(args.chart))
    except ChartError as e:
        raise PaxctlError(str(e)) from None
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", dir=dest.parent))
    try:
        os.chmod(tmp, 0o755)
        try:
            pack = write_pack(chart, options, tmp)
        except ChartError as e:
            raise PaxctlError(str(e)) from None
        built, problems = inspect_pack(tmp)
        for problem in problems:
            ctx.err(str(problem))
        if built is None or errors(problems):
            raise PaxctlError(f"{chart.source}: the pack made from it is not valid (see above)")
        if dest.exists():
            dest.rmdir()
        os.rename(tmp, dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    ctx.out(
        f"built {pack['name']} {pack['version']} ({pack['layer']}) in {dest} from the chart"
        f" {chart.name} {chart.version}"
    )
    if not args.push:
        return 0
    args.dir = str(dest)
    return commands.push(ctx, args)
