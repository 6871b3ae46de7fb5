"""What pushes are about to reference, written down where a garbage collector looks.

Online collection runs while clients push.  A push may make a new reference
to content that was unreferenced until then (a manifest listing an old blob,
an upload completing for data already stored, a mount), and a collector that
had already found that content unreferenced must not delete it.  So, while
online collection is on (``storage.maintenance.gc.enabled``), every write
that creates a reference to content already stored first records an *intent*
naming the digests it will refer to, then checks that they still exist
(uncached), then writes (an upload whose data is new needs none: what it moves
into place is its own):

- a collector moves the content it means to delete out of sight first (its
  quarantine), then reads the intents, puts back whatever an intent names,
  and only then deletes the rest;
- so a push whose intent came before that read gets its content back, and a
  push whose intent came after it finds the content gone at its check and
  is refused (or, for an upload, stores its own copy): never a tag whose
  manifest or blobs are gone.

An intent is one small file ``/paxd/gc/intents/<milliseconds>-<random>``
holding one digest per line; an intent younger than the grace window also
keeps its digests alive across later collections (a blob whose upload just
completed stays until its manifest comes).  Collectors remove intents older
than the grace window.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Iterable

from paxd.registry import layout
from paxd.registry.errors import RegistryError
from paxd.registry.reference import Digest, parse_digest
from paxd.storage.interface import IStorageDriver, PathNotFound

INTENTS = f"{layout.PAXD}/gc/intents"


def intent_time(name: str) -> float | None:
    """When the intent *name* was written (by its writer's clock), or None if not an intent."""
    millis, _, rest = name.partition("-")
    if not millis.isdigit() or not rest:
        return None
    return int(millis) / 1000.0


class Intents:
    """Records and reads intents in one storage (see the module docstring).

    :param now: the clock intents are named by.
    :param token: the random part of a name (tests pin it).
    """

    def __init__(
        self,
        driver: IStorageDriver,
        now: Callable[[], float] = time.time,
        token: Callable[[], str] = lambda: secrets.token_hex(6),
    ) -> None:
        self.driver = driver
        self.now = now
        self.token = token

    async def record(self, digests: Iterable[Digest]) -> None:
        """Write an intent naming *digests* (durably, before the caller goes on)."""
        names = sorted({str(d) for d in digests})
        if not names:
            return
        name = f"{int(self.now() * 1000):013d}-{self.token()}"
        await self.driver.put_content(f"{INTENTS}/{name}", "\n".join(names).encode("ascii"))

    async def names(self) -> list[str]:
        """Every intent there is, oldest first."""
        try:
            found = await self.driver.children(INTENTS)
        except PathNotFound:
            return []
        return sorted(n for n in found if intent_time(n) is not None)

    async def read(self, name: str) -> set[Digest]:
        """The digests intent *name* names (none if it is gone)."""
        try:
            content = await self.driver.get_content(f"{INTENTS}/{name}")
        except PathNotFound:
            return set()
        found = set()
        for line in content.decode("ascii", "replace").splitlines():
            try:
                found.add(parse_digest(line.strip()))
            except RegistryError:
                continue
        return found

    async def prune(self, before: float) -> int:
        """Remove the intents written before *before*; how many went."""
        removed = 0
        for name in await self.names():
            written = intent_time(name)
            if written is None or written >= before:
                continue
            try:
                await self.driver.delete(f"{INTENTS}/{name}")
            except PathNotFound:
                continue
            removed += 1
        return removed


class IntentReader:
    """A collector's view of the intents: each read adds what was written since the last."""

    def __init__(self, intents: Intents) -> None:
        self.intents = intents
        self._seen: set[str] = set()
        #: every digest named by an intent read so far
        self.digests: set[Digest] = set()

    async def refresh(self, since: float | None = None) -> set[Digest]:
        """Read the intents not read yet; every digest named so far.

        *since*: intents written before then are passed over (once older than
        the grace window, an intent keeps nothing).  Intents that appear
        later count whatever their age: a writer's clock may be behind.
        """
        for name in await self.intents.names():
            if name in self._seen:
                continue
            self._seen.add(name)
            written = intent_time(name)
            if since is not None and written is not None and written < since:
                continue
            self.digests |= await self.intents.read(name)
        return self.digests
