"""``paxd htpasswd``: manage the users of an htpasswd file with bcrypt, without apache2-utils.

The files written hold ``$2y$`` bcrypt hashes, as ``htpasswd -B`` writes them,
so Debian's ``htpasswd -v`` and ``docker-registry`` read them too.  Files are
replaced atomically (a temporary file, then a rename) and new files get mode
0600; comments, blank lines and other users' lines are kept as they were.
"""

from __future__ import annotations

import argparse
import codecs
import getpass
import os
import stat
import sys
import tempfile
from typing import TextIO

from paxd.auth.htpasswd import (
    BCRYPT_MAX_PASSWORD,
    BCRYPT_RE,
    DEFAULT_COST,
    HtpasswdError,
    generate_password,
    hash_password,
    parse_htpasswd,
    verify_password,
)

EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2
#: htpasswd's own bounds for -C
MIN_COST, MAX_COST = 4, 17


class CommandError(Exception):
    """A failure to report on standard error with exit code 1."""


def _user_and_password_arguments(p: argparse.ArgumentParser, cost: bool) -> None:
    """USER, ``--password-stdin`` and (with *cost*) ``--cost``."""
    p.add_argument("user", metavar="USER", help="the user name")
    p.add_argument(
        "--password-stdin",
        action="store_true",
        help="read the password from the first line of standard input (as docker and skopeo"
        " do); without it, a standard input that is not a terminal is read all the same",
    )
    if cost:
        p.add_argument(
            "--cost",
            type=int,
            default=DEFAULT_COST,
            metavar="N",
            help=f"bcrypt cost, {MIN_COST} to {MAX_COST} (default {DEFAULT_COST})",
        )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="paxd htpasswd",
        description="Add, change, remove, list and verify the users of an htpasswd file, with"
        " bcrypt hashes ($2y$, as 'htpasswd -B' writes them). Users named in the registry's"
        " auth.htpasswd.admins may push and delete; every other user may only read. A running"
        " paxd picks up changes within a second.",
        epilog="Passwords: the first line of standard input, with --password-stdin or whenever"
        " standard input is not a terminal (echo PW | paxd htpasswd FILE add USER). With"
        " standard input a terminal (or empty, such as /dev/null), 'add' and 'set' generate a"
        " random password and print it, the only time a password is ever printed; 'verify'"
        " prompts for one. Exit codes: 0 success, 1 failure (no such user, user exists, wrong"
        " password, unreadable or malformed file, an empty password line), 2 usage error.",
    )
    parser.add_argument("file", metavar="FILE", help="the htpasswd file (created if missing)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    with_password = _user_and_password_arguments
    with_password(
        sub.add_parser(
            "add",
            help="add a user (fails if the user exists)",
            description="Add a user; fails if the user exists. Creates FILE if missing.",
        ),
        cost=True,
    )
    with_password(
        sub.add_parser(
            "set",
            help="set a user's password (adding the user if missing)",
            description="Set a user's password, adding the user if missing.",
        ),
        cost=True,
    )
    remove = sub.add_parser(
        "remove", help="remove a user", description="Remove a user; fails if there is none."
    )
    remove.add_argument("user", metavar="USER", help="the user name")
    sub.add_parser(
        "list",
        help="list the users",
        description="Print one user name a line; users paxd ignores (not bcrypt) are marked.",
    )
    with_password(
        sub.add_parser(
            "verify",
            help="check a user's password",
            description="Exit 0 if the password is right, 1 if not.",
        ),
        cost=False,
    )
    return parser


def _check_user(user: str) -> None:
    if not user or ":" in user or any(c.isspace() or not c.isprintable() for c in user):
        raise CommandError(f"invalid user name {user!r}: no ':', spaces or control characters")
    if len(user.encode("utf-8")) > 255:
        raise CommandError("user names are limited to 255 bytes")


def _read_password(stdin: TextIO) -> bytes:
    line = stdin.readline()
    password = line.rstrip("\r\n").encode("utf-8")
    if not password:
        raise CommandError("no password on standard input")
    return password


def _is_terminal_or_null(stdin: TextIO) -> bool:
    """True for a terminal, and for a character device such as ``/dev/null``: nothing to read."""
    if stdin.isatty():
        return True
    try:
        fd = stdin.fileno()
    except (OSError, ValueError):  # an in-memory stream: read it
        return False
    try:
        return stat.S_ISCHR(os.fstat(fd).st_mode)
    except OSError:
        return True


def _piped_password(stdin: TextIO) -> bytes | None:
    """The first line of a standard input that is not a terminal; None if there is none.

    ``echo PW | paxd htpasswd FILE add USER`` means PW; an input that ends at
    once (``< /dev/null``, an empty pipe) means "generate one".
    """
    if _is_terminal_or_null(stdin):
        return None
    line = stdin.readline()
    if not line:
        return None
    password = line.rstrip("\r\n").encode("utf-8")
    if not password:
        raise CommandError("the password line on standard input is empty")
    return password


def _new_password(args: argparse.Namespace, stdin: TextIO, stdout: TextIO) -> bytes:
    piped = None if args.password_stdin else _piped_password(stdin)
    if args.password_stdin:
        password = _read_password(stdin)
    elif piped is not None:
        password = piped
    else:
        generated = generate_password()
        print(f"generated password for {args.user}: {generated}", file=stdout)
        password = generated.encode("ascii")
    if len(password) > BCRYPT_MAX_PASSWORD:
        raise CommandError(f"passwords are limited to {BCRYPT_MAX_PASSWORD} bytes (bcrypt)")
    return password


def _read_lines(path: str) -> list[bytes]:
    """The file's lines (without newlines), [] if it does not exist; refuses a malformed file."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        return []
    except OSError as e:
        raise CommandError(f"cannot read {path}: {e.strerror or e}") from None
    # paxd ignores a byte-order mark; rewritten files go without it, which Apache reads too
    if data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8) :]
    try:
        parse_htpasswd(data, path)  # refuse to rewrite a file we do not understand
    except HtpasswdError as e:
        raise CommandError(f"{e}; fix it by hand first") from None
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    return lines


def _find(lines: list[bytes], user: str) -> int | None:
    """The index of *user*'s first entry."""
    wanted = user.encode("utf-8")
    for i, raw in enumerate(lines):
        line = raw.strip()
        if line and not line.startswith(b"#") and line.partition(b":")[0] == wanted:
            return i
    return None


def _write_lines(path: str, lines: list[bytes]) -> None:
    """Replace *path* atomically; keep an existing file's mode, else 0600."""
    directory = os.path.dirname(os.path.abspath(path))
    try:
        mode = os.stat(path).st_mode & 0o777
    except FileNotFoundError:
        mode = 0o600
    try:
        fd, tmp = tempfile.mkstemp(prefix=".htpasswd-", dir=directory)
    except OSError as e:
        raise CommandError(f"cannot write in {directory}: {e.strerror or e}") from None
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(b"".join(line + b"\n" for line in lines))
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except OSError as e:
        os.unlink(tmp)
        raise CommandError(f"cannot write {path}: {e.strerror or e}") from None


def run(args: argparse.Namespace, stdin: TextIO, stdout: TextIO) -> int:
    """Carry out one parsed command."""
    path: str = args.file
    command: str = args.command
    if command == "list":
        for raw in _read_lines(path):
            line = raw.strip()
            if not line or line.startswith(b"#"):
                continue
            name, _, hashed = line.partition(b":")
            note = "" if BCRYPT_RE.match(hashed.strip()) else "  (not bcrypt: ignored by paxd)"
            print(name.decode("utf-8", "replace") + note, file=stdout)
        return EXIT_OK
    user: str = args.user
    _check_user(user)
    lines = _read_lines(path)
    index = _find(lines, user)
    if command == "verify":
        if index is None:
            raise CommandError(f"no user {user!r} in {path}")
        piped = None if args.password_stdin else _piped_password(stdin)
        if args.password_stdin:
            password = _read_password(stdin)
        elif piped is not None:
            password = piped
        else:
            password = getpass.getpass(f"password for {user}: ").encode("utf-8")
        hashed = lines[index].strip().partition(b":")[2].strip()
        if not BCRYPT_RE.match(hashed):
            raise CommandError(f"user {user!r} has no bcrypt hash (paxd ignores the entry)")
        if not verify_password(hashed, password):
            raise CommandError(f"wrong password for user {user!r}")
        print(f"password for user {user} is correct", file=stdout)
        return EXIT_OK
    if command == "remove":
        if index is None:
            raise CommandError(f"no user {user!r} in {path}")
        del lines[index]
        _write_lines(path, lines)
        print(f"removed user {user}", file=stdout)
        return EXIT_OK
    # add or set
    if command == "add" and index is not None:
        raise CommandError(f"user {user!r} exists in {path}; use 'set' to change the password")
    if not MIN_COST <= args.cost <= MAX_COST:
        raise CommandError(f"--cost must be between {MIN_COST} and {MAX_COST}")
    password = _new_password(args, stdin, stdout)
    entry = user.encode("utf-8") + b":" + hash_password(password, args.cost)
    if index is None:
        lines.append(entry)
        verb = "added"
    else:
        lines[index] = entry
        verb = "updated"
    _write_lines(path, lines)
    print(f"{verb} user {user}", file=stdout)
    return EXIT_OK


def main(
    argv: list[str],
    stdin: TextIO | None = None,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
) -> int:
    """``paxd htpasswd FILE add|set|remove|list|verify [USER]``: 0 ok, 1 failure, 2 usage."""
    stdin = stdin if stdin is not None else sys.stdin
    stdout = stdout if stdout is not None else sys.stdout
    stderr = stderr if stderr is not None else sys.stderr
    try:
        args = _parser().parse_args(argv)
    except SystemExit as e:  # --help (0) or a usage error (2)
        return e.code if isinstance(e.code, int) else EXIT_USAGE
    try:
        return run(args, stdin, stdout)
    except CommandError as e:
        print(f"paxd htpasswd: {e}", file=stderr)
        return EXIT_FAILURE
