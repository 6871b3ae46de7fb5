"""The port-80 site: ACME HTTP-01 answers, and 308 to https for everything else."""

from __future__ import annotations

from typing import Any

from treq.testing import StubTreq
from twisted.trial.unittest import SynchronousTestCase

from paxd.tls.plain import PlainHTTPRoot, RedirectToHTTPS
from paxd.tls.responders import HTTP01Responder


class PlainSiteTests(SynchronousTestCase):
    """Requests through the real resource tree, in memory."""

    def setUp(self) -> None:
        self.responder = HTTP01Responder()
        self.root = PlainHTTPRoot(RedirectToHTTPS(8443, "default.example"), self.responder)
        self.treq: Any = StubTreq(self.root)

    def request(self, method: str, url: str, **kwargs: Any) -> tuple[int, dict[str, str], bytes]:
        response = self.successResultOf(
            self.treq.request(method, url, allow_redirects=False, **kwargs)
        )
        body = self.successResultOf(response.content())
        headers = {
            k.decode().lower(): v[0].decode() for k, v in response.headers.getAllRawHeaders()
        }
        return response.code, headers, body

    def test_challenge(self) -> None:
        self.responder.start_responding("registry.example", "tok-1", "tok-1.thumb")
        code, headers, body = self.request(
            "GET", "http://registry.example/.well-known/acme-challenge/tok-1"
        )
        self.assertEqual((code, body), (200, b"tok-1.thumb"))
        self.assertEqual(headers["content-type"], "text/plain")

    def test_unknown_token(self) -> None:
        self.responder.start_responding("registry.example", "tok-1", "tok-1.thumb")
        code, _, body = self.request(
            "GET", "http://registry.example/.well-known/acme-challenge/tok-2"
        )
        self.assertEqual(code, 404)
        self.assertNotIn(b"tok-1", body)

    def test_stopped(self) -> None:
        self.responder.start_responding("registry.example", "tok-1", "tok-1.thumb")
        self.responder.stop_responding("registry.example", "tok-1")
        code, _, _ = self.request("GET", "http://registry.example/.well-known/acme-challenge/tok-1")
        self.assertEqual(code, 404)

    def test_below_token(self) -> None:
        self.responder.start_responding("registry.example", "tok-1", "tok-1.thumb")
        code, _, _ = self.request(
            "GET", "http://registry.example/.well-known/acme-challenge/tok-1/x"
        )
        self.assertEqual(code, 404)

    def test_redirect(self) -> None:
        """Same host (without the port 80), the TLS port, same path and query."""
        code, headers, _ = self.request(
            "GET",
            "http://registry.example:80/v2/team/app/manifests/1.0?n=1",
            headers={"Authorization": "Basic YWRtaW46c2VjcmV0"},
        )
        self.assertEqual(code, 308)
        self.assertEqual(
            headers["location"], "https://registry.example:8443/v2/team/app/manifests/1.0?n=1"
        )

    def test_redirect_every_method(self) -> None:
        for method in ("HEAD", "POST", "PUT", "PATCH", "DELETE"):
            code, headers, _ = self.request(method, "http://registry.example/v2/x/blobs/uploads/")
            self.assertEqual(code, 308, method)
            self.assertEqual(
                headers["location"], "https://registry.example:8443/v2/x/blobs/uploads/"
            )

    def test_well_known_other(self) -> None:
        """Only acme-challenge is special under /.well-known."""
        code, headers, _ = self.request("GET", "http://registry.example/.well-known/security.txt")
        self.assertEqual(code, 308)
        self.assertEqual(
            headers["location"], "https://registry.example:8443/.well-known/security.txt"
        )

    def test_root(self) -> None:
        code, headers, _ = self.request("GET", "http://registry.example/")
        self.assertEqual(code, 308)
        self.assertEqual(headers["location"], "https://registry.example:8443/")

    def test_ipv6_host(self) -> None:
        code, headers, _ = self.request("GET", "http://127.0.0.1/v2/", headers={"Host": "[::1]:80"})
        self.assertEqual(code, 308)
        self.assertEqual(headers["location"], "https://[::1]:8443/v2/")

    def test_bad_host(self) -> None:
        """A Host header that would make a strange Location is refused."""
        code, headers, _ = self.request(
            "GET", "http://registry.example/v2/", headers={"Host": "evil.example/x?"}
        )
        self.assertEqual(code, 400)
        self.assertNotIn("location", headers)

    def test_default_port(self) -> None:
        root = PlainHTTPRoot(RedirectToHTTPS(443), None)
        response = self.successResultOf(
            StubTreq(root).get(  # type: ignore[attr-defined]
                "http://registry.example/v2/", allow_redirects=False
            )
        )
        self.assertEqual(response.code, 308)
        self.assertEqual(
            response.headers.getRawHeaders("location"), ["https://registry.example/v2/"]
        )

    def test_no_responder(self) -> None:
        """Without ACME (certificate files), challenges are redirected like everything else."""
        root = PlainHTTPRoot(RedirectToHTTPS(443), None)
        response = self.successResultOf(
            StubTreq(root).get(  # type: ignore[attr-defined]
                "http://registry.example/.well-known/acme-challenge/x", allow_redirects=False
            )
        )
        self.assertEqual(response.code, 308)
