"""A real S3 server for tests: Ceph's RADOS Gateway from Debian, on loopback.

:func:`rgw` starts one single-node cluster per test process on first use
(a monitor, one memstore OSD, radosgw: about 3 s) in a temporary directory,
creates a user with known keys, and hands out a fresh bucket per test
(:meth:`RGW.new_bucket`).  A watchdog process tears the cluster down and
removes its directory when this process exits, however it exits.

Where the binaries are missing the tests skip, except under CI
(``CI=true``), where that is a failure, as for every peer
(:func:`tests.integration.harness.require_tool`).  Ceph:
``apt-get install -y --no-install-recommends ceph-mon ceph-osd radosgw ceph-common``.

By hand (a gateway for experiments or benchmarks, until Ctrl-C or SIGTERM)::

    python -m tests.support.rgw
"""

from __future__ import annotations

import itertools
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any
from unittest import SkipTest

import attrs
import boto3
from botocore.config import Config

from paxd.storage.s3 import S3Options, S3Storage
from paxd.threadpool import SynchronousRunner
from tests.integration.harness import MissingTool, free_port, in_ci

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

TOOLS = ("ceph-mon", "ceph-osd", "radosgw", "radosgw-admin", "ceph", "ceph-authtool", "monmaptool")
INSTALL = "apt-get install -y --no-install-recommends ceph-mon ceph-osd radosgw ceph-common"
ACCESS_KEY = "PAXDTESTACCESSKEY0001"
SECRET_KEY = "paxd-test-secret-key-for-rgw-on-loopback"
#: how long the whole cluster may take to answer S3 requests
START_TIMEOUT = 90.0

CEPH_CONF = """\
[global]
fsid = {fsid}
mon_host = v2:127.0.0.1:{mon_port}
mon_initial_members = a
auth_cluster_required = none
auth_service_required = none
auth_client_required = none
# radosgw's default "secure" mode cannot talk to a monitor without auth
ms_mon_client_mode = crc secure
ms_bind_msgr1 = false
ms_bind_ipv6 = false
public_addr = 127.0.0.1
osd_pool_default_size = 1
osd_pool_default_min_size = 1
mon_allow_pool_size_one = true
mon_warn_on_pool_no_redundancy = false
osd_crush_chooseleaf_type = 0
osd_pool_default_pg_num = 8
osd_pool_default_pgp_num = 8
osd_pool_default_pg_autoscale_mode = off
mon_max_pg_per_osd = 1000
# every pool radosgw creates waits one proposal: 0.1 s instead of 1 s
paxos_propose_interval = 0.1
mon_data = {work}/mon
osd_data = {work}/osd
osd_objectstore = memstore
memstore_device_bytes = {memstore_bytes}
run_dir = {work}/run
admin_socket = {work}/run/$name.asok
log_file = {work}/log/$name.log
pid_file = {work}/run/$name.pid
keyring = {work}/keyring
rgw_data = {work}/rgw
rgw_frontends = beast endpoint=127.0.0.1:{rgw_port} tcp_nodelay=1
rgw_override_bucket_index_max_shards = 1
rgw_dynamic_resharding = false
rgw_enable_lc_threads = false
# deleted objects give their space back during a run (default: after 2 h)
rgw_gc_obj_min_wait = 60
{extra}"""

# Kills the daemons' process groups and removes the directory once stdin
# closes: when the test process exits, cleanly or not.
WATCHDOG = """\
import os, shutil, signal, sys, time
work, pgids = sys.argv[1], [int(p) for p in sys.argv[2:]]
sys.stdin.buffer.read()
# a throwaway cluster: nothing to shut down gracefully
for pgid in pgids:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except ProcessLookupError:
        pass
deadline = time.monotonic() + 5.0
while time.monotonic() < deadline and any(os.path.exists(f"/proc/{p}") for p in pgids):
    time.sleep(0.02)
shutil.rmtree(work, ignore_errors=True)
"""

_buckets = itertools.count(1)


def s3_client(
    endpoint: str, access_key: str = ACCESS_KEY, secret_key: str = SECRET_KEY
) -> S3Client:
    """A plain boto3 client for *endpoint* (path-style), for tests to look behind the driver."""
    config = Config(
        s3={"addressing_style": "path"},
        signature_version="s3v4",
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
        max_pool_connections=32,
    )
    client: S3Client = boto3.session.Session().client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id=access_key,
        aws_secret_access_key=secret_key,
        region_name="us-east-1",
        config=config,
    )
    return client


@attrs.define
class RGW:
    """A running gateway: its endpoint, a user's keys, and where its logs are."""

    endpoint: str
    workdir: Path
    started_in: float
    processes: dict[str, subprocess.Popen[bytes]]
    watchdog: subprocess.Popen[bytes] | None = None
    access_key: str = ACCESS_KEY
    secret_key: str = SECRET_KEY
    _client: Any = None
    _session: Any = None

    @property
    def port(self) -> int:
        """The gateway's loopback port."""
        return int(self.endpoint.rsplit(":", 1)[1])

    def client(self) -> S3Client:
        """A boto3 client with the test user's keys."""
        if self._client is None:
            self._client = s3_client(self.endpoint, self.access_key, self.secret_key)
        client: S3Client = self._client
        return client

    def session(self) -> boto3.session.Session:
        """A boto3 session for drivers used from this thread only (boto3 sessions are not
        thread-safe): a client made from a warm session takes 10 ms instead of 130."""
        if self._session is None:
            self._session = boto3.session.Session()
        session: boto3.session.Session = self._session
        return session

    def driver(self, bucket: str | None = None, **overrides: Any) -> S3Storage:
        """A driver on *bucket* (a new one by default) whose Deferreds fire at once.

        Its S3 calls block the calling thread (a SynchronousRunner): for the
        shared mixin's synchronous tests and others like them.
        """
        options = self.options(bucket or self.new_bucket(), **overrides)
        return S3Storage(options, SynchronousRunner(), session=self.session())

    def new_bucket(self) -> str:
        """A new, empty bucket (never reused; the cluster goes with the process)."""
        name = f"paxd-{os.getpid()}-{next(_buckets)}"
        self.client().create_bucket(Bucket=name)
        return name

    def options(self, bucket: str, **overrides: Any) -> S3Options:
        """Driver options for *bucket* on this gateway (plain HTTP, path-style, the test keys)."""
        settings: dict[str, Any] = {
            "bucket": bucket,
            "regionendpoint": self.endpoint,
            "region": "us-east-1",
            "accesskey": self.access_key,
            "secretkey": self.secret_key,
            "secure": False,
        }
        settings.update(overrides)
        return S3Options(**settings)

    def distribution_storage(self, bucket: str, rootdirectory: str = "") -> dict[str, Any]:
        """A ``storage`` section for Debian's docker-registry on *bucket* here."""
        s3: dict[str, Any] = {
            "accesskey": self.access_key,
            "secretkey": self.secret_key,
            "region": "us-east-1",
            "regionendpoint": self.endpoint,
            "forcepathstyle": True,
            "bucket": bucket,
            "secure": False,
            "v4auth": True,
            "chunksize": 5 * 1024 * 1024,
        }
        if rootdirectory:
            s3["rootdirectory"] = rootdirectory
        return {"s3": s3, "delete": {"enabled": True}}

    def logs(self, limit: int = 3000) -> str:
        """The tails of the daemons' logs, for failure messages."""
        out = []
        for path in sorted((self.workdir / "log").glob("*")):
            text = path.read_bytes()[-limit:].decode(errors="replace")
            out.append(f"--- {path} ---\n{text}")
        return "\n".join(out)

    def alive(self) -> bool:
        """Whether every daemon is still running."""
        return all(p.poll() is None for p in self.processes.values())

    def stop(self) -> None:
        """Stop the cluster and remove its directory (what the watchdog does at exit)."""
        if self.watchdog is not None and self.watchdog.stdin is not None:
            self.watchdog.stdin.close()
            self.watchdog.wait(15)
            self.watchdog = None


#: the memory-backed OSD's size: what the tests store at most at once
MEMSTORE_BYTES = 4 * 1024**3


class _Cluster:
    """Brings a cluster up step by step (blocking)."""

    def __init__(self, memstore_bytes: int = MEMSTORE_BYTES, extra: str = "") -> None:
        self.work = Path(tempfile.mkdtemp(prefix="paxd-rgw-"))
        for sub in ("mon", "osd", "run", "log", "rgw"):
            (self.work / sub).mkdir()
        self.mon_port, self.rgw_port = free_port(), free_port()
        self.conf = self.work / "ceph.conf"
        self.fsid = str(uuid.uuid4())
        self.conf.write_text(
            CEPH_CONF.format(
                fsid=self.fsid,
                mon_port=self.mon_port,
                rgw_port=self.rgw_port,
                work=self.work,
                memstore_bytes=memstore_bytes,
                extra=extra,
            )
        )
        self.env = {**os.environ, "CEPH_CONF": str(self.conf)}
        self.processes: dict[str, subprocess.Popen[bytes]] = {}

    def run(self, *argv: str, timeout: float = 30.0) -> str:
        proc = subprocess.run(
            argv, capture_output=True, env=self.env, cwd=self.work, timeout=timeout, check=False
        )
        if proc.returncode != 0:
            output = (proc.stdout + proc.stderr).decode(errors="replace")[-3000:]
            raise RuntimeError(f"{' '.join(argv)} exited {proc.returncode}:\n{output}")
        return proc.stdout.decode(errors="replace")

    def spawn(self, name: str, *argv: str) -> None:
        with open(self.work / "log" / f"{name}.out", "ab") as out:
            self.processes[name] = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=self.env,
                cwd=self.work,
                start_new_session=True,
            )

    def watchdog(self) -> subprocess.Popen[bytes]:
        pgids = [str(p.pid) for p in self.processes.values()]
        return subprocess.Popen(
            [sys.executable, "-c", WATCHDOG, str(self.work), *pgids],
            stdin=subprocess.PIPE,
            # not the test process's output: whoever reads it need not wait for the cleanup
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )

    def start(self) -> None:
        keyring = str(self.work / "keyring")
        self.run("ceph-authtool", "--create-keyring", keyring, "--gen-key", "-n", "mon.",
                 "--cap", "mon", "allow *")  # fmt: skip
        monmap = str(self.work / "monmap")
        address = f"[v2:127.0.0.1:{self.mon_port}]"
        self.run("monmaptool", "--create", "--addv", "a", address, "--fsid", self.fsid, monmap)
        self.run("ceph-mon", "--mkfs", "-i", "a", "--monmap", monmap, "--keyring", keyring)
        self.spawn("mon", "ceph-mon", "-f", "-i", "a")
        osd_uuid = str(uuid.uuid4())
        # waits for the monitor to answer
        self.run("ceph", "--connect-timeout", "30", "osd", "new", osd_uuid)
        self.run("ceph-osd", "-i", "0", "--mkfs", "--osd-uuid", osd_uuid)
        self.spawn("osd", "ceph-osd", "-f", "-i", "0")
        # radosgw waits for the OSD by itself
        self.spawn("rgw", "radosgw", "-f", "-n", "client.rgw")

    def wait_http(self, deadline: float) -> None:
        url = f"http://127.0.0.1:{self.rgw_port}/"
        while time.monotonic() < deadline:
            for name, proc in self.processes.items():
                if proc.poll() is not None:
                    raise RuntimeError(f"{name} exited with status {proc.returncode}")
            try:
                with urllib.request.urlopen(url, timeout=2):
                    return
            except urllib.error.HTTPError:
                return  # an S3 error answer: up
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"radosgw did not answer {url} within {START_TIMEOUT} s")

    def create_user(self) -> None:
        self.run("radosgw-admin", "-n", "client.admin", "user", "create", "--uid=paxd-tests",
                 "--display-name=paxd tests", f"--access-key={ACCESS_KEY}",
                 f"--secret-key={SECRET_KEY}")  # fmt: skip


def require_ceph() -> None:
    """Skip (or under CI fail with MissingTool) unless Ceph's daemons and tools are installed."""
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    if missing:
        message = f"Ceph is not installed (missing {', '.join(missing)}): {INSTALL}"
        if in_ci():
            raise MissingTool(message)
        raise SkipTest(message)


def start_rgw(memstore_bytes: int = MEMSTORE_BYTES, extra: str = "") -> RGW:
    """Start a new cluster and gateway (blocking); raise RuntimeError quoting logs if it fails.

    *memstore_bytes*: the OSD's size (in memory); *extra*: more ``ceph.conf``
    lines for ``[global]`` (the benchmarks collect deleted objects sooner).
    """
    require_ceph()
    began = time.monotonic()
    cluster = _Cluster(memstore_bytes, extra)
    watchdog = None
    try:
        cluster.start()
        watchdog = cluster.watchdog()
        cluster.wait_http(began + START_TIMEOUT)
        cluster.create_user()
    except BaseException as e:
        gateway = RGW("", cluster.work, 0.0, cluster.processes, watchdog)
        logs = gateway.logs()
        if watchdog is None:
            watchdog = cluster.watchdog()
        gateway.watchdog = watchdog
        gateway.stop()
        raise RuntimeError(f"the RADOS Gateway did not start: {e}\n{logs}") from e
    return RGW(
        f"http://127.0.0.1:{cluster.rgw_port}",
        cluster.work,
        time.monotonic() - began,
        cluster.processes,
        watchdog,
    )


_gateway: list[RGW] = []
_failure: list[str] = []


def rgw() -> RGW:
    """This process's gateway, started on first use and shared by every test.

    Skips (or fails under CI) where Ceph is not installed; a gateway that
    fails to start fails every test that asks for it, with its logs.
    """
    require_ceph()
    if _failure:
        raise AssertionError(_failure[0])
    if _gateway and not _gateway[0].alive():
        gateway = _gateway.pop()
        raise AssertionError(f"the RADOS Gateway died during the run\n{gateway.logs()}")
    if not _gateway:
        try:
            _gateway.append(start_rgw())
        except RuntimeError as e:
            _failure.append(str(e))
            raise AssertionError(str(e)) from None
    return _gateway[0]


def main() -> None:
    """Run a gateway in the foreground until interrupted, printing how to reach it."""
    # SIGTERM too (a background job ignores SIGINT): stop as on Ctrl-C
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    gateway = start_rgw()
    print(f"RADOS Gateway up in {gateway.started_in:.1f} s")
    print(f"  endpoint:   {gateway.endpoint}")
    print(f"  access key: {gateway.access_key}")
    print(f"  secret key: {gateway.secret_key}")
    print(f"  directory:  {gateway.workdir}")
    try:
        while gateway.alive():
            time.sleep(1)
    except KeyboardInterrupt:
        pass
    finally:
        gateway.stop()


if __name__ == "__main__":
    main()
