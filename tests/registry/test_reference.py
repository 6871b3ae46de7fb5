"""Tests for :mod:`paxd.registry.reference`: the name, tag and digest grammars."""

from __future__ import annotations

import hashlib

from hypothesis import given
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from paxd.registry.errors import RegistryError
from paxd.registry.reference import (
    Digest,
    is_digest,
    is_tag,
    parse_digest,
    parse_name,
    parse_reference,
    parse_tag,
)
from paxd.web.errors import http_status

HEX64 = "a" * 64
HEX128 = "b" * 128


class NameTests(SynchronousTestCase):
    """Repository names: lower-case components joined by '/'."""

    def test_valid(self) -> None:
        for name in [
            "a",
            "library/ubuntu",
            "a/b/c/d",
            "my-repo",
            "my--repo",
            "my_repo",
            "my__repo",
            "my.repo",
            "0abc/9x",
            "a" * 255,
        ]:
            self.assertEqual(parse_name(name), name)

    def test_invalid(self) -> None:
        for name in [
            "",
            "A",
            "Library/ubuntu",
            "../x",
            "a/../b",
            "./a",
            "a//b",
            "/a",
            "a/",
            "a/.",
            "a___b",
            "-a",
            "a-",
            "a.",
            "a..b",
            "a b",
            "a\x00b",
            "a\\b",
            "a" * 256,
            "_layers",
            "a/_manifests",
            "a:b",
            "a@b",
        ]:
            with self.assertRaises(RegistryError, msg=name) as cm:
                parse_name(name)
            self.assertEqual(cm.exception.code, "NAME_INVALID")
            self.assertEqual(http_status(cm.exception), 400)

    def test_detail_is_bounded(self) -> None:
        """A huge name is not echoed back whole."""
        with self.assertRaises(RegistryError) as cm:
            parse_name("A" * 10_000)
        self.assertLessEqual(len(cm.exception.detail["name"]), 300)

    @given(st.text(max_size=40))
    def test_accepted_names_are_clean_paths(self, name: str) -> None:
        """Whatever is accepted cannot escape the repositories directory."""
        try:
            parse_name(name)
        except RegistryError:
            return
        parts = name.split("/")
        self.assertNotIn("", parts)
        self.assertFalse(any(p in (".", "..") or p.startswith("_") for p in parts))
        self.assertEqual(name, name.lower())


class TagTests(SynchronousTestCase):
    """Tags: [a-zA-Z0-9_] then up to 127 of [a-zA-Z0-9._-]."""

    def test_valid(self) -> None:
        for tag in ["latest", "v1.0.0", "_x", "A-b_c.d", "a" * 128]:
            self.assertTrue(is_tag(tag))
            self.assertEqual(parse_tag(tag), tag)

    def test_invalid(self) -> None:
        for tag in ["", ".x", "-x", "a" * 129, "a/b", "a:b", "..", "a b"]:
            self.assertFalse(is_tag(tag))
            with self.assertRaises(RegistryError) as cm:
                parse_tag(tag)
            self.assertEqual(cm.exception.code, "TAG_INVALID")


class DigestTests(SynchronousTestCase):
    """Digests: sha256 and sha512 only, lower-case hex of the right length."""

    def test_valid(self) -> None:
        self.assertEqual(parse_digest(f"sha256:{HEX64}"), Digest("sha256", HEX64))
        self.assertEqual(parse_digest(f"sha512:{HEX128}"), Digest("sha512", HEX128))

    def test_invalid(self) -> None:
        for value in [
            "",
            "sha256",
            "sha256:",
            f"sha256:{HEX64[:-1]}",
            f"sha256:{HEX64}0",
            f"sha256:{'A' * 64}",
            f"sha512:{HEX64}",
            f"md5:{'a' * 32}",
            f"sha256:../{HEX64[3:]}",
            f"SHA256:{HEX64}",
            f"sha256:{HEX64}/x",
        ]:
            with self.assertRaises(RegistryError, msg=value) as cm:
                parse_digest(value)
            self.assertEqual(cm.exception.code, "DIGEST_INVALID")

    def test_str_and_of(self) -> None:
        d = Digest.of(b"hello")
        self.assertEqual(str(d), "sha256:" + hashlib.sha256(b"hello").hexdigest())
        self.assertTrue(d.matches(b"hello"))
        self.assertFalse(d.matches(b"hello!"))
        self.assertEqual(Digest.of(b"x", "sha512").hex, hashlib.sha512(b"x").hexdigest())
        self.assertEqual(d.hasher().name, "sha256")


class ReferenceTests(SynchronousTestCase):
    """A manifest reference is a tag or a digest, told apart by ':'."""

    def test_tag(self) -> None:
        self.assertEqual(parse_reference("latest"), "latest")
        self.assertFalse(is_digest("latest"))

    def test_digest(self) -> None:
        self.assertEqual(parse_reference(f"sha256:{HEX64}"), Digest("sha256", HEX64))
        self.assertTrue(is_digest(f"sha256:{HEX64}"))

    def test_bad_digest_is_digest_invalid(self) -> None:
        with self.assertRaises(RegistryError) as cm:
            parse_reference("sha256:nothex")
        self.assertEqual(cm.exception.code, "DIGEST_INVALID")

    def test_bad_tag_is_tag_invalid(self) -> None:
        with self.assertRaises(RegistryError) as cm:
            parse_reference("../etc")
        self.assertEqual(cm.exception.code, "TAG_INVALID")
