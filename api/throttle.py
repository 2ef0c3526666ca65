"""Throttling of failed authentications, per key id and per client address.

A secret of 160 random bits cannot be guessed, but nothing should let anyone
try: after ``limit`` failures within ``window`` seconds, a key id (whatever
secrets are tried with it) or a client address (whatever keys it tries) gets
429 with Retry-After until the oldest of those failures leaves the window.

Counts live in this process: each API process throttles on its own, which bounds
the guesses per process and window. The subjects remembered are capped, the
oldest forgotten first, so a flood of made-up key ids cannot grow memory; the
per-address count still stops that flood.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict, deque


class FailureWindow:
    def __init__(self, limit: int, window_seconds: float, max_subjects: int = 100_000) -> None:
        self.limit = limit
        self.window = window_seconds
        self.max_subjects = max_subjects
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()

    def retry_after(self, subject: str, now: float | None = None) -> int | None:
        """Whole seconds until ``subject`` may try again; None if it may now."""
        now = time.monotonic() if now is None else now
        failures = self._recent(subject, now)
        if failures is None or len(failures) < self.limit:
            return None
        return max(1, math.ceil(failures[-self.limit] + self.window - now))

    def record(self, subject: str, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        failures = self._recent(subject, now)
        if failures is None:
            failures = self._failures[subject] = deque(maxlen=self.limit)
            while len(self._failures) > self.max_subjects:
                self._failures.popitem(last=False)
        failures.append(now)

    def _recent(self, subject: str, now: float) -> deque[float] | None:
        failures = self._failures.get(subject)
        if failures is None:
            return None
        while failures and failures[0] <= now - self.window:
            failures.popleft()
        if not failures:
            del self._failures[subject]
            return None
        return failures
