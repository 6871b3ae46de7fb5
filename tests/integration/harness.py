"""Integration test harness: real daemons and real clients on loopback.

The peers are the real thing: paxd itself (``python -m twisted paxd``),
Debian's ``docker-registry`` (Docker distribution 2.8.2, the reference
behaviour), ``skopeo`` and ``curl``.  Each daemon runs as a child process on
an ephemeral loopback port, with its configuration, stdout and stderr in a
directory of the test's temporary tree so a failure message can quote them.

Everything that blocks (spawning, waiting for a process, HTTP, running a
tool) runs in the reactor's thread pool through ``deferToThread``: the tests
are ``twisted.trial.unittest.TestCase`` coroutines on the real reactor, and
the reactor never blocks.  HTTP is spoken with ``http.client`` in a thread
rather than with treq so that no client socket outlives a test (trial would
call the reactor dirty).
"""

from __future__ import annotations

import gzip
import hashlib
import http.client
import io
import itertools
import json
import os
import random
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tarfile
import time
import urllib.parse
from base64 import b64encode
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any
from unittest import SkipTest

import attrs
import yaml
from twisted.internet.defer import Deferred
from twisted.internet.threads import deferToThread

#: the checkout whose ``paxd`` and ``twisted/plugins`` the daemon is started from
REPO_ROOT = Path(__file__).resolve().parents[2]
#: how long a daemon may take to answer its readiness probe
READY_TIMEOUT = 15.0
#: how long a daemon may take to exit after SIGTERM before it is killed
STOP_TIMEOUT = 10.0
#: default timeout of one client tool run (skopeo, curl)
TOOL_TIMEOUT = 60.0

MiB = 1024 * 1024

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"


# --- tools and ports -----------------------------------------------------------


def in_ci() -> bool:
    """True when running under CI, where a missing peer is a failure, not a skip."""
    return os.environ.get("CI") == "true"


class MissingTool(AssertionError):
    """A peer the integration tests need is missing under CI (so the run must fail)."""


def require_tool(name: str) -> str:
    """The absolute path of the executable ``name``.

    :raises SkipTest: if it is not installed (developer machine).
    :raises MissingTool: if it is not installed and ``CI=true``: under CI a
        missing tool would otherwise silently turn the interop suite into skips.
    """
    path = shutil.which(name)
    if path is None:
        message = f"{name!r} is not installed (on Debian: apt-get install {name})"
        if in_ci():
            raise MissingTool(message)
        raise SkipTest(message)
    return path


def free_port() -> int:
    """An ephemeral loopback TCP port that was free a moment ago.

    The port is released before the daemon binds it, so another process could
    take it in between; on a test machine that race is rare enough to accept.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def paxd_argv(config_path: str) -> list[str]:
    """How paxd is started: the ``twist`` runner (``python -m twisted``) and the paxd plugin.

    ``twist`` always runs in the foreground and writes no pid file, which is
    what ``twistd -n --pidfile=`` would give.
    """
    return [sys.executable, "-m", "twisted", "--log-format=text", "paxd", "--config", config_path]


_paxd_problem: list[str | None] = []


def require_paxd() -> None:
    """Skip (or, under CI, fail) when the paxd daemon cannot be started yet.

    Checked once per test run by asking the plugin for its help text, which
    imports ``paxd.tap`` and everything it wires.
    """
    if not _paxd_problem:
        proc = subprocess.run(
            [*paxd_argv("/nonexistent")[:-2], "--help"],
            capture_output=True,
            cwd=REPO_ROOT,
            env=_child_env(),
            timeout=60,
            check=False,
        )
        problem = None
        if proc.returncode != 0:
            problem = (proc.stdout + proc.stderr).decode(errors="replace")[-2000:]
        _paxd_problem.append(problem)
    problem = _paxd_problem[0]
    if problem is not None:
        message = f"paxd cannot be started: {problem}"
        if in_ci():
            raise MissingTool(message)
        raise SkipTest(message)


def _child_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """A daemon's environment: ours, minus REGISTRY_* overrides, with the checkout importable."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("REGISTRY_")}
    paths = [str(REPO_ROOT), *filter(None, env.get("PYTHONPATH", "").split(os.pathsep))]
    env["PYTHONPATH"] = os.pathsep.join(paths)
    env.update(extra or {})
    return env


# --- HTTP ----------------------------------------------------------------------


@attrs.frozen
class HTTPResponse:
    """One HTTP response, read whole.

    :ivar headers: header names lower-cased; repeated headers joined by ``", "``.
    """

    status: int
    headers: Mapping[str, str]
    body: bytes

    def header(self, name: str) -> str | None:
        """The value of a header, or None."""
        return self.headers.get(name.lower())

    def json(self) -> Any:
        """The body parsed as JSON."""
        return json.loads(self.body)

    def error_codes(self) -> list[str]:
        """The ``code`` of each error of a distribution error body; [] if the body is not one."""
        try:
            doc = json.loads(self.body)
        except ValueError:
            return []
        if not isinstance(doc, dict) or not isinstance(doc.get("errors"), list):
            return []
        return [str(e.get("code")) for e in doc["errors"] if isinstance(e, dict)]

    def describe(self) -> str:
        """For assertion messages."""
        return f"{self.status} {dict(self.headers)!r} {self.body[:500]!r}"


def basic_auth(user: str, password: str) -> dict[str, str]:
    """An ``Authorization`` header for HTTP basic auth."""
    token = b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def _request_blocking(
    method: str,
    url: str,
    headers: Mapping[str, str] | None,
    body: bytes | None,
    timeout: float,
) -> HTTPResponse:
    parts = urllib.parse.urlsplit(url)
    assert parts.scheme == "http", url
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=timeout)
    try:
        target = parts.path or "/"
        if parts.query:
            target += "?" + parts.query
        conn.request(method, target, body=body, headers=dict(headers or {}))
        resp = conn.getresponse()
        try:
            data = resp.read()
        except http.client.IncompleteRead as e:
            # distribution's 416 keeps the blob's Content-Length over a short
            # plain-text body: report what arrived, let the test judge it
            data = e.partial
        joined: dict[str, str] = {}
        for name, value in resp.getheaders():
            key = name.lower()
            joined[key] = f"{joined[key]}, {value}" if key in joined else value
        return HTTPResponse(resp.status, joined, data)
    finally:
        conn.close()


def http_request(
    method: str,
    url: str,
    *,
    headers: Mapping[str, str] | None = None,
    body: bytes | None = None,
    timeout: float = 30.0,
) -> Deferred[HTTPResponse]:
    """Send one request on a fresh connection (in a thread) and read the whole response.

    A ``body`` of ``b""`` sends ``Content-Length: 0``; None sends no body.
    """
    return deferToThread(_request_blocking, method, url, headers, body, timeout)


def absolute(base: str, location: str) -> str:
    """A ``Location`` header made absolute against the URL it answered."""
    return urllib.parse.urljoin(base, location)


def with_query(url: str, **params: str) -> str:
    """``url`` with query parameters added (kept after any it already has, such as ``_state``)."""
    sep = "&" if urllib.parse.urlsplit(url).query else "?"
    return url + sep + urllib.parse.urlencode(params)


# --- tools ---------------------------------------------------------------------


@attrs.frozen
class ToolResult:
    """The outcome of one run of an external tool."""

    argv: tuple[str, ...]
    returncode: int
    stdout: bytes
    stderr: bytes

    def describe(self) -> str:
        """For assertion messages."""
        return (
            f"{' '.join(self.argv)} exited {self.returncode}\n"
            f"stdout: {self.stdout[-2000:].decode(errors='replace')}\n"
            f"stderr: {self.stderr[-4000:].decode(errors='replace')}"
        )


class ToolFailed(AssertionError):
    """A tool that was expected to succeed did not."""


def _run_blocking(
    argv: tuple[str, ...], timeout: float, env: Mapping[str, str] | None
) -> ToolResult:
    proc = subprocess.run(
        argv,
        capture_output=True,
        timeout=timeout,
        check=False,
        env=dict(env) if env is not None else None,
        stdin=subprocess.DEVNULL,
    )
    return ToolResult(argv, proc.returncode, proc.stdout, proc.stderr)


def run_tool(
    argv: Iterable[str],
    *,
    check: bool = True,
    timeout: float = TOOL_TIMEOUT,
    env: Mapping[str, str] | None = None,
) -> Deferred[ToolResult]:
    """Run a tool to completion in a thread.

    :param check: fail with :class:`ToolFailed` (quoting its output) on a
        non-zero exit status.
    """
    args = tuple(argv)

    def checked(result: ToolResult) -> ToolResult:
        if check and result.returncode != 0:
            raise ToolFailed(result.describe())
        return result

    d = deferToThread(_run_blocking, args, timeout, env)
    d.addCallback(checked)
    return d


def skopeo_base(workdir: str | os.PathLike[str]) -> list[str]:
    """``skopeo`` with its own accept-anything policy and an empty credentials file.

    Nothing from the user's ``~/.docker`` or ``/etc/containers`` can change a
    test's outcome.
    """
    skopeo = require_tool("skopeo")
    work = Path(workdir)
    work.mkdir(parents=True, exist_ok=True)
    policy = work / "skopeo-policy.json"
    policy.write_text(json.dumps({"default": [{"type": "insecureAcceptAnything"}]}))
    authfile = work / "skopeo-auth.json"
    if not authfile.exists():
        authfile.write_text('{"auths": {}}')
    return [skopeo, "--policy", str(policy)]


def skopeo_copy(
    workdir: str | os.PathLike[str],
    src: str,
    dest: str,
    *,
    src_creds: str | None = None,
    dest_creds: str | None = None,
    check: bool = True,
) -> Deferred[ToolResult]:
    """``skopeo copy`` between ``oci:`` layouts and plain-HTTP ``docker://`` registries."""
    argv = [*skopeo_base(workdir), "copy", "--retry-times=0"]
    authfile = str(Path(workdir) / "skopeo-auth.json")
    if src.startswith("docker://"):
        argv += ["--src-tls-verify=false", "--src-authfile", authfile]
        if src_creds is not None:
            argv += ["--src-creds", src_creds]
    if dest.startswith("docker://"):
        argv += ["--dest-tls-verify=false", "--dest-authfile", authfile]
        if dest_creds is not None:
            argv += ["--dest-creds", dest_creds]
    return run_tool([*argv, src, dest], check=check)


def skopeo_inspect_raw(
    workdir: str | os.PathLike[str], image: str, *, creds: str | None = None
) -> Deferred[bytes]:
    """The exact manifest bytes ``skopeo inspect --raw`` reads from ``docker://…``."""
    argv = [*skopeo_base(workdir), "inspect", "--raw", "--tls-verify=false"]
    argv += ["--authfile", str(Path(workdir) / "skopeo-auth.json")]
    if creds is not None:
        argv += ["--creds", creds]

    def stdout(result: ToolResult) -> bytes:
        return result.stdout

    return run_tool([*argv, image]).addCallback(stdout)


_curl_counter = itertools.count()


def curl(
    workdir: str | os.PathLike[str],
    url: str,
    *args: str,
    output: str | os.PathLike[str] | None = None,
    timeout: float = TOOL_TIMEOUT,
) -> Deferred[HTTPResponse]:
    """Run the real ``curl`` on ``url`` (plus any ``args``) and parse what it received.

    The body and headers go to files in ``workdir`` (so a large download is
    never held by curl's pipe); the body is read back only if it is small.
    With ``output`` the body is left in that file and not read at all.
    """
    exe = require_tool("curl")
    n = next(_curl_counter)
    work = Path(workdir)
    work.mkdir(parents=True, exist_ok=True)
    body_path = Path(output) if output is not None else work / f"curl-{n}.body"
    head_path = work / f"curl-{n}.head"
    argv = [exe, "-s", "-S", "-o", str(body_path), "-D", str(head_path), *args, url]

    def parse(result: ToolResult) -> HTTPResponse:
        if result.returncode != 0:
            raise ToolFailed(result.describe())
        # with redirects or 100-continue several header blocks are written; keep the last
        blocks = [b for b in head_path.read_bytes().split(b"\r\n\r\n") if b.strip()]
        lines = blocks[-1].decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers: dict[str, str] = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            key = name.strip().lower()
            value = value.strip()
            headers[key] = f"{headers[key]}, {value}" if key in headers else value
        body = b""
        if output is None and body_path.exists():
            body = body_path.read_bytes() if body_path.stat().st_size <= 16 * MiB else b""
            body_path.unlink()
        head_path.unlink()
        return HTTPResponse(status, headers, body)

    return run_tool(argv, check=False, timeout=timeout).addCallback(parse)


# --- daemons -------------------------------------------------------------------


_daemon_counter = itertools.count()


@attrs.define
class Daemon:
    """A registry daemon running as a child process on a loopback port.

    :ivar kind: ``"paxd"`` or ``"distribution"``.
    :ivar workdir: holds ``config.yml``, ``stdout.log`` and ``stderr.log``.
    """

    kind: str
    argv: list[str]
    config: dict[str, Any]
    workdir: Path
    port: int
    ready_path: str
    env: dict[str, str]
    process: subprocess.Popen[bytes] | None = None
    returncode: int | None = None

    @property
    def host(self) -> str:
        """``127.0.0.1:PORT``, as skopeo's ``docker://`` references want it."""
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT``."""
        return f"http://{self.host}"

    @property
    def pid(self) -> int:
        """The process id of the running daemon."""
        assert self.process is not None, "daemon not running"
        return self.process.pid

    @property
    def running(self) -> bool:
        """True while the process has not exited."""
        return self.process is not None and self.process.poll() is None

    def logs(self, limit: int = 6000) -> str:
        """The tail of the daemon's stdout and stderr, for failure messages."""
        out = []
        for name in ("stdout.log", "stderr.log"):
            path = self.workdir / name
            text = path.read_bytes()[-limit:].decode(errors="replace") if path.exists() else ""
            out.append(f"--- {self.kind} {name} ({path}) ---\n{text}")
        return "\n".join(out)

    def memory_kib(self) -> dict[str, int]:
        """``VmRSS``, ``VmHWM`` (peak RSS) and friends from ``/proc/<pid>/status``, in KiB."""
        values = {}
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            name, _, rest = line.partition(":")
            if name.startswith("Vm"):
                values[name] = int(rest.split()[0])
        return values

    def _spawn(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        config_path = self.workdir / "config.yml"
        config_path.write_text(yaml.safe_dump(self.config, sort_keys=False))
        with (
            open(self.workdir / "stdout.log", "ab") as out,
            open(self.workdir / "stderr.log", "ab") as err,
        ):
            self.process = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                cwd=self.workdir,
                env=self.env,
                # its own process group, so a Ctrl-C of the test run is not delivered twice
                start_new_session=True,
            )
        self.returncode = None

    def _wait_ready_blocking(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        last = "no answer"
        while time.monotonic() < deadline:
            assert self.process is not None
            code = self.process.poll()
            if code is not None:
                self.returncode = code
                raise AssertionError(
                    f"{self.kind} exited with status {code} before it was ready\n{self.logs()}"
                )
            try:
                resp = _request_blocking("GET", self.url + self.ready_path, None, None, 2.0)
            except OSError as e:
                last = repr(e)
            else:
                # 401: the daemon is up and guards everything but its health check
                if resp.status in (200, 401):
                    return
                last = resp.describe()
            time.sleep(0.05)
        raise AssertionError(
            f"{self.kind} was not ready after {timeout} s (last: {last})\n{self.logs()}"
        )

    def start(self, timeout: float = READY_TIMEOUT) -> Deferred[Daemon]:
        """Spawn the process (again) and wait until it answers its readiness probe."""
        assert not self.running, "already running"
        self._spawn()

        def ready(_: None) -> Daemon:
            return self

        return deferToThread(self._wait_ready_blocking, timeout).addCallback(ready)

    def _wait_blocking(self, timeout: float) -> int:
        assert self.process is not None
        try:
            code = self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            code = self.process.wait()
        self.returncode = code
        return code

    def stop(self) -> Deferred[int | None]:
        """SIGTERM, then SIGKILL after :data:`STOP_TIMEOUT`; fires with the exit status.

        Safe to call when the daemon has already exited (fires with its status).
        """
        if self.process is None:
            return deferToThread(lambda: None)
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return deferToThread(self._wait_blocking, STOP_TIMEOUT)

    def kill(self) -> Deferred[int | None]:
        """``kill -9``: the daemon gets no chance to clean up."""
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
        return deferToThread(self._wait_blocking, STOP_TIMEOUT)


def _start(
    kind: str,
    argv_for: Callable[[str], list[str]],
    config: Mapping[str, Any],
    tmpdir: str | os.PathLike[str],
    ready_path: str,
    case: Any,
    env: Mapping[str, str] | None,
) -> Deferred[Daemon]:
    full = _with_defaults(kind, config)
    port = int(full["http"]["addr"].rsplit(":", 1)[1])
    workdir = Path(tmpdir) / f"{kind}-{next(_daemon_counter)}"
    daemon = Daemon(
        kind=kind,
        argv=argv_for(str(workdir / "config.yml")),
        config=full,
        workdir=workdir,
        port=port,
        ready_path=ready_path,
        env=_child_env(env),
    )
    if case is not None:
        case.addCleanup(daemon.stop)
    return daemon.start()


def _with_defaults(kind: str, config: Mapping[str, Any]) -> dict[str, Any]:
    """``config`` with ``version``, a free loopback ``http.addr`` and quiet logs filled in."""
    full: dict[str, Any] = json.loads(json.dumps(dict(config)))  # deep copy, plain types
    full.setdefault("version", 0.1)
    http = full.setdefault("http", {})
    http.setdefault("addr", f"127.0.0.1:{free_port()}")
    if "storage" not in full:
        raise ValueError("the configuration needs a storage section")
    if kind == "distribution":
        log = full.setdefault("log", {})
        log.setdefault("level", "warn")
        log.setdefault("accesslog", {"disabled": True})
    return full


def start_paxd(
    config: Mapping[str, Any],
    tmpdir: str | os.PathLike[str],
    case: Any = None,
    *,
    env: Mapping[str, str] | None = None,
    ready_path: str = "/health",
) -> Deferred[Daemon]:
    """Start paxd with ``config`` (distribution's YAML, as a dict) and wait for ``GET /health``.

    ``http.addr`` defaults to a free loopback port.  With ``case`` (a trial
    TestCase) the daemon is stopped in the test's cleanup.  Skips (or fails
    under CI) when paxd cannot be started at all.  *ready_path*: another
    readiness probe (``/v2/`` for a daemon whose storage is down on purpose).
    """
    if os.environ.get("PAXD_INTEROP_STANDIN") == "distribution":
        # proves the harness and the tests' expectations against the reference
        # alone; tests of paxd-only behaviour skip themselves (Daemon.kind)
        return start_distribution(config, tmpdir, case, env=env)
    require_paxd()
    return _start("paxd", paxd_argv, config, tmpdir, ready_path, case, env)


def start_distribution(
    config: Mapping[str, Any],
    tmpdir: str | os.PathLike[str],
    case: Any = None,
    *,
    env: Mapping[str, str] | None = None,
) -> Deferred[Daemon]:
    """Start Debian's ``docker-registry serve CONFIG`` and wait for ``GET /v2/``.

    Distribution 2.8 has no ``/health`` on its main listener, so readiness is
    ``/v2/`` answering 200 (or 401 with auth).  Its logs go to the workdir.
    """
    exe = require_tool("docker-registry")
    return _start(
        "distribution", lambda path: [exe, "serve", path], config, tmpdir, "/v2/", case, env
    )


def registry_config(root: str | os.PathLike[str], **sections: Any) -> dict[str, Any]:
    """A configuration: filesystem storage at ``root``, deletes enabled, plus ``sections``."""
    config: dict[str, Any] = {
        "version": 0.1,
        "storage": {"filesystem": {"rootdirectory": str(root)}, "delete": {"enabled": True}},
    }
    config.update(sections)
    return config


# --- OCI image layouts -----------------------------------------------------------


@attrs.frozen
class OCIImage:
    """An image written by :func:`build_oci_layout`."""

    path: Path
    tag: str
    manifest: bytes
    manifest_digest: str
    config_digest: str
    layer_digest: str
    layer_size: int

    @property
    def ref(self) -> str:
        """The skopeo reference of this image: ``oci:PATH:TAG``."""
        return f"oci:{self.path}:{self.tag}"

    def blob_digests(self) -> set[str]:
        """The manifest, the config and the layer."""
        return {self.manifest_digest, self.config_digest, self.layer_digest}


def sha256_digest(data: bytes) -> str:
    """``sha256:<hex>`` of ``data``."""
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _canonical_json(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":")).encode()


def _write_blob(layout: Path, data: bytes) -> str:
    digest = sha256_digest(data)
    path = layout / "blobs" / "sha256" / digest.split(":", 1)[1]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return digest


def make_layer(seed: int = 1, big_size: int = 5 * MiB) -> tuple[bytes, bytes]:
    """A deterministic image layer: ``(uncompressed tar, gzip'd tar)``.

    A few small files and one ``big_size`` file of seeded random bytes (so it
    does not compress, and moves in many chunks).
    """
    rng = random.Random(seed)
    files: list[tuple[str, bytes]] = [
        ("etc/paxd-demo/hello.txt", f"hello from paxd's interop test (seed {seed})\n".encode()),
        ("etc/paxd-demo/config.json", _canonical_json({"seed": seed, "n": list(range(5))})),
        ("usr/share/paxd-demo/random.bin", rng.randbytes(big_size)),
    ]
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        dirs = sorted({str(Path(name).parent) for name, _ in files})
        for d in dirs:
            info = tarfile.TarInfo(d)
            info.type = tarfile.DIRTYPE
            info.mode = 0o755
            info.mtime = 0
            tar.addfile(info)
        for name, data in files:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o644
            info.mtime = 0
            tar.addfile(info, io.BytesIO(data))
    tar_bytes = raw.getvalue()
    gz = io.BytesIO()
    # mtime=0 and no file name: the same input gives the same bytes
    with gzip.GzipFile(filename="", fileobj=gz, mode="wb", mtime=0, compresslevel=6) as f:
        f.write(tar_bytes)
    return tar_bytes, gz.getvalue()


def build_oci_layout(
    directory: str | os.PathLike[str],
    *,
    tag: str = "v1",
    seed: int = 1,
    big_size: int = 5 * MiB,
) -> OCIImage:
    """Write an OCI image layout (``oci-layout``, ``index.json``, ``blobs/sha256/…``).

    One image, tagged ``tag``: an OCI manifest, an image config and one real
    gzip'd tar layer (see :func:`make_layer`).  The same ``seed`` gives
    byte-identical blobs, so ``skopeo copy oci:DIR:TAG …`` has a known result.
    Blocking (it hashes several MiB): call it through ``deferToThread``.
    """
    layout = Path(directory)
    layout.mkdir(parents=True, exist_ok=True)
    tar_bytes, layer = make_layer(seed, big_size)
    layer_digest = _write_blob(layout, layer)
    config = _canonical_json(
        {
            "architecture": "amd64",
            "os": "linux",
            "created": "1970-01-01T00:00:00Z",
            "config": {"Labels": {"org.example.paxd.seed": str(seed)}},
            "rootfs": {"type": "layers", "diff_ids": [sha256_digest(tar_bytes)]},
            "history": [{"created": "1970-01-01T00:00:00Z", "created_by": "paxd interop test"}],
        }
    )
    config_digest = _write_blob(layout, config)
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": config_digest, "size": len(config)},
            "layers": [{"mediaType": OCI_LAYER_GZIP, "digest": layer_digest, "size": len(layer)}],
        },
        indent=2,
    ).encode()
    manifest_digest = _write_blob(layout, manifest)
    (layout / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
    index = {
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [
            {
                "mediaType": OCI_MANIFEST,
                "digest": manifest_digest,
                "size": len(manifest),
                "annotations": {"org.opencontainers.image.ref.name": tag},
            }
        ],
    }
    (layout / "index.json").write_bytes(_canonical_json(index))
    return OCIImage(
        path=layout,
        tag=tag,
        manifest=manifest,
        manifest_digest=manifest_digest,
        config_digest=config_digest,
        layer_digest=layer_digest,
        layer_size=len(layer),
    )


def read_layout_blobs(directory: str | os.PathLike[str]) -> dict[str, bytes]:
    """Every blob of an OCI layout, by digest, each checked against its digest."""
    blobs = {}
    for path in sorted((Path(directory) / "blobs" / "sha256").iterdir()):
        data = path.read_bytes()
        digest = "sha256:" + path.name
        if sha256_digest(data) != digest:
            raise AssertionError(f"{path} does not match its digest")
        blobs[digest] = data
    return blobs


# --- storage layout ---------------------------------------------------------------


def v2_root(root: str | os.PathLike[str]) -> Path:
    """``<rootdirectory>/docker/registry/v2``, where distribution's layout starts."""
    return Path(root) / "docker" / "registry" / "v2"


def read_link(root: str | os.PathLike[str], *parts: str) -> str:
    """The content of a ``link`` file under the repositories tree of ``root``."""
    return (v2_root(root) / "repositories").joinpath(*parts, "link").read_text()


def sparse_file(path: str | os.PathLike[str], size: int, *, seed: int = 7) -> str:
    """A ``size``-byte file of zeros with seeded random MiB every 64 MiB; returns its digest.

    Written and hashed in 1 MiB pieces (never whole in memory) and sparse where
    it is zero, so a GiB costs little disk until a registry stores a copy.
    Blocking: call through ``deferToThread``.
    """
    rng = random.Random(seed)
    h = hashlib.sha256()
    zero = bytes(MiB)
    with open(path, "wb") as f:
        f.truncate(size)
        offset = 0
        while offset < size:
            n = min(MiB, size - offset)
            if offset % (64 * MiB) == 0:
                chunk = rng.randbytes(n)
                f.seek(offset)
                f.write(chunk)
            else:
                chunk = zero[:n]
            h.update(chunk)
            offset += n
    return "sha256:" + h.hexdigest()


def file_digest(path: str | os.PathLike[str]) -> str:
    """``sha256:<hex>`` of a file, read in 1 MiB pieces.  Blocking."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(MiB):
            h.update(chunk)
    return "sha256:" + h.hexdigest()


def tls_hello_blocking(port: int, timeout: float = 5.0) -> str:
    """Start a TLS handshake with a plain-HTTP port: how it ended, in words.

    Go's ``net/http`` (distribution) sees the TLS record on a plain port and
    answers ``400`` at once, so the handshake fails fast; a server that waits
    for an HTTP request line makes every TLS-first client (skopeo and docker
    with ``--tls-verify=false`` try HTTPS, then HTTP) wait out its handshake
    timeout.  Returns ``"refused"`` for a fast failure, ``"timeout"``
    otherwise.  Blocking: call through ``deferToThread``.
    """
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        try:
            with ctx.wrap_socket(sock, server_hostname="localhost"):
                return "handshake"
        except TimeoutError:
            return "timeout"
        except (ssl.SSLError, ConnectionError):
            return "refused"
