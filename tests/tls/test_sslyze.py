"""sslyze (the real one) against a paxd TLS listener on loopback: Mozilla's intermediate profile.

sslyze pins an older ``cryptography`` than paxd's, so it is not installed
beside paxd: it runs from its own environment, found as ``$PAXD_SSLYZE`` or
``sslyze`` on the PATH (``.ci/run`` installs it in ``/opt/sslyze``, with a
wrapper that puts that directory first on ``PYTHONPATH``).  Missing,
the test skips, except under CI.
"""

from __future__ import annotations

import os
import shutil
import subprocess

from twisted.trial.unittest import SkipTest

from tests.tls.support import TestCA, in_ci
from tests.tls.test_daemon import DaemonCase


def sslyze() -> str:
    """The sslyze executable; skip (fail under CI) without it."""
    path = os.environ.get("PAXD_SSLYZE") or shutil.which("sslyze")
    if not path:
        message = "sslyze is not installed (pip install sslyze in a venv of its own; PAXD_SSLYZE)"
        if in_ci():
            raise AssertionError(message)
        raise SkipTest(message)
    return path


class MozillaIntermediateTests(DaemonCase):
    def test_sslyze_says_compliant(self) -> None:
        tool = sslyze()
        ca = TestCA("server CA")
        crt, key = ca.write(self.dir, ca.server(days=90))
        cafile = ca.write_ca(self.dir)
        self.start(f"  tls:\n    certificate: {crt}\n    key: {key}\n")
        result = subprocess.run(
            [
                tool,
                "--mozilla_config=intermediate",
                f"--certinfo_ca_file={cafile}",
                f"localhost:{self.port}{{127.0.0.1}}",
            ],
            capture_output=True,
            text=True,
            timeout=300,
        )
        report = result.stdout[-3000:] + result.stderr[-2000:]
        self.assertIn(f"localhost:{self.port}: OK - Compliant.", result.stdout, report)
        self.assertEqual(result.returncode, 0, report)
        # what the profile allows, and nothing else
        self.assertIn(
            "Supported curves:                  X25519, secp256r1, secp384r1", result.stdout
        )
        self.assertIn(
            "the server rejected all cipher suites", result.stdout.split("TLS 1.1 Cipher")[1]
        )
