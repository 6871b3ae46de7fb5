"""Driving the real registry site in memory: StubTreq over a RegistrySite, no sockets."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from treq.testing import StubTreq
from twisted.internet.address import IPv4Address
from twisted.internet.testing import StringTransport
from twisted.trial.unittest import SynchronousTestCase
from twisted.web.resource import IResource

from paxd.access import Access
from paxd.registry.registry import Registry
from paxd.storage.memory import MemoryStorage
from paxd.web.api import APIResource
from paxd.web.request import RegistrySite
from paxd.web.root import RegistryRoot

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_EMPTY = "application/vnd.oci.empty.v1+json"
SECURITY_HEADERS = {
    "X-Content-Type-Options": ["nosniff"],
    "X-Frame-Options": ["DENY"],
    "Content-Security-Policy": ["img-src 'self'; script-src 'self'; style-src 'self'"],
}


def sha256(data: bytes) -> str:
    """``sha256:<hex>`` of *data*."""
    return "sha256:" + hashlib.sha256(data).hexdigest()


def site_client(root: IResource, *, headers: Mapping[str, Iterable[str]] | None) -> StubTreq:
    """A StubTreq whose in-memory server is a real :class:`RegistrySite` around *root*."""
    client = StubTreq(root)
    agent = client._agent
    # RequestTraversalAgent builds a plain Site; swap in ours (same reactor), so that
    # RegistryChannel and RegistryRequest (streamed bodies, common headers, JSON 500s)
    # are what is tested.
    agent._serverFactory = RegistrySite(
        root,
        headers=headers,
        reactor=agent._memoryReactor,
    )
    return client


class Answer:
    """A finished response: status, headers and the whole body."""

    def __init__(self, code: int, headers: Any, body: bytes) -> None:
        self.code = code
        self._headers = headers
        self.body = body

    def header(self, name: str) -> str | None:
        """The single value of header *name* (None if absent)."""
        values = self._headers.getRawHeaders(name)
        if values is None:
            return None
        assert len(values) == 1, (name, values)
        return str(values[0])

    def headers(self, name: str) -> list[str] | None:
        """All values of header *name*."""
        values = self._headers.getRawHeaders(name)
        return [str(v) for v in values] if values is not None else None

    def json(self) -> Any:
        """The body as JSON."""
        return json.loads(self.body)

    def error_code(self) -> str:
        """The first error code of distribution's error document."""
        document = self.json()
        return str(document["errors"][0]["code"])


class RegistryWebTestCase(SynchronousTestCase):
    """A real Registry over MemoryStorage behind a real RegistrySite, driven by StubTreq."""

    access: Access | None = None
    headers: Mapping[str, Iterable[str]] | None = SECURITY_HEADERS

    def make_storage(self) -> MemoryStorage:
        """The registry's storage (a subclass may fail on purpose)."""
        return MemoryStorage()

    def setUp(self) -> None:
        self.storage = self.make_storage()
        self.registry = Registry(self.storage, delete_enabled=True, max_page=100)
        self.successResultOf(self.registry.start())
        factory: Callable[[bytes], IResource] | None = None
        if self.access is not None:
            access = self.access
            factory = lambda prefix: APIResource(self.registry, access, prefix)  # noqa: E731
        self.root = RegistryRoot(self.registry, headers=self.headers, api_factory=factory)
        self.client = site_client(self.root, headers=self.headers)

    def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        allow_redirects: bool = True,
    ) -> Answer:
        """Send one request to ``http://registry.test<path>`` and read the whole answer."""
        url = "http://registry.test" + path
        d = self.client.request(
            method,
            url,
            data=body,
            headers={k: [v] for k, v in (headers or {}).items()},
            allow_redirects=allow_redirects,
        )
        self.client.flush()
        response = self.successResultOf(d)
        content = self.client.content(response)
        self.client.flush()
        data = self.successResultOf(content)
        return Answer(response.code, response.headers, data)

    def assertError(self, answer: Answer, status: int, code: str) -> None:
        """*answer* is distribution's error document with *code*, with status *status*."""
        self.assertEqual((answer.code, answer.error_code()), (status, code), answer.body[:500])
        self.assertEqual(answer.header("Content-Type"), "application/json")

    # -- pushing ---------------------------------------------------------------
    def push_blob(self, name: str, data: bytes, prefix: str = "/v2") -> str:
        """Push *data* monolithically; its digest."""
        digest = sha256(data)
        answer = self.request("POST", f"{prefix}/{name}/blobs/uploads/?digest={digest}", data)
        self.assertEqual(answer.code, 201, answer.body)
        return digest

    def image_manifest(self, name: str, layers: list[bytes], **extra: Any) -> bytes:
        """Push a config and *layers*; an OCI image manifest naming them (not pushed)."""
        config = b'{"architecture":"amd64","os":"linux"}'
        document: dict[str, Any] = {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {
                "mediaType": OCI_CONFIG,
                "digest": self.push_blob(name, config),
                "size": len(config),
            },
            "layers": [
                {"mediaType": OCI_LAYER, "digest": self.push_blob(name, layer), "size": len(layer)}
                for layer in layers
            ],
        }
        document.update(extra)
        return json.dumps(document).encode()

    def put_manifest(self, name: str, reference: str, content: bytes) -> Answer:
        """PUT *content* as an OCI manifest."""
        return self.request(
            "PUT",
            f"/v2/{name}/manifests/{reference}",
            content,
            {"Content-Type": OCI_MANIFEST},
        )


def raw_exchange(site: RegistrySite, data: bytes) -> bytes:
    """Feed raw request bytes to a new connection of *site*; the raw bytes written back."""
    channel = site.buildProtocol(IPv4Address("TCP", "127.0.0.1", 40000))
    assert channel is not None
    transport = StringTransport()
    channel.makeConnection(transport)
    channel.dataReceived(data)
    return bytes(transport.value())
