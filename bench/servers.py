"""The two servers: configuration, start, readiness, stop, and their memory.

Both read the same Docker distribution YAML (written by :func:`write_config`):
filesystem storage with deletes (or, in the S3 variants, the same ``s3``
section on a bucket of their own: :mod:`bench.s3`), the in-memory blob
descriptor cache that distribution's own sample configuration (and the vendor
image) turn on, error level logging with distribution's access log off (paxd
writes none), and, per :class:`Variant`, the same htpasswd file or the same
certificate.
"""

from __future__ import annotations

import http.client
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import TracebackType

import attrs
import yaml

#: the checkout this package lives in: paxd is imported from it
REPO_ROOT = Path(__file__).resolve().parents[1]
DISTRIBUTION = "distribution"
PAXD = "paxd"
SERVER_NAMES = (DISTRIBUTION, PAXD)
READY_TIMEOUT = 120.0
STOP_TIMEOUT = 15.0
USER = "bench"
PASSWORD = "bench-password"


class ServerError(RuntimeError):
    """A server would not start, died, or misbehaved; the message quotes its log."""


@attrs.frozen
class Variant:
    """What sits in front of the storage: plain HTTP, HTTP with htpasswd, or TLS; and the storage.

    :ivar s3: each server on its own bucket of the benchmark's RADOS Gateway.
    :ivar redirect: on S3, blob downloads redirect to the bucket (distribution's default).
    :ivar s3_root: on S3, the ``rootdirectory`` in the bucket.
    """

    name: str
    auth: bool = False
    tls: bool = False
    s3: bool = False
    redirect: bool = True
    s3_root: str = ""


PLAIN = Variant("plain")
AUTH = Variant("auth", auth=True)
TLS = Variant("tls", tls=True)


@attrs.frozen
class Files:
    """The files both servers share: the htpasswd file and the certificate."""

    htpasswd: Path
    certificate: Path
    key: Path


def free_port() -> int:
    """An ephemeral loopback port that was free a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def write_config(
    path: Path,
    root: Path,
    port: int,
    variant: Variant,
    files: Files,
    s3: dict[str, object] | None = None,
) -> None:
    """The Docker distribution YAML both servers are started with (*s3*: its bucket's section)."""
    http_section: dict[str, object] = {"addr": f"127.0.0.1:{port}", "secret": "bench-http-secret"}
    if variant.tls:
        http_section["tls"] = {"certificate": str(files.certificate), "key": str(files.key)}
    storage: dict[str, object] = {
        "filesystem": {"rootdirectory": str(root)},
        "delete": {"enabled": True},
        "cache": {"blobdescriptor": "inmemory"},
    }
    if variant.s3:
        assert s3 is not None, "an S3 variant needs the bucket's section"
        del storage["filesystem"]
        storage["s3"] = s3
        storage["redirect"] = {"disable": not variant.redirect}
    config: dict[str, object] = {
        "version": 0.1,
        "log": {"level": "error", "accesslog": {"disabled": True}},
        "storage": storage,
        "http": http_section,
    }
    if variant.auth:
        config["auth"] = {"htpasswd": {"realm": "bench", "path": str(files.htpasswd)}}
    path.write_text(yaml.safe_dump(config, sort_keys=False))


def server_argv(name: str, config: Path) -> list[str]:
    """How each server is started (in the foreground, one process whose memory we read)."""
    if name == DISTRIBUTION:
        return ["/usr/bin/docker-registry", "serve", str(config)]
    return [
        sys.executable,
        "-m",
        "twisted",
        "--log-format=text",
        "--log-level=error",
        "paxd",
        "--config",
        str(config),
    ]


def _child_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("REGISTRY_")}
    # distribution 2.8's AWS SDK panics on a custom CA bundle; the gateway is plain HTTP
    env.pop("AWS_CA_BUNDLE", None)
    env["PYTHONPATH"] = os.pathsep.join(
        [str(REPO_ROOT), *filter(None, env.get("PYTHONPATH", "").split(os.pathsep))]
    )
    return env


class Server:
    """One running server process of one kind, in one variant."""

    def __init__(
        self,
        name: str,
        root: Path,
        workdir: Path,
        variant: Variant,
        files: Files,
        s3: dict[str, object] | None = None,
    ):
        self.name = name
        self.root = root
        self.variant = variant
        self.files = files
        self.port = free_port()
        workdir.mkdir(parents=True, exist_ok=True)
        self.config = workdir / f"{name}-{variant.name}.yml"
        self.log = workdir / f"{name}-{variant.name}.log"
        write_config(self.config, root, self.port, variant, files, s3)
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def scheme(self) -> str:
        """``http`` or ``https``."""
        return "https" if self.variant.tls else "http"

    @property
    def base_url(self) -> str:
        """``scheme://127.0.0.1:port``."""
        return f"{self.scheme}://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        """The server's process id."""
        assert self.proc is not None
        return self.proc.pid

    def connection(self, timeout: float = 120.0) -> http.client.HTTPConnection:
        """A new (not yet connected) keep-alive connection to the server."""
        if self.variant.tls:
            context = ssl.create_default_context()
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
            return http.client.HTTPSConnection(
                "127.0.0.1", self.port, timeout=timeout, context=context, blocksize=1 << 20
            )
        return http.client.HTTPConnection(
            "127.0.0.1", self.port, timeout=timeout, blocksize=1 << 20
        )

    def log_tail(self, size: int = 3000) -> str:
        """The end of the server's output, for error messages."""
        try:
            return self.log.read_bytes()[-size:].decode(errors="replace")
        except OSError:
            return ""

    def start(self) -> None:
        """Start the process and wait until ``GET /v2/`` answers (200, or 401 with auth)."""
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                server_argv(self.name, self.config),
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=REPO_ROOT,
                env=_child_env(),
            )
        deadline = time.monotonic() + READY_TIMEOUT
        while True:
            if self.proc.poll() is not None:
                raise ServerError(
                    f"{self.name} ({self.variant.name}) exited with {self.proc.returncode}:\n"
                    + self.log_tail()
                )
            try:
                conn = self.connection(timeout=2.0)
                conn.request("GET", "/v2/")
                status = conn.getresponse().status
                conn.close()
                if status in (200, 401):
                    return
            except OSError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise ServerError(
                    f"{self.name} not ready after {READY_TIMEOUT}s:\n{self.log_tail()}"
                )
            time.sleep(0.05)

    def check_alive(self) -> None:
        """Raise :class:`ServerError` if the process has died."""
        if self.proc is not None and self.proc.poll() is not None:
            raise ServerError(f"{self.name} died with {self.proc.returncode}:\n" + self.log_tail())

    def stop(self) -> None:
        """SIGTERM, then SIGKILL if it lingers."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    # --- memory ------------------------------------------------------------------

    def _status(self, field: str) -> int:
        with open(f"/proc/{self.pid}/status", "rb") as f:
            for line in f:
                if line.startswith(field.encode()):
                    return int(line.split()[1]) * 1024
        raise ServerError(f"no {field} for {self.name}")

    def rss(self) -> int:
        """Resident set size now, in bytes."""
        return self._status("VmRSS:")

    def hwm(self) -> int:
        """Peak resident set size since start or the last :meth:`reset_hwm`, in bytes."""
        return self._status("VmHWM:")

    def reset_hwm(self) -> bool:
        """Reset the kernel's peak RSS (VmHWM) of the process; False where not permitted."""
        try:
            with open(f"/proc/{self.pid}/clear_refs", "w") as f:
                f.write("5")
            return True
        except OSError:
            return False


class Profiler:
    """``py-spy record`` attached to a server while a workload runs (``--profile DIR``).

    Writes py-spy's raw format (collapsed stacks, one line per stack with its
    sample count) to ``path``; a no-op when ``path`` is None.  py-spy writes its
    output when interrupted with SIGINT.
    """

    def __init__(self, server: Server, path: Path | None) -> None:
        self.server = server
        self.path = path
        self.proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Profiler:
        if self.path is not None:
            exe = shutil.which("py-spy")
            if exe is None:
                raise ServerError("--profile needs py-spy (pip install py-spy)")
            self.proc = subprocess.Popen(
                [
                    exe,
                    "record",
                    "--pid",
                    str(self.server.pid),
                    "--rate",
                    "250",
                    "--format",
                    "raw",
                    "--nonblocking",
                    "--output",
                    str(self.path),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            time.sleep(0.5)  # attached before the clock starts
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self.proc is not None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


class MemorySampler:
    """Samples a server's VmRSS in a thread while a workload runs; the peak includes VmHWM.

    ``with MemorySampler(server) as m: ...`` then ``m.peak`` (bytes).
    """

    INTERVAL = 0.01

    def __init__(self, server: Server) -> None:
        self.server = server
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._hwm_reset = False

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.peak = max(self.peak, self.server.rss())
            except (OSError, ServerError):
                return
            self._stop.wait(self.INTERVAL)

    def __enter__(self) -> MemorySampler:
        self._hwm_reset = self.server.reset_hwm()
        self.peak = self.server.rss()
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._thread.join()
        if self._hwm_reset:
            try:
                self.peak = max(self.peak, self.server.hwm())
            except (OSError, ServerError):
                pass
