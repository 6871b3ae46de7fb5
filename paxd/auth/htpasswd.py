"""An htpasswd file as a :mod:`twisted.cred` checker, behaving like Docker distribution's.

- Only bcrypt entries (``$2y$``, ``$2a$``, ``$2b$``) are accepted; a line in
  another hash format is skipped with one warning naming its line and user.
- ``#`` comments and blank lines are allowed; a non-empty line without ``:``
  makes the file malformed: refused at start-up, ignored (keeping the last good
  users) when it appears in a running daemon.
- A UTF-8 byte-order mark at the start of the file is ignored.  Spaces around
  the ``:`` (``bob : hash``) are not trimmed, as neither Apache (``htpasswd
  -v`` says "User bob not found") nor Docker distribution trims them: the line
  is skipped with a warning saying how to write it.  Every skipped line is a
  warning naming its line number; a file left with no usable user is a
  warning that no one can log in.
- The file is re-read when its modification time or size changes, checked at
  most every :data:`RECHECK_INTERVAL` seconds, so edits apply within a second.
- Unknown users are checked against a dummy hash whose cost follows the
  file's costs: each unknown name always gets the same cost, drawn (by a keyed
  hash of the name) in proportion to how many users have it, so that timing
  does not tell which users exist; every failure is the same
  :class:`~twisted.cred.error.UnauthorizedLogin`.
- bcrypt, ``stat`` and reads run through a runner (a dedicated thread pool),
  never on the reactor thread.  Verified credentials are cached for a short
  time under a keyed hash of user and password (never the password itself),
  and the cache is emptied whenever the file changes.
"""

from __future__ import annotations

import bisect
import codecs
import collections
import hashlib
import hmac
import itertools
import os
import re
import secrets
from collections.abc import Callable

import attrs
import bcrypt
from twisted.cred.checkers import ICredentialsChecker
from twisted.cred.credentials import ICredentials, IUsernamePassword
from twisted.cred.error import UnauthorizedLogin
from twisted.internet.defer import Deferred, succeed
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from paxd.threadpool import IRunner

#: how often (seconds) a running checker looks at the file's mtime and size
RECHECK_INTERVAL = 0.5
#: the cost of hashes this module writes (``htpasswd -B`` uses 5; distribution's default is 10)
DEFAULT_COST = 10
#: bcrypt reads at most this many bytes of a password (Apache's htpasswd and Go truncate too)
BCRYPT_MAX_PASSWORD = 72
#: a well-formed bcrypt hash; group 1 is the variant letter, group 2 the cost
BCRYPT_RE = re.compile(rb"^\$2([aby])\$(0[4-9]|[12][0-9]|3[01])\$[./A-Za-z0-9]{53}$")


class HtpasswdError(Exception):
    """An htpasswd file that cannot be used; the message names the file and, if any, the line."""


@attrs.frozen
class HtpasswdFile:
    """The parsed content of an htpasswd file.

    :ivar users: user name → bcrypt hash, for every usable entry.
    :ivar warnings: one message per skipped line (naming line number and user).
    """

    users: dict[str, bytes]
    warnings: list[str]

    def costs(self) -> dict[int, int]:
        """bcrypt cost → how many users have it (``{DEFAULT_COST: 1}`` when there is no user)."""
        counted = collections.Counter(int(h[4:6]) for h in self.users.values())
        return dict(sorted(counted.items())) or {DEFAULT_COST: 1}


def _describe_hash(hashed: bytes) -> str:
    """Name an unusable hash's format, for the warning."""
    if hashed.startswith(b"$apr1$"):
        return "an MD5 (htpasswd -m)"
    if hashed.startswith(b"{SHA}"):
        return "a SHA-1 (htpasswd -s)"
    if hashed.startswith((b"$5$", b"$6$")):
        return "a SHA-crypt"
    if hashed.startswith(b"$2"):
        return "a malformed bcrypt"
    if hashed.startswith(b"$1$"):
        return "an MD5-crypt"
    return "an unsupported (crypt or plain-text)"


def parse_htpasswd(data: bytes, path: str) -> HtpasswdFile:
    """Parse an htpasswd file's bytes (a leading UTF-8 byte-order mark is ignored).

    :raises HtpasswdError: for a malformed line (no ``:``, or an empty user
        name), naming *path* and the line number (never the line, which holds
        a hash).
    """
    users: dict[str, bytes] = {}
    warnings: list[str] = []
    if data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8) :]
    skipped = 0
    for number, raw in enumerate(data.split(b"\n"), start=1):
        line = raw.strip()
        if not line or line.startswith(b"#"):
            continue
        user_bytes, colon, hashed = line.partition(b":")
        if not colon:
            raise HtpasswdError(f"{path}, line {number}: no ':' (expected 'user:bcrypt-hash')")
        if not user_bytes.strip():
            raise HtpasswdError(f"{path}, line {number}: empty user name")
        problem = _entry_problem(user_bytes, hashed, users)
        if problem is not None:
            warnings.append(f"{path}, line {number}: {problem}")
            skipped += 1
            continue
        users[user_bytes.decode("utf-8")] = hashed
    if not users:
        why = f"all {skipped} entries were skipped" if skipped else "it holds no entry"
        warnings.append(
            f"{path}: no one can log in ({why}); add a user with 'paxd htpasswd {path} set admin'"
        )
    return HtpasswdFile(users, warnings)


def _entry_problem(user_bytes: bytes, hashed: bytes, users: dict[str, bytes]) -> str | None:
    """Why the entry ``user_bytes:hashed`` is skipped (the warning after its line), or None."""
    try:
        user = user_bytes.decode("utf-8")
    except UnicodeDecodeError:
        shown = user_bytes.decode("utf-8", "replace")
        return f"user name {shown!r} is not UTF-8; the line is skipped"
    if user != user.rstrip() or hashed != hashed.lstrip():
        # Apache and distribution keep the spaces: 'bob ' and ' $2y$…' log no one in.
        return (
            f"spaces around ':' after user {user.rstrip()!r}; Apache's htpasswd and Docker"
            " distribution do not trim them either, so the line is skipped: write it as"
            " 'user:hash'"
        )
    if not BCRYPT_RE.match(hashed):
        return (
            f"user {user!r} has {_describe_hash(hashed)} password hash; only bcrypt is"
            " accepted (htpasswd -B), the line is skipped"
        )
    if user in users:
        # Apache's htpasswd -v and 'paxd htpasswd' both use the first entry.
        return f"user {user!r} appears again; the first entry is used"
    return None


def check_file(path: str) -> HtpasswdFile:
    """Read and parse *path* at once (blocking: for start-up and the command line).

    :raises HtpasswdError: if the file cannot be read or is malformed.
    """
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise HtpasswdError(f"cannot read htpasswd file {path}: {e.strerror or e}") from None
    return parse_htpasswd(data, path)


def verify_password(
    hashed: bytes, password: bytes, checkpw: Callable[[bytes, bytes], bool] = bcrypt.checkpw
) -> bool:
    """Check *password* against a bcrypt *hashed* (blocking: call it in a pool).

    ``$2y$`` (what ``htpasswd -B`` writes) is the same algorithm as ``$2b$``;
    passwords are truncated to 72 bytes as bcrypt, Apache and Go do.
    """
    if hashed.startswith(b"$2y$"):
        hashed = b"$2b$" + hashed[4:]
    try:
        return checkpw(password[:BCRYPT_MAX_PASSWORD], hashed)
    except ValueError:  # a NUL byte in the password, a hash bcrypt refuses
        return False


def hash_password(password: bytes, cost: int = DEFAULT_COST) -> bytes:
    """A ``$2y$`` bcrypt hash of *password*, as ``htpasswd -B -C cost`` writes (blocking).

    :raises ValueError: for a password longer than 72 bytes (it would be truncated).
    """
    if len(password) > BCRYPT_MAX_PASSWORD:
        raise ValueError(f"passwords longer than {BCRYPT_MAX_PASSWORD} bytes are not supported")
    hashed = bcrypt.hashpw(password, bcrypt.gensalt(rounds=cost))
    return b"$2y$" + hashed[4:]


def generate_password() -> str:
    """A random password of 24 URL-safe characters (144 bits)."""
    return secrets.token_urlsafe(18)


def ensure_htpasswd(path: str, *, user: str = "admin", cost: int = DEFAULT_COST) -> str | None:
    """Create *path* if it is missing, as distribution does: one user with a random password.

    The directory is made with mode 0700 and the file with mode 0600.  Blocking:
    call it at start-up, before the reactor runs.

    :return: the generated password (for the caller to log once, as a warning),
        or None if the file already existed.
    :raises HtpasswdError: if the file cannot be created.
    """
    if os.path.lexists(path):
        return None
    password = generate_password()
    entry = user.encode("utf-8") + b":" + hash_password(password.encode("ascii"), cost) + b"\n"
    try:
        directory = os.path.dirname(path)
        if directory:
            os.makedirs(directory, mode=0o700, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(entry)
    except FileExistsError:
        return None  # created meanwhile by someone else: theirs stands
    except OSError as e:
        raise HtpasswdError(f"cannot create htpasswd file {path}: {e.strerror or e}") from None
    return password


_Stamp = tuple[int, int, int]


@attrs.frozen
class Dummies:
    """Hashes that no password matches, one per bcrypt cost the file uses, for unknown users.

    An unknown name is checked against the dummy of one cost, always the same
    for that name (chosen by a keyed hash of it), each cost chosen in
    proportion to how many users have it: the time an unknown name takes is
    distributed as the time a real user takes.
    """

    #: the costs, ascending, and the running total of their user counts
    costs: tuple[int, ...]
    totals: tuple[int, ...]
    #: cost → a hash of that cost
    hashes: dict[int, bytes]

    @classmethod
    def make(cls, costs: dict[int, int]) -> Dummies:
        """Dummies for *costs* (cost → user count); blocking (one bcrypt of cost 4)."""
        # A cheap hash with its cost field raised: checking a password against it
        # takes the full time of that cost (and always fails).
        base = bcrypt.hashpw(secrets.token_bytes(16), bcrypt.gensalt(rounds=4))
        ordered = tuple(sorted(costs))
        totals = tuple(itertools.accumulate(costs[c] for c in ordered))
        hashes = {c: b"%s%02d%s" % (base[:4], c, base[6:]) for c in ordered}
        return cls(ordered, totals, hashes)

    def hash_for(self, choice: int) -> bytes:
        """The dummy for an unknown name whose keyed hash is *choice* (any integer)."""
        index = bisect.bisect_right(self.totals, choice % self.totals[-1])
        return self.hashes[self.costs[index]]


@attrs.frozen
class _Reload:
    """What a look at the file found (computed in the pool)."""

    stamp: _Stamp
    parsed: HtpasswdFile | None = None
    error: str | None = None
    dummies: Dummies | None = None


def _stamp_of(st: os.stat_result) -> _Stamp:
    return (st.st_mtime_ns, st.st_size, st.st_ino)


def _reload(path: str, old: _Stamp | None) -> _Reload | None:
    """Blocking: None if *path* is unchanged since *old*, else its new content (or error)."""
    # Stat before reading: a write that lands after the read changes the stamp,
    # so it is picked up at the next look.
    stamp = _stamp_of(os.stat(path))
    if stamp == old:
        return None
    try:
        with open(path, "rb") as f:
            data = f.read()
        parsed = parse_htpasswd(data, path)
    except HtpasswdError as e:
        return _Reload(stamp, error=str(e))
    except OSError as e:
        return _Reload(stamp, error=f"cannot read htpasswd file {path}: {e.strerror or e}")
    return _Reload(stamp, parsed, dummies=Dummies.make(parsed.costs()))


def _as_bytes(credentials: IUsernamePassword) -> tuple[bytes, bytes]:
    """The user and password of *credentials*, as bytes."""
    raw_user: bytes | str = credentials.username
    raw_password: bytes | str = credentials.password
    user = raw_user.encode("utf-8") if isinstance(raw_user, str) else raw_user
    password = raw_password.encode("utf-8") if isinstance(raw_password, str) else raw_password
    return user, password


@implementer(ICredentialsChecker)
class HtpasswdChecker:
    """Checks ``IUsernamePassword`` credentials against an htpasswd file of bcrypt hashes.

    The avatar id is the user name (a ``str``).

    :param path: the htpasswd file.
    :param runner: runs bcrypt, ``stat`` and reads off the reactor thread
        (:class:`paxd.threadpool.PoolRunner` over a small dedicated pool).
    :param clock: for the cache lifetime and how often the file is looked at.
    :param cache_ttl: seconds a verified user/password pair is remembered
        (0 disables the cache).
    :param cache_size: the most pairs remembered (the oldest are dropped).
    :param checkpw: the bcrypt check (tests wrap the real one to observe it).
    """

    credentialInterfaces = (IUsernamePassword,)

    def __init__(
        self,
        path: str,
        runner: IRunner,
        *,
        clock: IReactorTime,
        cache_ttl: float = 60.0,
        cache_size: int = 1024,
        log: Logger | None = None,
        checkpw: Callable[[bytes, bytes], bool] = bcrypt.checkpw,
    ) -> None:
        self.path = path
        self._runner = runner
        self._clock = clock
        self._cache_ttl = cache_ttl
        self._cache_size = cache_size
        self._log = log if log is not None else Logger()
        self._checkpw = checkpw
        self._users: dict[str, bytes] = {}
        self._dummies = Dummies.make({DEFAULT_COST: 1})
        self._stamp: _Stamp | None = None
        self._loaded = False
        self._last_look = float("-inf")
        self._looking: list[Deferred[None]] | None = None
        self._last_error: str | None = None
        # Cache keys are HMACs under a random per-process key: the password is
        # never stored, and the keys mean nothing outside this process.
        self._key = secrets.token_bytes(32)
        self._cache: collections.OrderedDict[bytes, float] = collections.OrderedDict()
        self._inflight: dict[bytes, list[Deferred[str]]] = {}

    @property
    def users(self) -> frozenset[str]:
        """The names of the users that can log in now."""
        return frozenset(self._users)

    def load(self, *, log_warnings: bool = True) -> None:
        """Read the file now (blocking; at start-up, before the reactor runs).

        *log_warnings*: log its skipped lines (``False`` where the caller logs them).

        :raises HtpasswdError: if the file cannot be read or is malformed: the
            daemon must refuse to start.
        """
        try:
            st = os.stat(self.path)
        except OSError as e:
            raise HtpasswdError(
                f"cannot read htpasswd file {self.path}: {e.strerror or e}"
            ) from None
        parsed = check_file(self.path)
        self._install(
            _Reload(_stamp_of(st), parsed, dummies=Dummies.make(parsed.costs())),
            log_warnings=log_warnings,
        )
        self._last_look = self._clock.seconds()

    def _install(self, found: _Reload, *, log_warnings: bool = True) -> None:
        """Take a (re)read file's users, on the reactor thread."""
        self._stamp = found.stamp
        if found.error is not None:
            if found.error != self._last_error:
                self._log.error(
                    "{error}; keeping the {count} users read before",
                    error=found.error,
                    count=len(self._users),
                )
                self._last_error = found.error
            return
        assert found.parsed is not None
        for warning in found.parsed.warnings if log_warnings else ():
            self._log.warn("{warning}", warning=warning)
        if found.dummies is not None:
            self._dummies = found.dummies
        self._users = dict(found.parsed.users)
        self._cache.clear()
        self._last_error = None
        self._log.info(
            "{verb} {path}: {count} users",
            verb="reloaded" if self._loaded else "loaded",
            path=self.path,
            count=len(self._users),
        )
        self._loaded = True

    def _refresh(self) -> Deferred[None]:
        """Look at the file if it is time to; fires once any change is installed."""
        now = self._clock.seconds()
        if self._looking is not None:
            waiter: Deferred[None] = Deferred()
            self._looking.append(waiter)
            return waiter
        if self._loaded and now - self._last_look < RECHECK_INTERVAL:
            return succeed(None)
        self._last_look = now
        self._looking = []

        def settled(result: _Reload | Failure | None) -> None:
            if isinstance(result, Failure):
                # stat failed: the file is gone or unreadable; keep what we have
                reason = getattr(result.value, "strerror", None) or result.getErrorMessage()
                result = _Reload(
                    self._stamp or (0, 0, 0),
                    error=f"cannot read htpasswd file {self.path}: {reason}",
                )
            if result is not None:
                self._install(result)
            waiters, self._looking = self._looking or [], None
            for w in waiters:
                w.callback(None)

        return self._runner.run(_reload, self.path, self._stamp).addBoth(settled)

    def requestAvatarId(self, credentials: IUsernamePassword) -> Deferred[str]:  # type: ignore[override]
        """The user name if the password is right; else fails with ``UnauthorizedLogin``."""
        return self._refresh().addCallback(lambda _: self._check(credentials))

    def dummy_for(self, user: bytes) -> bytes:
        """The dummy hash an unknown *user* is checked against (the same one every time)."""
        choice = hmac.new(self._key, b"dummy\0" + user, hashlib.sha256).digest()
        return self._dummies.hash_for(int.from_bytes(choice[:8], "big"))

    def _cache_key(self, user: bytes, password: bytes) -> bytes:
        return hmac.new(self._key, user + b"\0" + password, hashlib.sha256).digest()

    def is_verified(self, credentials: ICredentials) -> bool:
        """True if *credentials* were verified a moment ago (a login needs no bcrypt).

        The throttle lets these through uncounted: a client's many parallel
        requests with its right password are not login attempts.
        """
        if not IUsernamePassword.providedBy(credentials):
            return False
        user_b, password = _as_bytes(credentials)
        expires = self._cache.get(self._cache_key(user_b, password))
        return expires is not None and expires > self._clock.seconds()

    def _check(self, credentials: IUsernamePassword) -> Deferred[str]:
        user_b, password = _as_bytes(credentials)
        try:
            user: str | None = user_b.decode("utf-8")
        except UnicodeDecodeError:
            user = None
        key = self._cache_key(user_b, password)
        now = self._clock.seconds()
        expires = self._cache.get(key)
        if user is not None and expires is not None:
            if expires > now:
                return succeed(user)
            del self._cache[key]
        if key in self._inflight:
            # The same credentials are being checked already (parallel layer
            # pulls): wait for that one bcrypt instead of running another.
            waiter: Deferred[str] = Deferred()
            self._inflight[key].append(waiter)
            return waiter
        hashed = self._users.get(user) if user is not None else None
        self._inflight[key] = []
        if hashed is None:
            hashed_or_dummy = self.dummy_for(user_b)
        else:
            hashed_or_dummy = hashed
        d = self._runner.run(verify_password, hashed_or_dummy, password, self._checkpw)

        def checked(ok: bool) -> str:
            # The file may have changed during the check: the user must still have this hash.
            if not ok or user is None or hashed is None or self._users.get(user) != hashed:
                raise UnauthorizedLogin()
            if self._cache_ttl > 0:
                self._cache[key] = self._clock.seconds() + self._cache_ttl
                while len(self._cache) > self._cache_size:
                    self._cache.popitem(last=False)
            return user

        def crashed(f: Failure) -> Failure:
            if not f.check(UnauthorizedLogin):
                self._log.failure("checking a password failed", f)
                return Failure(UnauthorizedLogin())
            return f

        def settle(result: str | Failure) -> str | Failure:
            for w in self._inflight.pop(key, []):
                if isinstance(result, Failure):
                    w.errback(Failure(UnauthorizedLogin()))
                else:
                    w.callback(result)
            return result

        return d.addCallback(checked).addErrback(crashed).addBoth(settle)
