"""``python -m bench.spy FILE [N]``: the top frames of a py-spy raw profile (``--profile``).

Prints, for the N busiest functions, the share of samples in which the
function is on top of the stack (self) and anywhere on it (total).
"""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path


def summarize(path: Path, top: int = 25) -> str:
    """A self/total table of the functions of a py-spy raw (collapsed stacks) file."""
    own: Counter[str] = Counter()
    total: Counter[str] = Counter()
    samples = 0
    for line in path.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = stack.split(";")
        samples += count
        own[frames[-1]] += count
        for frame in set(frames):
            total[frame] += count
    if not samples:
        return f"{path}: no samples"
    lines = [f"{path}: {samples} samples", f"{'self':>6} {'total':>6}  function"]
    for frame, count in own.most_common(top):
        lines.append(f"{count / samples:6.1%} {total[frame] / samples:6.1%}  {frame}")
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    """Entry point."""
    if not argv:
        print(__doc__, file=sys.stderr)
        return 2
    print(summarize(Path(argv[0]), int(argv[1]) if len(argv) > 1 else 25))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
