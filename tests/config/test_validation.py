"""Tests for :mod:`paxd.config.validation`: ``validation.manifests`` (sparse manifests)."""

from __future__ import annotations

from paxd.registry.references import ReferenceChecks
from tests.config.support import MINIMAL, ErrorAssertions, parse


def _checks(text: str, environ: dict[str, str] | None = None) -> ReferenceChecks:
    """What the daemon is wired with for *text* (as paxd/tap.py builds it)."""
    v = parse(text, environ).validation
    return ReferenceChecks.configured(v.sparse, v.index_platforms, v.platformlist)


class ValidationTests(ErrorAssertions):
    def test_default_checks_everything_and_warns_nothing(self) -> None:
        config = parse(MINIMAL)
        self.assertEqual(
            (config.validation.sparse, config.validation.index_platforms), (False, "all")
        )
        self.assertEqual(config.validation.platformlist, ())
        self.assertEqual(config.warnings, ())
        self.assertTrue(_checks(MINIMAL).complete)

    def test_sparse(self) -> None:
        text = f"{MINIMAL}validation: {{manifests: {{sparse: true}}}}\n"
        self.assertTrue(parse(text).validation.sparse)
        self.assertEqual(_checks(text), ReferenceChecks(blobs=False, children="none"))
        self.assertEqual(parse(text).warnings, ())

    def test_distribution_3_index_platforms(self) -> None:
        """Distribution 3's own keys, spelt as its documentation does (``platforms: List``)."""
        text = (
            f"{MINIMAL}validation:\n"
            "  manifests:\n"
            "    indexes:\n"
            "      platforms: List\n"
            "      platformlist:\n"
            "      - architecture: amd64\n"
            "        os: linux\n"
            "      - {os: linux, architecture: arm64}\n"
        )
        config = parse(text)
        self.assertEqual(config.validation.index_platforms, "list")
        self.assertEqual(config.validation.platformlist, (("linux", "amd64"), ("linux", "arm64")))
        self.assertEqual(config.warnings, ())
        self.assertEqual(
            _checks(text),
            ReferenceChecks(
                children="list", platforms=frozenset({("linux", "amd64"), ("linux", "arm64")})
            ),
        )
        none = f"{MINIMAL}validation: {{manifests: {{indexes: {{platforms: none}}}}}}\n"
        self.assertEqual(_checks(none), ReferenceChecks(children="none"))

    def test_empty_list_checks_every_platform(self) -> None:
        """As in distribution: ``list`` with no platform validates them all (and says so)."""
        text = f"{MINIMAL}validation: {{manifests: {{indexes: {{platforms: list}}}}}}\n"
        self.assertTrue(_checks(text).complete)
        self.assertEqual(
            parse(text).warnings,
            (
                "validation.manifests.indexes.platformlist: empty, so every manifest of an index"
                " must be present (as with platforms: all); list the platforms to check",
            ),
        )

    def test_platformlist_without_list(self) -> None:
        text = (
            f"{MINIMAL}validation: {{manifests: {{indexes: "
            "{platformlist: [{os: linux, architecture: amd64}]}}}\n"
        )
        self.assertTrue(_checks(text).complete)
        self.assertIn(
            "validation.manifests.indexes.platformlist: not used unless"
            " validation.manifests.indexes.platforms is list",
            parse(text).warnings,
        )

    def test_bad_values(self) -> None:
        base = f"{MINIMAL}validation: {{manifests: {{"
        self.assertConfigError(
            base + "sparse: maybe}}\n", "validation.manifests.sparse", "expected true or false"
        )
        self.assertConfigError(
            base + "indexes: {platforms: some}}}\n",
            "validation.manifests.indexes.platforms",
            "'some' is not one of all, none, list",
        )
        self.assertConfigError(
            base + "indexes: {platforms: list, platformlist: linux/amd64}}}\n",
            "validation.manifests.indexes.platformlist",
            "expected a list of platforms, e.g. [{os: linux, architecture: amd64}]",
        )
        self.assertConfigError(
            base + "indexes: {platforms: list, platformlist: [{os: linux}]}}}\n",
            "validation.manifests.indexes.platformlist.0.architecture",
            "missing; set it, e.g. architecture: amd64",
        )

    def test_the_rest_is_warned_about(self) -> None:
        text = (
            f"{MINIMAL}validation:\n"
            "  disabled: true\n"
            "  manifests:\n"
            "    urls: {allow: ['^https?://example\\.com/']}\n"
            "    sparce: true\n"
        )
        warnings = parse(text).warnings
        self.assertIn(
            "validation.disabled: not implemented by paxd (it has no URL checks to turn off);"
            " ignored",
            warnings,
        )
        self.assertIn(
            "validation.manifests.urls: not implemented by paxd (it accepts any URL in a"
            " manifest); ignored",
            warnings,
        )
        self.assertIn(
            "validation.manifests.sparce: unknown key; ignored (did you mean 'sparse'?)", warnings
        )
        # what is off says nothing
        quiet = f"{MINIMAL}validation: {{disabled: false, enabled: false}}\n"
        self.assertEqual(parse(quiet).warnings, ())

    def test_environment(self) -> None:
        environ = {
            "REGISTRY_VALIDATION_MANIFESTS_INDEXES_PLATFORMS": "list",
            "REGISTRY_VALIDATION_MANIFESTS_INDEXES_PLATFORMLIST_0_OS": "linux",
            "REGISTRY_VALIDATION_MANIFESTS_INDEXES_PLATFORMLIST_0_ARCHITECTURE": "arm64",
        }
        config = parse(MINIMAL, environ)
        self.assertEqual(config.validation.index_platforms, "list")
        self.assertEqual(config.validation.platformlist, (("linux", "arm64"),))
        sparse = parse(MINIMAL, {"REGISTRY_VALIDATION_MANIFESTS_SPARSE": "true"})
        self.assertTrue(sparse.validation.sparse)
