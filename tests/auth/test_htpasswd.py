"""The htpasswd checker: file format, reloads, dummy hash, cache, and bcrypt off the reactor."""

from __future__ import annotations

import os
import stat
import threading

from twisted.cred.checkers import ICredentialsChecker
from twisted.cred.credentials import UsernamePassword
from twisted.cred.error import UnauthorizedLogin
from twisted.internet.defer import Deferred
from twisted.internet.task import Clock
from twisted.python.threadpool import ThreadPool
from twisted.trial.unittest import SynchronousTestCase, TestCase
from zope.interface.verify import verifyObject

from paxd.auth.htpasswd import (
    HtpasswdChecker,
    HtpasswdError,
    check_file,
    ensure_htpasswd,
    hash_password,
    parse_htpasswd,
    verify_password,
)
from paxd.threadpool import PoolRunner, SynchronousRunner
from tests.auth.support import (
    CapturedLog,
    CountingCheckpw,
    HeldRunner,
    fast_line,
    htpasswd_line,
    htpasswd_verify,
)


def creds(user: str | bytes, password: str | bytes) -> UsernamePassword:
    """Credentials as BasicCredentialFactory makes them: bytes."""
    u = user.encode("utf-8") if isinstance(user, str) else user
    p = password.encode("utf-8") if isinstance(password, str) else password
    return UsernamePassword(u, p)


class CheckerMixin:
    """Builds a checker over a real temporary file, with a fake clock and a synchronous runner."""

    def make_file(self, text: str) -> str:
        path = self.mktemp()  # type: ignore[attr-defined]
        with open(path, "w") as f:
            f.write(text)
        return path

    def make_checker(self, text: str, **kwargs: object) -> HtpasswdChecker:
        self.path = self.make_file(text)
        self.clock = Clock()
        self.captured = CapturedLog()
        self.checkpw = CountingCheckpw()
        checker = HtpasswdChecker(
            self.path,
            kwargs.pop("runner", SynchronousRunner()),  # type: ignore[arg-type]
            clock=self.clock,
            log=self.captured.log,
            checkpw=self.checkpw,
            **kwargs,  # type: ignore[arg-type]
        )
        checker.load()
        return checker

    def rewrite(self, text: str) -> None:
        """Replace the file's content and move its mtime (as an editor would)."""
        st = os.stat(self.path)
        with open(self.path, "w") as f:
            f.write(text)
        os.utime(self.path, ns=(st.st_atime_ns, st.st_mtime_ns + 2_000_000_000))

    def login(self, checker: HtpasswdChecker, user: str | bytes, password: str | bytes) -> object:
        """The avatar id, or the failure's exception type, of an already-fired check."""
        d = checker.requestAvatarId(creds(user, password))
        results: list[object] = []
        d.addCallbacks(results.append, lambda f: results.append(f.type))
        assert results, "the check did not finish"
        return results[0]


class ParseTests(SynchronousTestCase):
    """The file format, with files made by Debian's real htpasswd."""

    def test_real_htpasswd_bcrypt_costs(self) -> None:
        """``htpasswd -B -C 5`` and ``-C 12`` lines are read, with their costs."""
        text = htpasswd_line("-B", "-C", "5", user="admin", password="a-pw") + htpasswd_line(
            "-B", "-C", "12", user="spectro", password="s-pw"
        )
        parsed = parse_htpasswd(text.encode(), "f")
        self.assertEqual(sorted(parsed.users), ["admin", "spectro"])
        self.assertEqual(parsed.warnings, [])
        self.assertTrue(parsed.users["admin"].startswith(b"$2y$05$"))
        self.assertTrue(parsed.users["spectro"].startswith(b"$2y$12$"))
        self.assertTrue(verify_password(parsed.users["admin"], b"a-pw"))
        self.assertFalse(verify_password(parsed.users["admin"], b"s-pw"))

    def test_other_formats_skipped_with_one_warning_each(self) -> None:
        """``-m`` (MD5) and ``-s`` (SHA-1) lines are skipped, each with a warning (line, user)."""
        text = (
            "# users\n"
            + fast_line("admin", "pw")
            + htpasswd_line("-m", user="md5user", password="pw")
            + "\n"
            + htpasswd_line("-s", user="shauser", password="pw")
            + "plain:secret\n"
        )
        parsed = parse_htpasswd(text.encode(), "/etc/paxd/htpasswd")
        self.assertEqual(list(parsed.users), ["admin"])
        self.assertEqual(len(parsed.warnings), 3)
        md5, sha, plain = parsed.warnings
        self.assertIn("/etc/paxd/htpasswd, line 3: user 'md5user'", md5)
        self.assertIn("MD5", md5)
        self.assertIn("line 5: user 'shauser'", sha)
        self.assertIn("SHA-1", sha)
        self.assertIn("line 6: user 'plain'", plain)
        for w in parsed.warnings:
            self.assertIn("htpasswd -B", w)
            self.assertNotIn("$apr1$", w)  # never the hash

    def test_comments_blank_lines_and_crlf(self) -> None:
        text = "\n  # a comment\r\n\r\n" + fast_line("a", "pw").replace("\n", "\r\n") + "   \n"
        parsed = parse_htpasswd(text.encode(), "f")
        self.assertEqual(list(parsed.users), ["a"])
        self.assertTrue(verify_password(parsed.users["a"], b"pw"))

    def test_line_without_colon_is_an_error_naming_file_and_line(self) -> None:
        text = fast_line("a", "pw") + "# fine\nbroken-line\n"
        with self.assertRaises(HtpasswdError) as cm:
            parse_htpasswd(text.encode(), "/srv/htpasswd")
        self.assertIn("/srv/htpasswd, line 3", str(cm.exception))

    def test_empty_user_is_an_error(self) -> None:
        with self.assertRaises(HtpasswdError):
            parse_htpasswd(b":$2y$04$abc\n", "f")

    def test_duplicate_user_first_wins_with_warning(self) -> None:
        text = fast_line("a", "first") + fast_line("a", "second")
        parsed = parse_htpasswd(text.encode(), "f")
        self.assertTrue(verify_password(parsed.users["a"], b"first"))
        self.assertEqual(len(parsed.warnings), 1)
        self.assertIn("line 2: user 'a'", parsed.warnings[0])

    def test_byte_order_mark_ignored(self) -> None:
        """A file saved by an editor that writes a UTF-8 BOM still logs its first user in."""
        data = b"\xef\xbb\xbf" + (fast_line("admin", "pw") + fast_line("b", "pw")).encode()
        parsed = parse_htpasswd(data, "f")
        self.assertEqual(sorted(parsed.users), ["admin", "b"])
        self.assertEqual(parsed.warnings, [])

    def test_spaces_around_colon_skipped_as_apache_and_distribution_do(self) -> None:
        """``bob : hash`` logs no one in under Apache: skipped, with a warning saying why."""
        hashed = hash_password(b"pw", 4).decode()
        text = f"bob : {hashed}\ncarol :{hashed}\ndave: {hashed}\n" + fast_line("eve", "pw")
        path = self.mktemp()
        with open(path, "w") as f:
            f.write(text)
        parsed = parse_htpasswd(text.encode(), path)
        self.assertEqual(list(parsed.users), ["eve"])
        self.assertEqual(len(parsed.warnings), 3)
        for number, (user, warning) in enumerate(
            zip(["bob", "carol", "dave"], parsed.warnings, strict=True), start=1
        ):
            self.assertIn(f"line {number}: spaces around ':' after user {user!r}", warning)
            self.assertIn("'user:hash'", warning)
            self.assertNotIn(hashed, warning)
        # the real htpasswd agrees: it does not find bob either
        self.assertFalse(htpasswd_verify(path, "bob", "pw"))
        self.assertTrue(htpasswd_verify(path, "eve", "pw"))

    def test_empty_file_warns_that_no_one_can_log_in(self) -> None:
        for data in (b"", b"\n# only a comment\n\n", b"\xef\xbb\xbf"):
            parsed = parse_htpasswd(data, "/etc/paxd/htpasswd")
            self.assertEqual(parsed.users, {})
            self.assertEqual(len(parsed.warnings), 1, data)
            self.assertIn(
                "/etc/paxd/htpasswd: no one can log in (it holds no entry)", parsed.warnings[0]
            )
            self.assertIn("paxd htpasswd /etc/paxd/htpasswd set admin", parsed.warnings[0])

    def test_all_skipped_warns_that_no_one_can_log_in(self) -> None:
        text = htpasswd_line("-m", user="old", password="pw") + "plain:secret\n"
        parsed = parse_htpasswd(text.encode(), "f")
        self.assertEqual(parsed.users, {})
        self.assertEqual(len(parsed.warnings), 3)
        self.assertIn("line 1: user 'old'", parsed.warnings[0])
        self.assertIn("line 2: user 'plain'", parsed.warnings[1])
        self.assertIn("f: no one can log in (all 2 entries were skipped)", parsed.warnings[2])

    def test_non_utf8_user_skipped(self) -> None:
        data = b"caf\xe9:" + hash_password(b"pw", 4) + b"\n"
        parsed = parse_htpasswd(data, "f")
        self.assertEqual(parsed.users, {})
        self.assertIn("line 1", parsed.warnings[0])

    def test_check_file_unreadable(self) -> None:
        with self.assertRaises(HtpasswdError) as cm:
            check_file("/nonexistent/htpasswd")
        self.assertIn("/nonexistent/htpasswd", str(cm.exception))


class VerifyPasswordTests(SynchronousTestCase):
    """The bcrypt check itself."""

    def test_variants(self) -> None:
        """$2y$, $2a$ and $2b$ are the same algorithm."""
        hashed = hash_password(b"pw", 4)
        self.assertTrue(hashed.startswith(b"$2y$04$"))
        for prefix in (b"$2y$", b"$2a$", b"$2b$"):
            self.assertTrue(verify_password(prefix + hashed[4:], b"pw"))
            self.assertFalse(verify_password(prefix + hashed[4:], b"pW"))

    def test_long_password_truncated_like_htpasswd(self) -> None:
        """bcrypt reads 72 bytes: Apache's htpasswd -v agrees (checked with the real tool)."""
        line = htpasswd_line("-B", "-C", "4", user="u", password="a" * 100)
        hashed = line.strip().split(":", 1)[1].encode()
        self.assertTrue(verify_password(hashed, b"a" * 72))
        self.assertTrue(verify_password(hashed, b"a" * 5000))
        self.assertFalse(verify_password(hashed, b"a" * 71))

    def test_nul_and_garbage_are_false_not_errors(self) -> None:
        hashed = hash_password(b"pw", 4)
        self.assertFalse(verify_password(hashed, b"pw\x00x"))
        self.assertFalse(verify_password(b"$2y$04$" + b"!" * 53, b"pw"))

    def test_hash_password_refuses_long(self) -> None:
        with self.assertRaises(ValueError):
            hash_password(b"x" * 73, 4)


class CheckerTests(CheckerMixin, SynchronousTestCase):
    """The checker, over a real file, a fake clock and a synchronous runner."""

    def test_interface(self) -> None:
        checker = self.make_checker(fast_line("admin", "pw"))
        verifyObject(ICredentialsChecker, checker)

    def test_right_password(self) -> None:
        checker = self.make_checker(fast_line("admin", "pw") + fast_line("spectro", "ro"))
        self.assertEqual(self.login(checker, "admin", "pw"), "admin")
        self.assertEqual(self.login(checker, "spectro", "ro"), "spectro")
        self.assertEqual(checker.users, frozenset({"admin", "spectro"}))

    def test_real_htpasswd_file(self) -> None:
        """A file made exactly as the seed does (htpasswd -Bbn …) logs in."""
        checker = self.make_checker(htpasswd_line("-B", "-C", "5", user="admin", password="x y"))
        self.assertEqual(self.login(checker, "admin", "x y"), "admin")

    def test_every_failure_is_the_same(self) -> None:
        checker = self.make_checker(fast_line("admin", "pw"))
        self.assertIs(self.login(checker, "admin", "wrong"), UnauthorizedLogin)
        self.assertIs(self.login(checker, "nobody", "pw"), UnauthorizedLogin)
        self.assertIs(self.login(checker, b"\xff\xfe", "pw"), UnauthorizedLogin)
        self.assertIs(self.login(checker, "admin", b"\xff\x00"), UnauthorizedLogin)

    def test_unknown_user_runs_bcrypt_on_a_dummy_of_the_files_cost(self) -> None:
        """Timing: an unknown user costs one bcrypt of the file's cost, like a known one."""
        checker = self.make_checker(fast_line("a", "pw") + fast_line("b", "pw"))
        self.login(checker, "nobody", "pw")
        self.assertEqual(self.checkpw.calls, 1)
        self.assertEqual(self.checkpw.hashes[0][:7], b"$2b$04$")
        self.assertFalse(verify_password(self.checkpw.hashes[0], b"pw"))

    def test_dummy_costs_follow_the_files_costs(self) -> None:
        """With one user of cost 4 and three of cost 5, unknown names take either time.

        The cost-4 user is not told apart by being fast: about a quarter of
        unknown names are checked at cost 4 too, each name always at the same cost.
        """
        text = fast_line("quick", "pw") + "".join(
            f"u{i}:" + hash_password(b"pw", 5).decode() + "\n" for i in range(3)
        )
        checker = self.make_checker(text)
        costs = []
        for i in range(400):
            self.login(checker, f"nobody{i}", "guess")
            costs.append(int(self.checkpw.hashes[-1][4:6]))
        self.assertEqual(set(costs), {4, 5})
        self.assertTrue(60 <= costs.count(4) <= 140, costs.count(4))
        # the same name, the same cost: asking again tells nothing new
        for i in range(20):
            self.login(checker, f"nobody{i}", "other guess")
            self.assertEqual(int(self.checkpw.hashes[-1][4:6]), costs[i])

    def test_dummy_follows_a_reloaded_file(self) -> None:
        checker = self.make_checker(fast_line("a", "pw"))
        self.rewrite("b:" + hash_password(b"pw", 5).decode() + "\n")
        self.clock.advance(1)
        self.login(checker, "nobody", "pw")
        self.assertEqual(self.checkpw.hashes[-1][:7], b"$2b$05$")

    def test_empty_file_warned_at_load(self) -> None:
        self.make_checker("# no users yet\n")
        warnings = self.captured.messages("warn")
        self.assertEqual(len(warnings), 1)
        self.assertIn("no one can log in", warnings[0])

    def test_skipped_user_cannot_log_in_and_is_warned_once(self) -> None:
        checker = self.make_checker(
            fast_line("admin", "pw") + htpasswd_line("-m", user="old", password="pw")
        )
        self.assertIs(self.login(checker, "old", "pw"), UnauthorizedLogin)
        self.clock.advance(1)
        self.login(checker, "old", "pw")
        warnings = self.captured.messages("warn")
        self.assertEqual(len(warnings), 1)
        self.assertIn("line 2: user 'old'", warnings[0])

    def test_load_refuses_malformed(self) -> None:
        path = self.make_file(fast_line("a", "pw") + "oops\n")
        checker = HtpasswdChecker(path, SynchronousRunner(), clock=Clock())
        with self.assertRaises(HtpasswdError) as cm:
            checker.load()
        self.assertIn(f"{path}, line 2", str(cm.exception))

    def test_load_refuses_missing(self) -> None:
        checker = HtpasswdChecker(self.mktemp(), SynchronousRunner(), clock=Clock())
        self.assertRaises(HtpasswdError, checker.load)

    def test_load_refuses_unreadable(self) -> None:
        """A path that cannot be read as a file (a directory: even root cannot) is refused."""
        path = self.mktemp()
        os.mkdir(path)
        checker = HtpasswdChecker(path, SynchronousRunner(), clock=Clock())
        with self.assertRaises(HtpasswdError) as cm:
            checker.load()
        self.assertIn(path, str(cm.exception))

    # -- reloads --------------------------------------------------------------

    def test_edit_takes_effect_within_a_second(self) -> None:
        """A user added works and a user removed is refused, without a restart."""
        checker = self.make_checker(fast_line("admin", "pw") + fast_line("old", "pw"))
        self.assertEqual(self.login(checker, "old", "pw"), "old")
        self.rewrite(fast_line("admin", "pw") + fast_line("new", "pw2"))
        self.clock.advance(0.6)
        self.assertEqual(self.login(checker, "new", "pw2"), "new")
        self.assertIs(self.login(checker, "old", "pw"), UnauthorizedLogin)
        self.assertEqual(self.login(checker, "admin", "pw"), "admin")
        self.assertIn("reloaded", " ".join(self.captured.messages("info")))

    def test_file_looked_at_at_most_every_half_second(self) -> None:
        checker = self.make_checker(fast_line("admin", "pw"))
        self.rewrite(fast_line("admin", "pw") + fast_line("new", "pw"))
        self.clock.advance(0.2)
        self.assertIs(self.login(checker, "new", "pw"), UnauthorizedLogin)
        self.clock.advance(0.4)
        self.assertEqual(self.login(checker, "new", "pw"), "new")

    def test_same_size_edit_detected_by_mtime(self) -> None:
        checker = self.make_checker(fast_line("aaaa", "pw"))
        self.rewrite(fast_line("bbbb", "pw"))
        self.clock.advance(1)
        self.assertEqual(self.login(checker, "bbbb", "pw"), "bbbb")

    def test_broken_edit_keeps_last_good_users(self) -> None:
        checker = self.make_checker(fast_line("admin", "pw"))
        self.rewrite(fast_line("admin", "changed") + "no colon here\n")
        for _ in range(3):
            self.clock.advance(1)
            self.assertEqual(self.login(checker, "admin", "pw"), "admin")
        errors = self.captured.messages("error")
        self.assertEqual(len(errors), 1, "logged once, not on every look")
        self.assertIn("line 2", errors[0])
        self.assertIn("keeping the 1 users", errors[0])
        # fixing the file takes effect
        self.rewrite(fast_line("admin", "changed"))
        self.clock.advance(1)
        self.assertEqual(self.login(checker, "admin", "changed"), "admin")

    def test_deleted_file_keeps_last_good_users(self) -> None:
        checker = self.make_checker(fast_line("admin", "pw"))
        os.unlink(self.path)
        self.clock.advance(1)
        self.assertEqual(self.login(checker, "admin", "pw"), "admin")
        self.clock.advance(1)
        self.login(checker, "admin", "pw")
        errors = self.captured.messages("error")
        self.assertEqual(len(errors), 1)
        self.assertIn(self.path, errors[0])

    # -- the cache --------------------------------------------------------------

    def test_repeated_login_does_not_run_bcrypt_again(self) -> None:
        checker = self.make_checker(fast_line("admin", "pw"), cache_ttl=30.0)
        for _ in range(5):
            self.assertEqual(self.login(checker, "admin", "pw"), "admin")
            self.clock.advance(1)
        self.assertEqual(self.checkpw.calls, 1)
        self.clock.advance(30)
        self.login(checker, "admin", "pw")
        self.assertEqual(self.checkpw.calls, 2, "expired after the TTL")

    def test_wrong_password_is_not_cached_and_not_confused(self) -> None:
        checker = self.make_checker(fast_line("admin", "pw"))
        self.login(checker, "admin", "pw")
        self.assertIs(self.login(checker, "admin", "pw "), UnauthorizedLogin)
        self.assertIs(self.login(checker, "admin", "pw "), UnauthorizedLogin)
        self.assertEqual(self.checkpw.calls, 3)

    def test_user_password_boundary_in_key(self) -> None:
        """('ab', 'c') and ('a', 'bc') are different keys."""
        checker = self.make_checker(fast_line("ab", "c"))
        self.login(checker, "ab", "c")
        self.assertIs(self.login(checker, "a", "bc"), UnauthorizedLogin)

    def test_file_change_empties_cache(self) -> None:
        checker = self.make_checker(fast_line("admin", "pw"))
        self.login(checker, "admin", "pw")
        self.rewrite(fast_line("admin", "new"))
        self.clock.advance(1)
        self.assertIs(self.login(checker, "admin", "pw"), UnauthorizedLogin)
        self.assertEqual(self.login(checker, "admin", "new"), "admin")

    def test_cache_never_holds_the_password(self) -> None:
        checker = self.make_checker(fast_line("admin", "correct horse"))
        self.login(checker, "admin", "correct horse")
        state = repr(vars(checker))
        self.assertNotIn("correct horse", state)
        self.assertNotIn(repr(b"correct horse")[2:-1], state)

    def test_cache_is_bounded(self) -> None:
        checker = self.make_checker(fast_line("a", "pw") + fast_line("b", "pw"), cache_size=1)
        for user in ("a", "b", "a", "b"):
            self.login(checker, user, "pw")
        self.assertEqual(self.checkpw.calls, 4, "each evicts the other")
        self.assertEqual(len(checker._cache), 1)

    def test_cache_disabled(self) -> None:
        checker = self.make_checker(fast_line("a", "pw"), cache_ttl=0)
        self.login(checker, "a", "pw")
        self.login(checker, "a", "pw")
        self.assertEqual(self.checkpw.calls, 2)

    def test_concurrent_same_credentials_share_one_bcrypt(self) -> None:
        runner = HeldRunner()
        checker = self.make_checker(fast_line("a", "pw"), runner=runner)
        self.clock.advance(1)
        results: list[object] = []
        for password in ("pw", "pw", "pw", "bad"):
            d = checker.requestAvatarId(creds("a", password))
            d.addCallbacks(results.append, lambda f: results.append(f.type))
        runner.release()
        self.assertEqual(results.count("a"), 3)
        self.assertIn(UnauthorizedLogin, results)
        self.assertEqual(self.checkpw.calls, 2)

    def test_removed_during_check_is_refused(self) -> None:
        """If the file drops the user while bcrypt runs, the result is a refusal."""
        runner = HeldRunner()
        checker = self.make_checker(fast_line("a", "pw"), runner=runner)
        d = checker.requestAvatarId(creds("a", "pw"))  # within 0.5 s: straight to bcrypt
        checker._users = {}  # what a reload in between would leave
        runner.release()
        self.failureResultOf(d, UnauthorizedLogin)


class EnsureHtpasswdTests(SynchronousTestCase):
    """Creating a missing file, as distribution does."""

    def test_creates_dir_and_file_with_admin(self) -> None:
        base = self.mktemp()
        path = os.path.join(base, "auth", "htpasswd")
        password = ensure_htpasswd(path, cost=4)
        self.assertIsNotNone(password)
        assert password is not None
        self.assertGreaterEqual(len(password), 20)
        self.assertEqual(stat.S_IMODE(os.stat(os.path.dirname(path)).st_mode), 0o700)
        self.assertEqual(stat.S_IMODE(os.stat(path).st_mode), 0o600)
        parsed = check_file(path)
        self.assertEqual(list(parsed.users), ["admin"])
        self.assertTrue(verify_password(parsed.users["admin"], password.encode()))
        self.assertTrue(htpasswd_verify(path, "admin", password))

    def test_existing_file_untouched(self) -> None:
        path = self.mktemp()
        with open(path, "w") as f:
            f.write("# mine\n")
        self.assertIsNone(ensure_htpasswd(path))
        with open(path) as f:
            self.assertEqual(f.read(), "# mine\n")

    def test_passwords_differ(self) -> None:
        a = ensure_htpasswd(os.path.join(self.mktemp(), "h"), cost=4)
        b = ensure_htpasswd(os.path.join(self.mktemp(), "h"), cost=4)
        self.assertNotEqual(a, b)

    def test_uncreatable(self) -> None:
        path = self.mktemp()
        with open(path, "w"):
            pass
        with self.assertRaises(HtpasswdError):
            ensure_htpasswd(os.path.join(path, "sub", "htpasswd"), cost=4)


class ThreadTests(CheckerMixin, TestCase):
    """bcrypt, with a real thread pool and the real reactor: never on the reactor thread."""

    def setUp(self) -> None:
        from twisted.internet import reactor

        self.pool = ThreadPool(minthreads=1, maxthreads=2, name="test-bcrypt")
        self.pool.start()
        self.addCleanup(self.pool.stop)
        self.runner = PoolRunner(reactor, self.pool)  # type: ignore[arg-type]

    def test_bcrypt_runs_in_the_pool(self) -> Deferred[None]:
        checker = self.make_checker(fast_line("admin", "pw"), runner=self.runner)
        self.clock.advance(1)  # so that the stat and read go through the pool too
        main = threading.current_thread()
        d = checker.requestAvatarId(creds("admin", "pw"))

        def check(avatar: object) -> None:
            self.assertEqual(avatar, "admin")
            self.assertEqual(self.checkpw.calls, 1)
            self.assertIsNot(self.checkpw.threads[0], main)
            self.assertIn("test-bcrypt", self.checkpw.threads[0].name)
            self.assertIs(threading.current_thread(), main, "result delivered on the reactor")

        return d.addCallback(check)

    def test_unknown_user_and_reload_in_the_pool(self) -> Deferred[None]:
        checker = self.make_checker(fast_line("admin", "pw"), runner=self.runner)
        self.rewrite(fast_line("admin", "pw") + fast_line("new", "pw"))
        self.clock.advance(1)
        main = threading.current_thread()
        d = checker.requestAvatarId(creds("new", "pw"))

        def then(avatar: object) -> Deferred[str]:
            self.assertEqual(avatar, "new")
            return checker.requestAvatarId(creds("ghost", "pw"))

        d.addCallback(then)
        self.assertFailure(d, UnauthorizedLogin)

        def threads(_: object) -> None:
            self.assertEqual(self.checkpw.calls, 2)
            for t in self.checkpw.threads:
                self.assertIsNot(t, main)

        return d.addCallback(threads)
