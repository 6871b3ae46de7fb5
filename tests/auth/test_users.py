"""``paxd htpasswd``: the files it writes are read by Debian's htpasswd and by paxd."""

from __future__ import annotations

import contextlib
import io
import os
import stat
import subprocess
import sys

from twisted.trial.unittest import SynchronousTestCase

from paxd.auth.htpasswd import check_file, verify_password
from paxd.auth.users import main
from tests.auth.support import htpasswd_line, htpasswd_verify


class UsersCommandTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.mktemp_dir = self.mktemp()
        os.mkdir(self.mktemp_dir)
        self.path = os.path.join(self.mktemp_dir, "htpasswd")

    def run_main(self, *argv: str, stdin: str = "") -> tuple[int, str, str]:
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
            code = main(
                [self.path, *argv] if argv and argv[0] != "--help" else list(argv),
                stdin=io.StringIO(stdin),
                stdout=out,
                stderr=err,
            )
        return code, out.getvalue(), err.getvalue()

    def add(self, user: str, password: str, command: str = "add") -> int:
        code, out, _ = self.run_main(
            command, user, "--password-stdin", "--cost", "5", stdin=password + "\n"
        )
        if len(password) >= 6:  # short ones occur in "added user admin"
            self.assertNotIn(password, out, "never prints a given password")
        return code

    def test_add_creates_0600_file_read_by_real_htpasswd(self) -> None:
        self.assertEqual(self.add("admin", "s3cret pw"), 0)
        self.assertEqual(stat.S_IMODE(os.stat(self.path).st_mode), 0o600)
        with open(self.path, "rb") as f:
            self.assertTrue(f.read().startswith(b"admin:$2y$05$"))
        self.assertTrue(htpasswd_verify(self.path, "admin", "s3cret pw"))
        self.assertFalse(htpasswd_verify(self.path, "admin", "s3cret"))
        self.assertTrue(verify_password(check_file(self.path).users["admin"], b"s3cret pw"))

    def test_add_existing_fails(self) -> None:
        self.add("admin", "a")
        self.assertEqual(self.add("admin", "b"), 1)
        self.assertTrue(htpasswd_verify(self.path, "admin", "a"))

    def test_set_on_a_file_with_a_byte_order_mark(self) -> None:
        """The first user of a file saved with a BOM is found (not added a second time)."""
        with open(self.path, "wb") as f:
            f.write(
                b"\xef\xbb\xbf"
                + htpasswd_line("-B", "-C", "5", user="admin", password="old").encode()
            )
        self.assertEqual(self.add("admin", "new", command="set"), 0)
        self.assertEqual(list(check_file(self.path).users), ["admin"])
        self.assertTrue(verify_password(check_file(self.path).users["admin"], b"new"))
        self.assertTrue(htpasswd_verify(self.path, "admin", "new"), "Apache reads it now too")

    def test_set_changes_and_keeps_other_lines(self) -> None:
        with open(self.path, "w") as f:
            f.write("# operators\n" + htpasswd_line("-B", "-C", "5", user="admin", password="old"))
            f.write(htpasswd_line("-m", user="legacy", password="pw"))
        os.chmod(self.path, 0o640)
        self.assertEqual(self.add("admin", "new", command="set"), 0)
        self.assertTrue(htpasswd_verify(self.path, "admin", "new"))
        self.assertFalse(htpasswd_verify(self.path, "admin", "old"))
        self.assertTrue(htpasswd_verify(self.path, "legacy", "pw"))
        with open(self.path) as f:
            self.assertTrue(f.read().startswith("# operators\nadmin:$2y$"))
        self.assertEqual(stat.S_IMODE(os.stat(self.path).st_mode), 0o640, "mode kept")
        self.assertEqual(self.add("spectro", "ro", command="set"), 0, "set adds a missing user")
        self.assertTrue(htpasswd_verify(self.path, "spectro", "ro"))

    def test_remove(self) -> None:
        self.add("admin", "a")
        self.add("spectro", "b")
        self.assertEqual(self.run_main("remove", "admin")[0], 0)
        self.assertEqual(list(check_file(self.path).users), ["spectro"])
        self.assertEqual(self.run_main("remove", "admin")[0], 1)

    def test_generated_password_printed_once(self) -> None:
        code, out, _ = self.run_main("add", "admin", "--cost", "4")
        self.assertEqual(code, 0)
        password = out.split("generated password for admin: ")[1].split()[0]
        self.assertTrue(htpasswd_verify(self.path, "admin", password))

    def test_list(self) -> None:
        self.add("admin", "a")
        with open(self.path, "a") as f:
            f.write(htpasswd_line("-s", user="old", password="pw"))
        code, out, _ = self.run_main("list")
        self.assertEqual(code, 0)
        lines = out.splitlines()
        self.assertEqual(lines[0], "admin")
        self.assertTrue(lines[1].startswith("old") and "not bcrypt" in lines[1])
        self.assertNotIn("$2y$", out)

    def test_verify(self) -> None:
        self.add("admin", "a")
        self.assertEqual(self.run_main("verify", "admin", "--password-stdin", stdin="a\n")[0], 0)
        self.assertEqual(self.run_main("verify", "admin", "--password-stdin", stdin="b\n")[0], 1)
        self.assertEqual(self.run_main("verify", "ghost", "--password-stdin", stdin="a\n")[0], 1)

    def test_verify_file_made_by_real_htpasswd(self) -> None:
        with open(self.path, "w") as f:
            f.write(htpasswd_line("-B", "-C", "12", user="admin", password="pw"))
        self.assertEqual(self.run_main("verify", "admin", "--password-stdin", stdin="pw\n")[0], 0)

    def test_usage_errors_exit_2(self) -> None:
        self.assertEqual(self.run_main("bogus")[0], 2)
        self.assertEqual(self.run_main("add")[0], 2)
        self.assertEqual(self.run_main("add", "u", "--cost", "x")[0], 2)
        with contextlib.redirect_stderr(io.StringIO()):
            self.assertEqual(main([]), 2)

    def test_help(self) -> None:
        code, out, _ = self.run_main("--help")
        self.assertEqual(code, 0)
        for word in ("add", "set", "remove", "list", "verify", "--password-stdin", "Exit codes"):
            self.assertIn(word, out)

    def test_failures_exit_1(self) -> None:
        self.assertEqual(self.add("bad:name", "pw"), 1)
        self.assertEqual(self.add("two words", "pw"), 1)
        self.assertEqual(self.add("u", "x" * 73), 1)
        self.assertEqual(
            self.run_main("add", "u", "--cost", "3", "--password-stdin", stdin="p\n")[0], 1
        )
        self.assertEqual(self.run_main("add", "u", "--password-stdin", stdin="\n")[0], 1)
        self.assertFalse(os.path.exists(self.path), "nothing written on failure")

    def test_refuses_to_rewrite_malformed_file(self) -> None:
        with open(self.path, "w") as f:
            f.write("garbage without colon\n")
        code, _, err = self.run_main("add", "u", "--password-stdin", stdin="p\n")
        self.assertEqual(code, 1)
        self.assertIn("line 1", err)
        with open(self.path) as f:
            self.assertEqual(f.read(), "garbage without colon\n")

    def test_no_temporary_files_left(self) -> None:
        self.add("a", "p")
        self.add("a", "q", command="set")
        self.run_main("remove", "a")
        self.assertEqual(os.listdir(self.mktemp_dir), ["htpasswd"])


class PipedPasswordTests(SynchronousTestCase):
    """``echo PW | paxd htpasswd FILE add USER``: a stdin that is not a terminal is read."""

    def setUp(self) -> None:
        directory = os.path.abspath(self.mktemp())
        os.mkdir(directory)
        self.path = os.path.join(directory, "htpasswd")

    def paxd(self, *argv: str, stdin: int | None = None, text: str | None = None) -> str:
        root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        proc = subprocess.run(
            [sys.executable, "-m", "paxd", "htpasswd", self.path, *argv, "--cost", "4"],
            input=text.encode() if text is not None else None,
            stdin=stdin,
            capture_output=True,
            cwd=root,
            timeout=60,
            check=False,
        )
        self.assertEqual(proc.returncode, 0, proc.stderr)
        return proc.stdout.decode()

    def test_pipe_without_the_flag(self) -> None:
        out = self.paxd("add", "admin", text="piped-secret\n")
        self.assertNotIn("generated", out)
        self.assertNotIn("piped-secret", out)
        self.assertTrue(htpasswd_verify(self.path, "admin", "piped-secret"))
        self.paxd("set", "admin", text="changed\n")
        self.assertTrue(htpasswd_verify(self.path, "admin", "changed"))

    def test_dev_null_still_generates(self) -> None:
        out = self.paxd("add", "admin", stdin=subprocess.DEVNULL)
        password = out.split("generated password for admin: ")[1].split()[0]
        self.assertTrue(htpasswd_verify(self.path, "admin", password))

    def test_in_memory_stream(self) -> None:
        out = io.StringIO()
        with contextlib.redirect_stderr(io.StringIO()):
            code = main(
                [self.path, "add", "u", "--cost", "4"], stdin=io.StringIO("pw\n"), stdout=out
            )
        self.assertEqual(code, 0)
        self.assertTrue(htpasswd_verify(self.path, "u", "pw"))
        with contextlib.redirect_stderr(io.StringIO()):
            code = main([self.path, "verify", "u"], stdin=io.StringIO("pw\n"), stdout=out)
        self.assertEqual(code, 0)
        self.assertIn("password for user u is correct", out.getvalue())

    def test_empty_line_is_refused(self) -> None:
        with contextlib.redirect_stderr(io.StringIO()):
            code = main(
                [self.path, "add", "u", "--cost", "4"],
                stdin=io.StringIO("\n"),
                stdout=io.StringIO(),
                stderr=io.StringIO(),
            )
        self.assertEqual(code, 1)
        self.assertFalse(os.path.exists(self.path))
