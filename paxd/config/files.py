"""File-system checks at load time: a file the configuration names must be usable now."""

from __future__ import annotations

import os

from paxd.config.context import Context

__all__ = ["creation_problem", "readable_file"]


def readable_file(ctx: Context, path: str, key: str) -> str:
    """*path* made absolute, if it is a file this process can read (else fail at *key*)."""
    full = os.path.abspath(path)
    if not os.path.exists(full):
        ctx.fail(key, f"{full} does not exist; create it or correct the path")
    if os.path.isdir(full):
        ctx.fail(key, f"{full} is a directory; name the file itself")
    if not os.access(full, os.R_OK):
        ctx.fail(
            key, f"{full} is not readable by this user (uid {os.getuid()}); fix its permissions"
        )
    return full


def creation_problem(path: str) -> str | None:
    """Why *path* (a file or directory paxd would create) could not be created, or ``None``.

    Nothing is created: the nearest existing ancestor must be a directory this
    process may write into (blocking; for ``paxd check-config``).
    """
    full = os.path.abspath(path)
    parent = os.path.dirname(full)
    while not os.path.lexists(parent) and parent != os.path.dirname(parent):
        parent = os.path.dirname(parent)
    if not os.path.isdir(parent):
        return f"{parent} is not a directory"
    if not os.access(parent, os.W_OK | os.X_OK):
        return f"{parent} is not writable by this user (uid {os.getuid()})"
    return None
