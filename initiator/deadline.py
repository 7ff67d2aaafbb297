"""Bounded waits: one deadline per phase, an error that names the phase, an injectable clock for tests."""

from __future__ import annotations

import time

from initiator.errors import WaitTimeout
from initiator.record import field, record

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing
if TYPE_CHECKING:
    from collections.abc import Callable

    Clock = Callable[[], float]  # a name for annotations only: collections.abc is no import of a discover


@record
class Deadline:
    """A named bound on a wait. Children never outlive their parent; expiry names whichever bound was tighter."""

    name: str
    bound: float
    clock: Clock = field(default=time.monotonic, repr=False, compare=False)
    started: float = field(default=-1.0, compare=False)
    parent: Deadline | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.bound < 0:
            raise ValueError(f"deadline {self.name!r}: bound must be >= 0, got {self.bound!r}")
        if self.started < 0:
            object.__setattr__(self, "started", self.clock())

    @property
    def expires_at(self) -> float:
        own = self.started + self.bound
        return own if self.parent is None else min(own, self.parent.expires_at)

    def remaining(self) -> float:
        return max(0.0, self.expires_at - self.clock())

    def expired(self) -> bool:
        return self.clock() >= self.expires_at

    def tightest(self) -> Deadline:
        """The deadline in this chain that expires first (the one an error should name)."""
        own = self.started + self.bound
        if self.parent is not None and self.parent.expires_at < own:
            return self.parent.tightest()
        return self

    def check(self, detail: str = "") -> None:
        if self.expired():
            raise self.timeout(detail)

    def timeout(self, detail: str = "") -> WaitTimeout:
        which = self.tightest()
        return WaitTimeout(which.name, which.bound, detail)

    def child(self, name: str, bound: float) -> Deadline:
        return Deadline(name, bound, clock=self.clock, parent=self)

    def elapsed(self) -> float:
        return self.clock() - self.started


class FakeClock:
    """A manual clock for tests: time moves only when told to."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds
