"""What each paxctl command does; :mod:`paxd.client.cli` parses the command line and calls these."""

from __future__ import annotations

import fnmatch
import getpass
import json
import os
import re
import shutil
import ssl
import tempfile
from pathlib import Path
from typing import Any, TextIO

import attrs

from paxd import __version__
from paxd.client.config import (
    AuthEntry,
    Credentials,
    CredentialStore,
    Server,
    cache_dir,
    parse_server,
)
from paxd.client.errors import PaxctlError, RegistryAPIError, UsageError
from paxd.client.packdir.archive import ArchiveError, extract_archive
from paxd.client.packdir.artifact import ManifestError, build_artifact, parse_pack_manifest
from paxd.client.packdir.rules import PACK_JSON, errors, inspect_pack
from paxd.client.progress import Progress
from paxd.client.registry import RegistryClient
from paxd.client.transport import Transport
from paxd.oci import OCI_MANIFEST
from paxd.packs.format import GROUP_RE, MESSAGE_ANNOTATION, join_tag, split_tag
from paxd.packs.versions import (
    compute_parents,
    is_parent_tag,
    is_version_tag,
    newest,
    parent_tags,
    tag_order,
)
from paxd.registry.reference import NAME_RE, TAG_RE

_DIGEST_RE = re.compile(r"^sha256:[a-f0-9]{64}$")


@attrs.define
class Context:
    """The streams and stores a command works with (replaced in tests)."""

    stdout: TextIO
    stderr: TextIO
    stdin: TextIO
    store: CredentialStore
    progress: Progress

    def out(self, line: str) -> None:
        """A line of the command's output."""
        self.stdout.write(line + "\n")

    def err(self, line: str) -> None:
        """A line for the person at the terminal (warnings, notes)."""
        self.stderr.write(line + "\n")


# -- connecting -------------------------------------------------------------------------


def env_credentials() -> Credentials | None:
    """``PAXCTL_USERNAME`` and ``PAXCTL_PASSWORD``, for scripts that do not log in."""
    user, password = os.environ.get("PAXCTL_USERNAME"), os.environ.get("PAXCTL_PASSWORD")
    return Credentials(user, password) if user and password is not None else None


def resolve_server(ctx: Context, given: str | None) -> Server:
    """The server named on the command line, else the default registry."""
    text = given or ctx.store.default()
    if not text:
        raise UsageError(
            "no registry given: pass -r SERVER, or run `paxctl login SERVER --default` once"
        )
    return parse_server(text)


def connect(
    ctx: Context,
    server: Server,
    *,
    insecure: bool = False,
    ca_cert: str | None = None,
    credentials: Credentials | None = None,
    verify_digests: bool = True,
) -> RegistryClient:
    """A client for *server* with what the store and the environment say about it."""
    entry = ctx.store.get(server.key)
    ca_files = [Path(ca_cert)] if ca_cert else []
    ca_files += ctx.store.ca_files(server)
    transport = Transport(
        server,
        insecure=insecure or bool(entry and entry.insecure),
        ca_files=ca_files,
        credentials=credentials or env_credentials() or (entry.credentials if entry else None),
        plain_http=True if entry and entry.plain_http else None,
    )
    return RegistryClient(
        transport, ctx.progress, state_dir=cache_dir() / "uploads", verify_digests=verify_digests
    )


def client_for(ctx: Context, args: Any, verify_digests: bool = True) -> RegistryClient:
    """The client for a command with ``-r``, ``--insecure`` and ``--ca-cert``."""
    server = resolve_server(ctx, args.registry)
    return connect(
        ctx,
        server,
        insecure=args.insecure,
        ca_cert=args.ca_cert,
        verify_digests=verify_digests,
    )


@attrs.frozen
class Ref:
    """``NAME[:TAG|@DIGEST]``."""

    name: str
    tag: str | None = None
    digest: str | None = None

    @property
    def reference(self) -> str | None:
        return self.digest or self.tag

    def __str__(self) -> str:
        if self.digest:
            return f"{self.name}@{self.digest}"
        return f"{self.name}:{self.tag}" if self.tag else self.name


def parse_ref(text: str, need_reference: bool = False) -> Ref:
    """Parse ``NAME[:TAG|@DIGEST]`` (a reference required if *need_reference*)."""
    name, tag, digest = text, None, None
    if "@" in text:
        name, _, digest = text.partition("@")
        if not _DIGEST_RE.match(digest):
            raise UsageError(f"{text!r}: a digest is sha256: and 64 lower-case hex digits")
    elif ":" in text:
        name, _, tag = text.rpartition(":")
        if not TAG_RE.match(tag):
            raise UsageError(f"{text!r}: {tag!r} is not a tag (letters, digits, '.', '_', '-')")
    if not NAME_RE.match(name):
        raise UsageError(f"{text!r}: {name!r} is not a pack name (lower-case, e.g. cni-calico)")
    if need_reference and not (tag or digest):
        raise UsageError(f"{text!r}: say which version, NAME:TAG")
    return Ref(name, tag, digest)


# -- login / logout ---------------------------------------------------------------------


def login(ctx: Context, args: Any) -> int:
    """``paxctl registry login`` (and ``login``): check the credentials, then store them."""
    server = resolve_server(ctx, args.server)
    username = args.username
    if not username:
        if not ctx.stdin.isatty():
            raise UsageError("give --username (stdin is not a terminal to ask on)")
        ctx.stderr.write("Username: ")
        ctx.stderr.flush()
        username = ctx.stdin.readline().strip()
    if args.password_stdin:
        password = ctx.stdin.readline().rstrip("\r\n")
    elif args.password is not None:
        ctx.err("WARNING! Using --password on the command line is insecure: use --password-stdin.")
        password = args.password
    elif ctx.stdin.isatty():
        password = getpass.getpass("Password: ", stream=ctx.stderr)
    else:
        raise UsageError("give the password with --password-stdin (stdin is not a terminal)")
    if not username:
        raise UsageError("the username is empty")
    if args.ca_cert:
        check_ca_file(Path(args.ca_cert))
    credentials = Credentials(username, password)
    client = connect(
        ctx, server, insecure=args.insecure, ca_cert=args.ca_cert, credentials=credentials
    )
    try:
        client.ping()
    except RegistryAPIError as e:
        if e.status == 401:
            raise PaxctlError(
                f"login to {server.key} failed: wrong username or password for {username!r}",
                "UNAUTHORIZED",
            ) from None
        raise
    if not client.t.auth_required:
        ctx.err(f"note: {server.key} did not ask for credentials; they are stored anyway")
    plain = client.t.scheme == "http"
    if args.ca_cert:
        ctx.store.install_ca(server, Path(args.ca_cert))
    ctx.store.save(
        server.key,
        AuthEntry(credentials, insecure=bool(args.insecure or plain), plain_http=plain),
        make_default=args.default,
    )
    ctx.err(f"WARNING! Your password is stored unencrypted in {ctx.store.path}.")
    ctx.out("Login Succeeded")
    return 0


def check_ca_file(path: Path) -> None:
    """Refuse a ``--ca-cert`` that is not a readable PEM certificate."""
    try:
        ssl.create_default_context().load_verify_locations(cafile=str(path))
    except FileNotFoundError:
        raise UsageError(f"--ca-cert {path}: no such file") from None
    except (OSError, ssl.SSLError) as e:
        raise UsageError(f"--ca-cert {path}: not a PEM certificate ({e})") from None


def logout(ctx: Context, args: Any) -> int:
    """``paxctl logout``: forget a server's credentials."""
    server = resolve_server(ctx, args.server)
    if not ctx.store.remove(server.key):
        raise PaxctlError(f"not logged in to {server.key} (nothing in {ctx.store.path})")
    ctx.out(f"Removing login credentials for {server.key}")
    return 0


# -- pack validate ----------------------------------------------------------------------


def validate(ctx: Context, args: Any) -> int:
    """``paxctl pack validate``: every problem, exit 1 if any is an error."""
    pack, problems = inspect_pack(args.dir)
    for problem in problems:
        ctx.out(str(problem))
    bad = errors(problems)
    if bad or pack is None:
        ctx.err(f"{args.dir}: {len(bad)} error(s), {len(problems) - len(bad)} warning(s)")
        return 1
    ctx.out(f"{args.dir}: {pack.name} {pack.version} ({pack.pack['layer']}) is a valid pack")
    return 0


# -- pack push --------------------------------------------------------------------------


def push(ctx: Context, args: Any) -> int:
    """``paxctl pack push``: validate, upload what the registry lacks, tag."""
    if args.force and not args.message:
        raise UsageError("--force needs --message M: say why the tag is overwritten")
    if args.message and not args.force:
        raise UsageError("--message goes with --force")
    pack, problems = inspect_pack(args.dir)
    for problem in problems:
        ctx.err(str(problem))
    if pack is None:
        raise PaxctlError(
            f"{args.dir}: {len(errors(problems))} error(s) in the pack: nothing pushed"
        )
    client = client_for(ctx, args, verify_digests=not args.skip_digest_check)
    annotations = {MESSAGE_ANNOTATION: args.message} if args.force else {}
    with build_artifact(pack, annotations) as artifact:
        name = artifact.name
        mine = parse_pack_manifest(artifact.manifest).content_key()
        to_tag = []
        for tag in artifact.tags:
            existing = client.get_manifest(name, tag, missing_ok=True)
            if existing is None:
                to_tag.append(tag)
                continue
            if existing.digest == artifact.digest:
                continue
            try:
                same = parse_pack_manifest(existing.content).content_key() == mine
            except ManifestError:
                same = False
            if same and not args.force:
                continue  # the same pack, pushed with other annotations (a --force message)
            if not args.force:
                raise PaxctlError(
                    f"{name}:{tag} already exists with different content ({existing.digest}):"
                    " nothing pushed; push with --force --message M to overwrite it"
                )
            to_tag.append(tag)
        if not to_tag:
            ctx.out(
                f"{name}:{artifact.tags[0]} is up to date ({artifact.digest}): nothing uploaded"
            )
            return 0
        uploaded = present = 0
        for blob in artifact.blobs:
            if client.blob_exists(name, blob.digest):
                present += 1
                ctx.progress.note(f"{blob.label}: already there")
                continue
            client.upload_blob(name, blob)
            uploaded += 1
        for tag in to_tag:
            client.put_manifest(name, tag, artifact.manifest, OCI_MANIFEST)
        tags = ", ".join(f"{name}:{t}" for t in to_tag)
        ctx.out(
            f"pushed {tags} {artifact.digest} ({uploaded} blob(s) uploaded,"
            f" {present} already there)"
        )
    return 0


# -- pack pull --------------------------------------------------------------------------


def newest_version(tags: list[str]) -> str | None:
    """The newest plain version among *tags*, in the order the registry's parent tags use.

    The highest release by semantic-version precedence, a pre-release only
    when there is no release (:func:`paxd.packs.versions.newest`).
    """
    return newest(t for t in tags if is_version_tag(t))


def pull(ctx: Context, args: Any) -> int:
    """``paxctl pack pull``: fetch, verify every digest, write the directory back."""
    ref = parse_ref(args.ref)
    dest = Path(args.dir)
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise PaxctlError(f"{dest} exists and is not an empty directory: pull into a new one")
    client = client_for(ctx, args)
    reference = ref.reference
    if reference is None:
        reference = newest_version(client.tags(ref.name))
        if reference is None:
            raise PaxctlError(f"{ref.name} has no version tags: say which with NAME:TAG")
    found = client.get_manifest(ref.name, reference)
    assert found is not None
    try:
        manifest = parse_pack_manifest(found.content)
    except ManifestError as e:
        raise PaxctlError(f"{ref.name}:{reference}: {e}") from None
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", dir=dest.parent))
    try:
        os.chmod(tmp, 0o755)
        with (tmp / PACK_JSON).open("xb") as out:
            client.fetch_blob(
                ref.name, manifest.config.digest, manifest.config.size, out, PACK_JSON
            )
        for layer in manifest.files():
            assert layer.title is not None
            with (tmp / layer.title).open("xb") as out:
                client.fetch_blob(ref.name, layer.digest, layer.size, out, layer.title)
        archive = manifest.archive()
        if archive is not None:
            with tempfile.TemporaryFile() as fh:
                client.fetch_blob(ref.name, archive.digest, archive.size, fh, "content.tar.gz")
                fh.seek(0)
                try:
                    extract_archive(fh, tmp)
                except ArchiveError as e:
                    raise PaxctlError(f"{ref.name}:{reference}: {e}") from None
        for name in [PACK_JSON, *(layer.title or "" for layer in manifest.files())]:
            os.chmod(tmp / name, 0o644)
        if dest.exists():
            dest.rmdir()
        os.rename(tmp, dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    ctx.out(f"pulled {ref.name}:{reference} {found.digest} into {dest}")
    return 0


# -- pack ls ----------------------------------------------------------------------------


def _matches(name: str, pattern: str | None) -> bool:
    if not pattern:
        return True
    if any(c in pattern for c in "*?["):
        return fnmatch.fnmatchcase(name, pattern)
    return pattern in name


def _pack_row(client: RegistryClient, repo: str, tags: list[str]) -> dict[str, Any] | None:
    """One pack's row of ``pack ls``, or None if *repo* holds no pack."""
    plain = [t for t in tags if not is_parent_tag(t)]
    probe = newest_version(tags) or (sorted(plain, key=tag_order)[-1] if plain else None)
    if probe is None:
        return None
    found = client.get_manifest(repo, probe, missing_ok=True)
    if found is None:
        return None
    try:
        summary = parse_pack_manifest(found.content).summary()
    except ManifestError:
        return None  # not a pack (a container image, say)
    return {
        "name": repo,
        "displayName": summary.get("displayName", ""),
        "layer": summary.get("layer", ""),
        # versions apart from the tags naming them: labels, groups' tags, parent tags
        "versions": sorted((t for t in tags if is_version_tag(t)), key=tag_order),
        "labels": sorted((t for t in plain if not is_version_tag(t)), key=tag_order),
        "parents": sorted((t for t in tags if is_parent_tag(t)), key=tag_order),
        "tags": sorted(tags, key=tag_order),
        "latest": {"tag": probe, "digest": found.digest},
    }


def list_packs(ctx: Context, args: Any) -> int:
    """``paxctl pack ls``: walk catalog and tags; a table or JSON."""
    client = client_for(ctx, args)
    rows: list[dict[str, Any]] = []
    for repo in client.catalog():
        if not _matches(repo, args.name):
            continue
        try:
            tags = client.tags(repo)
        except RegistryAPIError as e:
            if e.status == 404:
                continue  # deleted between the catalog and now
            raise
        row = _pack_row(client, repo, tags) if tags else None
        if row is not None:
            rows.append(row)
    if args.output == "json":
        ctx.out(json.dumps(rows, indent=2))
        return 0
    table = [("NAME", "LAYER", "VERSIONS", "TAGS", "DISPLAY NAME")]
    for row in rows:
        others = ", ".join([*row["labels"], *row["parents"]]) or "-"
        versions = ", ".join(row["versions"]) or "-"
        table.append((row["name"], row["layer"] or "-", versions, others, row["displayName"]))
    widths = [max(len(r[i]) for r in table) for i in range(4)]
    for r in table:
        ctx.out("  ".join(v.ljust(w) for v, w in zip(r[:4], widths, strict=True)) + "  " + r[4])
    return 0


# -- tags and rm ------------------------------------------------------------------------


def tag_add(ctx: Context, args: Any) -> int:
    """``paxctl pack tag add``: point ``[GROUP__]LABEL`` at what ``NAME:TAG`` points at."""
    src = parse_ref(args.source, need_reference=True)
    label, group = args.label, args.group
    if not TAG_RE.match(label) or "__" in label:
        raise UsageError(f"{label!r} is not a label: letters, digits, '.', '_', '-' (no '__')")
    if group is not None and not GROUP_RE.match(group):
        raise UsageError(f"{group!r} is not a group: letters, digits, '.' and '-'")
    new = join_tag(label, group)
    if len(new) > 128:
        raise UsageError(f"{new!r} is longer than a tag's 128 characters")
    client = client_for(ctx, args)
    reference = src.reference
    assert reference is not None
    found = client.get_manifest(src.name, reference)
    assert found is not None
    before = client.manifest_digest(src.name, new)
    client.put_manifest(src.name, new, found.content, found.media_type or OCI_MANIFEST)
    moved = f" (moved from {before})" if before and before != found.digest else ""
    ctx.out(f"tagged {src.name}:{new} -> {found.digest}{moved}")
    return 0


def tag_delete(ctx: Context, args: Any) -> int:
    """``paxctl pack tag delete``: remove one tag, leaving the version and its other tags."""
    ref = parse_ref(args.ref, need_reference=True)
    if ref.tag is None:
        raise UsageError("give NAME:TAG; to delete by digest use `paxctl pack rm NAME@DIGEST`")
    client = client_for(ctx, args)
    if client.manifest_digest(ref.name, ref.tag) is None:
        raise PaxctlError(f"{ref} does not exist", "MANIFEST_UNKNOWN")
    try:
        client.delete_manifest(ref.name, ref.tag)
    except RegistryAPIError as e:
        if e.code == "DIGEST_INVALID" or (e.code == "UNSUPPORTED" and "delete" not in e.message):
            raise PaxctlError(
                f"{e.message}: this registry deletes manifests by digest only, not single"
                f" tags; `paxctl pack rm {ref}` deletes that version with all its tags",
                e.code,
            ) from None
        raise
    ctx.out(f"deleted tag {ref}")
    return 0


def _parent_target(client: RegistryClient, name: str, parent: str, digest: str) -> str | None:
    """The version tag the parent tag *parent* points at (same digest), newest first."""
    tags = client.tags(name)
    expected = compute_parents(tags).get(parent)
    line = [t for t in tags if parent in parent_tags(t)]
    line.sort(key=tag_order, reverse=True)
    for tag in ([expected] if expected else []) + [t for t in line if t != expected]:
        if client.manifest_digest(name, tag) == digest:
            return tag
    return None


def remove(ctx: Context, args: Any) -> int:
    """``paxctl pack rm``: delete a pack version (its manifest, so all its tags)."""
    ref = parse_ref(args.ref, need_reference=True)
    client = client_for(ctx, args)
    if ref.tag is not None and is_parent_tag(ref.tag):
        # a parent tag names "the newest of a line": deleting through it would delete
        # whichever version that is today
        digest = client.manifest_digest(ref.name, ref.tag)
        if digest is None:
            raise PaxctlError(f"{ref} does not exist", "MANIFEST_UNKNOWN")
        target = _parent_target(client, ref.name, ref.tag, digest)
        which = f"{ref.name}:{target}" if target else f"{ref.name}@{digest}"
        raise PaxctlError(
            f"{ref} is a parent tag: it points at {target or digest}, the newest version of"
            f" its line; not deleted: to delete that version, say so: `paxctl pack rm {which}`",
            "DENIED",
        )
    digest = ref.digest
    if digest is None:
        assert ref.tag is not None
        digest = client.manifest_digest(ref.name, ref.tag)
        if digest is None:
            raise PaxctlError(f"{ref} does not exist", "MANIFEST_UNKNOWN")
    client.delete_manifest(ref.name, digest)
    ctx.out(f"deleted {ref.name}@{digest}")
    return 0


def version(ctx: Context, args: Any) -> int:
    """``paxctl version``."""
    ctx.out(f"paxctl {__version__}")
    return 0


__all__ = [
    "Context",
    "is_version_tag",
    "list_packs",
    "login",
    "logout",
    "pull",
    "push",
    "remove",
    "split_tag",
    "tag_add",
    "tag_delete",
    "validate",
    "version",
]
