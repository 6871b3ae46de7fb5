"""The package boundaries of issue 10, read from the source: who may import what."""

from __future__ import annotations

import ast
from pathlib import Path

from twisted.trial.unittest import SynchronousTestCase

PAXD = Path(__file__).resolve().parents[1] / "paxd"


def _imports(path: Path) -> set[str]:
    """Every module name *path* imports (``from a.b import c`` gives ``a.b`` and ``a.b.c``)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def _modules(*parts: str) -> list[Path]:
    return sorted(PAXD.joinpath(*parts).rglob("*.py")) if parts else sorted(PAXD.rglob("*.py"))


class LayeringTests(SynchronousTestCase):
    def test_the_daemon_never_imports_the_client(self) -> None:
        client = PAXD / "client"
        offenders = [
            (str(path.relative_to(PAXD)), name)
            for path in _modules()
            if client not in path.parents
            for name in _imports(path)
            if name == "paxd.client" or name.startswith("paxd.client.")
        ]
        self.assertEqual(offenders, [])

    def test_registry_and_storage_know_no_http_nor_client(self) -> None:
        for package in ("registry", "storage"):
            for path in _modules(package):
                bad = {n for n in _imports(path) if n.startswith(("twisted.web", "paxd.client"))}
                self.assertEqual(bad, set(), str(path.relative_to(PAXD)))

    def test_shared_modules_stay_pure(self) -> None:
        """paxd.oci and paxd.packs: no Twisted, no registry, no client (both sides import them)."""
        paths = [PAXD / "oci.py", *_modules("packs")]
        for path in paths:
            bad = {
                n
                for n in _imports(path)
                if n.startswith(("twisted", "paxd.registry", "paxd.client", "paxd.web"))
            }
            self.assertEqual(bad, set(), str(path.relative_to(PAXD)))

    def test_no_cycle_between_packages(self) -> None:
        """Between paxd's packages and top-level modules, imports go one way only."""
        units = {
            p.name.removesuffix(".py") for p in PAXD.iterdir() if p.suffix == ".py" or p.is_dir()
        }
        edges: dict[str, set[str]] = {}
        for path in _modules():
            here = path.relative_to(PAXD).parts[0].removesuffix(".py")
            for name in _imports(path):
                parts = name.split(".")
                if parts[0] == "paxd" and len(parts) > 1 and parts[1] in units:
                    if parts[1] != here:
                        edges.setdefault(here, set()).add(parts[1])
        cycles = sorted((a, b) for a, bs in edges.items() for b in bs if a in edges.get(b, ()))
        self.assertEqual(cycles, [])
