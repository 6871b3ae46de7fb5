"""The logo checks: a real PNG, SVG or WebP, read from its bytes."""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from paxd.client.packdir.images import image_problem
from tests.client.packdir.support import make_png


class ImageTests(SynchronousTestCase):
    def test_png(self) -> None:
        self.assertIsNone(image_problem("logo.png", make_png()))
        self.assertIn("truncated", image_problem("logo.png", make_png()[:-4]) or "")

    def test_svg(self) -> None:
        good = b'<svg xmlns="http://www.w3.org/2000/svg" width="8" height="8"/>'
        self.assertIsNone(image_problem("logo.svg", good))
        self.assertIn("root element", image_problem("logo.svg", b"<html/>") or "")
        bomb = b'<?xml version="1.0"?><!DOCTYPE s [<!ENTITY a "aaaa">]><svg>&a;</svg>'
        self.assertIn("entity", image_problem("logo.svg", bomb) or "")

    def test_webp(self) -> None:
        body = b"WEBPVP8 " + b"\x00" * 10
        good = b"RIFF" + len(body).to_bytes(4, "little") + body
        self.assertIsNone(image_problem("logo.webp", good))
        self.assertIn("truncated", image_problem("logo.webp", good[:-3]) or "")
        self.assertIn("not a WebP", image_problem("logo.webp", make_png()) or "")
