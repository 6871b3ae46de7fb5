"""A fair queue in front of the bcrypt pool: slots handed out in turn across client keys.

bcrypt is slow on purpose, and the pool that runs it has a couple of
threads.  Without a queue of its own, one address sending many guesses at
once fills the pool's queue and every other client's login waits behind all
of them.  :class:`FairQueue` hands each free slot to the waiting key served
least recently (one address, one key; a key new to the queue first), at most
*per_key* at once to any one key: another address waits for one check to
end, not for the flood.
"""

from __future__ import annotations

import collections

from twisted.internet.defer import Deferred


class FairQueue:
    """At most *concurrency* holders at once, at most *per_key* of them for one key, in turn.

    :meth:`acquire` gives a Deferred that fires once the caller holds a slot;
    the holder must :meth:`release` it.  Cancelling a waiting Deferred (the
    client went away) takes it out of the queue.
    """

    def __init__(self, concurrency: int = 2, per_key: int = 1) -> None:
        if concurrency < 1 or per_key < 1:
            raise ValueError("concurrency and per_key must be at least 1")
        self.concurrency = concurrency
        self.per_key = per_key
        self._running: collections.Counter[str] = collections.Counter()
        self._total = 0
        #: key → its waiters
        self._waiting: dict[str, collections.deque[Deferred[None]]] = {}
        #: key → when it was last served (a count of slots handed out), while it is busy
        self._served: dict[str, int] = {}
        self._turn = 0
        self._pumping = False

    @property
    def running(self) -> int:
        """Slots held now."""
        return self._total

    def waiting(self, key: str | None = None) -> int:
        """Callers waiting (for *key*, or in all)."""
        if key is not None:
            return len(self._waiting.get(key, ()))
        return sum(len(q) for q in self._waiting.values())

    def acquire(self, key: str) -> Deferred[None]:
        """A slot for *key*, as soon as it is *key*'s turn."""

        def cancel(d: Deferred[None]) -> None:
            queue = self._waiting.get(key)
            if queue is not None and d in queue:
                queue.remove(d)
                if not queue:
                    del self._waiting[key]
                    if not self._running[key]:
                        self._served.pop(key, None)

        d: Deferred[None] = Deferred(cancel)
        self._waiting.setdefault(key, collections.deque()).append(d)
        self._pump()
        return d

    def release(self, key: str) -> None:
        """Give back a slot *key* held."""
        if self._running[key] <= 0:
            raise ValueError(f"{key!r} holds no slot")
        self._running[key] -= 1
        if not self._running[key]:
            del self._running[key]
            if key not in self._waiting:
                self._served.pop(key, None)
        self._total -= 1
        self._pump()

    def _pump(self) -> None:
        """Hand free slots to waiters, in turn.

        Not re-entered: a waiter that releases its slot at once (a synchronous
        check) is seen by this loop's next turn.
        """
        if self._pumping:
            return
        self._pumping = True
        try:
            while self._total < self.concurrency:
                eligible = [k for k in self._waiting if self._running[k] < self.per_key]
                if not eligible:
                    return
                key = min(eligible, key=lambda k: self._served.get(k, -1))
                queue = self._waiting[key]
                waiter = queue.popleft()
                if not queue:
                    del self._waiting[key]
                self._running[key] += 1
                self._total += 1
                self._served[key] = self._turn
                self._turn += 1
                waiter.callback(None)
        finally:
            self._pumping = False
