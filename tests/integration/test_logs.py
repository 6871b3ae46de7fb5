"""The real daemon's log lines: JSON one object per line, the access log, and no secrets.

``paxd serve`` runs at ``log.level: debug`` with ``log.formatter: json`` (and
``text``); clients log in with a known password, fail with a wrong one, send
a bearer token, push a blob. The whole log is then searched for the
passwords, their base64 forms and every ``Authorization`` value: none may
appear. The admin password of a generated htpasswd file appears exactly
once, in the start that created the file.
"""

from __future__ import annotations

import base64
import hashlib
import json
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import bcrypt
from twisted.trial.unittest import SynchronousTestCase

from tests.tls.support import child_env, free_port, require_daemon, wait_for_port

USER, PASSWORD = "alice", "Corr3ct-Horse-Battery"
WRONG = "Wr0ng-Pony-Staple"
TOKEN = "eyJhbGciOiJIUzI1NiJ9.bearer-token-value"


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def _request(
    url: str, method: str = "GET", authorization: str | None = None, body: bytes | None = None
) -> tuple[int, dict[str, str]]:
    request = urllib.request.Request(url, method=method, data=body)
    if authorization is not None:
        request.add_header("Authorization", authorization)
    try:
        with urllib.request.urlopen(request, timeout=20) as answer:
            answer.read()
            return answer.status, dict(answer.headers)
    except urllib.error.HTTPError as e:
        e.read()
        return e.code, dict(e.headers)


class LogTests(SynchronousTestCase):
    def setUp(self) -> None:
        require_daemon()
        self.dir = Path(self.mktemp()).absolute()
        self.dir.mkdir(parents=True)

    def serve(self, formatter: str, htpasswd: Path) -> tuple[subprocess.Popen[bytes], int, Path]:
        port = free_port()
        config = self.dir / f"{formatter}.yml"
        config.write_text(
            "version: 0.1\n"
            f"log:\n  level: debug\n  formatter: {formatter}\n  fields: {{service: registry}}\n"
            f"storage:\n  filesystem:\n    rootdirectory: {self.dir / 'data'}\n"
            f"http:\n  addr: 127.0.0.1:{port}\n"
            f"auth:\n  htpasswd:\n    realm: r\n    path: {htpasswd}\n    admins: [{USER}]\n"
        )
        log = self.dir / f"{formatter}.log"
        with open(log, "wb") as out:
            process = subprocess.Popen(
                [sys.executable, "-m", "paxd", "serve", str(config)],
                env=child_env(),
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        self.addCleanup(lambda: process.poll() is None and process.kill())
        wait_for_port(port, process=process)
        return process, port, log

    def stop(self, process: subprocess.Popen[bytes]) -> None:
        process.send_signal(signal.SIGTERM)
        self.assertEqual(process.wait(30), 0)

    def exercise(self, port: int) -> None:
        base = f"http://127.0.0.1:{port}"
        good, wrong = _basic(USER, PASSWORD), _basic(USER, WRONG)
        self.assertEqual(_request(f"{base}/v2/", authorization=good)[0], 200)
        self.assertEqual(_request(f"{base}/v2/", authorization=wrong)[0], 401)
        self.assertEqual(_request(f"{base}/v2/", authorization=f"Bearer {TOKEN}")[0], 401)
        blob = bytes(range(256)) * 8192  # 2 MiB: streamed into storage
        digest = "sha256:" + hashlib.sha256(blob).hexdigest()
        status, _ = _request(
            f"{base}/v2/team/app/blobs/uploads/?digest={digest}",
            "POST",
            authorization=good,
            body=blob,
        )
        self.assertEqual(status, 201)

    def assert_no_secret(self, text: str) -> None:
        for secret in (
            PASSWORD,
            WRONG,
            TOKEN,
            base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode(),
            base64.b64encode(f"{USER}:{WRONG}".encode()).decode(),
        ):
            self.assertNotIn(secret, text)
        self.assertNotIn("Basic ", text)
        self.assertNotIn("Bearer", text)

    def htpasswd(self) -> Path:
        path = self.dir / "htpasswd"
        hashed = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=4))
        path.write_bytes(USER.encode() + b":" + hashed + b"\n")
        return path

    def test_json_lines_access_log_and_no_secrets(self) -> None:
        process, port, log = self.serve("json", self.htpasswd())
        self.exercise(port)
        self.stop(process)
        text = log.read_text()
        lines = [json.loads(line) for line in text.splitlines()]  # every line one object
        debug = [line["msg"] for line in lines if line["level"] == "debug"]
        self.assertIn(f"failed login as {USER!r} from 127.0.0.1", debug)
        for line in lines:
            self.assertEqual(list(line)[:4], ["time", "level", "msg", "logger"], line)
            self.assertEqual(line["service"], "registry")
        access = [line for line in lines if line["logger"] == "paxd.access"]
        pushed = [a for a in access if a["method"] == "POST"]
        self.assertEqual(len(pushed), 1, access)
        self.assertEqual(
            {k: pushed[0][k] for k in ("user", "status", "bytes_in")},
            {"user": USER, "status": 201, "bytes_in": 2 * 1024 * 1024},
        )
        self.assertIsInstance(pushed[0]["duration"], float)
        self.assertTrue(pushed[0]["path"].startswith("/v2/team/app/blobs/uploads/?digest="))
        refused = [a for a in access if a["status"] == 401]
        self.assertEqual({a["user"] for a in refused}, {None})
        self.assert_no_secret(text)

    def test_text_has_no_secrets_either(self) -> None:
        process, port, log = self.serve("text", self.htpasswd())
        self.exercise(port)
        self.stop(process)
        text = log.read_text()
        self.assertIn(f'{USER} "POST /v2/team/app/blobs/uploads/', text)
        self.assert_no_secret(text)

    def test_generated_password_is_shown_once(self) -> None:
        htpasswd = self.dir / "new" / "htpasswd"
        check = subprocess.run(
            [sys.executable, "-m", "paxd", "check-config", str(self.write_check(htpasswd))],
            env=child_env(),
            capture_output=True,
            text=True,
            timeout=60,
        )
        self.assertEqual(check.returncode, 0, check.stderr)
        self.assertFalse(htpasswd.exists())  # check-config creates nothing
        process, _, log = self.serve("json", htpasswd)
        self.stop(process)
        created = [json.loads(line) for line in log.read_text().splitlines()]
        shown = [line for line in created if "password" in line]
        self.assertEqual(len(shown), 1, shown)
        password = shown[0]["password"]
        self.assertTrue(bcrypt.checkpw(password.encode(), self.hash_of(htpasswd, "admin")))
        self.assertEqual(log.read_text().count(password), 2)  # msg and its field, one line
        again, _, log = self.serve("text", htpasswd)
        self.stop(again)
        self.assertNotIn(password, log.read_text())
        self.assertNotIn(password, check.stdout + check.stderr)

    def write_check(self, htpasswd: Path) -> Path:
        path = self.dir / "check.yml"
        path.write_text(
            "version: 0.1\nstorage: inmemory\nhttp: {addr: '127.0.0.1:1'}\n"
            f"auth:\n  htpasswd:\n    realm: r\n    path: {htpasswd}\n"
        )
        return path

    def hash_of(self, htpasswd: Path, user: str) -> bytes:
        for line in htpasswd.read_bytes().splitlines():
            name, _, hashed = line.partition(b":")
            if name == user.encode():
                return b"$2b$" + hashed[4:]
        raise AssertionError(f"{user} not in {htpasswd}")
