"""A progress bar per blob on stderr, drawn only when stderr is a terminal."""

from __future__ import annotations

import time
from collections.abc import Callable
from types import TracebackType
from typing import TextIO

WIDTH = 24
#: redraw at most this often (seconds), so that a fast upload does not flood the terminal
INTERVAL = 0.1


def human(size: float) -> str:
    """``1536`` → ``"1.5 KiB"``."""
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GiB"  # pragma: no cover


class Bar:
    """One blob's bar; a no-op when the stream is ``None``."""

    def __init__(
        self,
        stream: TextIO | None,
        label: str,
        total: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.stream = stream
        self.label = label
        self.total = total
        self.done = 0
        self.clock = clock
        self._drawn = 0.0

    def update(self, n: int) -> None:
        """*n* more bytes went through."""
        self.done += n
        if self.stream is not None and self.clock() - self._drawn >= INTERVAL:
            self.draw()

    def reset(self, done: int = 0) -> None:
        """Start over from *done* bytes (a retried or resumed upload)."""
        self.done = done

    def draw(self, end: str = "") -> None:
        """Draw the bar now."""
        if self.stream is None:
            return
        self._drawn = self.clock()
        fraction = min(1.0, self.done / self.total) if self.total else 1.0
        filled = int(fraction * WIDTH)
        label = self.label if len(self.label) <= 24 else self.label[:21] + "..."
        self.stream.write(
            f"\r{label:<24} [{'#' * filled}{' ' * (WIDTH - filled)}] {fraction:4.0%}"
            f" {human(self.done)}/{human(self.total)}\x1b[K{end}"
        )
        self.stream.flush()

    def __enter__(self) -> Bar:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self.stream is None:
            return
        if exc_type is None:
            self.done = self.total
            self.draw("\n")
        else:
            self.stream.write("\n")
            self.stream.flush()


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
