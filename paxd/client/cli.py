"""``paxctl``: the command line (argparse) and the one place errors become exit statuses.

Exit statuses: 0 success, 1 failure (one line ``paxctl: [CODE: ]message`` on
stderr, never a traceback), 2 usage, 130 interrupted.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeAlias

import attrs

from paxd import __version__
from paxd.client import commands
from paxd.client.build import add_build_command
from paxd.client.check import check
from paxd.client.config import CredentialStore
from paxd.client.errors import PaxctlError
from paxd.client.progress import Progress

DESCRIPTION = """\
paxctl: build, push, pull, list and tag packs in a pack registry (paxd, the
vendor's registry, or any OCI registry such as Docker distribution). Scripts
written for the vendor's `spectro` CLI run with only the program name changed.

A pack is a directory with pack.json, values.yaml and a logo; see
`paxctl pack validate --help`, or make one from a Helm chart with
`paxctl pack build`.

files: -s/--home DIR (default ~/.spectro, the vendor CLI's) holds config.json
(credentials, written 0600 by `registry login`, unencrypted, in the vendor
CLI's format) and certs.d/SERVER/ca.crt (CAs, written by --ca-cert). Read as
well: /etc/spectro/certs.d/SERVER/ca.crt and, with the default home only,
what earlier paxctl wrote (~/.config/paxctl/config.json and certs.d).
Interrupted uploads are resumed from ~/.cache/paxctl/uploads.
PAXCTL_USERNAME and PAXCTL_PASSWORD give credentials without a login.
"""

EPILOG = """\
examples:
  paxctl registry login registry.example.com:5000 --username admin --default
  paxctl pack build ./charts/cert-manager ./cert-manager --addon-type security
  paxctl pack validate ./cni-calico
  paxctl pack push ./cni-calico
  paxctl pack ls --name calico
  paxctl pack pull cni-calico:3.26.0 ./calico
  paxctl pack tag add cni-calico:3.26.0 recommended --group stable
  paxctl check registry.example.com:5000

exit status: 0 ok, 1 failure, 2 usage error, 130 interrupted.
"""

Handler = Callable[[commands.Context, Any], int]
#: what ``add_subparsers`` returns (argparse's own name for it; generic only in typeshed)
_Commands: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"


#: ``-s/--home`` after any command too (the vendor CLI's flags go anywhere)
HOME_OPTION = argparse.ArgumentParser(add_help=False)
HOME_OPTION.add_argument(
    "-s",
    "--home",
    metavar="DIR",
    default=argparse.SUPPRESS,
    help="where config.json and certs.d are (default ~/.spectro)",
)


def _registry_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-r",
        "--registry-server",
        dest="registry",
        metavar="SERVER",
        help="the registry (host:port or https://host:port); default: the one"
        " `registry login --default` set",
    )
    parser.add_argument(
        "-i",
        "--insecure",
        action="store_true",
        help="accept plain HTTP and certificates that do not verify",
    )
    parser.add_argument(
        "--ca-cert",
        metavar="FILE",
        help="trust this CA (PEM) for the registry, besides /etc/spectro/certs.d/SERVER/ca.crt"
        " and HOME/certs.d/SERVER/ca.crt",
    )


def build_parser() -> argparse.ArgumentParser:
    """The whole command line."""
    formatter = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(
        prog="paxctl", description=DESCRIPTION, epilog=EPILOG, formatter_class=formatter
    )
    parser.add_argument("--version", action="version", version=f"paxctl {__version__}")
    parser.add_argument(
        "-s",
        "--home",
        metavar="DIR",
        default=None,
        help="where config.json and certs.d are read and written (default ~/.spectro)",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    _add_login_commands(sub, formatter)
    _add_other_commands(sub)
    _add_pack_commands(sub)
    return parser


LOGIN_DESCRIPTION = (
    "Check the credentials against the registry's /v1/ (or /v2/), then store them in"
    " HOME/config.json (default ~/.spectro/config.json; mode 0600, unencrypted, in the vendor"
    " CLI's format). The first server logged in to becomes the default. A server given as"
    " http://HOST:PORT is plain HTTP; https://HOST:PORT is HTTPS; HOST:PORT alone is HTTPS,"
    " or plain HTTP with --insecure if that is what the port speaks."
)


def _login_arguments(p: argparse.ArgumentParser, server_required: bool) -> None:
    """The options of ``login`` and ``registry login`` (the vendor's, and paxctl's own)."""
    p.add_argument(
        "server",
        metavar="SERVER",
        nargs=None if server_required else "?",
        help="host:port, http://host:port or https://host:port"
        + ("" if server_required else " (default: the default registry)"),
    )
    p.add_argument("-u", "--username", help="the user (asked for on a terminal if omitted)")
    p.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    p.add_argument(
        "-p",
        "--password",
        help="the password (insecure: visible to other users; prefer --password-stdin)",
    )
    p.add_argument(
        "-i",
        "--insecure",
        action="store_true",
        help="accept plain HTTP and unverified certificates (remembered for SERVER)",
    )
    p.add_argument(
        "--ca-cert",
        metavar="FILE",
        help="trust this CA (PEM) for SERVER; it is copied to HOME/certs.d/SERVER/ca.crt",
    )
    p.add_argument("-d", "--default", action="store_true", help="make SERVER the default registry")
    p.set_defaults(handler=commands.login)


def _add_login_commands(sub: _Commands, formatter: type[argparse.HelpFormatter]) -> None:
    """``registry login|logout``, and ``login`` and ``logout`` (the same, shorter)."""
    registry = sub.add_parser(
        "registry",
        help="log in to a registry, or out ('paxctl registry login --help')",
        description="The vendor CLI's `registry login` and paxctl's `registry logout`.",
    )
    rsub = registry.add_subparsers(dest="registry_command", metavar="COMMAND", required=True)
    p = rsub.add_parser(
        "login",
        help="check and store credentials for a registry",
        description=LOGIN_DESCRIPTION,
        formatter_class=formatter,
        parents=[HOME_OPTION],
    )
    _login_arguments(p, server_required=False)
    p = rsub.add_parser(
        "logout",
        help="forget the credentials of a registry",
        description="Remove SERVER's credentials from HOME/config.json (and from the file an"
        " earlier paxctl wrote, ~/.config/paxctl/config.json).",
        parents=[HOME_OPTION],
    )
    p.add_argument("server", metavar="SERVER", nargs="?", help="default: the default registry")
    p.set_defaults(handler=commands.logout)

    p = sub.add_parser(
        "login",
        help="the same as `registry login`",
        description=LOGIN_DESCRIPTION,
        formatter_class=formatter,
        parents=[HOME_OPTION],
    )
    _login_arguments(p, server_required=True)
    p = sub.add_parser(
        "logout",
        help="the same as `registry logout`",
        description="Remove SERVER's credentials from HOME/config.json (and from the file an"
        " earlier paxctl wrote, ~/.config/paxctl/config.json).",
        parents=[HOME_OPTION],
    )
    p.add_argument("server", metavar="SERVER", nargs="?", help="default: the default registry")
    p.set_defaults(handler=commands.logout)


def _add_other_commands(sub: _Commands) -> None:
    """``check``, ``cert`` and ``version``."""
    p = sub.add_parser(
        "check",
        help="diagnose the connection to a registry",
        description="Diagnose the connection as an operator needs it before adding the registry"
        " to the console: DNS, TCP, the TLS certificate (issuer, names against the one used,"
        " expiry, the chain from server to root), /health, credentials, and whether the user"
        " can read and write. Each failure says what to do. Exit 1 if anything failed.",
        parents=[HOME_OPTION],
    )
    p.add_argument("server", metavar="SERVER", nargs="?", help="default: the default registry")
    p.add_argument(
        "-i",
        "--insecure",
        action="store_true",
        help="go on past certificate failures (reported as warnings)",
    )
    p.add_argument("--ca-cert", metavar="FILE", help="trust this CA (PEM) for the check")
    p.set_defaults(handler=check)

    cert = sub.add_parser(
        "cert",
        help="make TLS certificates ('paxctl cert self-signed --help')",
        description="'paxctl cert self-signed --host NAME --ip ADDR' writes a CA and a server"
        " certificate with the right subjectAltNames and says how to trust it.",
    )
    cert.add_argument("action", choices=["self-signed"], help="what to make")

    p = sub.add_parser("version", help="print paxctl's version (as --version)")
    p.set_defaults(handler=commands.version)


def _add_pack_commands(sub: _Commands) -> None:
    """``pack`` and its commands."""
    pack = sub.add_parser(
        "pack",
        help="build, validate, push, pull, list, tag and delete packs",
        description="Work with packs. A pack is an OCI artifact in the repository named after"
        " pack.json's name, tagged with its version (docs/pack-format.rst).",
    )
    psub = pack.add_subparsers(dest="pack_command", metavar="COMMAND", required=True)
    add_build_command(psub, [HOME_OPTION], _registry_options)
    _add_pack_transfer_commands(psub)
    _add_pack_listing_commands(psub)
    _add_pack_tag_commands(psub)


def _add_pack_transfer_commands(psub: _Commands) -> None:
    """``pack validate``, ``push`` and ``pull``."""
    p = psub.add_parser(
        "validate",
        help="check a pack directory",
        description="Check a pack directory: pack.json, values.yaml and a logo (logo.png, .svg or"
        " .webp, a real image) present; pack.json's required fields (name, displayName,"
        " version, layer) and allowed values (layer: kernel, os, k8s, cni, csi, addon);"
        " every path in kubeManifests and charts inside the pack and present; values.yaml,"
        " schema.yaml and presets.yaml parse; no symlink leaving the pack. Prints every"
        " problem with its file and field; exit 1 if any is an error.",
    )
    p.add_argument("dir", metavar="DIR", help="the pack's directory")
    p.set_defaults(handler=commands.validate)

    p = psub.add_parser(
        "push",
        help="validate and upload a pack",
        description="Validate the pack, upload the blobs the registry lacks, and tag it with its"
        " version (and GROUP__VERSION when pack.json has a group). An existing tag with"
        " different content is refused unless --force (with --message, recorded in the"
        " manifest). Blobs over 16 MiB go in 8 MiB chunks; an interrupted push resumes when"
        " run again.",
        parents=[HOME_OPTION],
    )
    p.add_argument("dir", metavar="DIR", help="the pack's directory")
    _registry_options(p)
    p.add_argument(
        "-f", "--force", action="store_true", help="overwrite a tag with different content"
    )
    p.add_argument("-m", "--message", help="why the tag is overwritten (required with --force)")
    p.add_argument(
        "--skip-digest-check",
        action="store_true",
        help="do not compare the digests the registry reports with paxctl's own",
    )
    p.set_defaults(handler=commands.push)

    p = psub.add_parser(
        "pull",
        help="download a pack into a directory",
        description="Download a pack, verify every digest, and write the directory back exactly as"
        " it was pushed. Without a tag, the newest version: the highest release by"
        " semantic-version precedence (a pre-release only when there is no release), the"
        " version the registry's parent tag points at; labels such as latest never count."
        " NAME:1.x pulls what the parent tag 1.x points at. DIR must not exist or be empty.",
        parents=[HOME_OPTION],
    )
    p.add_argument("ref", metavar="NAME[:TAG|@DIGEST]", help="the pack and version")
    p.add_argument("dir", metavar="DIR", help="where to write the pack")
    _registry_options(p)
    p.set_defaults(handler=commands.pull)


def _add_pack_listing_commands(psub: _Commands) -> None:
    """``pack ls`` and ``rm``."""
    p = psub.add_parser(
        "ls",
        help="list the packs in the registry",
        description="List packs with their versions, their other tags (labels such as latest,"
        " group tags such as lts__1.2.3, parent tags such as 1.x, each with the version it"
        " points at), layer and display name. Walks the catalog and each repository's tags;"
        " repositories that are not packs are left out.",
        parents=[HOME_OPTION],
    )
    p.add_argument(
        "-n",
        "--name",
        metavar="FILTER",
        help="only names containing FILTER (or matching a glob)",
    )
    p.add_argument("-o", "--output", choices=("table", "json"), default="table", help="the format")
    _registry_options(p)
    p.set_defaults(handler=commands.list_packs)

    p = psub.add_parser(
        "rm",
        help="delete a pack version",
        description="Delete a pack version: its manifest, so every tag pointing at it. The registry"
        " must allow deletes (storage.delete.enabled). A parent tag (NAME:1.x) is refused:"
        " it names whichever version is newest, so say which version (NAME:1.4.2).",
        parents=[HOME_OPTION],
    )
    p.add_argument("ref", metavar="NAME:TAG|NAME@DIGEST", help="the version to delete")
    _registry_options(p)
    p.set_defaults(handler=commands.remove)


def _add_pack_tag_commands(psub: _Commands) -> None:
    """``pack tag add`` and ``delete``."""
    tag = psub.add_parser(
        "tag",
        help="add or delete tags (labels)",
        description="Add or delete tags. A tag may carry a group: GROUP__LABEL, e.g. lts__14.4.3.",
    )
    tsub = tag.add_subparsers(dest="tag_command", metavar="COMMAND", required=True)
    p = tsub.add_parser(
        "add",
        help="tag a pack version with a label",
        description="Point LABEL (or GROUP__LABEL with --group) at the version NAME:TAG points at."
        " An existing label is moved.",
        parents=[HOME_OPTION],
    )
    p.add_argument("source", metavar="NAME:TAG", help="the version to tag")
    p.add_argument("label", metavar="LABEL", help="the new tag")
    p.add_argument("-g", "--group", help="the label's group (the tag becomes GROUP__LABEL)")
    _registry_options(p)
    p.set_defaults(handler=commands.tag_add)
    p = tsub.add_parser(
        "delete",
        help="delete one tag",
        description="Delete one tag; the version and its other tags stay. (Docker distribution"
        " cannot delete single tags: use `paxctl pack rm` there.)",
        parents=[HOME_OPTION],
    )
    p.add_argument("ref", metavar="NAME:TAG", help="the tag to delete")
    _registry_options(p)
    p.set_defaults(handler=commands.tag_delete)


def run(argv: list[str] | None, ctx: commands.Context) -> int:
    """Parse *argv* and run the command with *ctx*'s streams and stores; return the exit status."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:
        return int(e.code or 0)
    handler: Handler = args.handler
    try:
        if getattr(args, "home", None):
            ctx = attrs.evolve(ctx, store=CredentialStore.for_home(Path(args.home)))
        return handler(ctx, args)
    except PaxctlError as e:
        ctx.stderr.write(f"paxctl: {e}\n")
        return e.exit_status
    except OSError as e:
        # local files (a pack unreadable, a disk full): one line like every other failure
        where = f": {e.filename}" if e.filename else ""
        ctx.stderr.write(f"paxctl: {e.strerror or e}{where}\n")
        return 1
    except KeyboardInterrupt:
        ctx.stderr.write("\npaxctl: interrupted (a push resumes where it stopped when run again)\n")
        return 130
    finally:
        ctx.stdout.flush()


def main(argv: list[str] | None = None) -> int:
    """Run paxctl on the process's streams; return the exit status."""
    argv = sys.argv[1:] if argv is None else argv
    if argv[:2] == ["cert", "self-signed"]:
        from paxd.tls.selfsigned import main as self_signed_main

        return self_signed_main(argv[2:], prog="paxctl cert self-signed")
    ctx = commands.Context(
        stdout=sys.stdout,
        stderr=sys.stderr,
        stdin=sys.stdin,
        store=CredentialStore.for_home(None),
        progress=Progress(sys.stderr),
    )
    try:
        return run(argv, ctx)
    except BrokenPipeError:
        return 1
