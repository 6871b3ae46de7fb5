"""Load generators: a small keep-alive HTTP client, ``curl`` and ``wrk``.

The rule is "least overhead of our own": bulk downloads go through ``curl``
(C, writing to /dev/null), request rates through ``wrk`` (C, with a Lua
script for headers and a JSON summary), and the protocol-heavy pushes and the
catalog walk through :mod:`http.client` on one keep-alive connection, sending
each body from memory in a single ``sendall``.
"""

from __future__ import annotations

import http.client
import json
import re
import shutil
import subprocess
import time
import urllib.parse
from base64 import b64encode
from collections.abc import Mapping, Sequence
from pathlib import Path

import attrs

from bench.servers import PASSWORD, USER, Server


class BenchError(RuntimeError):
    """A request or a tool gave an unexpected answer; the workload's numbers would be wrong."""


def basic_auth(user: str = USER, password: str = PASSWORD) -> dict[str, str]:
    """The ``Authorization`` header of HTTP basic auth."""
    return {"Authorization": "Basic " + b64encode(f"{user}:{password}".encode()).decode()}


def auth_headers(server: Server) -> dict[str, str]:
    """Credentials when the server's variant wants them, else nothing."""
    return basic_auth() if server.variant.auth else {}


@attrs.frozen
class Response:
    """One response read whole; header names lower-cased."""

    status: int
    headers: Mapping[str, str]
    body: bytes


def request(
    conn: http.client.HTTPConnection,
    method: str,
    target: str,
    *,
    headers: Mapping[str, str] | None = None,
    body: bytes | memoryview | None = None,
    expect: Sequence[int] = (200,),
) -> Response:
    """Send one request on ``conn`` and read the response; :class:`BenchError` on another status."""
    hdrs = dict(headers or {})
    if body is not None:
        hdrs.setdefault("Content-Length", str(len(body)))
    conn.request(method, target, body=body, headers=hdrs)
    resp = conn.getresponse()
    data = resp.read()
    result = Response(resp.status, {k.lower(): v for k, v in resp.getheaders()}, data)
    if result.status not in expect:
        raise BenchError(f"{method} {target} → {result.status}: {data[:300]!r}")
    return result


def _target(location: str) -> str:
    """The path and query of a ``Location`` (distribution answers absolute URLs)."""
    parts = urllib.parse.urlsplit(location)
    return parts.path + ("?" + parts.query if parts.query else "")


def _with_digest(location: str, digest: str) -> str:
    target = _target(location)
    return target + ("&" if "?" in target else "?") + urllib.parse.urlencode({"digest": digest})


def start_upload(conn: http.client.HTTPConnection, repo: str, headers: Mapping[str, str]) -> str:
    """``POST /v2/<repo>/blobs/uploads/``; the upload's location."""
    resp = request(
        conn, "POST", f"/v2/{repo}/blobs/uploads/", headers=headers, body=b"", expect=(202,)
    )
    return resp.headers["location"]


def push_monolithic(
    conn: http.client.HTTPConnection,
    repo: str,
    data: bytes,
    digest: str,
    headers: Mapping[str, str],
) -> None:
    """A monolithic push as docker and oras do it: ``POST`` then ``PUT ?digest=`` with the body."""
    location = start_upload(conn, repo, headers)
    request(
        conn,
        "PUT",
        _with_digest(location, digest),
        headers={**headers, "Content-Type": "application/octet-stream"},
        body=data,
        expect=(201,),
    )


def push_chunked(
    conn: http.client.HTTPConnection,
    repo: str,
    data: bytes,
    digest: str,
    chunk: int,
    headers: Mapping[str, str],
) -> None:
    """A chunked push: ``POST``, a ``PATCH`` per chunk with ``Content-Range``, ``PUT ?digest=``."""
    location = start_upload(conn, repo, headers)
    view = memoryview(data)
    for start in range(0, len(data), chunk):
        part = view[start : start + chunk]
        resp = request(
            conn,
            "PATCH",
            _target(location),
            headers={
                **headers,
                "Content-Type": "application/octet-stream",
                "Content-Range": f"{start}-{start + len(part) - 1}",
            },
            body=part,
            expect=(202,),
        )
        location = resp.headers["location"]
    request(conn, "PUT", _with_digest(location, digest), headers=headers, body=b"", expect=(201,))


def blob_exists(
    conn: http.client.HTTPConnection, repo: str, digest: str, headers: Mapping[str, str]
) -> bool:
    """``HEAD`` the blob: True on 200, False on 404.

    On S3 both servers redirect the HEAD to the bucket (distribution 2.8 does):
    it is followed, as docker and paxctl follow it, on a kept-alive connection.
    """
    target = f"/v2/{repo}/blobs/{digest}"
    resp = request(conn, "HEAD", target, headers=headers, expect=(200, 307, 404))
    if resp.status == 307:
        resp = _head_elsewhere(resp.headers["location"])
    return resp.status == 200


#: kept-alive connections to where redirects lead (the S3 endpoint), by host and port
_ELSEWHERE: dict[str, http.client.HTTPConnection] = {}


def _head_elsewhere(url: str) -> Response:
    parts = urllib.parse.urlsplit(url)
    conn = _ELSEWHERE.get(parts.netloc)
    if conn is None:
        conn = _ELSEWHERE[parts.netloc] = http.client.HTTPConnection(parts.netloc, timeout=60)
    try:
        return request(conn, "HEAD", _target(url), expect=(200, 404))
    except (OSError, http.client.HTTPException):
        conn.close()  # a stale kept-alive connection: once more on a new one
        return request(conn, "HEAD", _target(url), expect=(200, 404))


def put_manifest(
    conn: http.client.HTTPConnection,
    repo: str,
    reference: str,
    manifest: bytes,
    media_type: str,
    headers: Mapping[str, str],
) -> None:
    """``PUT /v2/<repo>/manifests/<reference>``."""
    request(
        conn,
        "PUT",
        f"/v2/{repo}/manifests/{reference}",
        headers={**headers, "Content-Type": media_type},
        body=manifest,
        expect=(201,),
    )


_LINK = re.compile(r"<([^>]+)>")


def catalog_page(
    conn: http.client.HTTPConnection, target: str, headers: Mapping[str, str]
) -> tuple[list[str], str | None]:
    """One ``_catalog`` page: its repositories and the next page's target (from ``Link``)."""
    resp = request(conn, "GET", target, headers=headers)
    repos = json.loads(resp.body)["repositories"]
    link = resp.headers.get("link")
    match = _LINK.search(link) if link else None
    return repos, (_target(match.group(1)) if match else None)


def catalog_walk(conn: http.client.HTTPConnection, n: int, headers: Mapping[str, str]) -> int:
    """Walk the whole catalog in pages of ``n``; the number of repositories seen."""
    target: str | None = f"/v2/_catalog?n={n}"
    seen = 0
    while target is not None:
        repos, target = catalog_page(conn, target, headers)
        seen += len(repos)
    return seen


# --- curl ------------------------------------------------------------------------

_CURL_FORMAT = "%{http_code} %{size_download} %{time_total}\\n"


def _curl_base(server: Server) -> list[str]:
    exe = shutil.which("curl")
    if exe is None:
        raise BenchError("curl is not installed")
    # HTTP/1.1 for both: registry clients (docker, containerd, oras) pull blobs over
    # HTTP/1.1, and with TLS curl would otherwise pick HTTP/2 for Go and not for paxd.
    argv = [exe, "-s", "-S", "--http1.1", "-w", _CURL_FORMAT]
    if server.variant.tls:
        argv.append("-k")
    if server.variant.auth:
        argv += ["-u", f"{USER}:{PASSWORD}"]
    return argv


@attrs.frozen
class Transfer:
    """What curl reports of one transfer."""

    status: int
    size: int
    seconds: float


def _parse_curl(stdout: str) -> list[Transfer]:
    transfers = []
    for line in stdout.splitlines():
        status, size, seconds = line.split()
        transfers.append(Transfer(int(status), int(size), float(seconds)))
    return transfers


def curl_download(
    server: Server, target: str, expected_size: int, follow: bool = False
) -> Transfer:
    """``GET`` one URL with curl into /dev/null (*follow*: redirects too, as to S3)."""
    argv = [*_curl_base(server), *(["-L"] if follow else []), "-o", "/dev/null"]
    argv.append(server.base_url + target)
    proc = subprocess.run(argv, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise BenchError(f"curl failed ({proc.returncode}): {proc.stderr.strip()}")
    (t,) = _parse_curl(proc.stdout)
    if t.status != 200 or t.size != expected_size:
        raise BenchError(f"curl GET {target}: status {t.status}, {t.size} bytes")
    return t


def curl_parallel(server: Server, targets: Sequence[str], expected_size: int) -> float:
    """``GET`` all targets at once (``curl --parallel``, one connection each); wall seconds."""
    argv = [
        *_curl_base(server),
        "--parallel",
        "--parallel-immediate",
        "--parallel-max",
        str(len(targets)),
    ]
    for t in targets:
        argv += ["-o", "/dev/null", server.base_url + t]
    start = time.perf_counter()
    proc = subprocess.run(argv, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise BenchError(f"curl --parallel failed ({proc.returncode}): {proc.stderr.strip()}")
    transfers = _parse_curl(proc.stdout)
    bad = [t for t in transfers if t.status != 200 or t.size != expected_size]
    if len(transfers) != len(targets) or bad:
        raise BenchError(f"curl --parallel: {len(transfers)} transfers, unexpected: {bad[:3]}")
    return elapsed


# --- wrk -------------------------------------------------------------------------

_WRK_DONE = """
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"requests":%d,"duration_us":%d,"connect":%d,"read":%d,"write":%d,'
    .. '"status":%d,"timeout":%d,"p50_us":%.1f,"p99_us":%.1f}\\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(99)))
end
"""


@attrs.frozen
class WrkResult:
    """Requests per second and latency percentiles of one wrk run."""

    requests: int
    rate: float
    p50_ms: float
    p99_ms: float


def _lua_string(value: str) -> str:
    return json.dumps(value)  # a JSON string literal is a valid Lua string literal here


def wrk(
    server: Server,
    target: str,
    *,
    method: str,
    headers: Mapping[str, str],
    connections: int,
    seconds: float,
    workdir: Path,
    threads: int = 2,
) -> WrkResult:
    """Run wrk against one URL; :class:`BenchError` if any request failed or got a non-2xx."""
    exe = shutil.which("wrk")
    if exe is None:
        raise BenchError("wrk is not installed")
    lines = [f"wrk.method = {_lua_string(method)}"]
    for name, value in headers.items():
        lines.append(f"wrk.headers[{_lua_string(name)}] = {_lua_string(value)}")
    script = workdir / f"wrk-{method.lower()}-{server.variant.name}.lua"
    script.write_text("\n".join(lines) + "\n" + _WRK_DONE)
    argv = [
        exe,
        f"-t{max(1, min(threads, connections))}",
        f"-c{connections}",
        f"-d{max(1, round(seconds))}s",
        "--timeout",
        "10s",
        "-s",
        str(script),
        server.base_url + target,
    ]
    proc = subprocess.run(argv, capture_output=True, text=True, check=False)
    found = re.search(r"^WRKJSON (.*)$", proc.stdout, re.MULTILINE)
    if proc.returncode != 0 or found is None:
        raise BenchError(f"wrk failed ({proc.returncode}): {proc.stdout}{proc.stderr}")
    s = json.loads(found.group(1))
    errors = {k: s[k] for k in ("connect", "read", "write", "status", "timeout") if s[k]}
    if errors or s["requests"] == 0:
        raise BenchError(f"wrk {method} {target}: {s['requests']} requests, errors {errors}")
    return WrkResult(
        requests=s["requests"],
        rate=s["requests"] / (s["duration_us"] / 1e6),
        p50_ms=s["p50_us"] / 1000,
        p99_ms=s["p99_us"] / 1000,
    )
