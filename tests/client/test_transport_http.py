"""The transport over real sockets: a scripted HTTP server on loopback (in a thread).

What the registries in the integration tests do not exercise: Bearer token
challenges, credentials sent up front after the first 401, redirects that
leave the registry's host (no credentials follow), one connection kept alive
for many requests, and a request whose connection broke re-sent with its body
rewound.
"""

from __future__ import annotations

import io
import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from twisted.trial.unittest import SynchronousTestCase

from paxd.client.config import Credentials, parse_server
from paxd.client.errors import PaxctlError
from paxd.client.transport import Transport

Script = Callable[["Handler"], None]


class Handler(BaseHTTPRequestHandler):
    """Answers by the server's script; records every request."""

    protocol_version = "HTTP/1.1"
    server: Server

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def answer(self, status: int, body: bytes = b"", **headers: str) -> None:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name.replace("_", "-"), value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def handle_any(self) -> None:
        self.server.seen.append(
            {
                "method": self.command,
                "path": self.path,
                "authorization": self.headers.get("Authorization"),
                "port": self.client_address[1],
            }
        )
        self.server.script(self)

    do_GET = do_HEAD = do_PUT = do_POST = do_PATCH = do_DELETE = handle_any


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, script: Script) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.script = script
        self.seen: list[dict[str, Any]] = []
        self.state: dict[str, Any] = {}

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.server_address[1]}"


class TransportHTTPTests(SynchronousTestCase):
    def serve(self, script: Script) -> Server:
        server = Server(script)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        self.addCleanup(thread.join, 5)
        self.addCleanup(server.server_close)
        self.addCleanup(server.shutdown)
        return server

    def transport(self, server: Server, **kw: Any) -> Transport:
        t = Transport(parse_server(f"http://{server.address}"), **kw)
        self.addCleanup(t.close)
        return t

    def test_basic_after_a_challenge_then_up_front(self) -> None:
        def script(h: Handler) -> None:
            h.body()
            if h.headers.get("Authorization") != "Basic " + Credentials("u", "p").encode():
                h.answer(401, WWW_Authenticate='Basic realm="r"')
            else:
                h.answer(200, b"{}")

        server = self.serve(script)
        t = self.transport(server, credentials=Credentials("u", "p"))
        self.assertEqual(t.request("GET", "/v2/").status, 200)
        self.assertEqual(t.request("PUT", "/v2/x", body=b"data").status, 200)
        self.assertTrue(t.auth_required)
        # one 401, then the header up front: the PUT's body went once
        self.assertEqual([s["authorization"] is None for s in server.seen], [True, False, False])

    def test_bearer_token_from_the_realm(self) -> None:
        def script(h: Handler) -> None:
            if h.path.startswith("/token"):
                ok = h.headers.get("Authorization") == "Basic " + Credentials("u", "p").encode()
                self.assertIn("service=reg", h.path)
                self.assertIn("scope=repository%3Aa%3Apull", h.path)
                h.answer(200 if ok else 401, json.dumps({"token": "T0K"}).encode())
            elif h.headers.get("Authorization") == "Bearer T0K":
                h.answer(200, b"{}")
            else:
                realm = f"http://{h.server.address}/token"
                h.answer(
                    401,
                    WWW_Authenticate=f'Bearer realm="{realm}",service="reg",'
                    'scope="repository:a:pull"',
                )

        server = self.serve(script)
        t = self.transport(server, credentials=Credentials("u", "p"))
        self.assertEqual(t.request("GET", "/v2/a/tags/list").status, 200)
        self.assertEqual(t.request("GET", "/v2/a/tags/list").status, 200)
        self.assertEqual(
            [(s["path"].split("?")[0], s["authorization"]) for s in server.seen][-2:],
            [("/v2/a/tags/list", "Bearer T0K"), ("/v2/a/tags/list", "Bearer T0K")],
        )

    def test_redirect_elsewhere_drops_the_credentials(self) -> None:
        storage = self.serve(lambda h: h.answer(200, b"blob bytes"))

        def script(h: Handler) -> None:
            if h.headers.get("Authorization") is None:
                h.answer(401, WWW_Authenticate='Basic realm="r"')
            else:
                h.answer(307, Location=f"http://{storage.address}/bucket/blob")

        server = self.serve(script)
        t = self.transport(server, credentials=Credentials("u", "p"))
        resp = t.request("GET", "/v2/a/blobs/sha256:00", stream=True)
        self.assertEqual((resp.status, b"".join(resp.iter_body(4))), (200, b"blob bytes"))
        resp.close()
        self.assertEqual([s["authorization"] for s in storage.seen], [None])

    def test_one_connection_kept_alive(self) -> None:
        server = self.serve(lambda h: h.answer(200, b"{}"))
        t = self.transport(server)
        for _ in range(5):
            t.request("GET", "/v2/")
        self.assertEqual(len({s["port"] for s in server.seen}), 1)

    def test_broken_connection_resent_with_the_body_rewound(self) -> None:
        def script(h: Handler) -> None:
            data = h.body()
            h.server.state.setdefault("bodies", []).append(data)
            if len(h.server.state["bodies"]) == 1:
                h.close_connection = True
                h.connection.shutdown(2)  # no answer at all: the client sees it broken
                return
            h.answer(201)

        server = self.serve(script)
        t = self.transport(server)
        body = io.BytesIO(b"0123456789" * 1000)
        resp = t.request("PATCH", "/v2/a/blobs/uploads/u", body=body, length=10_000)
        self.assertEqual(resp.status, 201)
        self.assertEqual(server.state["bodies"], [b"0123456789" * 1000] * 2)

    def test_a_server_that_is_not_http(self) -> None:
        def script(h: Handler) -> None:
            h.wfile.write(b"garbage\r\n\r\n")
            h.close_connection = True

        server = self.serve(script)
        t = self.transport(server)
        with self.assertRaises(PaxctlError) as caught:
            t.request("GET", "/v2/")
        self.assertIn(server.address, str(caught.exception))
