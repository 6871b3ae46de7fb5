"""paxctl's command line without a registry: help, usage errors, validation, refusals."""

from __future__ import annotations

import io
import json
import socket
import subprocess
import sys
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

from twisted.trial.unittest import SynchronousTestCase

from paxd.client.cli import build_parser, run
from paxd.client.commands import Context, newest_version, parse_ref
from paxd.client.config import CredentialStore
from paxd.client.errors import UsageError
from paxd.client.progress import Progress
from paxd.packs.versions import compute_parents
from tests.client.packdir.support import copy_sample

REPO_ROOT = Path(__file__).resolve().parents[2]


def closed_port() -> int:
    """A loopback port nobody listens on (it was free a moment ago)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


class CLITestCase(SynchronousTestCase):
    def setUp(self) -> None:
        self.tmp = Path(self.mktemp())
        self.tmp.mkdir()
        self.store = CredentialStore(self.tmp / "cfg" / "config.json", self.tmp / "vendor.json")

    def paxctl(self, *argv: str, stdin: str = "") -> tuple[int, str, str]:
        out, err = io.StringIO(), io.StringIO()
        ctx = Context(out, err, io.StringIO(stdin), self.store, Progress(err, enabled=False))
        # argparse writes its own usage errors and help to the process's streams
        with redirect_stdout(out), redirect_stderr(err):
            status = run(list(argv), ctx)
        return status, out.getvalue(), err.getvalue()


class HelpTests(CLITestCase):
    def test_every_command_has_help(self) -> None:
        commands = [
            [],
            ["login"],
            ["logout"],
            ["check"],
            ["version"],
            ["pack"],
            ["pack", "validate"],
            ["pack", "push"],
            ["pack", "pull"],
            ["pack", "ls"],
            ["pack", "rm"],
            ["pack", "tag"],
            ["pack", "tag", "add"],
            ["pack", "tag", "delete"],
        ]
        for words in commands:
            status, out, _ = self.paxctl(*words, "--help")
            self.assertEqual(status, 0, words)
            self.assertIn("usage: paxctl", out)
        _, out, _ = self.paxctl("--help")
        for word in ("login", "logout", "check", "pack", "exit status"):
            self.assertIn(word, out)
        _, out, _ = self.paxctl("pack", "push", "--help")
        for option in ("--registry-server", "--force", "--message", "--skip-digest-check"):
            self.assertIn(option, out)

    def test_usage_errors_exit_2(self) -> None:
        self.assertEqual(self.paxctl()[0], 2)
        self.assertEqual(self.paxctl("frobnicate")[0], 2)
        self.assertEqual(self.paxctl("pack", "push")[0], 2)
        self.assertEqual(self.paxctl("pack", "ls", "--output", "xml")[0], 2)

    def test_version(self) -> None:
        status, out, _ = self.paxctl("version")
        self.assertEqual(status, 0)
        self.assertTrue(out.startswith("paxctl "))

    def test_parser_builds(self) -> None:
        self.assertEqual(build_parser().prog, "paxctl")


class ValidateTests(CLITestCase):
    def test_valid(self) -> None:
        pack = copy_sample("cert-manager", self.tmp)
        status, out, _ = self.paxctl("pack", "validate", str(pack))
        self.assertEqual(status, 0)
        self.assertIn("cert-manager 1.14.4 (addon) is a valid pack", out)

    def test_every_problem_listed(self) -> None:
        pack = copy_sample("cert-manager", self.tmp)
        data = json.loads((pack / "pack.json").read_text())
        data["layer"] = "addons"
        data["charts"] = ["../x.tgz"]
        (pack / "pack.json").write_text(json.dumps(data))
        (pack / "logo.png").unlink()
        status, out, err = self.paxctl("pack", "validate", str(pack))
        self.assertEqual(status, 1)
        lines = out.splitlines()
        self.assertEqual(len(lines), 3, lines)
        self.assertTrue(any(line.startswith("pack.json: layer:") for line in lines))
        self.assertTrue(any(line.startswith("pack.json: charts[0]:") for line in lines))
        self.assertTrue(any(line.startswith("logo.png: missing") for line in lines))
        self.assertIn("3 error(s)", err)


class RefusalTests(CLITestCase):
    def test_bad_pack_is_not_pushed(self) -> None:
        """Validation fails before any connection (the port is closed: no 'refused' error)."""
        pack = copy_sample("cni-flannel", self.tmp)
        (pack / "pack.json").write_text("not json")
        status, _, err = self.paxctl("pack", "push", str(pack), "-r", f"127.0.0.1:{closed_port()}")
        self.assertEqual(status, 1)
        self.assertIn("pack.json: not valid JSON", err)
        self.assertIn("paxctl: ", err)
        self.assertIn("error(s) in the pack: nothing pushed", err)
        self.assertNotIn("refused", err)

    def test_force_needs_a_message(self) -> None:
        pack = copy_sample("cni-flannel", self.tmp)
        status, _, err = self.paxctl("pack", "push", str(pack), "-r", "x:1", "--force")
        self.assertEqual(status, 2)
        self.assertIn("--force needs --message", err)

    def test_message_needs_force(self) -> None:
        pack = copy_sample("cni-flannel", self.tmp)
        status, _, _ = self.paxctl("pack", "push", str(pack), "-r", "x:1", "-m", "why")
        self.assertEqual(status, 2)

    def test_no_registry(self) -> None:
        status, _, err = self.paxctl("pack", "ls")
        self.assertEqual(status, 2)
        self.assertIn("no registry given", err)

    def test_connection_refused_is_one_line(self) -> None:
        port = closed_port()
        status, _, err = self.paxctl("pack", "ls", "-r", f"http://127.0.0.1:{port}")
        self.assertEqual(status, 1)
        self.assertEqual(
            err,
            f"paxctl: cannot connect to 127.0.0.1:{port}: connection refused"
            " (is the registry running?)\n",
        )

    def test_unresolvable_host(self) -> None:
        status, _, err = self.paxctl("pack", "ls", "-r", "no-such-host.invalid:5000")
        self.assertEqual(status, 1)
        self.assertIn("paxctl: cannot resolve no-such-host.invalid", err)

    def test_pull_into_a_non_empty_directory(self) -> None:
        (self.tmp / "full").mkdir()
        (self.tmp / "full" / "x").write_text("x")
        status, _, err = self.paxctl("pack", "pull", "a:1", str(self.tmp / "full"), "-r", "x:1")
        self.assertEqual(status, 1)
        self.assertIn("not an empty directory", err)

    def test_logout_unknown(self) -> None:
        status, _, err = self.paxctl("logout", "nowhere:5000")
        self.assertEqual(status, 1)
        self.assertIn("not logged in to nowhere:5000", err)

    def test_login_needs_a_password_source(self) -> None:
        status, _, err = self.paxctl("login", "r:5000", "--username", "u")
        self.assertEqual(status, 2)
        self.assertIn("--password-stdin", err)

    def test_tag_label_grammar(self) -> None:
        status, _, err = self.paxctl("pack", "tag", "add", "a:1", "bad__label", "-r", "x:1")
        self.assertEqual(status, 2)
        self.assertIn("is not a label", err)


class RefTests(SynchronousTestCase):
    def test_forms(self) -> None:
        d = "sha256:" + "0" * 64
        self.assertEqual(str(parse_ref("cni-calico")), "cni-calico")
        self.assertEqual(parse_ref("cni-calico:3.26.0").tag, "3.26.0")
        self.assertEqual(parse_ref(f"org/cni@{d}").digest, d)
        self.assertEqual(parse_ref("a:lts__1.0").tag, "lts__1.0")

    def test_bad(self) -> None:
        for text in ("Upper:1", "a:b c", "a@sha256:xyz", "a:", ""):
            self.assertRaises(UsageError, parse_ref, text)
        self.assertRaises(UsageError, parse_ref, "a", need_reference=True)


class ModuleTests(SynchronousTestCase):
    def test_python_dash_m(self) -> None:
        """``python -m paxd.client`` is paxctl (what the console script will run)."""
        proc = subprocess.run(
            [sys.executable, "-m", "paxd.client", "version"],
            capture_output=True,
            cwd=REPO_ROOT,
            timeout=60,
            check=False,
        )
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertTrue(proc.stdout.startswith(b"paxctl "))


class NewestVersionTests(SynchronousTestCase):
    """``pack pull NAME`` takes the version the registry's parent tag points at."""

    def test_release_over_its_prerelease(self) -> None:
        tags = ["1.0.0", "1.0.0-rc.1"]
        self.assertEqual(newest_version(tags), "1.0.0")
        self.assertEqual(newest_version(tags), compute_parents(tags)["1.x"])

    def test_group_and_parent_tags_are_not_versions(self) -> None:
        self.assertEqual(newest_version(["1.2.0", "lts__9.9.9", "9.x", "1.x"]), "1.2.0")
        self.assertEqual(newest_version(["22.04", "lts__22.04"]), "22.04")
        self.assertIsNone(newest_version(["lts__22.04", "1.x"]))


class LabelsAreNotNewestTests(SynchronousTestCase):
    """After ``tag add cert-manager:1.14.4 latest``, a pull without a tag takes 1.22.0."""

    def test_label_does_not_win(self) -> None:
        tags = ["1.14.4", "1.22.0", "latest", "recommended", "1.x", "1.22.x", "1.14.x"]
        self.assertEqual(newest_version(tags), "1.22.0")
        self.assertIsNone(newest_version(["latest", "recommended"]))


class VendorCommandLineTests(CLITestCase):
    """The vendor CLI's command line: ``registry login``, ``-s/--home``, ``version``, ``-n``."""

    def test_registry_login_help_has_the_vendor_flags(self) -> None:
        status, out, _ = self.paxctl("registry", "login", "--help")
        self.assertEqual(status, 0)
        for flag in ("-i, --insecure", "-d, --default", "--username", "--password", "SERVER"):
            self.assertIn(flag, out)
        self.assertIn("~/.spectro/config.json", out)
        _, out, _ = self.paxctl("--help")
        self.assertIn("~/.spectro", out)
        self.assertIn("~/.config/paxctl/config.json", out)  # what is still read

    def test_home_before_or_after_the_command(self) -> None:
        """``-s DIR`` names where config.json is, wherever it is on the line."""
        home = self.tmp / "spectro-home"
        home.mkdir()
        (home / "config.json").write_text(json.dumps({"defaultRegistry": "127.0.0.1:1"}))
        for argv in (["-s", str(home), "pack", "ls"], ["pack", "ls", "--home", str(home)]):
            status, _, err = self.paxctl(*argv)
            # the default registry came from DIR/config.json: a connection was tried
            self.assertEqual(status, 1, (argv, err))
            self.assertIn("127.0.0.1:1", err)
        status, _, err = self.paxctl("pack", "ls")
        self.assertEqual(status, 2)
        self.assertIn("no registry given", err)

    def test_registry_login_without_a_server_and_no_default(self) -> None:
        status, _, err = self.paxctl("registry", "login", "-u", "u", "--password-stdin")
        self.assertEqual(status, 2)
        self.assertIn("no registry given", err)

    def test_version_both_ways(self) -> None:
        status, out, _ = self.paxctl("version")
        self.assertEqual(status, 0)
        self.assertTrue(out.startswith("paxctl "))
        status, out, _ = self.paxctl("--version")
        self.assertEqual((status, out.startswith("paxctl ")), (0, True))

    def test_ls_short_name_flag(self) -> None:
        args = build_parser().parse_args(["pack", "ls", "-n", "calico"])
        self.assertEqual(args.name, "calico")

    def test_pack_build_help(self) -> None:
        status, out, _ = self.paxctl("pack", "build", "--help")
        self.assertEqual(status, 0)
        for word in (
            "PACK_NAME",
            "TARGET_DIR",
            "--push",
            "--registry-server",
            "--layer",
            "--addon-type",
            "--cloud-types",
            "--logo",
            "mandatory",
        ):
            self.assertIn(word, out)
