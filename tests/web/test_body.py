"""RequestBody on its own: a reader fed chunk by chunk, holding and releasing its connection."""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase
from zope.interface.verify import verifyObject

from paxd.storage.interface import IReader
from paxd.web.body import BodyIncomplete, RequestBody

KiB = 1024


class Owner:
    """Records what the body asks of its connection."""

    def __init__(self) -> None:
        self.events: list[str] = []

    @property
    def held(self) -> bool:
        holds = [e for e in self.events if e in ("hold", "read")]
        return holds[-1] == "hold"

    def body_held(self, held: bool) -> None:
        self.events.append("hold" if held else "read")

    def body_demanded(self) -> None:
        self.events.append("demanded")


class RequestBodyTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.owner = Owner()
        self.body = RequestBody(10 * KiB, self.owner, read_ahead=4 * KiB)

    def test_provides_ireader(self) -> None:
        self.assertTrue(verifyObject(IReader, self.body))
        self.assertEqual(self.body.size, 10 * KiB)
        self.assertEqual(RequestBody(None, self.owner).size, 0)

    def test_held_until_first_read(self) -> None:
        # nothing is read from the connection before the endpoint asks
        self.assertEqual(self.owner.events, ["hold"])
        self.body.feed(b"x" * 100)  # what arrived with the headers is kept
        self.assertEqual(self.owner.events, ["hold"])
        d = self.body.read(1000)
        self.assertEqual(self.owner.events, ["hold", "demanded", "read"])
        self.assertNoResult(d)
        self.body.feed(b"y" * 900)
        self.assertEqual(self.successResultOf(d), b"x" * 100 + b"y" * 900)

    def test_read_ahead_is_bounded(self) -> None:
        d = self.body.read(2 * KiB)
        self.body.feed(b"a" * (3 * KiB))
        self.assertEqual(self.successResultOf(d), b"a" * (2 * KiB))
        self.assertFalse(self.owner.held)  # 1 KiB buffered: still reading ahead
        self.body.feed(b"b" * (3 * KiB))
        self.assertTrue(self.owner.held)  # 4 KiB buffered: the reader lags, hold
        self.assertEqual(self.successResultOf(self.body.read(3 * KiB)), b"a" * KiB + b"b" * 2 * KiB)
        self.assertFalse(self.owner.held)  # caught up: read again

    def test_end(self) -> None:
        d = self.body.read(100)
        self.body.feed(b"abc")
        self.assertNoResult(d)
        self.body.finish()
        self.assertEqual(self.successResultOf(d), b"abc")
        self.assertEqual(self.successResultOf(self.body.read(100)), b"")
        self.assertTrue(self.body.complete)
        self.assertFalse(self.owner.held)

    def test_failure_reaches_the_pending_read(self) -> None:
        d = self.body.read(100)
        self.body.feed(b"abc")
        self.body.fail(BodyIncomplete(3, 10 * KiB))
        failure = self.failureResultOf(d, BodyIncomplete)
        self.assertIn("after 3 of 10240 bytes", str(failure.value))
        self.failureResultOf(self.body.read(1), BodyIncomplete)
        self.assertTrue(self.body.failed)

    def test_close_answers_a_pending_read_and_holds(self) -> None:
        d = self.body.read(100)
        self.body.close()
        self.assertEqual(self.successResultOf(d), b"")
        self.assertTrue(self.owner.held)
        self.body.feed(b"late")
        self.failureResultOf(self.body.read(1), ValueError)

    def test_discard_reads_and_drops(self) -> None:
        self.body.feed(b"a" * 100)
        self.body.discard()
        self.assertFalse(self.owner.held)
        self.body.feed(b"b" * 100)
        self.assertEqual(self.body.received, 200)
        self.assertEqual(self.body._buffered, 0)

    def test_one_read_at_a_time(self) -> None:
        self.body.read(10)
        self.failureResultOf(self.body.read(10), ValueError)

    def test_chunks_split_at_the_read_length(self) -> None:
        self.body.feed(b"0123456789")
        self.body.read(1)  # demanded
        self.assertEqual(self.successResultOf(self.body.read(4)), b"1234")
        self.body.finish()
        self.assertEqual(self.successResultOf(self.body.read(100)), b"56789")
