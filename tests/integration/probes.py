"""Issue 13's probes against a running registry: a guess flood, racing requests, a probe flood.

Blocking helpers (sockets and threads, no reactor), used by
``tests/integration/test_hardening.py`` with a few rounds, and by hand with
many, for the figures of the closing note::

    python -m tests.integration.probes [--rounds 1000] [--paxd-root DIR]

starts paxd from DIR (default: this checkout) on filesystem storage behind
htpasswd (bcrypt cost 10), runs every probe and prints the figures as JSON.
A client binds another loopback address (``127.0.0.2``) to come from
another address.
"""

from __future__ import annotations

import argparse
import base64
import collections
import functools
import hashlib
import http.client
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from collections.abc import Callable
from pathlib import Path
from typing import Any

import bcrypt
import yaml

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
TEMP_PREFIX = ".paxd-tmp-"
REPOSITORIES = "docker/registry/v2/repositories"
BLOBS = "docker/registry/v2/blobs/sha256"
Answer = tuple[int, dict[str, str], bytes]
MANIFEST_TYPE = {"Content-Type": OCI_MANIFEST}
OCTETS = {"Content-Type": "application/octet-stream"}


def basic(user: str, password: str) -> str:
    """An ``Authorization: Basic`` value."""
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def write_htpasswd(path: Path, users: dict[str, str], cost: int = 10) -> None:
    """*users* (name → password) as bcrypt entries of *cost*."""
    lines = [
        name + ":" + bcrypt.hashpw(pw.encode(), bcrypt.gensalt(rounds=cost)).decode()
        for name, pw in users.items()
    ]
    path.write_text("\n".join(lines) + "\n")


class Client:
    """Keep-alive HTTP to ``127.0.0.1:port`` from the loopback address *source*."""

    def __init__(self, port: int, auth: str | None = None, source: str = "127.0.0.1") -> None:
        self.port = port
        self.auth = auth
        self.source = source
        self._conn: http.client.HTTPConnection | None = None

    def request(self, method: str, path: str, body: bytes | None = None, **headers: str) -> Answer:
        """One exchange (on a new connection if the last one was closed)."""
        if self.auth:
            headers.setdefault("Authorization", self.auth)
        if body is None and method in ("PUT", "POST", "PATCH"):
            body = b""
        for attempt in range(2):
            if self._conn is None:
                self._conn = http.client.HTTPConnection(
                    "127.0.0.1", self.port, timeout=120, source_address=(self.source, 0)
                )
            try:
                self._conn.request(method, path, body=body, headers=headers)
                response = self._conn.getresponse()
                data = response.read()
            except (ConnectionError, http.client.HTTPException):
                self.close()
                if attempt:
                    raise
                continue
            found = {k.lower(): v for k, v in response.getheaders()}
            if response.will_close:
                self.close()
            return response.status, found, data
        raise AssertionError("unreachable")

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


def at_once(*calls: Callable[[], Answer]) -> list[Answer]:
    """Run *calls* in threads released together; their answers, in order."""
    barrier = threading.Barrier(len(calls))
    answers: list[Answer | None] = [None] * len(calls)

    def run(i: int) -> None:
        barrier.wait()
        answers[i] = calls[i]()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(a is not None for a in answers)
    return answers  # type: ignore[return-value]


# -- the guess flood --------------------------------------------------------------------


def guess_flood(
    port: int,
    user: str,
    right: str,
    n: int = 200,
    right_at: int = 149,
    sent: threading.Event | None = None,
) -> list[int]:
    """*n* logins at once from 127.0.0.1, all wrong but number *right_at*; their statuses.

    Every request is on the wire (*sent* is then set) before any answer is read.
    """
    sockets = []
    for i in range(n):
        s = socket.create_connection(("127.0.0.1", port), timeout=300)
        auth = basic(user, right if i == right_at else f"guess-{i}")
        request = (
            f"GET /v2/ HTTP/1.1\r\nHost: r\r\nAuthorization: {auth}\r\nConnection: close\r\n\r\n"
        )
        s.sendall(request.encode())
        sockets.append(s)
    if sent is not None:
        sent.set()
    statuses = []
    for s in sockets:
        with s:
            head = b""
            while b"\r\n" not in head:
                chunk = s.recv(4096)
                if not chunk:
                    break
                head += chunk
            statuses.append(int(head.split()[1]) if head else 0)
    return statuses


def timed_login(
    port: int, user: str, password: str, source: str = "127.0.0.2"
) -> tuple[int, float]:
    """One login from *source*: its status and how long it took, in seconds."""
    client = Client(port, basic(user, password), source)
    start = time.monotonic()
    status, _, _ = client.request("GET", "/v2/")
    elapsed = time.monotonic() - start
    client.close()
    return status, elapsed


def flood_beside_a_login(
    port: int, user: str, right: str, n: int = 200, other: tuple[str, str] | None = None
) -> tuple[list[int], int, float]:
    """The flood from 127.0.0.1; once it is on the wire, a login from 127.0.0.2, timed.

    The other login is *other* (user, password), by default *user* and *right*.
    """
    found: list[list[int]] = []
    sent = threading.Event()
    thread = threading.Thread(
        target=lambda: found.append(guess_flood(port, user, right, n, sent=sent))
    )
    thread.start()
    sent.wait(120)
    status, elapsed = timed_login(port, *(other or (user, right)))
    thread.join()
    return found[0], status, elapsed


# -- racing requests --------------------------------------------------------------------


def push_blob(client: Client, repo: str, data: bytes) -> str:
    digest = sha256(data)
    status, _, body = client.request("POST", f"/v2/{repo}/blobs/uploads/?digest={digest}", data)
    if status != 201:
        raise AssertionError(f"pushing a blob: {status} {body[:300]!r}")
    return digest


def manifest_for(config: str, layer: str, round_: int) -> bytes:
    return json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": config,
                "size": 2,
            },
            "layers": [
                {
                    "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                    "digest": layer,
                    "size": 5,
                }
            ],
            "annotations": {"round": str(round_)},
        }
    ).encode()


def manifest_race(port: int, auth: str | None, repo: str, rounds: int) -> collections.Counter[str]:
    """*rounds* of a manifest PUT racing a DELETE by digest; ``"PUT 201"``… → how often.

    Odd rounds push the manifest first, so that the PUT rewrites the links
    the DELETE removes.
    """
    setup = Client(port, auth)
    config, layer = push_blob(setup, repo, b"{}"), push_blob(setup, repo, b"layer")
    pusher, deleter = Client(port, auth), Client(port, auth)
    counts: collections.Counter[str] = collections.Counter()
    for round_ in range(rounds):
        content = manifest_for(config, layer, round_)
        put_path = f"/v2/{repo}/manifests/1.0.{round_ % 7}"
        delete_path = f"/v2/{repo}/manifests/{sha256(content)}"
        if round_ % 2:
            setup.request("PUT", put_path, content, **{"Content-Type": OCI_MANIFEST})
        put, delete = at_once(
            functools.partial(pusher.request, "PUT", put_path, content, **MANIFEST_TYPE),
            functools.partial(deleter.request, "DELETE", delete_path),
        )
        counts[f"PUT {put[0]}"] += 1
        counts[f"DELETE {delete[0]}"] += 1
        if delete[0] == 404:
            setup.request("DELETE", delete_path)  # the next round starts without it
    for c in (setup, pusher, deleter):
        c.close()
    return counts


def upload_race(port: int, auth: str | None, repo: str, rounds: int) -> collections.Counter[str]:
    """*rounds* of an upload DELETE racing a PATCH (and, one round in three, the PUT)."""
    clients = [Client(port, auth) for _ in range(4)]
    setup = clients[0]
    counts: collections.Counter[str] = collections.Counter()
    for round_ in range(rounds):
        status, headers, _ = setup.request("POST", f"/v2/{repo}/blobs/uploads/")
        if status != 202:
            raise AssertionError(f"starting an upload: {status}")
        parts = urllib.parse.urlsplit(headers["location"])
        location = parts.path + (f"?{parts.query}" if parts.query else "")
        joiner = "&" if parts.query else "?"
        chunk = b"chunk %d " % round_ * 100
        calls = [
            functools.partial(clients[1].request, "PATCH", location, chunk, **OCTETS),
            functools.partial(clients[2].request, "DELETE", location),
        ]
        names = ["PATCH", "DELETE"]
        if round_ % 3 == 0:
            complete = location + joiner + "digest=" + sha256(chunk)
            calls.append(functools.partial(clients[3].request, "PUT", complete))
            names.append("PUT")
        for name, answer in zip(names, at_once(*calls), strict=True):
            counts[f"{name} {answer[0]}"] += 1
        after = setup.request("GET", location)[0]
        counts[f"GET after {after}"] += 1
    for c in clients:
        c.close()
    return counts


def audit_filesystem(root: Path, repo: str) -> list[str]:
    """Dangling tags and links, leftover uploads and temporary files under *root*."""
    problems = []
    base = root / REPOSITORIES / repo
    tags = base / "_manifests/tags"
    for tag in sorted(os.listdir(tags)) if tags.is_dir() else []:
        current = tags / tag / "current/link"
        if not current.exists():
            problems.append(f"tag {tag}: no current link")
            continue
        digest = current.read_text().strip()
        if not (base / "_manifests/revisions/sha256" / digest.split(":")[1] / "link").exists():
            problems.append(f"tag {tag}: points at {digest}, which the repository no longer holds")
    revisions = base / "_manifests/revisions/sha256"
    for hex_ in os.listdir(revisions) if revisions.is_dir() else []:
        if (revisions / hex_ / "link").exists() and not (
            root / BLOBS / hex_[:2] / hex_ / "data"
        ).exists():
            problems.append(f"manifest {hex_}: no data")
    uploads = base / "_uploads"
    problems += [
        f"upload {u} left behind" for u in (os.listdir(uploads) if uploads.is_dir() else [])
    ]
    for directory, _, files in os.walk(root):
        problems += [f"temporary file {directory}/{f}" for f in files if f.startswith(TEMP_PREFIX)]
    return problems


def listed_tags_that_fail(client: Client, repo: str) -> list[str]:
    """Tags the listing shows that do not answer 200."""
    status, _, body = client.request("GET", f"/v2/{repo}/tags/list")
    if status == 404:
        return []
    bad = []
    for tag in json.loads(body)["tags"] or []:
        got = client.request("GET", f"/v2/{repo}/manifests/{tag}", Accept=OCI_MANIFEST)[0]
        if got != 200:
            bad.append(f"{tag}: {got}")
    return bad


# -- the probe flood --------------------------------------------------------------------


def probe_flood(port: int, concurrency: int, seconds: float) -> collections.Counter[int]:
    """*concurrency* clients asking ``/health`` as fast as they can; status → how often."""
    counts: collections.Counter[int] = collections.Counter()
    lock = threading.Lock()
    deadline = time.monotonic() + seconds

    def probe() -> None:
        client = Client(port)
        local: collections.Counter[int] = collections.Counter()
        while time.monotonic() < deadline:
            local[client.request("GET", "/health")[0]] += 1
        client.close()
        with lock:
            counts.update(local)

    threads = [threading.Thread(target=probe) for _ in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return counts


def pull_latencies(port: int, auth: str | None, path: str, seconds: float) -> list[float]:
    """GET *path* (a small blob) again and again from 127.0.0.2 for *seconds*; each latency."""
    client = Client(port, auth, "127.0.0.2")
    found = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        start = time.monotonic()
        status, _, _ = client.request("GET", path)
        found.append(time.monotonic() - start)
        if status != 200:
            raise AssertionError(f"pull answered {status}")
    client.close()
    return found


def pulls_during(
    port: int, auth: str | None, path: str, seconds: float, attack: Callable[[], Any]
) -> tuple[list[float], Any]:
    """Pull latencies while *attack* runs in a thread; and what it returned."""
    result: list[Any] = []
    thread = threading.Thread(target=lambda: result.append(attack()))
    thread.start()
    time.sleep(0.5)
    latencies = pull_latencies(port, auth, path, seconds)
    thread.join()
    return latencies, result[0]


# -- by hand: every figure --------------------------------------------------------------


def _start(
    root: Path, paxd_root: Path, storage: Path, htpasswd: Path
) -> tuple[subprocess.Popen[bytes], int]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config = {
        "version": 0.1,
        "log": {"level": "warn", "accesslog": {"disabled": True}},
        "storage": {"filesystem": {"rootdirectory": str(storage)}, "delete": {"enabled": True}},
        "http": {"addr": f"127.0.0.1:{port}"},
        "auth": {"htpasswd": {"realm": "basic-realm", "path": str(htpasswd), "admins": ["admin"]}},
    }
    (root / "config.yml").write_text(yaml.safe_dump(config))
    env = {k: v for k, v in os.environ.items() if not k.startswith("REGISTRY_")}
    env["PYTHONPATH"] = str(paxd_root)
    argv = [
        sys.executable,
        "-m",
        "twisted",
        "--log-format=text",
        "paxd",
        "--config",
        str(root / "config.yml"),
    ]
    log = open(root / "paxd.log", "wb")
    process = subprocess.Popen(argv, cwd=paxd_root, env=env, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if Client(port).request("GET", "/health")[0] == 200:
                return process, port
        except OSError:
            time.sleep(0.2)
    process.kill()
    raise SystemExit(f"paxd did not start; see {root / 'paxd.log'}")


def _median_ms(values: list[float]) -> float:
    return round(statistics.median(values) * 1000, 1)


#: users whose first login (a bcrypt check: nothing cached yet) is timed
READERS = {f"reader{i}": f"reader-secret-{i}" for i in range(6)}


def _flood_figures(port: int) -> dict[str, Any]:
    # each reader logs in once, uncached: five alone, the sixth beside the flood
    alone = [timed_login(port, user, pw)[1] for user, pw in list(READERS.items())[:5]]
    flood, beside, during = flood_beside_a_login(
        port, "admin", "admin-secret", other=("reader5", READERS["reader5"])
    )
    time.sleep(61)  # the block ends before the next probe
    return {
        "answers": dict(collections.Counter(flood)),
        "successful logins": flood.count(200),
        "other address's login alone, median of 5 (ms)": _median_ms(alone),
        "other address's login during the flood": [beside, round(during * 1000, 1)],
    }


def _race_figures(port: int, admin: str, storage: Path, rounds: int) -> dict[str, Any]:
    figures: dict[str, Any] = {
        "manifest PUT vs DELETE": dict(manifest_race(port, admin, "race/manifests", rounds)),
        "upload PATCH vs DELETE": dict(upload_race(port, admin, "race/uploads", rounds)),
    }
    problems = audit_filesystem(storage, "race/manifests") + audit_filesystem(
        storage, "race/uploads"
    )
    figures["dangling tags, links, uploads"] = len(problems)
    figures["first problems"] = problems[:5]
    figures["listed tags that fail"] = listed_tags_that_fail(Client(port, admin), "race/manifests")
    return figures


def _health_figures(port: int, admin: str, seconds: float) -> dict[str, Any]:
    layer = push_blob(Client(port, admin), "pull/me", os.urandom(4096))
    path = f"/v2/pull/me/blobs/{layer}"
    quiet = pull_latencies(port, admin, path, seconds)
    flooded, probes = pulls_during(
        port, admin, path, seconds, lambda: probe_flood(port, 64, seconds + 1)
    )
    return {
        "probe answers": dict(probes),
        "probes per second": round(sum(probes.values()) / (seconds + 1)),
        "pull median alone (ms)": _median_ms(quiet),
        "pull median during the flood (ms)": _median_ms(flooded),
        "pulls": [len(quiet), len(flooded)],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=1000, help="rounds of each race")
    parser.add_argument("--paxd-root", type=Path, default=Path(__file__).resolve().parents[2])
    parser.add_argument("--seconds", type=float, default=10.0, help="of each latency sample")
    parser.add_argument(
        "--probe", action="append", choices=["flood", "races", "health"], help="(default: all)"
    )
    args = parser.parse_args(argv)
    probes = args.probe or ["flood", "races", "health"]
    root = Path(tempfile.mkdtemp(prefix="paxd-attacks-"))
    write_htpasswd(root / "htpasswd", {"admin": "admin-secret", **READERS})
    process, port = _start(root, args.paxd_root.resolve(), root / "storage", root / "htpasswd")
    admin = basic("admin", "admin-secret")
    figures: dict[str, Any] = {"paxd": str(args.paxd_root), "workdir": str(root)}
    try:
        if "flood" in probes:
            figures["guess flood (200 at once, right password 150th)"] = _flood_figures(port)
        if "races" in probes:
            figures["races"] = _race_figures(port, admin, root / "storage", args.rounds)
        if "health" in probes:
            figures["probe flood (64 concurrent)"] = _health_figures(port, admin, args.seconds)
    finally:
        process.terminate()
        process.wait(30)
    print(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
