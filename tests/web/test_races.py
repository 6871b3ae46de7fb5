"""Requests racing each other through the real HTTP API: 201, 202, 204 or 404, never 500.

Each round sends two (or three) requests at once to the real Site in memory
and lets their storage calls interleave at random
(:class:`~tests.support.interleave.InterleavingDriver`, a seed per round),
then checks the answers and audits storage: every tag resolves to a
manifest the repository holds, every manifest's data is there, no upload is
left behind, and the tag listing shows only tags that answer 200.  The same
rounds run over memory and over the filesystem driver.
"""

from __future__ import annotations

import json
import os
import random
from collections.abc import Iterable, Mapping
from typing import Any

import attrs
from twisted.internet.address import IPv4Address
from twisted.internet.defer import Deferred
from twisted.internet.error import ConnectionDone
from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from paxd.registry import layout
from paxd.registry.links import read_link
from paxd.registry.reference import parse_digest
from paxd.registry.registry import Registry
from paxd.storage.filesystem import FilesystemStorage
from paxd.storage.interface import IStorageDriver, PathNotFound
from paxd.storage.memory import MemoryStorage
from paxd.threadpool import SynchronousRunner
from paxd.web.request import RegistrySite
from paxd.web.root import RegistryRoot
from tests.support.interleave import InterleavingDriver
from tests.web.support import OCI_MANIFEST, sha256

#: rounds of each race (each a different interleaving); PAXD_RACE_ROUNDS for more
ROUNDS = int(os.environ.get("PAXD_RACE_ROUNDS", "1000"))
#: the filesystem's fsyncs make its rounds slower: fewer unless asked
FILESYSTEM_ROUNDS = int(os.environ.get("PAXD_RACE_ROUNDS", "200"))
NAME = "lib/app"


Request = tuple[str, str, "bytes | None", Mapping[str, str]]


@attrs.frozen
class RawAnswer:
    """A response read back from the channel's transport."""

    code: int
    headers: dict[str, str]
    body: bytes

    @classmethod
    def parse(cls, raw: bytes) -> RawAnswer:
        head, _, body = raw.partition(b"\r\n\r\n")
        if not head:
            raise AssertionError("no answer at all (the request is still pending)")
        status, *lines = head.decode("latin-1").split("\r\n")
        headers = {}
        for line in lines:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        return cls(int(status.split()[1]), headers, body)

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())

    def json(self) -> Any:
        return json.loads(self.body)


class RaceMixin:
    """Rounds of racing requests over :meth:`make_storage`'s driver."""

    rounds = ROUNDS

    def make_storage(self) -> IStorageDriver:
        raise NotImplementedError

    def setUp(self) -> None:
        self.driver = InterleavingDriver(self.make_storage())
        self.registry = Registry(self.driver, delete_enabled=True)
        case: Any = self
        case.successResultOf(self.registry.start())
        # the real Site and channel, fed raw HTTP: much cheaper than an in-memory agent
        self.site = RegistrySite(
            RegistryRoot(self.registry, headers=None),
            access_log=False,
            reactor=MemoryReactorClock(),
        )
        self.config = self.blob(b'{"architecture":"amd64","os":"linux"}')
        self.layer = self.blob(b"layer bytes" * 100)
        self.subject = ("", 0)
        subject = self.manifest(-1)
        self.subject = (sha256(subject), len(subject))
        put = self.one(
            "PUT",
            f"/v2/{NAME}/manifests/{self.subject[0]}",
            subject,
            **{"Content-Type": OCI_MANIFEST},
        )
        assert put.code == 201, put.body

    # -- requests ---------------------------------------------------------------
    def at_once(self, *requests: Request, shuffle: int | None = None) -> list[RawAnswer]:
        """Send *requests* together; their storage calls interleave; every answer.

        With *shuffle*, they arrive in an order chosen by that seed.
        """
        self.driver.interleaving = True
        order = list(range(len(requests)))
        if shuffle is not None:
            random.Random(shuffle).shuffle(order)
        transports: dict[int, StringTransport] = {}
        channels = []
        for i in order:
            method, path, body, headers = requests[i]
            channel = self.site.buildProtocol(IPv4Address("TCP", "127.0.0.1", 40000))
            assert channel is not None
            transport = StringTransport()
            channel.makeConnection(transport)
            lines = [f"{method} {path} HTTP/1.1", "Host: registry.test"]
            lines += [f"{k}: {v}" for k, v in headers.items()]
            if body is not None:
                lines.append(f"Content-Length: {len(body)}")
            channel.dataReceived(("\r\n".join(lines) + "\r\n\r\n").encode() + (body or b""))
            transports[i] = transport
            channels.append(channel)
        while self.driver.step():
            pass
        self.driver.interleaving = False
        for channel in channels:
            # closed, so that its timeouts leave the reactor's queue
            channel.connectionLost(Failure(ConnectionDone()))
        return [RawAnswer.parse(transports[i].value()) for i in range(len(requests))]

    def one(self, method: str, path: str, body: bytes | None = None, **headers: str) -> RawAnswer:
        (answer,) = self.at_once((method, path, body, headers))
        return answer

    def blob(self, data: bytes) -> str:
        digest = sha256(data)
        answer = self.one("POST", f"/v2/{NAME}/blobs/uploads/?digest={digest}", data)
        assert answer.code == 201, answer.body
        return digest

    def manifest(self, round_: int) -> bytes:
        """The manifest of a round; every other one refers to the subject (a referrer)."""
        document: dict[str, Any] = {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": self.config,
                "size": 37,
            },
            "layers": [
                {
                    "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                    "digest": self.layer,
                    "size": 1100,
                }
            ],
            "annotations": {"round": str(round_)},
        }
        if round_ % 2 and self.subject[0]:
            document["subject"] = {
                "mediaType": OCI_MANIFEST,
                "digest": self.subject[0],
                "size": self.subject[1],
            }
        return json.dumps(document).encode()

    # -- checks -----------------------------------------------------------------
    def assertStatuses(
        self, answers: Iterable[RawAnswer], allowed: Iterable[set[int]], seed: int
    ) -> None:
        for answer, codes in zip(answers, allowed, strict=True):
            case: Any = self
            case.assertIn(answer.code, codes, f"seed {seed}: {answer.code} {answer.body[:300]!r}")

    def audit(self) -> list[str]:
        """What is wrong in storage: dangling tags, manifests without data, leftover uploads."""
        inner = self.driver.inner
        case: Any = self
        done = lambda d: case.successResultOf(d)  # noqa: E731 - every inner call fires at once
        problems = []
        try:
            tags = done(inner.children(layout.tags(NAME)))
        except Exception:
            tags = []
        for tag in tags:
            digest = done(
                Deferred.fromCoroutine(read_link(inner, layout.tag_current_link(NAME, tag)))
            )
            if digest is None:
                problems.append(f"tag {tag} has no current link")
            elif not self._exists(layout.revision_link(NAME, digest)):
                problems.append(f"tag {tag} points at {digest}, which {NAME} no longer holds")
        try:
            revisions = done(inner.children(layout.revisions(NAME)))
        except Exception:
            revisions = []
        for hex_ in revisions[:50]:
            digest = parse_digest("sha256:" + hex_)
            if self._exists(layout.revision_link(NAME, digest)) and not self._exists(
                layout.blob_data(digest)
            ):
                problems.append(f"manifest {digest} has no data")
        if self.subject[0]:
            subject = parse_digest(self.subject[0])
            try:
                referrers = done(inner.children(layout.referrers(NAME, subject) + "/sha256"))
            except Exception:
                referrers = []
            for hex_ in referrers:
                digest = parse_digest("sha256:" + hex_)
                if not self._exists(layout.revision_link(NAME, digest)):
                    problems.append(f"referrer link of {digest}, which {NAME} no longer holds")
        try:
            uploads = done(inner.children(layout.uploads(NAME)))
        except Exception:
            uploads = []
        problems.extend(f"upload {u} left behind" for u in uploads)
        if self.registry._uploads:
            problems.append(f"upload states left behind: {list(self.registry._uploads)}")
        return problems

    def _exists(self, path: str) -> bool:
        found: list[bool] = []
        d = self.driver.inner.stat(path)
        d.addCallbacks(lambda _: found.append(True), lambda f: f.trap(PathNotFound))
        return bool(found)

    def assertListedTagsResolve(self, seed: int) -> None:
        listing = self.one("GET", f"/v2/{NAME}/tags/list")
        case: Any = self
        if listing.code == 404:
            return
        for tag in listing.json()["tags"]:
            got = self.one("GET", f"/v2/{NAME}/manifests/{tag}", Accept=OCI_MANIFEST)
            case.assertEqual(got.code, 200, f"seed {seed}: listed tag {tag} answers {got.code}")

    # -- the races --------------------------------------------------------------
    def test_manifest_put_racing_delete_by_digest(self) -> None:
        """Issue 13's first race: PUT answered 500 in 45 of 60 rounds, DELETE in 2."""
        case: Any = self
        outcomes: dict[tuple[int, int], int] = {}
        for round_ in range(self.rounds):
            self.driver.reseed(round_)
            content = self.manifest(round_ // 2)
            digest = sha256(content)
            tag = f"1.0.{round_ % 7}"
            put = ("PUT", f"/v2/{NAME}/manifests/{tag}", content, {"Content-Type": OCI_MANIFEST})
            if round_ % 2:
                # the manifest is there already: the PUT rewrites links the DELETE removes
                case.assertEqual(self.one(*put[:3], **put[3]).code, 201)
            delete = ("DELETE", f"/v2/{NAME}/manifests/{digest}", None, {})
            answers = self.at_once(put, delete, shuffle=round_)
            self.assertStatuses(answers, [{201}, {202, 404}], round_)
            key = (answers[0].code, answers[1].code)
            outcomes[key] = outcomes.get(key, 0) + 1
            case.assertEqual(self.audit(), [], f"seed {round_}")
            if round_ % 50 == 0:
                self.assertListedTagsResolve(round_)
            if answers[1].code == 404:
                # the DELETE came first: the next round starts without this manifest
                case.assertEqual(self.one(*delete[:3]).code, 202)
        # both orders happened, or the race was not raced
        case.assertEqual(set(outcomes), {(201, 202), (201, 404)}, outcomes)

    def test_upload_delete_racing_patch(self) -> None:
        """Issue 13's second race: 500 in 10 of 40, and the upload directory left behind."""
        case: Any = self
        seen: set[tuple[int, ...]] = set()
        for round_ in range(self.rounds):
            self.driver.reseed(round_)
            started = self.one("POST", f"/v2/{NAME}/blobs/uploads/")
            case.assertEqual(started.code, 202)
            location = started.header("Location")
            assert location is not None
            chunk = b"chunk %d " % round_ * 50
            requests: list[tuple[str, str, bytes | None, Mapping[str, str]]] = [
                ("PATCH", location, chunk, {"Content-Type": "application/octet-stream"}),
                ("DELETE", location, None, {}),
            ]
            allowed = [{202, 404}, {204}]
            if round_ % 3 == 0:
                # and the upload's completion at the same time: the DELETE may come too late
                requests.append(("PUT", location + "?digest=" + sha256(chunk), b"", {}))
                allowed = [{202, 404}, {204, 404}, {201, 400, 404}]
            answers = self.at_once(*requests, shuffle=round_)
            self.assertStatuses(answers, allowed, round_)
            seen.add(tuple(a.code for a in answers))
            case.assertEqual(self.audit(), [], f"seed {round_}")
            case.assertEqual(self.one("GET", location).code, 404, f"seed {round_}")
        case.assertIn((202, 204), seen)
        case.assertIn((404, 204), seen)


class MemoryRaceTests(RaceMixin, SynchronousTestCase):
    def make_storage(self) -> IStorageDriver:
        return MemoryStorage()


class FilesystemRaceTests(RaceMixin, SynchronousTestCase):
    rounds = FILESYSTEM_ROUNDS

    def make_storage(self) -> IStorageDriver:
        return FilesystemStorage(self.mktemp(), SynchronousRunner())
