"""Pieces of the transport that need no server: challenges, error bodies, progress."""

from __future__ import annotations

import http.client
import io

from twisted.trial.unittest import SynchronousTestCase

from paxd.client.progress import Bar, Progress, human
from paxd.client.transport import Response, api_error, parse_challenge


def response(status: int, body: bytes, reason: str = "") -> Response:
    return Response(status, reason, http.client.HTTPMessage(), body, "http://x/v2/")


class ChallengeTests(SynchronousTestCase):
    def test_basic(self) -> None:
        self.assertEqual(
            parse_challenge('Basic realm="basic-realm"'), ("basic", {"realm": "basic-realm"})
        )

    def test_bearer(self) -> None:
        scheme, params = parse_challenge(
            'Bearer realm="https://auth.example.com/token",service="registry",'
            'scope="repository:a/b:pull,push"'
        )
        self.assertEqual(scheme, "bearer")
        self.assertEqual(
            params,
            {
                "realm": "https://auth.example.com/token",
                "service": "registry",
                "scope": "repository:a/b:pull,push",
            },
        )


class ErrorTests(SynchronousTestCase):
    def test_registry_error(self) -> None:
        e = api_error(
            response(404, b'{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}'),
            "a:1",
        )
        self.assertEqual(str(e), "MANIFEST_UNKNOWN: manifest unknown (a:1)")
        self.assertEqual(e.status, 404)

    def test_several_errors(self) -> None:
        body = b'{"errors":[{"code":"A","message":"one"},{"code":"B","message":"two"}]}'
        self.assertEqual(str(api_error(response(400, body))), "A: one (and 1 more)")

    def test_not_json(self) -> None:
        e = api_error(response(502, b"<html>bad gateway</html>", "Bad Gateway"))
        self.assertEqual(str(e), "HTTP 502: Bad Gateway")


class TTY(io.StringIO):
    def isatty(self) -> bool:
        return True


class ProgressTests(SynchronousTestCase):
    def test_silent_when_not_a_terminal(self) -> None:
        stream = io.StringIO()
        progress = Progress(stream)
        with progress.bar("logo.png", 100) as bar:
            bar.update(100)
        progress.note("x")
        self.assertEqual(stream.getvalue(), "")

    def test_bar_on_a_terminal(self) -> None:
        """Bytes done of the total, the percentage, the rate and the time left; 100% at the end."""
        stream = TTY()
        bar = Bar(stream, "content.tar.gz", 2 * 1024 * 1024, interval=0)
        with bar:
            bar.update(1024 * 1024)
        frames = stream.getvalue().split("\r")
        half = next(f for f in frames if " 50%" in f)
        self.assertIn("1.00M/2.00M", half)
        self.assertRegex(half, r"\[\d\d:\d\d<\d\d:\d\d, [\d.]+[kMG]?B/s\]")  # elapsed<left, rate
        self.assertTrue(frames[-1].startswith("content.tar.gz"))
        self.assertIn("100%", frames[-1])
        self.assertIn("2.00M/2.00M", frames[-1])
        self.assertTrue(frames[-1].endswith("\n"))

    def test_reset_moves_the_bar_back(self) -> None:
        """A retried chunk does not count twice."""
        stream = TTY()
        bar = Bar(stream, "x", 100, interval=0)
        bar.update(60)
        bar.reset(20)
        self.assertEqual(bar.done, 20)
        bar.update(10)
        self.assertIn("30.0/100", stream.getvalue().split("\r")[-1])
        bar.__exit__(None, None, None)

    def test_long_labels_are_shortened(self) -> None:
        stream = TTY()
        with Progress(stream).bar("charts/a-very-long-chart-name-1.2.3.tgz", 10) as bar:
            bar.update(10)
        self.assertIn("charts/a-very-long-ch...", stream.getvalue())

    def test_human(self) -> None:
        self.assertEqual(human(10), "10 B")
        self.assertEqual(human(1536), "1.5 KiB")
