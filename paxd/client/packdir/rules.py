"""The rules a pack directory must follow, and what it holds.

:func:`inspect_pack` walks a pack directory once, checks it against the rules
of the vendor's pack format (mandatory files, ``pack.json`` fields and their
allowed values, every referenced path present and inside the pack, YAML that
parses, a logo that is a real image, no symlink leaving the pack) and returns
both every problem found and, when there is no error, the
:class:`PackDirectory` that :mod:`paxd.client.packdir.artifact` turns into
blobs.  The image checks are :mod:`paxd.client.packdir.images`.
"""

from __future__ import annotations

import json
import os
import posixpath
import stat
from pathlib import Path
from typing import Any, Literal

import attrs
import yaml

from paxd.client.packdir.images import image_problem
from paxd.packs.format import DOCUMENT_MEDIA_TYPES, GROUP_RE, LOGOS, join_tag
from paxd.registry.reference import NAME_MAX, NAME_RE, TAG_RE

PACK_JSON = "pack.json"
VALUES = "values.yaml"
#: the optional top-level documents, each pushed as its own small blob, in this order
DOCUMENTS: tuple[str, ...] = tuple(DOCUMENT_MEDIA_TYPES)  # values.yaml, README.md, …
#: names that never become their own blob nor enter the archive
TOP_LEVEL_FILES = frozenset((PACK_JSON, *DOCUMENTS, *LOGOS))
#: version-control directories are not part of a pack (anywhere in the tree)
IGNORED_DIRS = frozenset((".git", ".hg", ".svn"))

LAYERS: tuple[str, ...] = ("kernel", "os", "k8s", "cni", "csi", "addon")
CLOUD_TYPES: tuple[str, ...] = (
    "all",
    "aws",
    "azure",
    "gcp",
    "vsphere",
    "openstack",
    "baremetal",
    "maas",
    "aks",
    "eks",
    "gke",
    "tke",
    "edge",
    "libvirt",
    "edge-native",
    "coxedge",
    "tencent",
    "custom",
)
DEPENDENCY_TYPES: tuple[str, ...] = ("required", "optional", "notSupported", "upgrade")
RESOURCE_TYPES: tuple[str, ...] = ("cpu", "memory", "diskSize")
REQUIRED_FIELDS: tuple[str, ...] = ("name", "displayName", "version", "layer")
KNOWN_FIELDS = frozenset(
    (
        *REQUIRED_FIELDS,
        "addonType",
        "addonSubType",
        "cloudTypes",
        "group",
        "eol",
        "annotations",
        "kubeManifests",
        "charts",
        "ansibleRoles",
        "constraints",
    )
)
#: logos above this size are accepted with a warning: the console shows them small
LOGO_WARN_SIZE = 1024 * 1024


@attrs.frozen
class Problem:
    """One thing wrong with a pack: the file, the field inside it, and what to fix."""

    file: str
    message: str
    field: str | None = None
    level: Literal["error", "warning"] = "error"

    def __str__(self) -> str:
        where = f"{self.file}: {self.field}" if self.field else self.file
        prefix = "warning: " if self.level == "warning" else ""
        return f"{prefix}{where}: {self.message}"


@attrs.frozen
class Entry:
    """One entry of the pack's tree (what goes into the archive): a POSIX relative path."""

    path: str
    kind: Literal["dir", "file", "symlink"]
    executable: bool = False
    #: the link text of a symlink (relative, inside the pack)
    target: str = ""


@attrs.frozen
class PackDirectory:
    """A pack directory that passed validation."""

    root: Path
    #: ``pack.json`` parsed
    pack: dict[str, Any]
    #: ``pack.json`` verbatim: it becomes the config blob byte for byte
    pack_json: bytes
    #: the logo's file name (a key of :data:`LOGOS`)
    logo: str
    #: the :data:`DOCUMENTS` present, in that order
    documents: tuple[str, ...]
    #: everything else, sorted so that a directory precedes its contents
    tree: tuple[Entry, ...]

    @property
    def name(self) -> str:
        return str(self.pack["name"])

    @property
    def version(self) -> str:
        return str(self.pack["version"])


def errors(problems: list[Problem]) -> list[Problem]:
    """Only the errors among *problems*."""
    return [p for p in problems if p.level == "error"]


def inspect_pack(root: str | os.PathLike[str]) -> tuple[PackDirectory | None, list[Problem]]:
    """Check the pack directory *root*; return it (``None`` if any error) and every problem."""
    return _PackChecker(Path(root)).run()


def validate_pack(root: str | os.PathLike[str]) -> list[Problem]:
    """Every problem of the pack at *root* (errors and warnings)."""
    return inspect_pack(root)[1]


class _PackChecker:
    """One validation run: walks the directory and collects problems."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.problems: list[Problem] = []
        self.real_root = ""

    def error(self, file: str, message: str, field: str | None = None) -> None:
        self.problems.append(Problem(file, message, field))

    def warn(self, file: str, message: str, field: str | None = None) -> None:
        self.problems.append(Problem(file, message, field, "warning"))

    def run(self) -> tuple[PackDirectory | None, list[Problem]]:
        if not self.root.is_dir():
            self.error(str(self.root), "not a directory: give the pack's directory")
            return None, self.problems
        self.real_root = os.path.realpath(self.root)
        tree = self.walk()
        pack, raw = self.check_pack_json()
        logo = self.check_logo()
        documents = self.check_documents()
        if pack is not None:
            self.check_fields(pack)
        if errors(self.problems) or pack is None or logo is None:
            return None, self.problems
        result = PackDirectory(
            root=self.root,
            pack=pack,
            pack_json=raw,
            logo=logo,
            documents=documents,
            tree=tuple(tree),
        )
        return result, self.problems

    # -- the tree -------------------------------------------------------------------

    def walk(self) -> list[Entry]:
        """Every entry under the root except the top-level files, sorted; checks each one."""
        entries: list[Entry] = []
        for dirpath, dirnames, filenames in os.walk(self.root, followlinks=False):
            rel_dir = os.path.relpath(dirpath, self.root)
            rel_dir = "" if rel_dir == "." else Path(rel_dir).as_posix()
            names = sorted(n for n in dirnames + filenames if n not in IGNORED_DIRS)
            keep_dirs = []
            for name in names:
                rel = f"{rel_dir}/{name}" if rel_dir else name
                full = os.path.join(dirpath, name)
                if not self.check_name(rel):
                    continue
                st = os.lstat(full)
                if stat.S_ISLNK(st.st_mode):
                    if rel in TOP_LEVEL_FILES:
                        self.error(rel, "must be a regular file, not a symlink")
                        continue
                    entry = self.check_symlink(rel, full)
                    if entry is not None:
                        entries.append(entry)
                elif stat.S_ISDIR(st.st_mode):
                    if rel in TOP_LEVEL_FILES:
                        self.error(rel, "must be a regular file, not a directory")
                        continue
                    keep_dirs.append(name)
                    entries.append(Entry(rel, "dir"))
                elif stat.S_ISREG(st.st_mode):
                    if rel not in TOP_LEVEL_FILES:
                        executable = bool(st.st_mode & 0o111)
                        entries.append(Entry(rel, "file", executable=executable))
                else:
                    self.error(rel, "not a regular file, directory or symlink: remove it")
            dirnames[:] = keep_dirs
        entries.sort(key=lambda e: e.path.split("/"))
        return entries

    def check_name(self, rel: str) -> bool:
        try:
            rel.encode("utf-8")
        except UnicodeEncodeError:
            self.error(repr(rel), "file name is not valid UTF-8: rename it")
            return False
        return True

    def check_symlink(self, rel: str, full: str) -> Entry | None:
        target = os.readlink(full)
        if os.path.isabs(target):
            self.error(
                rel, f"symlink to an absolute path ({target}): packs may only hold relative links"
            )
            return None
        lexical = posixpath.normpath(posixpath.join(posixpath.dirname(rel), target))
        if lexical == ".." or lexical.startswith("../"):
            self.error(rel, f"symlink points outside the pack ({target})")
            return None
        real = os.path.realpath(full)
        if not self.inside(real):
            self.error(rel, f"symlink points outside the pack ({target} → {real})")
            return None
        if not os.path.exists(full):
            self.error(rel, f"dangling symlink ({target} does not exist)")
            return None
        return Entry(rel, "symlink", target=target)

    def inside(self, real: str) -> bool:
        return real == self.real_root or real.startswith(self.real_root + os.sep)

    # -- pack.json ------------------------------------------------------------------

    def check_pack_json(self) -> tuple[dict[str, Any] | None, bytes]:
        path = self.root / PACK_JSON
        if not path.is_file() or path.is_symlink():
            if not path.exists() and not path.is_symlink():
                self.error(PACK_JSON, "missing: every pack needs pack.json, values.yaml and a logo")
            return None, b""
        raw = path.read_bytes()
        try:
            pack = json.loads(raw.decode("utf-8"))
        except UnicodeDecodeError as e:
            self.error(PACK_JSON, f"not UTF-8 text (byte {e.start})")
            return None, raw
        except json.JSONDecodeError as e:
            self.error(PACK_JSON, f"not valid JSON (line {e.lineno} column {e.colno}: {e.msg})")
            return None, raw
        if not isinstance(pack, dict):
            self.error(PACK_JSON, f"must be a JSON object, not {type(pack).__name__}")
            return None, raw
        return pack, raw

    def check_fields(self, pack: dict[str, Any]) -> None:
        f = PACK_JSON
        for key in REQUIRED_FIELDS:
            if key not in pack:
                self.error(f, "required field missing", key)
            elif not isinstance(pack[key], str) or not pack[key].strip():
                self.error(f, "must be a non-empty string", key)
        for key in sorted(set(pack) - KNOWN_FIELDS):
            self.warn(f, "unknown field: kept in pack.json, ignored by paxctl", key)

        name = pack.get("name")
        if isinstance(name, str) and name and (len(name) > NAME_MAX or not NAME_RE.match(name)):
            self.error(
                f,
                f"{name!r} is not a repository name: lower-case letters and digits, separated"
                " by '.', '_', '__' or '-' (e.g. cni-calico)",
                "name",
            )
        version = pack.get("version")
        if isinstance(version, str) and version and (not TAG_RE.match(version) or "__" in version):
            self.error(
                f,
                f"{version!r} cannot be a tag: letters, digits, '.', '_' and '-' only (no '__',"
                " no '+'), at most 128 characters",
                "version",
            )
        layer = pack.get("layer")
        if isinstance(layer, str) and layer and layer not in LAYERS:
            self.error(f, f"{layer!r} is not one of {', '.join(LAYERS)}", "layer")
        for key in ("addonType", "addonSubType", "eol"):
            if key in pack and not isinstance(pack[key], str):
                self.error(f, "must be a string", key)
        if layer == "addon" and "addonType" not in pack:
            self.warn(f, "add-on packs usually say what they are (e.g. monitoring)", "addonType")
        group = pack.get("group")
        if group is not None:
            if not isinstance(group, str) or not GROUP_RE.match(group):
                self.error(
                    f,
                    "must be letters, digits, '.' and '-' (no '_'), at most 64 characters",
                    "group",
                )
            elif isinstance(version, str) and len(join_tag(version, group)) > 128:
                self.error(f, "group and version together exceed a tag's 128 characters", "group")
        self.check_cloud_types(pack)
        self.check_annotations(pack)
        for key in ("kubeManifests", "charts"):
            self.check_paths(pack, key)
        roles = pack.get("ansibleRoles")
        if roles is not None and (
            not isinstance(roles, list) or not all(isinstance(r, str) for r in roles)
        ):
            self.error(f, "must be a list of strings", "ansibleRoles")
        self.check_constraints(pack)

    def check_cloud_types(self, pack: dict[str, Any]) -> None:
        types = pack.get("cloudTypes")
        if types is None:
            return
        if not isinstance(types, list):
            self.error(PACK_JSON, 'must be a list, e.g. ["all"]', "cloudTypes")
            return
        for i, value in enumerate(types):
            if not isinstance(value, str):
                self.error(PACK_JSON, "must be a string", f"cloudTypes[{i}]")
            elif value not in CLOUD_TYPES:
                self.warn(
                    PACK_JSON,
                    f"{value!r} is not a known cloud type ({', '.join(CLOUD_TYPES)})",
                    f"cloudTypes[{i}]",
                )

    def check_annotations(self, pack: dict[str, Any]) -> None:
        annotations = pack.get("annotations")
        if annotations is None:
            return
        if not isinstance(annotations, dict):
            self.error(PACK_JSON, "must be an object of strings", "annotations")
            return
        for key, value in annotations.items():
            if not isinstance(value, str):
                self.error(PACK_JSON, "must be a string", f"annotations.{key}")

    def check_paths(self, pack: dict[str, Any], key: str) -> None:
        paths = pack.get(key)
        if paths is None:
            return
        if not isinstance(paths, list):
            self.error(PACK_JSON, "must be a list of paths relative to the pack", key)
            return
        for i, value in enumerate(paths):
            field = f"{key}[{i}]"
            if not isinstance(value, str) or not value:
                self.error(PACK_JSON, "must be a path relative to the pack", field)
                continue
            lexical = posixpath.normpath(value)
            if posixpath.isabs(value) or lexical == ".." or lexical.startswith("../"):
                self.error(PACK_JSON, f"{value!r} is outside the pack: use a path inside it", field)
                continue
            full = self.root / lexical
            if not full.exists():
                self.error(PACK_JSON, f"{value!r} does not exist in the pack", field)
                continue
            if not self.inside(os.path.realpath(full)):
                self.error(PACK_JSON, f"{value!r} leads outside the pack", field)
                continue
            if not full.is_file():
                self.error(PACK_JSON, f"{value!r} is not a file", field)
                continue
            if key == "charts":
                self.check_chart(value, full, field)
            elif value.endswith((".yaml", ".yml")):
                self.check_yaml_file(value, full, multi=True)

    def check_chart(self, value: str, full: Path, field: str) -> None:
        with full.open("rb") as fh:
            magic = fh.read(2)
        if magic != b"\x1f\x8b":
            self.error(
                PACK_JSON,
                f"{value!r} is not a Helm chart package (a gzip .tgz): run helm package",
                field,
            )
        elif not value.endswith((".tgz", ".tar.gz")):
            self.warn(
                PACK_JSON, f"{value!r}: Helm chart packages are named NAME-VERSION.tgz", field
            )

    def check_constraints(self, pack: dict[str, Any]) -> None:
        constraints = pack.get("constraints")
        if constraints is None:
            return
        f = PACK_JSON
        if not isinstance(constraints, dict):
            self.error(f, "must be an object with dependencies and resources", "constraints")
            return
        deps = constraints.get("dependencies", [])
        if not isinstance(deps, list):
            self.error(f, "must be a list", "constraints.dependencies")
            deps = []
        for i, dep in enumerate(deps):
            where = f"constraints.dependencies[{i}]"
            if not isinstance(dep, dict):
                self.error(f, "must be an object", where)
                continue
            if not isinstance(dep.get("packName"), str) or not dep.get("packName"):
                self.error(f, "required: the name of the pack depended on", f"{where}.packName")
            if "layer" in dep and dep["layer"] not in LAYERS:
                self.error(
                    f, f"{dep['layer']!r} is not one of {', '.join(LAYERS)}", f"{where}.layer"
                )
            if dep.get("type") not in DEPENDENCY_TYPES:
                self.error(
                    f,
                    f"{dep.get('type')!r} is not one of {', '.join(DEPENDENCY_TYPES)}",
                    f"{where}.type",
                )
            for key in ("minVersion", "maxVersion"):
                if key in dep and not isinstance(dep[key], str):
                    self.error(f, "must be a string", f"{where}.{key}")
        resources = constraints.get("resources", [])
        if not isinstance(resources, list):
            self.error(f, "must be a list", "constraints.resources")
            resources = []
        for i, res in enumerate(resources):
            where = f"constraints.resources[{i}]"
            if not isinstance(res, dict):
                self.error(f, "must be an object", where)
                continue
            if res.get("type") not in RESOURCE_TYPES:
                self.error(
                    f,
                    f"{res.get('type')!r} is not one of {', '.join(RESOURCE_TYPES)}",
                    f"{where}.type",
                )
            limit = res.get("minLimit")
            if limit is not None and (
                isinstance(limit, bool) or not isinstance(limit, int | float) or limit < 0
            ):
                self.error(f, "must be a number, at least 0", f"{where}.minLimit")
            if "components" in res and not isinstance(res["components"], list):
                self.error(f, "must be a list", f"{where}.components")

    # -- the logo and the documents -----------------------------------------------------

    def check_logo(self) -> str | None:
        present = [name for name in LOGOS if (self.root / name).exists()]
        if not present:
            self.error("logo.png", "missing: a pack needs a logo (logo.png, logo.svg or logo.webp)")
            return None
        if len(present) > 1:
            self.error(
                present[1], f"a pack has one logo: remove all but one of {', '.join(present)}"
            )
            return None
        name = present[0]
        path = self.root / name
        if path.is_symlink() or not path.is_file():
            return None  # reported by walk()
        data = path.read_bytes()
        problem = image_problem(name, data)
        if problem:
            self.error(name, problem)
            return None
        if len(data) > LOGO_WARN_SIZE:
            self.warn(
                name, f"{len(data)} bytes: the console shows logos small, keep it under 1 MiB"
            )
        return name

    def check_documents(self) -> tuple[str, ...]:
        present = []
        for name in DOCUMENTS:
            path = self.root / name
            if not path.exists() and not path.is_symlink():
                if name == VALUES:
                    self.error(VALUES, "missing: every pack needs values.yaml (it may be empty)")
                continue
            if path.is_symlink() or not path.is_file():
                continue  # reported by walk()
            present.append(name)
            if name.endswith(".yaml"):
                document = self.check_yaml_file(name, path)
                if name == "presets.yaml" and document is not None:
                    self.check_presets(document)
            else:
                try:
                    path.read_bytes().decode("utf-8")
                except UnicodeDecodeError as e:
                    self.warn(name, f"not UTF-8 text (byte {e.start})")
        return tuple(present)

    def check_yaml_file(self, rel: str, path: Path, multi: bool = False) -> Any:
        try:
            text = path.read_bytes().decode("utf-8")
        except UnicodeDecodeError as e:
            self.error(rel, f"not UTF-8 text (byte {e.start})")
            return None
        try:
            if multi:
                list(yaml.safe_load_all(text))
                return None
            document = yaml.safe_load(text)
        except yaml.MarkedYAMLError as e:
            mark = e.problem_mark
            line = f"line {mark.line + 1}: " if mark is not None else ""
            self.error(rel, f"not valid YAML ({line}{e.problem})")
            return None
        except yaml.YAMLError as e:
            self.error(rel, f"not valid YAML ({e})")
            return None
        if document is not None and not isinstance(document, dict):
            self.error(rel, f"must be a YAML mapping, not {type(document).__name__}")
            return None
        return document

    def check_presets(self, document: dict[str, Any]) -> None:
        presets = document.get("presets")
        if not isinstance(presets, list):
            self.error("presets.yaml", "must be a list", "presets")
            return
        for i, preset in enumerate(presets):
            if not isinstance(preset, dict) or not isinstance(preset.get("name"), str):
                self.error("presets.yaml", "each preset needs a name", f"presets[{i}]")
