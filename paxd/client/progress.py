"""A progress bar per blob on stderr (bytes, rate, time left), drawn only on a terminal.

The bars are ``tqdm``'s; :class:`Bar` is the small surface the transfers use
(:meth:`~Bar.update`, :meth:`~Bar.reset` for a retried or resumed upload),
and a no-op when the stream is not a terminal, so that scripts and CI logs
get the one-line results only.
"""

from __future__ import annotations

from types import TracebackType
from typing import TextIO

from tqdm import tqdm

#: redraw at most this often (seconds), so that a fast upload does not flood the terminal
INTERVAL = 0.1
#: a label longer than this is shortened, so that the bars line up
LABEL_WIDTH = 24


def human(size: float) -> str:
    """``1536`` → ``"1.5 KiB"``."""
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GiB"  # pragma: no cover


def _label(text: str) -> str:
    return text if len(text) <= LABEL_WIDTH else text[: LABEL_WIDTH - 3] + "..."


class Bar:
    """One blob's bar; a no-op when the stream is ``None``.

    :param interval: the least time between two redraws (0: every update).
    """

    def __init__(
        self, stream: TextIO | None, label: str, total: int, interval: float = INTERVAL
    ) -> None:
        self.label = label
        self.total = total
        self.done = 0
        self._bar: tqdm[None] | None = None
        if stream is not None:
            self._bar = tqdm(
                total=total,
                desc=f"{_label(label):<{LABEL_WIDTH}}",
                file=stream,
                unit="B",
                unit_scale=True,
                unit_divisor=1024,
                mininterval=interval,
                miniters=1,
                leave=True,
                dynamic_ncols=stream.isatty() and hasattr(stream, "fileno"),
            )

    def update(self, n: int) -> None:
        """*n* more bytes went through."""
        self.done += n
        if self._bar is not None:
            self._bar.update(n)

    def reset(self, done: int = 0) -> None:
        """Start over from *done* bytes (a retried or resumed upload)."""
        self.done = done
        if self._bar is not None and self._bar.n != done:
            self._bar.n = self._bar.last_print_n = done
            self._bar.refresh()

    def __enter__(self) -> Bar:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._bar is None:
            return
        if exc_type is None and self._bar.n != self.total:
            self._bar.n = self.total
            self._bar.refresh()
        self._bar.close()


class Progress:
    """Makes bars on *stream* if it is a terminal (or if *enabled* says so)."""

    def __init__(self, stream: TextIO | None, enabled: bool | None = None) -> None:
        if enabled is None:
            enabled = stream is not None and stream.isatty()
        self.stream = stream if enabled else None

    @property
    def enabled(self) -> bool:
        return self.stream is not None

    def bar(self, label: str, total: int) -> Bar:
        """A bar for *total* bytes labelled *label*."""
        return Bar(self.stream, label, total)

    def note(self, line: str) -> None:
        """A line shown only on a terminal (e.g. "logo.png: already there")."""
        if self.stream is not None:
            self.stream.write(line + "\n")
            self.stream.flush()
