"""Tests for :mod:`paxd.config.files`: the files the configuration names must be readable."""

from __future__ import annotations

import os

from twisted.trial.unittest import SkipTest

from tests.config.support import MINIMAL, ErrorAssertions


class TLSFileTests(ErrorAssertions):
    """``http.tls`` files exist, are files, are readable."""

    def test_tls_missing_files(self) -> None:
        cert, key = self.tls_files()
        missing = cert + ".missing"
        error = self.assertConfigError(
            f"{MINIMAL}http: {{tls: {{certificate: {missing}, key: {key}}}}}",
            "http.tls.certificate",
            missing,
            "does not exist",
        )
        self.assertNotIn(key, str(error))
        self.assertConfigError(
            f"{MINIMAL}http: {{tls: {{certificate: {cert}, key: {missing}}}}}",
            "http.tls.key",
            missing,
        )
        directory = os.path.dirname(cert)
        self.assertConfigError(
            f"{MINIMAL}http: {{tls: {{certificate: {directory}, key: {key}}}}}",
            "http.tls.certificate",
            "is a directory",
        )

    def test_tls_unreadable_key(self) -> None:
        if os.getuid() == 0:
            raise SkipTest("root reads every file")
        cert, key = self.tls_files()
        os.chmod(key, 0)
        self.addCleanup(os.chmod, key, 0o600)
        self.assertConfigError(
            f"{MINIMAL}http: {{tls: {{certificate: {cert}, key: {key}}}}}",
            "http.tls.key",
            key,
            "not readable",
        )
