"""paxctl as the vendor's CLI, against real registries (paxd; Debian's docker-registry).

- ``pack build`` from a Helm chart → ``validate`` → ``push`` → ``pull`` gives
  the built directory back, on paxd and on distribution;
- a shell script written for ``spectro`` runs with only the program name
  changed (login, ``pack push -f -m``, ``pack ls -n``, ``pack pull``, ``pack
  tag add -g``, ``pack tag delete``, ``version``);
- the wrong answers of issue 15: a label is never "newest", ``pack ls`` shows
  versions and other tags apart, ``pack rm NAME:1.x`` is refused.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from twisted.internet.threads import deferToThread

from tests.client.packdir.support import copy_sample, tree_snapshot
from tests.client.packdir.test_helm import make_chart_dir
from tests.client.test_integration import ADMIN, PaxctlCase, Run
from tests.integration.harness import require_tool

_Base: Any = PaxctlCase if TYPE_CHECKING else object

#: written for the vendor's CLI; the test changes nothing but the program's name
VENDOR_SCRIPT = """\
#!/bin/sh
set -eu
spectro registry login "$REGISTRY" --insecure --default --username admin --password "$PASSWORD"
spectro pack push ./cert-manager -f -m "first upload"
spectro pack push ./cert-manager-1.22.0 -f -m "new upstream release"
spectro pack ls -n cert > listing.txt
spectro pack pull cert-manager:1.14.4 ./pulled
spectro pack tag add cert-manager:1.14.4 stable -g lts
spectro pack pull cert-manager:lts__stable ./pulled-stable
spectro pack tag delete cert-manager:lts__stable
spectro version > version.txt
"""


def sample_version(src: Path, dest: Path, version: str) -> Path:
    """A copy of pack *src* with another version in its pack.json."""
    shutil.copytree(src, dest, symlinks=True)
    pack = json.loads((dest / "pack.json").read_text())
    pack["version"] = version
    (dest / "pack.json").write_text(json.dumps(pack))
    return dest


class BuildRoundTripMixin(_Base):
    """A chart becomes a pack that validates, pushes and pulls back identical."""

    async def test_build_validate_push_pull(self) -> None:
        daemon = await self.start()
        await self.login(daemon)
        chart = make_chart_dir(self.tmp / "chart")
        built = self.tmp / "hello-web"
        result = await self.ok(
            "pack", "build", str(chart), str(built), "--addon-type", "monitoring", "-p"
        )
        self.assertIn("built hello-web 1.4.2 (addon)", result.stdout)
        self.assertIn("pushed hello-web:1.4.2", result.stdout)
        await self.ok("pack", "validate", str(built))
        # the same chart built again is the same pack, byte for byte: nothing to upload
        again = await self.ok(
            "pack",
            "build",
            str(chart),
            str(self.tmp / "again"),
            "--addon-type",
            "monitoring",
            "-p",
        )
        self.assertIn("hello-web:1.4.2 is up to date", again.stdout)
        # built otherwise, it is another pack: not pushed over the tag without --force
        other = await self.paxctl("pack", "build", str(chart), str(self.tmp / "other"), "-p")
        self.assertEqual(other.returncode, 1, other.describe())
        self.assertIn("hello-web:1.4.2 already exists with different content", other.stderr)
        out = self.tmp / "pulled"
        await self.ok("pack", "pull", "hello-web:1.4.2", str(out))
        self.assertEqual(tree_snapshot(out), tree_snapshot(built))
        listing = json.loads((await self.ok("pack", "ls", "-o", "json", "-n", "hello")).stdout)
        self.assertEqual([(r["name"], r["layer"]) for r in listing], [("hello-web", "addon")])


class PaxdBuildTests(BuildRoundTripMixin, PaxctlCase):
    kind = "paxd"


class DistributionBuildTests(BuildRoundTripMixin, PaxctlCase):
    kind = "distribution"


class VendorScriptTests(PaxctlCase):
    """A script written for ``spectro`` against paxd, with only the program name changed."""

    kind = "paxd"

    def wrapper_dir(self) -> Path:
        """A directory with a ``paxctl`` executable (what ``pip install`` would put on PATH)."""
        bindir = self.tmp / "bin"
        bindir.mkdir()
        exe = bindir / "paxctl"
        exe.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m paxd.client "$@"\n')
        exe.chmod(0o755)
        return bindir

    async def run_script(self, script: str, env: dict[str, str]) -> Run:
        sh = require_tool("sh")
        path = self.tmp / "work" / "script.sh"
        path.write_text(script)

        def run() -> Run:
            proc = subprocess.run(
                [sh, str(path)],
                capture_output=True,
                cwd=path.parent,
                env=env,
                timeout=300,
                check=False,
            )
            return Run(
                ("sh", str(path)), proc.returncode, proc.stdout.decode(), proc.stderr.decode()
            )

        return await deferToThread(run)

    async def test_vendor_script(self) -> None:
        daemon = await self.start()
        work = self.tmp / "work"
        work.mkdir()
        cert = copy_sample("cert-manager", work)
        sample_version(cert, work / "cert-manager-1.22.0", "1.22.0")
        env = self.env(REGISTRY=daemon.host, PASSWORD=ADMIN[1])
        env["PATH"] = f"{self.wrapper_dir()}{os.pathsep}{env.get('PATH', '')}"
        script = VENDOR_SCRIPT.replace("spectro ", "paxctl ")
        self.assertEqual(script.count("paxctl "), VENDOR_SCRIPT.count("spectro "))
        result = await self.run_script(script, env)
        self.assertEqual(result.returncode, 0, result.describe())
        self.assertNotIn("Traceback", result.stderr)
        self.assertIn("Login Succeeded", result.stdout)
        self.assertIn("WARNING! Your password is stored unencrypted in", result.stderr)
        # the vendor CLI's file, in its format
        config = json.loads((self.home / ".spectro" / "config.json").read_text())
        self.assertEqual(config["defaultRegistry"], daemon.host)
        self.assertTrue(config["auths"][daemon.host]["insecure"])
        listing = (work / "listing.txt").read_text().splitlines()
        self.assertEqual(listing[0].split()[:4], ["NAME", "LAYER", "VERSIONS", "TAGS"])
        row = next(line for line in listing if line.startswith("cert-manager "))
        self.assertIn("1.14.4, 1.22.0", row)
        self.assertTrue((work / "version.txt").read_text().startswith("paxctl "))
        self.assertEqual(tree_snapshot(work / "pulled"), tree_snapshot(cert))
        self.assertEqual(tree_snapshot(work / "pulled-stable"), tree_snapshot(cert))
        self.assertEqual(
            await self.tags(daemon, "cert-manager"),
            ["1.14.4", "1.14.x", "1.22.0", "1.22.x", "1.x"],
        )


class WrongAnswersTests(PaxctlCase):
    """Issue 15's wrong answers, against paxd (which keeps parent tags)."""

    kind = "paxd"

    async def test_registry_login_with_a_scheme(self) -> None:
        """``registry login http://HOST:PORT`` works (the vendor's CLI fails it)."""
        daemon = await self.start()
        result = await self.ok(
            "registry",
            "login",
            f"http://{daemon.host}",
            "--username",
            "admin",
            "--password-stdin",
            "-d",
            stdin=ADMIN[1] + "\n",
        )
        self.assertEqual(result.stdout, "Login Succeeded\n")
        config = json.loads((self.home / ".spectro" / "config.json").read_text())
        self.assertEqual(list(config["auths"]), [daemon.host])
        self.assertTrue(config["auths"][daemon.host]["plainHttp"])
        await self.ok("pack", "ls")
        await self.ok("registry", "logout")
        self.assertEqual(
            json.loads((self.home / ".spectro" / "config.json").read_text())["auths"], {}
        )

    async def test_labels_parents_and_rm(self) -> None:
        daemon = await self.start()
        await self.login(daemon)
        old = copy_sample("cert-manager", self.tmp / "a")
        new = sample_version(old, self.tmp / "b" / "cert-manager", "1.22.0")
        await self.ok("pack", "push", str(old))
        await self.ok("pack", "push", str(new))
        await self.ok("pack", "tag", "add", "cert-manager:1.14.4", "latest")
        await self.ok("pack", "tag", "add", "cert-manager:1.14.4", "recommended")
        # a pull without a tag: the highest release, not what "latest" names
        pulled = await self.ok("pack", "pull", "cert-manager", str(self.tmp / "newest"))
        self.assertIn("pulled cert-manager:1.22.0", pulled.stdout)
        self.assertEqual(tree_snapshot(self.tmp / "newest"), tree_snapshot(new))
        # versions apart from the other tags
        (row,) = json.loads((await self.ok("pack", "ls", "-o", "json")).stdout)
        self.assertEqual(row["versions"], ["1.14.4", "1.22.0"])
        self.assertEqual(row["labels"], ["latest", "recommended"])
        self.assertEqual(sorted(row["parents"]), ["1.14.x", "1.22.x", "1.x"])
        self.assertEqual(row["latest"]["tag"], "1.22.0")
        table = (await self.ok("pack", "ls")).stdout.splitlines()
        line = next(x for x in table if x.startswith("cert-manager "))
        _, _, rest = line.partition("1.14.4, 1.22.0")
        self.assertTrue(rest.strip().startswith("latest, recommended"), line)
        # rm through a parent tag is refused, naming the version it points at
        refused = await self.paxctl("pack", "rm", "cert-manager:1.x")
        self.assertEqual(refused.returncode, 1)
        self.assertIn("cert-manager:1.x is a parent tag: it points at 1.22.0", refused.stderr)
        self.assertIn("paxctl pack rm cert-manager:1.22.0", refused.stderr)
        self.assertIn("1.22.0", await self.tags(daemon, "cert-manager"))
        # the version by name is deleted; the parents move back
        await self.ok("pack", "rm", "cert-manager:1.22.0")
        self.assertEqual(
            await self.tags(daemon, "cert-manager"),
            ["1.14.4", "1.14.x", "1.x", "latest", "recommended"],
        )
