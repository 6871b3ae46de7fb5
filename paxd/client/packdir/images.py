"""Logo checks: is a file the PNG, SVG or WebP image its name promises?

Read from the bytes alone (signatures and headers, and for SVG a parse that
refuses entity declarations), so that ``paxctl pack validate`` needs no
imaging library.
"""

from __future__ import annotations

import struct
import xml.etree.ElementTree as ET

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def image_problem(name: str, data: bytes) -> str | None:
    """Why *data* is not the image its file *name* promises, or ``None`` if it is."""
    if name.endswith(".png"):
        return _png_problem(data)
    if name.endswith(".webp"):
        if len(data) < 16 or data[:4] != b"RIFF" or data[8:12] != b"WEBP":
            return "not a WebP image (no RIFF/WEBP header)"
        (size,) = struct.unpack("<I", data[4:8])
        if size + 8 > len(data):
            return "truncated WebP image"
        return None
    if name.endswith(".svg"):
        return _svg_problem(data)
    return "not a supported image (PNG, SVG or WebP)"


def _png_problem(data: bytes) -> str | None:
    if not data.startswith(PNG_SIGNATURE):
        return "not a PNG image (no PNG signature)"
    if len(data) < 33 or data[12:16] != b"IHDR":
        return "not a PNG image (no IHDR header)"
    width, height = struct.unpack(">II", data[16:24])
    if width == 0 or height == 0:
        return "PNG image of zero size"
    if not data.endswith(b"IEND\xaeB`\x82"):
        return "truncated PNG image (no IEND chunk)"
    return None


def _svg_problem(data: bytes) -> str | None:
    # Entities are where XML parsers get abused; a logo has no use for them.
    if b"<!ENTITY" in data:
        return "SVG with entity declarations is refused"
    try:
        root = ET.fromstring(data)
    except ET.ParseError as e:
        return f"not an SVG image (XML error: {e})"
    if root.tag.rsplit("}", 1)[-1] != "svg":
        return f"not an SVG image (root element is {root.tag!r})"
    return None
