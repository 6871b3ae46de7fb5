"""Tests for :mod:`paxd.memory`: a pinned mmap threshold keeps RSS flat after big buffers."""

from __future__ import annotations

import os
import subprocess
import sys

from twisted.trial.unittest import SynchronousTestCase

# Big buffers allocated and freed in threads, with small long-lived
# allocations in between: the pattern of many large transfers.  Prints the
# RSS growth in KiB once every big buffer is freed.
_PATTERN = """
import os, sys, threading
sys.path.insert(0, sys.argv[2])
def rss():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS"):
                return int(line.split()[1])
if sys.argv[1] == "pin":
    from paxd.memory import pin_mmap_threshold
    assert pin_mmap_threshold()
kept = []
def work():
    x = os.urandom(1 << 20)
    del x
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


class PinMmapThresholdTests(SynchronousTestCase):
    def setUp(self) -> None:
        if not sys.platform.startswith("linux") or not os.path.exists("/proc/self/status"):
            raise self.skipTest("glibc and /proc only")

    def test_rss_returns_after_big_buffers(self) -> None:
        """With the threshold pinned, freed 1 MiB buffers leave (almost) nothing resident."""
        dynamic = _growth_kib("dynamic")
        if dynamic < 4 * 1024:
            raise self.skipTest(f"this C library keeps only {dynamic} KiB anyway")
        pinned = _growth_kib("pin")
        self.assertLess(pinned, 4 * 1024, f"RSS grew by {pinned} KiB (unpinned: {dynamic} KiB)")
