"""paxctl against real registries: paxd and Debian's ``docker-registry`` (distribution 2.8.2).

Every test starts its registry on a loopback port (with htpasswd users) and
runs paxctl as a child process (``python -m paxd.client``) with its own
``HOME``, as a pack author would.  The same round trips run against both
registries: against distribution they prove paxctl speaks the standard
protocol (through ``/v2/``).  TLS tests generate their own CA and server
certificates.  A missing tool skips, except under ``CI=true``.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs
from twisted.internet.threads import deferToThread
from twisted.trial.unittest import TestCase

from paxd.client.config import Credentials, parse_server
from paxd.client.packdir.artifact import build_artifact
from paxd.client.packdir.rules import inspect_pack
from paxd.client.registry import CHUNK_SIZE, RegistryClient
from paxd.client.transport import Body, Response, Transport
from paxd.packs.format import MESSAGE_ANNOTATION
from tests.client.certs import make_ca, make_server_cert
from tests.client.packdir.support import SAMPLES, copy_sample, tree_snapshot
from tests.integration.harness import (
    Daemon,
    basic_auth,
    curl,
    free_port,
    http_request,
    registry_config,
    require_paxd,
    require_tool,
    skopeo_inspect_raw,
    start_distribution,
    start_paxd,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
ADMIN = ("admin", "s3cret-admin")
READER = ("spectro", "s3cret-reader")
RUN_TIMEOUT = 120.0


@attrs.frozen
class Run:
    """One paxctl run."""

    argv: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str

    def describe(self) -> str:
        return (
            f"paxctl {' '.join(self.argv)} exited {self.returncode}\n"
            f"stdout: {self.stdout[-3000:]}\nstderr: {self.stderr[-3000:]}"
        )


def htpasswd_file(path: Path) -> Path:
    """An htpasswd file (bcrypt, made by the real ``htpasswd``) with an admin and a reader."""
    exe = require_tool("htpasswd")
    lines = []
    for user, password in (ADMIN, READER):
        proc = subprocess.run(
            [exe, "-Bbn", user, password], capture_output=True, check=True, timeout=60
        )
        lines.append(proc.stdout.decode().strip())
    path.write_text("\n".join(lines) + "\n")
    return path


class PaxctlCase(TestCase):
    """A temporary HOME for paxctl, a registry started per test, paxctl runs in threads."""

    timeout = 240
    #: ``"paxd"`` or ``"distribution"``
    kind = "paxd"

    def setUp(self) -> None:
        self.tmp = Path(self.mktemp()).resolve()
        self.tmp.mkdir(parents=True)
        self.home = self.tmp / "home"
        self.home.mkdir()

    def env(self, **extra: str) -> dict[str, str]:
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("PAXCTL_", "XDG_", "REGISTRY_")) and k != "HOME"
        }
        env["HOME"] = str(self.home)
        env["PYTHONPATH"] = os.pathsep.join(
            [str(REPO_ROOT), *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
        )
        env.update(extra)
        return env

    async def paxctl(self, *argv: str, stdin: str = "", env: dict[str, str] | None = None) -> Run:
        def run() -> Run:
            proc = subprocess.run(
                [sys.executable, "-m", "paxd.client", *argv],
                input=stdin.encode(),
                capture_output=True,
                cwd=self.tmp,
                env=env or self.env(),
                timeout=RUN_TIMEOUT,
                check=False,
            )
            return Run(argv, proc.returncode, proc.stdout.decode(), proc.stderr.decode())

        result: Run = await deferToThread(run)
        # never a traceback, whatever happened
        self.assertNotIn("Traceback", result.stderr, result.describe())
        return result

    async def ok(self, *argv: str, stdin: str = "", env: dict[str, str] | None = None) -> Run:
        result = await self.paxctl(*argv, stdin=stdin, env=env)
        self.assertEqual(result.returncode, 0, result.describe())
        return result

    async def start(self, auth: bool = True, tls: dict[str, str] | None = None) -> Daemon:
        sections: dict[str, Any] = {}
        if auth:
            sections["auth"] = {
                "htpasswd": {
                    "realm": "basic-realm",
                    "path": str(htpasswd_file(self.tmp / "htpasswd")),
                }
            }
        config = registry_config(self.tmp / "data", **sections)
        if tls is not None:
            return await start_tls(self.kind, config, tls, self.tmp, self)
        if self.kind == "paxd":
            return await start_paxd(config, self.tmp, self)
        return await start_distribution(config, self.tmp, self)

    def server(self, daemon: Daemon) -> str:
        return f"http://{daemon.host}"

    async def login(self, daemon: Daemon, user: tuple[str, str] = ADMIN) -> Run:
        return await self.ok(
            "login",
            self.server(daemon),
            "--username",
            user[0],
            "--password-stdin",
            stdin=user[1] + "\n",
        )

    async def catalog(self, daemon: Daemon) -> list[str]:
        resp = await http_request("GET", daemon.url + "/v2/_catalog", headers=basic_auth(*ADMIN))
        self.assertEqual(resp.status, 200, resp.describe())
        repositories: list[str] = resp.json()["repositories"]
        return repositories

    async def tags(self, daemon: Daemon, name: str) -> list[str]:
        resp = await http_request(
            "GET", f"{daemon.url}/v2/{name}/tags/list", headers=basic_auth(*ADMIN)
        )
        if resp.status == 404:
            return []
        tags: list[str] = resp.json().get("tags") or []
        return sorted(tags)


# The mixins are typed as PaxctlCase but are not TestCases themselves (trial would run them).
_Base: Any = PaxctlCase if TYPE_CHECKING else object


# -- TLS daemons -------------------------------------------------------------------------


class TLSDaemon(Daemon):
    """A daemon serving TLS: ready when its port completes a TLS handshake."""

    def _wait_ready_blocking(self, timeout: float) -> None:
        import ssl

        deadline = time.monotonic() + timeout
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise AssertionError(f"{self.kind} exited before it was ready\n{self.logs()}")
            try:
                with (
                    socket.create_connection(("127.0.0.1", self.port), timeout=2) as sock,
                    ctx.wrap_socket(sock),
                ):
                    return
            except OSError:
                time.sleep(0.05)
        raise AssertionError(f"{self.kind} (TLS) was not ready after {timeout} s\n{self.logs()}")


async def start_tls(
    kind: str, config: dict[str, Any], tls: dict[str, str], tmp: Path, case: TestCase
) -> Daemon:
    """Start paxd or distribution with ``http.tls`` on a free loopback port."""
    if kind == "paxd":
        require_paxd()
        from tests.integration.harness import paxd_argv

        argv_for = paxd_argv
    else:
        exe = require_tool("docker-registry")

        def argv_for(path: str) -> list[str]:
            return [exe, "serve", path]

    port = free_port()
    full = json.loads(json.dumps(config))
    full["http"] = {"addr": f"127.0.0.1:{port}", "tls": tls}
    if kind == "distribution":
        full["log"] = {"level": "warn", "accesslog": {"disabled": True}}
    workdir = tmp / f"{kind}-tls-{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("REGISTRY_")}
    env["PYTHONPATH"] = str(REPO_ROOT)
    daemon = TLSDaemon(
        kind=kind,
        argv=argv_for(str(workdir / "config.yml")),
        config=full,
        workdir=workdir,
        port=port,
        ready_path="/",
        env=env,
    )
    case.addCleanup(daemon.stop)
    return await daemon.start()


# -- the round trips, for both registries ----------------------------------------------------


class RoundTripMixin(_Base):
    """Push, list, pull, tag, delete: the same expectations against paxd and distribution."""

    async def test_push_ls_pull_round_trip(self) -> None:
        """push → ls → pull gives back identical directories; a second push uploads nothing."""
        daemon = await self.start()
        await self.login(daemon)
        packs = [copy_sample(name, self.tmp / "src") for name in SAMPLES]
        for pack in packs:
            result = await self.ok("pack", "push", str(pack))
            self.assertIn("pushed ", result.stdout)
            self.assertIn("blob(s) uploaded, 0 already there", result.stdout)
        listing = await self.ok("pack", "ls")
        lines = listing.stdout.splitlines()
        self.assertEqual(lines[0].split()[:3], ["NAME", "LAYER", "VERSIONS"])
        self.assertTrue(
            any(line.split()[:3] == ["cert-manager", "addon", "1.14.4"] for line in lines)
        )
        self.assertTrue(any(line.split()[:3] == ["cni-flannel", "cni", "0.24.2"] for line in lines))
        self.assertTrue(any(line.split()[:3] == ["ubuntu-aws", "os", "22.04"] for line in lines))
        rows = json.loads((await self.ok("pack", "ls", "--output", "json", "--name", "cni")).stdout)
        self.assertEqual([r["name"] for r in rows], ["cni-flannel"])
        self.assertEqual(rows[0]["displayName"], "Flannel")
        for pack in packs:
            out = self.tmp / "pulled" / pack.name
            version = json.loads((pack / "pack.json").read_text())["version"]
            await self.ok("pack", "pull", f"{pack.name}:{version}", str(out))
            self.assertEqual(tree_snapshot(out), tree_snapshot(pack))
            for path in [out, *out.rglob("*")]:
                mode = stat.S_IMODE(path.lstat().st_mode)
                if not path.is_symlink():
                    self.assertIn(mode, (0o644, 0o755), path)
        # a pull without a tag takes the newest version; by digest works too
        again = await self.ok("pack", "push", str(packs[0]))
        self.assertIn("is up to date", again.stdout)
        self.assertIn("nothing uploaded", again.stdout)
        digest = again.stdout.split("(")[1].split(")")[0]
        await self.ok("pack", "pull", f"cert-manager@{digest}", str(self.tmp / "by-digest"))
        await self.ok("pack", "pull", "cert-manager", str(self.tmp / "newest"))
        self.assertEqual(tree_snapshot(self.tmp / "by-digest"), tree_snapshot(packs[0]))
        self.assertEqual(tree_snapshot(self.tmp / "newest"), tree_snapshot(packs[0]))

        def paged() -> tuple[list[str], list[str]]:
            client = RegistryClient(CountingTransport(daemon))
            client.page_size = 1  # one entry per page: the Link headers must be followed
            return client.catalog(), client.tags("ubuntu-aws")

        repositories, tags = await deferToThread(paged)
        self.assertEqual(repositories, sorted(SAMPLES))
        self.assertEqual(sorted(tags), ["22.04", "lts__22.04"])

    async def test_second_push_of_a_copy_uploads_nothing(self) -> None:
        """The same pack from another directory, with other mtimes: same digest, nothing sent."""
        daemon = await self.start()
        await self.login(daemon)
        first = copy_sample("ubuntu-aws", self.tmp / "a")
        await self.ok("pack", "push", str(first))
        second = copy_sample("ubuntu-aws", self.tmp / "b")
        for path in second.rglob("*"):
            os.utime(path, (1000, 1000))
        result = await self.ok("pack", "push", str(second))
        self.assertIn("up to date", result.stdout)

    async def test_force_rules(self) -> None:
        """A changed pack may not replace a tag without --force and --message."""
        daemon = await self.start()
        await self.login(daemon)
        pack = copy_sample("cni-flannel", self.tmp / "src")
        await self.ok("pack", "push", str(pack))
        with (pack / "values.yaml").open("a") as fh:
            fh.write("# tuned\n")
        refused = await self.paxctl("pack", "push", str(pack))
        self.assertEqual(refused.returncode, 1)
        self.assertIn("cni-flannel:0.24.2 already exists with different content", refused.stderr)
        self.assertIn("--force --message", refused.stderr)
        usage = await self.paxctl("pack", "push", str(pack), "--force")
        self.assertEqual(usage.returncode, 2)
        forced = await self.ok("pack", "push", str(pack), "--force", "--message", "tune values")
        self.assertIn("1 blob(s) uploaded", forced.stdout)
        out = self.tmp / "pulled"
        await self.ok("pack", "pull", "cni-flannel:0.24.2", str(out))
        self.assertTrue((out / "values.yaml").read_text().endswith("# tuned\n"))
        raw = await skopeo_inspect_raw(
            self.tmp, f"docker://{daemon.host}/cni-flannel:0.24.2", creds=":".join(ADMIN)
        )
        self.assertEqual(json.loads(raw)["annotations"][MESSAGE_ANNOTATION], "tune values")
        # the same content again, without --force: nothing to do (the message stays)
        again = await self.ok("pack", "push", str(pack))
        self.assertIn("up to date", again.stdout)

    async def test_tags_with_groups(self) -> None:
        daemon = await self.start()
        await self.login(daemon)
        pack = copy_sample("ubuntu-aws", self.tmp / "src")
        pushed = await self.ok("pack", "push", str(pack))
        self.assertIn("ubuntu-aws:22.04, ubuntu-aws:lts__22.04", pushed.stdout)
        await self.ok("pack", "tag", "add", "ubuntu-aws:22.04", "stable", "--group", "edge")
        self.assertEqual(
            await self.tags(daemon, "ubuntu-aws"), ["22.04", "edge__stable", "lts__22.04"]
        )
        rows = json.loads((await self.ok("pack", "ls", "-o", "json")).stdout)
        self.assertEqual(rows[0]["versions"], ["22.04"])
        self.assertEqual(sorted(rows[0]["tags"]), ["22.04", "edge__stable", "lts__22.04"])
        await self.ok("pack", "pull", "ubuntu-aws:edge__stable", str(self.tmp / "stable"))
        self.assertEqual(tree_snapshot(self.tmp / "stable"), tree_snapshot(pack))
        deleted = await self.paxctl("pack", "tag", "delete", "ubuntu-aws:edge__stable")
        if self.kind == "distribution":
            # distribution 2.8 deletes manifests by digest only
            self.assertEqual(deleted.returncode, 1)
            self.assertIn("deletes manifests by digest only", deleted.stderr)
        else:
            self.assertEqual(deleted.returncode, 0, deleted.describe())
            self.assertEqual(await self.tags(daemon, "ubuntu-aws"), ["22.04", "lts__22.04"])
        missing = await self.paxctl("pack", "tag", "delete", "ubuntu-aws:nope")
        self.assertEqual(missing.returncode, 1)
        self.assertIn("MANIFEST_UNKNOWN", missing.stderr)
        await self.ok("pack", "rm", "ubuntu-aws:22.04")
        self.assertEqual(await self.tags(daemon, "ubuntu-aws"), [])
        gone = await self.paxctl("pack", "pull", "ubuntu-aws:22.04", str(self.tmp / "gone"))
        self.assertEqual(gone.returncode, 1)
        self.assertTrue(gone.stderr.startswith("paxctl: MANIFEST_UNKNOWN: "), gone.stderr)
        self.assertFalse((self.tmp / "gone").exists())
        listing = await self.ok("pack", "ls")
        self.assertNotIn("ubuntu-aws", listing.stdout)

    async def test_login(self) -> None:
        """A wrong password fails clearly and stores nothing; the right one stores 0600."""
        daemon = await self.start()
        # ~/.spectro, the vendor CLI's home (paxctl 0.x wrote ~/.config/paxctl: still read)
        config = self.home / ".spectro" / "config.json"
        wrong = await self.paxctl(
            "login", daemon.host, "--insecure", "-u", "admin", "--password-stdin", stdin="nope\n"
        )
        self.assertEqual(wrong.returncode, 1)
        self.assertEqual(
            wrong.stderr.strip(),
            f"paxctl: UNAUTHORIZED: login to {daemon.host} failed: wrong username or password"
            " for 'admin'",
        )
        self.assertFalse(config.exists())
        good = await self.ok(
            "login",
            daemon.host,
            "--insecure",
            "-u",
            "admin",
            "--password-stdin",
            stdin=ADMIN[1] + "\n",
        )
        self.assertEqual(good.stdout, "Login Succeeded\n")
        self.assertIn("stored unencrypted", good.stderr)
        self.assertEqual(stat.S_IMODE(config.stat().st_mode), 0o600)
        data = json.loads(config.read_text())
        self.assertEqual(data["defaultRegistry"], daemon.host)
        entry = data["auths"][daemon.host]
        self.assertEqual(Credentials.decode(entry["auth"]), Credentials(*ADMIN))
        self.assertTrue(entry["insecure"])
        # plain HTTP found once, remembered
        self.assertTrue(entry["plainHttp"])
        await self.ok("pack", "ls")
        await self.ok("logout")
        self.assertNotIn(daemon.host, json.loads(config.read_text())["auths"])
        anonymous = await self.paxctl("pack", "ls", "-r", self.server(daemon))
        self.assertEqual(anonymous.returncode, 1)
        self.assertIn(f"UNAUTHORIZED: {daemon.host} requires credentials", anonymous.stderr)

    async def test_vendor_config_is_read(self) -> None:
        """Credentials in ~/.spectro/config.json work without a paxctl login."""
        daemon = await self.start()
        vendor = self.home / ".spectro" / "config.json"
        vendor.parent.mkdir()
        vendor.write_text(
            json.dumps(
                {
                    "auths": {
                        daemon.host: {"auth": Credentials(*ADMIN).encode(), "insecure": True}
                    },
                    "defaultRegistry": daemon.host,
                }
            )
        )
        await self.ok("pack", "push", str(copy_sample("cni-flannel", self.tmp)))

    async def test_skopeo_and_curl_see_the_pack(self) -> None:
        daemon = await self.start()
        await self.login(daemon)
        pack = copy_sample("cert-manager", self.tmp / "src")
        pushed = await self.ok("pack", "push", str(pack))
        digest = next(w for w in pushed.stdout.split() if w.startswith("sha256:"))
        raw = await skopeo_inspect_raw(
            self.tmp, f"docker://{daemon.host}/cert-manager:1.14.4", creds=":".join(ADMIN)
        )
        self.assertEqual("sha256:" + hashlib.sha256(raw).hexdigest(), digest)
        manifest = json.loads(raw)
        logo = manifest["layers"][0]
        self.assertEqual(logo["mediaType"], "image/png")
        api = "v1" if self.kind == "paxd" else "v2"
        resp = await curl(
            self.tmp,
            f"{daemon.url}/{api}/cert-manager/blobs/{logo['digest']}?type=image/png",
            "-u",
            ":".join(ADMIN),
        )
        self.assertEqual(resp.status, 200, resp.describe())
        self.assertEqual(resp.body, (pack / "logo.png").read_bytes())
        if self.kind == "paxd":
            self.assertEqual(resp.header("content-type"), "image/png")

    async def test_bad_packs_upload_nothing(self) -> None:
        daemon = await self.start()
        await self.login(daemon)

        def no_pack_json(p: Path) -> None:
            (p / "pack.json").unlink()

        def not_json(p: Path) -> None:
            (p / "pack.json").write_text("{")

        def no_logo(p: Path) -> None:
            (p / "logo.png").unlink()

        def bad_layer(p: Path) -> None:
            data = json.loads((p / "pack.json").read_text())
            data["layer"] = "middleware"
            (p / "pack.json").write_text(json.dumps(data))

        def escaping_chart(p: Path) -> None:
            shutil.copy(p / "charts" / "cert-manager-v1.14.4.tgz", p.parent / "x.tgz")
            data = json.loads((p / "pack.json").read_text())
            data["charts"] = ["../x.tgz"]
            (p / "pack.json").write_text(json.dumps(data))

        def symlink_out(p: Path) -> None:
            (p.parent / "secret.txt").write_text("do not ship")
            os.symlink("../../secret.txt", p / "charts" / "secret.txt")

        cases = {
            "no pack.json": (no_pack_json, "pack.json: missing"),
            "not JSON": (not_json, "pack.json: not valid JSON"),
            "no logo": (no_logo, "logo.png: missing"),
            "bad layer": (bad_layer, "pack.json: layer: 'middleware' is not one of"),
            "escaping chart": (
                escaping_chart,
                "pack.json: charts[0]: '../x.tgz' is outside the pack",
            ),
            "symlink out": (symlink_out, "charts/secret.txt: symlink points outside the pack"),
        }
        for i, (label, (breaker, message)) in enumerate(cases.items()):
            pack = copy_sample("cert-manager", self.tmp / f"case{i}")
            breaker(pack)
            result = await self.paxctl("pack", "push", str(pack))
            self.assertEqual(result.returncode, 1, label)
            self.assertIn(message, result.stderr, label)
            self.assertIn("nothing pushed", result.stderr, label)
        self.assertEqual(await self.catalog(daemon), [])

    async def test_check(self) -> None:
        daemon = await self.start()
        await self.login(daemon)
        report = await self.ok("check", daemon.host)
        lines = report.stdout.splitlines()
        for title in ("DNS", "TCP", "API", "credentials", "read", "write"):
            self.assertTrue(
                any(line.startswith("ok") and line.split()[1] == title for line in lines),
                (title, report.stdout),
            )
        self.assertIn("plain HTTP", report.stdout)
        bad = await self.paxctl(
            "check", daemon.host, env=self.env(PAXCTL_USERNAME="admin", PAXCTL_PASSWORD="x")
        )
        self.assertEqual(bad.returncode, 1)
        self.assertIn("FAIL  credentials", bad.stdout)
        closed = await self.paxctl("check", f"127.0.0.1:{free_port()}")
        self.assertEqual(closed.returncode, 1)
        self.assertIn("refused the connection", closed.stdout)

    async def test_chunked_upload_resumes(self) -> None:
        """A large blob goes in chunks; interrupted after one, the next push sends only the rest."""
        daemon = await self.start()
        pack = copy_sample("cni-flannel", self.tmp / "src")
        # incompressible, so that the archive is over the 16 MiB monolithic limit
        (pack / "manifests" / "blob.bin").write_bytes(os.urandom(2 * CHUNK_SIZE + 12345))
        state = self.tmp / "state"

        def scenario() -> tuple[list[int], list[int], int, bool]:
            pk, problems = inspect_pack(pack)
            assert pk is not None, problems
            with build_artifact(pk) as art:
                blob = art.layers[-1]
                assert blob.size > 2 * CHUNK_SIZE
                first = CountingTransport(daemon, interrupt_after=1)
                client = RegistryClient(first, state_dir=state)
                try:
                    client.upload_blob("cni-flannel", blob)
                except Interrupted:
                    pass
                else:
                    raise AssertionError("the upload was not interrupted")
                first.close()
                second = CountingTransport(daemon)
                client = RegistryClient(second, state_dir=state)
                client.upload_blob("cni-flannel", blob)
                exists = client.blob_exists("cni-flannel", blob.digest)
                return first.patches, second.patches, blob.size, exists

        first, second, size, exists = await deferToThread(scenario)
        self.assertEqual(first, [CHUNK_SIZE])
        # resumed: only what the registry did not have yet, in chunks of at most 8 MiB
        self.assertEqual(sum(second), size - CHUNK_SIZE)
        self.assertTrue(all(n <= CHUNK_SIZE for n in second))
        self.assertTrue(exists)
        self.assertEqual(list(state.glob("*.json")), [])

    async def test_stale_resume_state_restarts(self) -> None:
        """A saved upload the registry forgot: the push starts over and succeeds."""
        daemon = await self.start()
        pack = copy_sample("cni-flannel", self.tmp / "src")
        (pack / "manifests" / "blob.bin").write_bytes(os.urandom(CHUNK_SIZE * 2 + 1))
        state = self.tmp / "state"

        def scenario() -> bool:
            pk, _ = inspect_pack(pack)
            assert pk is not None
            with build_artifact(pk) as art:
                blob = art.layers[-1]
                client = RegistryClient(CountingTransport(daemon), state_dir=state)
                client._save_state(
                    "cni-flannel",
                    blob.digest,
                    client.t.url(f"{client.ping()}/cni-flannel/blobs/uploads/0000-gone"),
                )
                client.upload_blob("cni-flannel", blob)
                return client.blob_exists("cni-flannel", blob.digest)

        self.assertTrue(await deferToThread(scenario))


class Interrupted(Exception):
    """Stands for a push killed in the middle."""


class CountingTransport(Transport):
    """The real transport, counting PATCH bodies, and failing after *interrupt_after* of them."""

    def __init__(self, daemon: Daemon, interrupt_after: int | None = None) -> None:
        super().__init__(parse_server(f"http://{daemon.host}"), credentials=Credentials(*ADMIN))
        self.patches: list[int] = []
        self.interrupt_after = interrupt_after

    def request(self, method: str, target: str, **kwargs: Any) -> Response:
        if method == "PATCH":
            if self.interrupt_after is not None and len(self.patches) >= self.interrupt_after:
                raise Interrupted()
            body: Body = kwargs.get("body")
            self.patches.append(len(body) if isinstance(body, bytes) else kwargs["length"])
        return super().request(method, target, **kwargs)


class PaxdRoundTripTests(RoundTripMixin, PaxctlCase):
    kind = "paxd"

    async def test_read_only_user(self) -> None:
        """paxd's read-only users can pull and list but not push; check says so."""
        daemon = await self.start()
        await self.login(daemon)
        await self.ok("pack", "push", str(copy_sample("cni-flannel", self.tmp / "src")))
        await self.ok("logout")
        await self.login(daemon, READER)
        await self.ok("pack", "pull", "cni-flannel:0.24.2", str(self.tmp / "pulled"))
        denied = await self.paxctl("pack", "push", str(copy_sample("cert-manager", self.tmp / "b")))
        self.assertEqual(denied.returncode, 1)
        self.assertTrue(denied.stderr.startswith("paxctl: DENIED: "), denied.stderr)
        report = await self.ok("check", daemon.host)
        self.assertIn("read-only", report.stdout)


class DistributionRoundTripTests(RoundTripMixin, PaxctlCase):
    kind = "distribution"


# -- TLS: the x509 diagnoses ---------------------------------------------------------------


class TLSMixin(_Base):
    async def start_with_cert(self, ips: tuple[str, ...] = ()) -> tuple[Daemon, Path]:
        ca = make_ca("paxctl test CA")
        leaf = make_server_cert(ca, dns=("localhost",), ips=ips)
        crt, key = leaf.write(self.tmp / "tls", "server")
        ca_file = self.tmp / "tls" / "ca.crt"
        ca_file.write_bytes(ca.cert_pem())
        daemon = await self.start(tls={"certificate": str(crt), "key": str(key)})
        return daemon, ca_file

    async def login_to(self, server: str, *extra: str) -> Run:
        return await self.paxctl(
            "login", server, "-u", ADMIN[0], "--password-stdin", *extra, stdin=ADMIN[1] + "\n"
        )

    async def test_x509_diagnoses(self) -> None:
        daemon, ca_file = await self.start_with_cert()
        server = f"127.0.0.1:{daemon.port}"
        unknown = await self.login_to(server)
        self.assertEqual(unknown.returncode, 1, unknown.describe())
        self.assertIn(
            "x509: certificate signed by unknown authority (issued by CN=paxctl test CA)",
            unknown.stderr,
        )
        self.assertIn(f"/etc/spectro/certs.d/{server}/ca.crt", unknown.stderr)
        self.assertIn("--ca-cert", unknown.stderr)
        no_ip_san = await self.login_to(server, "--ca-cert", str(ca_file))
        self.assertEqual(no_ip_san.returncode, 1)
        self.assertEqual(
            no_ip_san.stderr.strip(),
            "paxctl: x509: certificate has no IP SAN for 127.0.0.1: regenerate it with an IP SAN"
            " (paxctl cert self-signed --ip 127.0.0.1) or use a DNS name",
        )
        insecure = await self.login_to(server, "--insecure")
        self.assertEqual(insecure.returncode, 0, insecure.describe())
        # by its DNS name and with the CA, it verifies; the CA is kept for later commands
        by_name = f"localhost:{daemon.port}"
        await self.ok(
            "login",
            by_name,
            "-u",
            ADMIN[0],
            "--password-stdin",
            "--ca-cert",
            str(ca_file),
            "--default",
            stdin=ADMIN[1] + "\n",
        )
        self.assertTrue((self.home / ".spectro/certs.d" / by_name / "ca.crt").is_file())
        await self.ok("pack", "push", str(copy_sample("cni-flannel", self.tmp)))
        report = await self.paxctl("check", server, "--ca-cert", str(ca_file))
        self.assertEqual(report.returncode, 1)
        self.assertIn("FAIL  name", report.stdout)
        self.assertIn("paxctl cert self-signed --ip 127.0.0.1", report.stdout)
        good = await self.ok("check", by_name)
        self.assertIn("ok    trust", good.stdout)
        self.assertIn("ok    name", good.stdout)

    async def test_ip_san(self) -> None:
        daemon, ca_file = await self.start_with_cert(ips=("127.0.0.1",))
        await self.ok(
            "login",
            f"https://127.0.0.1:{daemon.port}",
            "-u",
            ADMIN[0],
            "--password-stdin",
            "--ca-cert",
            str(ca_file),
            stdin=ADMIN[1] + "\n",
        )

    async def test_plain_http_client_to_tls(self) -> None:
        """http:// against a TLS port fails with a message, not a hang or a traceback."""
        daemon, _ = await self.start_with_cert()
        result = await self.login_to(f"http://127.0.0.1:{daemon.port}")
        self.assertEqual(result.returncode, 1)
        self.assertTrue(result.stderr.startswith("paxctl: "), result.stderr)


class PaxdTLSTests(TLSMixin, PaxctlCase):
    kind = "paxd"


class DistributionTLSTests(TLSMixin, PaxctlCase):
    kind = "distribution"
