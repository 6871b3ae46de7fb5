"""Opening a file for reading with the kernel keeping it below a directory (Linux ``openat2``).

The filesystem driver confines every path to its root by resolving it in
Python (:mod:`paxd.storage.filesystem`: an ``lstat`` per directory not
remembered, and more below one that is not).  A start-up reads some 56,000
links and manifests in as many directories, far more than are remembered,
and those checks were most of its time.  ``openat2(2)`` with
``RESOLVE_BENEATH`` resolves the whole path in one system call and fails
(``EXDEV``) if any step, a symlink included, would leave the directory, so a
read needs no check of its own.

It is only a shortcut: :func:`open_beneath` answers None wherever the kernel
cannot decide alone (no ``openat2``, a seccomp filter refusing it, an
absolute symlink, which ``RESOLVE_BENEATH`` refuses even when it points
inside the root, too many symlinks), and the caller then takes its usual,
Python-checked path, which allows or refuses exactly as before.
"""

from __future__ import annotations

import ctypes
import errno
import os
import sys

#: openat2's number: one table for every architecture since Linux 5.6
SYS_OPENAT2 = 437
RESOLVE_NO_MAGICLINKS = 0x02
RESOLVE_BENEATH = 0x08

#: errors after which the caller's own checks decide (see the module docstring)
_UNDECIDED = frozenset({errno.EXDEV, errno.ELOOP, errno.EAGAIN})
#: errors meaning openat2 cannot be used at all here
_UNSUPPORTED = frozenset({errno.ENOSYS, errno.EPERM, errno.EINVAL, errno.E2BIG})


class _OpenHow(ctypes.Structure):
    _fields_ = [
        ("flags", ctypes.c_uint64),
        ("mode", ctypes.c_uint64),
        ("resolve", ctypes.c_uint64),
    ]


def _load() -> ctypes.CDLL | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(None, use_errno=True)
    except OSError:
        return None


_libc = _load()
_supported = _libc is not None


def open_beneath(directory_fd: int, relative: str) -> int | None:
    """A read-only fd of *relative* (below *directory_fd*), or None if the caller must check.

    Raises FileNotFoundError / NotADirectoryError (and other OSErrors) as
    ``os.open`` does; never returns a file outside the directory.
    """
    global _supported
    if not _supported or _libc is None:
        return None
    how = _OpenHow(os.O_RDONLY | os.O_CLOEXEC, 0, RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS)
    fd: int = _libc.syscall(
        SYS_OPENAT2,
        ctypes.c_int(directory_fd),
        os.fsencode(relative),
        ctypes.byref(how),
        ctypes.c_size_t(ctypes.sizeof(how)),
    )
    if fd >= 0:
        return fd
    code = ctypes.get_errno()
    if code in _UNDECIDED:
        return None
    if code in _UNSUPPORTED:
        _supported = False
        return None
    raise OSError(code, os.strerror(code), relative)
