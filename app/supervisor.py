"""Keeps the processes of `make dev` running: a child that dies unexpectedly
(the worker, the API, PostgreSQL, Temporal) is started again, with a backoff
that doubles up to a cap while it keeps dying and resets once it has stayed up a
while. Each death and restart is logged. Only the supervisor's own stop (Ctrl-C)
stops the children, newest first."""

from __future__ import annotations

import logging
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from app.embedded import stop_process

log = logging.getLogger("dev")


class Child(Protocol):
    name: str

    def start(self) -> None:
        """Start it and return once it serves (raise if it cannot)."""

    def exit_code(self) -> int | None:
        """None while it runs; its exit code (or -signal) once it has died."""

    def stop(self) -> None: ...


class Server(Protocol):
    process: subprocess.Popen[bytes] | None

    def start(self) -> None: ...

    def stop(self) -> None: ...


@dataclass
class ServerChild:
    """An embedded server (app.embedded): PostgreSQL or Temporal."""

    name: str
    server: Server

    def start(self) -> None:
        self.server.start()

    def exit_code(self) -> int | None:
        process = self.server.process
        return None if process is None else process.poll()

    def stop(self) -> None:
        self.server.stop()


@dataclass
class ProcessChild:
    """A process of ours (worker, API) started by ``spawn``."""

    name: str
    spawn: Callable[[], subprocess.Popen[bytes]]
    ready: Callable[[subprocess.Popen[bytes]], None] = lambda _: None
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = self.spawn()
        self.ready(self.process)

    def exit_code(self) -> int | None:
        return None if self.process is None else self.process.poll()

    def stop(self) -> None:
        if self.process is not None:
            stop_process(self.process, signal.SIGTERM, timeout=20)


@dataclass
class _State:
    child: Child
    started_at: float
    failures: int = 0  # consecutive deaths without staying up for ``healthy_after``
    restart_at: float | None = None
    restarts: int = 0


class Supervisor:
    def __init__(
        self,
        *,
        backoff_initial: float = 1.0,
        backoff_max: float = 30.0,
        healthy_after: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.clock = clock
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self.healthy_after = healthy_after
        self._states: list[_State] = []
        self.restarts = 0

    def start(self, child: Child) -> None:
        """Start ``child`` now (a failure here is the caller's: the stack cannot come up)."""
        child.start()
        self._states.append(_State(child, started_at=self.clock()))

    def check(self) -> None:
        """One look at every child: note the dead, restart those whose backoff is over."""
        now = self.clock()
        for state in self._states:
            child = state.child
            if state.restart_at is None:
                code = child.exit_code()
                if code is None:
                    continue
                if now - state.started_at >= self.healthy_after:
                    state.failures = 0
                delay = min(self.backoff_max, self.backoff_initial * 2**state.failures)
                state.failures += 1
                state.restart_at = now + delay
                log.error(
                    "child died; restarting it",
                    extra={
                        "child": child.name,
                        "code": code,
                        "in_seconds": delay,
                        "failures": state.failures,
                    },
                )
            elif now >= state.restart_at:
                self._restart(state)

    def _restart(self, state: _State) -> None:
        child = state.child
        try:
            child.stop()  # whatever the dead one left (a server's other processes, files)
            child.start()
        except Exception as exc:  # noqa: BLE001 - it stays down; try again after a longer wait
            delay = min(self.backoff_max, self.backoff_initial * 2**state.failures)
            state.failures += 1
            state.restart_at = self.clock() + delay
            log.error(
                "restart failed; trying again",
                extra={"child": child.name, "error": str(exc)[:300], "in_seconds": delay},
            )
            return
        self.restarts += 1
        state.restarts += 1
        state.started_at, state.restart_at = self.clock(), None
        # This child's count: a log reader follows one process.
        log.warning("child restarted", extra={"child": child.name, "restarts": state.restarts})

    def stop_all(self) -> None:
        for state in reversed(self._states):
            try:
                state.child.stop()
            except Exception as exc:  # noqa: BLE001 - stop the others all the same
                log.error("could not stop child", extra={"child": state.child.name, "error": str(exc)})
