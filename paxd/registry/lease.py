"""A lease in storage: one holder at a time among the processes sharing one storage.

The garbage collector takes it so that two collectors (two replicas, or the
daemon and ``paxd gc``) never sweep at once.  It needs nothing of a driver
but :meth:`~paxd.storage.interface.IStorageDriver.append_line`, which every
driver makes atomic against other processes (the filesystem with one
``O_APPEND`` write, S3 with a conditional PUT), so it works on all of them
unchanged, through any wrapper.

The lease is a journal of claims, one line each::

    acquire <owner> <time> <ttl>    take it, if it is free or its holder's time is up
    renew   <owner> <time> <ttl>    the holder extends it (if still the holder then)
    release <owner> <time> 0        the holder gives it up
    rotate  <owner> <time> 0        the holder gives it up and the journal continues
                                    in the next generation

Appends are totally ordered, so every process replaying the same journal
agrees on who holds the lease: a claim takes effect or not by the rules above,
judged at the time written in it.  A claimant appends, reads the journal back
and holds the lease only if its own line won.  The journal lives in
generations (``<n>.journal``) so that it stays small: a holder that finds its
generation long rotates to the next one when it lets go, and removes the
generations before.

Expiry relies on clocks that agree to within :data:`MARGIN` of the ttl: a
holder treats its lease as lost a margin before its ttl runs out by its own
clock (:meth:`Lease.valid`), and stops destructive work then.
"""

from __future__ import annotations

import os
import secrets
import socket
from collections.abc import Callable

import attrs
from twisted.logger import Logger

from paxd.registry import layout
from paxd.registry.context import rfc3339
from paxd.storage.interface import IStorageDriver, PathNotFound

log = Logger()

#: where the garbage collector's lease journals live
GC_LEASE = f"{layout.PAXD}/gc/lease"
#: the part of the ttl before its end at which a holder stops counting on its lease
MARGIN = 1 / 3
#: lines in a generation after which its holder rotates it on release
ROTATE_LINES = 200
_OPS = frozenset({"acquire", "renew", "release", "rotate"})


@attrs.frozen
class Claim:
    """One line of a lease journal."""

    op: str
    owner: str
    time: float
    ttl: float

    def line(self) -> bytes:
        """The journal line (no newline)."""
        return f"{self.op} {self.owner} {self.time:.3f} {self.ttl:.3f}".encode("ascii")

    @classmethod
    def parse(cls, line: bytes) -> Claim | None:
        """The claim on *line*, or None for anything malformed (ignored by everyone alike)."""
        parts = line.decode("ascii", "replace").split(" ")
        if len(parts) != 4 or parts[0] not in _OPS:
            return None
        try:
            return cls(parts[0], parts[1], float(parts[2]), float(parts[3]))
        except ValueError:
            return None


@attrs.frozen
class LeaseState:
    """Who holds the lease after replaying a journal, and whether it was rotated."""

    holder: str | None = None
    expiry: float = 0.0
    rotated: bool = False
    lines: int = 0


def replay(content: bytes) -> LeaseState:
    """The state a journal's content leaves (an unfinished last line is not yet there)."""
    holder: str | None = None
    expiry = 0.0
    lines = content.split(b"\n")[:-1]  # the part after the last newline is not a line yet
    for raw in lines:
        claim = Claim.parse(raw)
        if claim is None:
            continue
        if claim.op == "acquire":
            if holder is None or claim.time > expiry:
                holder, expiry = claim.owner, claim.time + claim.ttl
        elif holder == claim.owner:
            if claim.op == "renew":
                if claim.time <= expiry:
                    expiry = claim.time + claim.ttl
            elif claim.op == "release":
                holder = None
            else:  # rotate: what follows in this generation counts for nothing
                return LeaseState(None, 0.0, True, len(lines))
    return LeaseState(holder, expiry, False, len(lines))


def new_owner() -> str:
    """A name for a claimant that no other process will use: host, pid, random."""
    host = socket.gethostname().split(".")[0].replace(" ", "_") or "host"
    return f"{host}:{os.getpid()}:{secrets.token_hex(4)}"


class LeaseHeld(Exception):
    """Another process holds the lease."""

    def __init__(self, holder: str, until: float) -> None:
        super().__init__(f"held by {holder} until {rfc3339(until)}")
        self.holder = holder
        self.until = until


class Lease:
    """A lease named by its directory in storage; see the module docstring.

    :param driver: the shared storage.
    :param now: the wall clock (``reactor.seconds`` in the daemon).
    :param ttl: how long a claim lasts unless renewed, in seconds.
    :param path: the journals' directory.
    :param owner: this claimant's name (by default unique: host, pid, random).
    """

    def __init__(
        self,
        driver: IStorageDriver,
        now: Callable[[], float],
        *,
        ttl: float = 60.0,
        path: str = GC_LEASE,
        owner: str | None = None,
    ) -> None:
        self.driver = driver
        self.now = now
        self.ttl = ttl
        self.path = path
        self.owner = owner or new_owner()
        #: while held: the generation it is held in, and until when (by this clock)
        self._generation: int | None = None
        self._expiry = 0.0

    def _journal(self, generation: int) -> str:
        return f"{self.path}/{generation}.journal"

    async def _read(self, generation: int) -> LeaseState:
        try:
            return replay(await self.driver.get_content(self._journal(generation)))
        except PathNotFound:
            return LeaseState()

    async def _current(self) -> tuple[int, LeaseState]:
        """The generation that is not rotated (the newest), and its state."""
        try:
            names = await self.driver.children(self.path)
        except PathNotFound:
            names = []
        numbers = [int(n[: -len(".journal")]) for n in names if _is_journal(n)]
        generation = max(numbers, default=0)
        while True:
            state = await self._read(generation)
            if not state.rotated:
                return generation, state
            generation += 1

    async def holder(self) -> LeaseState:
        """Who holds the lease now (``holder`` None: nobody, or a claim whose time is up)."""
        _, state = await self._current()
        if state.holder is not None and state.expiry < self.now():
            return LeaseState(None, 0.0, False, state.lines)
        return state

    async def acquire(self) -> None:
        """Take the lease, or raise :class:`LeaseHeld` naming its holder."""
        while True:
            generation, state = await self._current()
            now = self.now()
            if state.holder is not None and state.holder != self.owner and state.expiry >= now:
                raise LeaseHeld(state.holder, state.expiry)
            claim = Claim("acquire", self.owner, now, self.ttl)
            await self.driver.append_line(self._journal(generation), claim.line())
            after = await self._read(generation)
            if after.rotated:
                continue  # rotated under us: our line counts for nothing; again
            if after.holder == self.owner and after.expiry == _expiry(claim):
                self._generation, self._expiry = generation, now + self.ttl
                log.debug("lease {path} taken by {owner}", path=self.path, owner=self.owner)
                return
            assert after.holder is not None
            raise LeaseHeld(after.holder, after.expiry)

    def valid(self) -> bool:
        """True while this process may count on holding the lease (a margin before its end)."""
        if self._generation is None:
            return False
        return self.now() < self._expiry - self.ttl * MARGIN

    async def renew(self) -> bool:
        """Extend the lease; False if it was lost (another process took it)."""
        if self._generation is None:
            return False
        now = self.now()
        claim = Claim("renew", self.owner, now, self.ttl)
        await self.driver.append_line(self._journal(self._generation), claim.line())
        after = await self._read(self._generation)
        if after.holder == self.owner and after.expiry == _expiry(claim):
            self._expiry = now + self.ttl
            return True
        log.warn(
            "lease {path} lost by {owner} (now {holder})",
            path=self.path,
            owner=self.owner,
            holder=after.holder,
        )
        self._generation = None
        return False

    async def release(self) -> None:
        """Give the lease up (rotating a long journal, and removing old generations)."""
        generation, self._generation = self._generation, None
        if generation is None:
            return
        state = await self._read(generation)
        if state.holder != self.owner:
            return
        rotate = state.lines >= ROTATE_LINES
        op = "rotate" if rotate else "release"
        claim = Claim(op, self.owner, self.now(), 0.0)
        await self.driver.append_line(self._journal(generation), claim.line())
        if rotate:
            # nobody reads a generation before the last rotated one any more
            for old in range(generation):
                try:
                    await self.driver.delete(self._journal(old))
                except PathNotFound:
                    pass


def _expiry(claim: Claim) -> float:
    """The expiry *claim* sets, as :func:`replay` computes it from the journal line."""
    parsed = Claim.parse(claim.line())
    assert parsed is not None
    return parsed.time + parsed.ttl


def _is_journal(name: str) -> bool:
    return name.endswith(".journal") and name[: -len(".journal")].isdigit()
