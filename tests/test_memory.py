"""Tests for :mod:`paxd.memory`: trimming gives back what large buffers left behind."""

from __future__ import annotations

import os
import subprocess
import sys

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from paxd.memory import MemoryTrimService, trim

# Big buffers allocated and freed in threads, with small long-lived
# allocations in between: the pattern of many large transfers.  Prints the
# RSS growth in KiB once every big buffer is freed (and trimmed, if asked).
_PATTERN = """
import os, sys, threading
sys.path.insert(0, sys.argv[2])
from paxd.memory import trim  # imported before the baseline, in both modes
def rss():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS"):
                return int(line.split()[1])
kept = []
def work():
    window = []
    for i in range(256):
        window.append(os.urandom(1 << 20))
        kept.append(bytearray(200))
        if len(window) > 8:
            window.pop(0)
    window.clear()
base = rss()
threads = [threading.Thread(target=work) for _ in range(2)]
for t in threads:
    t.start()
for t in threads:
    t.join()
if sys.argv[1] == "trim":
    assert trim()
print(rss() - base)
"""

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _growth_kib(mode: str) -> int:
    out = subprocess.run(
        [sys.executable, "-c", _PATTERN, mode, _ROOT],
        check=True,
        capture_output=True,
        text=True,
        env={k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")},
    )
    return int(out.stdout.strip())


class TrimTests(SynchronousTestCase):
    def setUp(self) -> None:
        if not trim():
            self.skipTest("this C library has no malloc_trim")

    def test_trim_returns_freed_buffers(self) -> None:
        untrimmed = _growth_kib("none")
        trimmed = _growth_kib("trim")
        # without a trim the freed buffers stay resident; with one they go back
        self.assertGreater(untrimmed, 8 * 1024, "the pattern no longer leaves memory behind")
        self.assertLess(trimmed, untrimmed / 2)

    def test_service_trims_on_its_clock(self) -> None:
        clock = Clock()
        service = MemoryTrimService(clock, interval=5.0)
        calls: list[float] = []
        service.call = (lambda: calls.append(clock.seconds()), (), {})
        service.startService()
        clock.advance(5)
        clock.advance(5)
        service.stopService()
        self.assertEqual(calls, [0.0, 5.0, 10.0])
