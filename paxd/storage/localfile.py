"""An optional capability of a reader: the local file behind it (``sendfile``, TLS in a thread).

Only the filesystem driver's reader offers it.  A web layer that finds it may
move the file's bytes to a socket itself (``os.sendfile``, or a read and an
encryption in a worker thread) instead of reading chunks through
:meth:`~paxd.storage.interface.IReader.read`; every other reader (S3, memory,
a spooled body) keeps the producer path.
"""

from __future__ import annotations

from zope.interface import Attribute, Interface


class ILocalFile(Interface):
    """A reader over an open local file, read with positional calls (``pread``, ``sendfile``).

    The descriptor stays open until the reader is closed; whoever uses it must
    read at explicit offsets (never move the file position) and close the
    reader only when it is done with the descriptor.
    """

    offset = Attribute("Where the next read would start, in bytes from the file's beginning.")

    def fileno() -> int:
        """The OS file descriptor; ValueError once the reader is closed."""
