"""Tests for :mod:`paxd.packs.versions`: versions, lines, and where parents point."""

from __future__ import annotations

import functools
import random

import semver
from hypothesis import given
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from paxd.packs.versions import (
    compute_parents,
    is_parent_tag,
    is_version_label,
    is_version_tag,
    natural_key,
    newest,
    parent_tags,
    parse_version,
    parse_version_tag,
    tag_order,
)
from paxd.registry.reference import is_tag


class VersionTests(SynchronousTestCase):
    """Parsing and semver precedence."""

    def test_parse(self) -> None:
        v = parse_version("1.27.3")
        assert v is not None
        self.assertEqual((v.major, v.minor, v.patch, v.is_release), (1, 27, 3, True))
        self.assertEqual(str(v), "1.27.3")

    def test_v_prefix(self) -> None:
        v = parse_version("v1.27.3")
        assert v is not None
        self.assertEqual((v.major, v.minor, v.patch), (1, 27, 3))
        self.assertEqual(str(v), "v1.27.3")

    def test_prerelease(self) -> None:
        v = parse_version("1.28.0-rc.1")
        assert v is not None
        self.assertFalse(v.is_release)

    def test_not_versions(self) -> None:
        for label in [
            "latest",
            "1",
            "1.2",
            "1.2.3.4",
            "01.2.3",
            "1.02.3",
            "1.2.3-",
            "1.2.3-rc..1",
            "1.2.3-01",
            "V1.2.3",
            "vv1.2.3",
            "1.x",
            "1.2.x",
            "1.2.3_rc1",
            "",
        ]:
            self.assertIsNone(parse_version(label), label)

    def test_semver_precedence(self) -> None:
        """The example order of semver.org §11, plus numeric (not textual) comparison."""
        ordered = [
            "1.0.0-alpha",
            "1.0.0-alpha.1",
            "1.0.0-alpha.beta",
            "1.0.0-beta",
            "1.0.0-beta.2",
            "1.0.0-beta.11",
            "1.0.0-rc.1",
            "1.0.0",
            "1.0.1",
            "1.2.0",
            "1.10.0",
            "2.0.0",
            "10.0.0",
        ]
        shuffled = ordered[:]
        random.Random(4).shuffle(shuffled)
        versions = [parse_version(t) for t in shuffled]
        self.assertEqual([str(v) for v in sorted(v for v in versions if v)], ordered)

    def test_v_prefix_compares_as_the_number(self) -> None:
        self.assertLess(parse_version("v1.9.0"), parse_version("1.10.0"))  # type: ignore[operator]
        self.assertEqual(parse_version("v1.2.3"), parse_version("1.2.3"))


class TagTests(SynchronousTestCase):
    """Version tags, groups and the parent-tag grammar."""

    def test_ungrouped_parents(self) -> None:
        self.assertEqual(parent_tags("1.27.3"), ("1.x", "1.27.x"))
        self.assertEqual(parent_tags("v1.27.3"), ("1.x", "1.27.x"))
        self.assertEqual(parent_tags("1.28.0-rc.1"), ("1.x", "1.28.x"))

    def test_grouped_parents(self) -> None:
        self.assertEqual(parent_tags("lts__14.4.3"), ("lts__14.x", "lts__14.4.x"))
        tag = parse_version_tag("lts__v14.4.3")
        assert tag is not None
        self.assertEqual(tag.group, "lts")
        self.assertEqual(tag.parents, ("lts__14.x", "lts__14.4.x"))

    def test_non_version_tags_have_no_parents(self) -> None:
        for tag in ["latest", "stable", "lts__latest", "1.x", "lts__14.x", "bad_group__1.2.3"]:
            self.assertEqual(parent_tags(tag), (), tag)
            self.assertIsNone(parse_version_tag(tag), tag)

    def test_is_parent_tag(self) -> None:
        for tag in ["1.x", "0.x", "1.27.x", "14.4.x", "lts__14.x", "lts__14.4.x", "a-b.c__0.0.x"]:
            self.assertTrue(is_parent_tag(tag), tag)
        for tag in [
            "x",
            "1.2.3",
            "v1.x",
            "1.2.3.x",
            "01.x",
            "1.X",
            "1.x-rc",
            "latest",
            "lts__latest",
            "bad_group__1.x",
            "lts__",
        ]:
            self.assertFalse(is_parent_tag(tag), tag)

    @given(
        st.tuples(
            st.sampled_from([None, "lts", "edge-1.0"]),
            st.sampled_from(["", "v"]),
            st.integers(0, 10**6),
            st.integers(0, 10**6),
            st.integers(0, 10**6),
            st.sampled_from(["", "-rc.1", "-alpha", "-0.3.7", "-x-y.7z"]),
        )
    )
    def test_parents_are_valid_tags_of_parent_shape(
        self, parts: tuple[str | None, str, int, int, int, str]
    ) -> None:
        group, v, major, minor, patch, pre = parts
        label = f"{v}{major}.{minor}.{patch}{pre}"
        tag = f"{group}__{label}" if group else label
        self.assertTrue(is_tag(tag))
        self.assertFalse(is_parent_tag(tag))
        parents = parent_tags(tag)
        self.assertEqual(len(parents), 2)
        for parent in parents:
            self.assertTrue(is_tag(parent), parent)
            self.assertTrue(is_parent_tag(parent), parent)
            self.assertIsNone(parse_version_tag(parent))

    def test_tag_order(self) -> None:
        tags = ["latest", "1.10.0", "lts__2.0.0", "1.9.0", "1.9.0-rc.1", "lts__10.0.0", "beta"]
        self.assertEqual(
            sorted(tags, key=tag_order),
            ["1.9.0-rc.1", "1.9.0", "1.10.0", "beta", "latest", "lts__2.0.0", "lts__10.0.0"],
        )


class ComputeParentsTests(SynchronousTestCase):
    """Which version each parent tag points at."""

    def test_highest_release_per_line(self) -> None:
        tags = ["1.26.9", "1.27.3", "1.27.10", "1.9.0", "2.0.0", "latest"]
        self.assertEqual(
            compute_parents(tags),
            {
                "1.x": "1.27.10",
                "1.26.x": "1.26.9",
                "1.27.x": "1.27.10",
                "1.9.x": "1.9.0",
                "2.x": "2.0.0",
                "2.0.x": "2.0.0",
            },
        )

    def test_prerelease_only_without_release(self) -> None:
        tags = ["1.27.3", "1.28.0-rc.1", "1.28.0-rc.2", "2.0.0-beta.1"]
        self.assertEqual(
            compute_parents(tags),
            {
                # 1.28.0-rc.2 is higher, but the line has a release
                "1.x": "1.27.3",
                "1.27.x": "1.27.3",
                "1.28.x": "1.28.0-rc.2",
                "2.x": "2.0.0-beta.1",
                "2.0.x": "2.0.0-beta.1",
            },
        )

    def test_release_replaces_its_prereleases(self) -> None:
        self.assertEqual(
            compute_parents(["1.28.0-rc.1", "1.28.0"])["1.28.x"],
            "1.28.0",
        )

    def test_groups_are_separate_lines(self) -> None:
        tags = ["14.4.3", "lts__14.4.3", "lts__14.4.5", "lts__14.5.0-rc.1", "edge__15.0.0"]
        self.assertEqual(
            compute_parents(tags),
            {
                "14.x": "14.4.3",
                "14.4.x": "14.4.3",
                "lts__14.x": "lts__14.4.5",
                "lts__14.4.x": "lts__14.4.5",
                "lts__14.5.x": "lts__14.5.0-rc.1",
                "edge__15.x": "edge__15.0.0",
                "edge__15.0.x": "edge__15.0.0",
            },
        )

    def test_v_prefix_same_line_plain_wins_a_tie(self) -> None:
        self.assertEqual(compute_parents(["v1.2.4", "1.2.3"])["1.x"], "v1.2.4")
        self.assertEqual(compute_parents(["v1.2.3", "1.2.3"])["1.x"], "1.2.3")
        self.assertEqual(compute_parents(["1.2.3", "v1.2.3"])["1.x"], "1.2.3")

    def test_non_version_and_parent_tags_ignored(self) -> None:
        self.assertEqual(compute_parents(["latest", "1.x", "1.2.x", "lts__foo"]), {})

    def test_deletion_relinks(self) -> None:
        tags = ["1.2.3", "1.2.4", "1.3.0"]
        self.assertEqual(compute_parents(tags)["1.x"], "1.3.0")
        tags.remove("1.3.0")
        after = compute_parents(tags)
        self.assertEqual(after["1.x"], "1.2.4")
        self.assertNotIn("1.3.x", after)
        tags.remove("1.2.4")
        self.assertEqual(compute_parents(tags)["1.2.x"], "1.2.3")

    def test_last_tag_removed(self) -> None:
        self.assertEqual(
            compute_parents(["lts__1.0.0"]), {"lts__1.x": "lts__1.0.0", "lts__1.0.x": "lts__1.0.0"}
        )
        self.assertEqual(compute_parents([]), {})

    def test_lines_filter(self) -> None:
        tags = ["1.2.3", "1.3.0", "2.0.0"]
        self.assertEqual(compute_parents(tags, {"1.2.x", "3.x"}), {"1.2.x": "1.2.3"})

    @given(
        st.lists(st.tuples(st.integers(0, 3), st.integers(0, 3), st.integers(0, 3), st.booleans()))
    )
    def test_parent_is_the_maximum_of_its_line(
        self, versions: list[tuple[int, int, int, bool]]
    ) -> None:
        tags = sorted({f"{a}.{b}.{c}{'-rc.1' if pre else ''}" for a, b, c, pre in versions})
        parents = compute_parents(tags)
        for parent, target in parents.items():
            self.assertIn(target, tags)
            self.assertIn(parent, parent_tags(target))
            line = [t for t in tags if parent in parent_tags(t)]
            releases = [t for t in line if "-" not in t]
            candidates = releases or line
            top = max(candidates, key=lambda t: parse_version(t))  # type: ignore[arg-type,return-value]
            self.assertEqual(target, top)
        expected_lines = {p for t in tags for p in parent_tags(t)}
        self.assertEqual(set(parents), expected_lines)


# -- the order against the semver library --------------------------------------------

_NUMBERS = st.integers(0, 20) | st.integers(0, 10**12)
_IDENTIFIERS = st.one_of(
    _NUMBERS.map(str),
    st.from_regex(r"\A[0-9]*[a-zA-Z-][0-9a-zA-Z-]{0,6}\Z"),
)
_SEMVER = st.builds(
    lambda major, minor, patch, pre: (
        f"{major}.{minor}.{patch}" + (f"-{'.'.join(pre)}" if pre else "")
    ),
    _NUMBERS,
    _NUMBERS,
    _NUMBERS,
    st.lists(_IDENTIFIERS, max_size=4),
)


class SemverLibraryTests(SynchronousTestCase):
    """The one order agrees with the ``semver`` library's precedence (semver.org, item 11)."""

    @given(_SEMVER, _SEMVER)
    def test_precedence_matches_the_library(self, a: str, b: str) -> None:
        va, vb = parse_version(a), parse_version(b)
        assert va is not None and vb is not None, (a, b)
        expected = semver.Version.parse(a).compare(b)
        self.assertEqual((va > vb) - (va < vb), expected, (a, b))
        # the flattened sort key (what a push ranks a line by) says the same
        ka, kb = parse_version_tag(a).sort_key()[:5], parse_version_tag(b).sort_key()[:5]  # type: ignore[union-attr]
        self.assertEqual((ka > kb) - (ka < kb), expected, (a, b))

    @given(st.lists(_SEMVER, min_size=1, max_size=8))
    def test_newest_is_the_highest_release_else_the_highest_prerelease(
        self, labels: list[str]
    ) -> None:
        def cmp(x: str, y: str) -> int:
            return semver.Version.parse(x).compare(y)

        releases = [v for v in labels if semver.Version.parse(v).prerelease is None]
        top = max(releases or labels, key=functools.cmp_to_key(cmp))
        chosen = newest(labels)
        assert chosen is not None
        self.assertEqual(cmp(chosen, top), 0, (labels, chosen, top))


class NewestTests(SynchronousTestCase):
    """:func:`newest`: what paxctl pulls without a tag, as the server's parent tags point."""

    def test_release_beats_its_prerelease(self) -> None:
        self.assertEqual(newest(["1.0.0", "1.0.0-rc.1"]), "1.0.0")
        self.assertEqual(newest(["1.0.0-rc.1", "1.0.0"]), "1.0.0")
        self.assertEqual(
            compute_parents(["1.0.0", "1.0.0-rc.1"])["1.x"], newest(["1.0.0-rc.1", "1.0.0"])
        )

    def test_release_beats_a_higher_prerelease(self) -> None:
        self.assertEqual(newest(["1.0.0", "2.0.0-rc.1"]), "1.0.0")

    def test_prerelease_only_without_release(self) -> None:
        self.assertEqual(newest(["2.0.0-rc.1", "2.0.0-beta.3"]), "2.0.0-rc.1")

    def test_numbers_compare_as_numbers(self) -> None:
        self.assertEqual(newest(["1.9.2", "1.10.0", "1.9.10"]), "1.10.0")

    def test_semantic_versions_beat_other_labels(self) -> None:
        self.assertEqual(newest(["1.14.4", "1.22.0", "zz-latest"]), "1.22.0")

    def test_other_labels_in_natural_order(self) -> None:
        self.assertEqual(newest(["22.04", "9.10", "22.10"]), "22.10")
        self.assertIsNone(newest([]))

    def test_natural_key(self) -> None:
        versions = ["1.10.0", "1.9.2", "1.9.10", "1.9.2-rc1", "0.1"]
        self.assertEqual(
            sorted(versions, key=natural_key), ["0.1", "1.9.2", "1.9.2-rc1", "1.9.10", "1.10.0"]
        )


class LabelsAreNotVersionsTests(SynchronousTestCase):
    """Labels (``latest``) and parent tags (``1.x``) never count as versions (issue 15)."""

    def test_a_label_never_wins(self) -> None:
        self.assertEqual(newest(["1.14.4", "latest", "1.22.0", "recommended"]), "1.22.0")
        self.assertIsNone(newest(["latest"]))
        self.assertIsNone(newest(["recommended", "stable", "zz-top"]))

    def test_parent_tags_never_win(self) -> None:
        self.assertIsNone(newest(["1.x", "1.22.x"]))
        self.assertEqual(newest(["22.04", "9.x"]), "22.04")

    def test_version_shaped_labels(self) -> None:
        for label in ("1.2.3", "v1.2.3", "1.0.0-rc.1", "22.04", "v1.2", "2024.1-1"):
            self.assertTrue(is_version_label(label), label)
        for label in ("latest", "stable", "1.x", "1.2.x", "v", "1", "lts__1.2.3", "a1.2"):
            self.assertFalse(is_version_label(label), label)
        self.assertTrue(is_version_tag("1.2.3"))
        self.assertFalse(is_version_tag("lts__1.2.3"))
        self.assertFalse(is_version_tag("latest"))
