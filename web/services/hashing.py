"""Password hashing off the event loop, a few at a time.

argon2id is slow and memory-hard on purpose (the library's default cost: three
passes over 64 MiB). Run on the event loop, ten sign-ins at once held every other
request of the process, the API's included, for seconds. So each hash and each
verification runs in a worker thread (argon2-cffi releases the GIL while it
works), and at most ``slots`` run at once, which also bounds the memory they
take and leaves CPUs to every other request. A caller that finds no free slot
within ``wait_seconds`` is refused with 429 and Retry-After instead of queueing
without bound.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from typing import TypeVar
from weakref import WeakKeyDictionary

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from api.errors import TooManyRequests

T = TypeVar("T")

DEFAULT_WAIT_SECONDS = 5.0
RETRY_AFTER_SECONDS = 1


def default_slots() -> int:
    """Half the CPUs (at least one): a hash keeps one CPU busy, and the rest stay
    for every other request of the process."""
    return max(1, (os.cpu_count() or 2) // 2)


class PasswordHashing:
    def __init__(
        self,
        slots: int | None = None,
        wait_seconds: float = DEFAULT_WAIT_SECONDS,
        hasher: PasswordHasher | None = None,
    ) -> None:
        self.slots = slots or default_slots()
        self.wait_seconds = wait_seconds
        self.hasher = hasher or PasswordHasher()  # argon2id at the library's recommended cost
        # One semaphore per event loop: `make dev`'s bootstrap and the CLI run loops of their own.
        self._semaphores: WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = (
            WeakKeyDictionary()
        )

    async def hash(self, password: str) -> str:
        return await self._run(self.hasher.hash, password)

    async def verify(self, password_hash: str, password: str) -> bool:
        return await self._run(self._verify, password_hash, password)

    def needs_rehash(self, password_hash: str) -> bool:
        return self.hasher.check_needs_rehash(password_hash)  # parses parameters: no hashing

    def _verify(self, password_hash: str, password: str) -> bool:
        try:
            return self.hasher.verify(password_hash, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    def _semaphore(self) -> asyncio.Semaphore:
        loop = asyncio.get_running_loop()
        semaphore = self._semaphores.get(loop)
        if semaphore is None:
            semaphore = self._semaphores[loop] = asyncio.Semaphore(self.slots)
        return semaphore

    async def _run(self, work: Callable[..., T], *args: str) -> T:
        semaphore = self._semaphore()
        try:
            async with asyncio.timeout(self.wait_seconds):
                await semaphore.acquire()
        except TimeoutError:
            raise TooManyRequests(
                "Too many sign-ins at once; retry in a moment", retry_after=RETRY_AFTER_SECONDS
            ) from None
        # The slot is given back when the thread is done, not when the caller
        # stops waiting (a client gone mid-request): the bound holds for threads.
        done = asyncio.ensure_future(asyncio.to_thread(work, *args))

        def give_back(finished: asyncio.Future[T]) -> None:
            semaphore.release()
            if not finished.cancelled():
                finished.exception()  # seen here when nobody waits for it any more

        done.add_done_callback(give_back)
        return await asyncio.shield(done)


# For callers without a console of their own (the CLI, `make dev`'s demo accounts).
DEFAULT = PasswordHashing()
