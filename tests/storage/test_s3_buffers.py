"""The S3 driver's part buffers: bytes gathered in a mapping, read back as a seekable file."""

from __future__ import annotations

import io

from twisted.trial.unittest import SynchronousTestCase

from paxd.storage.s3.buffers import PartBuffer


class PartBufferTests(SynchronousTestCase):
    def test_gathers_up_to_capacity(self) -> None:
        buffer = PartBuffer(10)
        self.assertEqual(buffer.append(b"abcd"), 4)
        self.assertFalse(buffer.full)
        self.assertEqual(buffer.append(memoryview(b"efghijklmn")), 6)  # only what fits
        self.assertTrue(buffer.full)
        self.assertEqual(buffer.append(b"x"), 0)
        self.assertEqual(buffer.reader().read(), b"abcdefghij")

    def test_reader_is_a_seekable_file_of_what_was_gathered(self) -> None:
        buffer = PartBuffer(1024)
        buffer.append(b"0123456789")
        reader = buffer.reader()
        self.assertEqual(len(reader), 10)  # type: ignore[arg-type]
        self.assertEqual(reader.read(4), b"0123")
        self.assertEqual(reader.tell(), 4)
        self.assertEqual(reader.read(100), b"456789")
        self.assertEqual(reader.read(1), b"")
        self.assertEqual(reader.seek(0), 0)  # botocore reads a body twice: to sign, to send
        self.assertEqual(reader.read(), b"0123456789")
        self.assertEqual(reader.seek(-3, io.SEEK_END), 7)
        self.assertEqual(reader.read(), b"789")
        target = bytearray(4)
        reader.seek(2)
        self.assertEqual(reader.readinto(target), 4)  # type: ignore[attr-defined]
        self.assertEqual(bytes(target), b"2345")

    def test_close_gives_the_memory_back(self) -> None:
        buffer = PartBuffer(5 * 1024 * 1024)
        buffer.append(b"x" * 1000)
        buffer.close()
        buffer.close()  # idempotent
        self.assertRaises(AssertionError, buffer.append, b"y")
        self.assertRaises(AssertionError, buffer.reader)

    def test_empty(self) -> None:
        buffer = PartBuffer(10)
        self.assertEqual(buffer.reader().read(), b"")
        self.assertEqual(PartBuffer(0).reader().read(), b"")
