"""Upload purging: uploads begun and never finished are removed once older than an age.

Docker distribution's ``storage.maintenance.uploadpurging``: every upload
directory (``_uploads/<uuid>``) whose ``startedat`` is older than ``age`` is
removed with what it holds; an upload without a readable ``startedat`` is
judged by its data's modification time instead (distribution leaves such
uploads for ever).  With ``dryrun`` nothing is removed.  The state this
process kept for a purged upload goes too.

Purging is idempotent, so several processes on one storage may purge at
once without harm.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Callable

import attrs
from twisted.logger import Logger

from paxd.registry import layout
from paxd.registry.catalog import valid_name
from paxd.registry.gc import each
from paxd.registry.uploads import UUID_RE
from paxd.storage.interface import IStorageDriver, PathNotFound

log = Logger()

_FRACTION = re.compile(r"\.\d+")


def parse_startedat(content: bytes) -> float | None:
    """The time in a ``startedat`` file (RFC 3339, as distribution writes it), or None."""
    text = content.decode("ascii", "replace").strip()
    # Go may write nanoseconds: Python takes at most microseconds
    text = _FRACTION.sub(lambda m: m.group(0)[:7], text)
    try:
        when = datetime.datetime.fromisoformat(text)
    except ValueError:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=datetime.UTC)
    return when.timestamp()


@attrs.define
class PurgeReport:
    """What one run found and removed (or, dry, would remove)."""

    dry_run: bool = False
    uploads: int = 0
    purged: int = 0
    bytes: int = 0


class UploadPurger:
    """Purges one storage's old uploads; see the module docstring.

    :param now: the wall clock.
    :param age: seconds an upload may live.
    :param forget: called with ``(repository, uuid)`` of each purged upload.
    """

    def __init__(
        self,
        driver: IStorageDriver,
        now: Callable[[], float],
        age: float,
        *,
        dry_run: bool = False,
        forget: Callable[[str, str], None] | None = None,
    ) -> None:
        self.driver = driver
        self.now = now
        self.age = age
        self.dry_run = dry_run
        self.forget = forget or (lambda name, uuid: None)

    async def run(self) -> PurgeReport:
        """One pass over every repository's uploads."""
        report = PurgeReport(dry_run=self.dry_run)
        cutoff = self.now() - self.age
        names = await self.driver.walk_dirs(layout.REPOSITORIES, ("_uploads",), "_")

        async def repository(name: str) -> None:
            try:
                uuids = await self.driver.children(layout.uploads(name))
            except PathNotFound:
                return
            for uuid in uuids:
                if UUID_RE.match(uuid):
                    report.uploads += 1
                    await self._one(report, name, uuid, cutoff)

        await each([n for n in names if valid_name(n)], repository)
        log.info(
            "upload purging{dry}: {verb} {purged} of {uploads} uploads ({bytes} bytes)"
            " older than {age:g}s",
            dry=" (dry run)" if self.dry_run else "",
            verb="would remove" if self.dry_run else "removed",
            purged=report.purged,
            uploads=report.uploads,
            bytes=report.bytes,
            age=self.age,
        )
        return report

    async def _started(self, name: str, uuid: str) -> tuple[float | None, int]:
        """When the upload began (None: unknown), and its size so far."""
        started = None
        try:
            started = parse_startedat(
                await self.driver.get_content(layout.upload_startedat(name, uuid))
            )
        except PathNotFound:
            pass
        try:
            info = await self.driver.stat(layout.upload_data(name, uuid))
        except PathNotFound:
            return started, 0
        return (started if started is not None else info.modified), info.size

    async def _one(self, report: PurgeReport, name: str, uuid: str, cutoff: float) -> None:
        started, size = await self._started(name, uuid)
        if started is None or started >= cutoff:
            return
        report.purged += 1
        report.bytes += size
        log.debug(
            "{verb} upload {uuid} in {name}, begun {age:.0f}s ago",
            verb="would purge" if self.dry_run else "purging",
            uuid=uuid,
            name=name,
            age=self.now() - started,
        )
        if self.dry_run:
            return
        try:
            await self.driver.delete(layout.upload_dir(name, uuid))
        except PathNotFound:
            pass
        self.forget(name, uuid)
