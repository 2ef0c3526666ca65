"""The dev supervisor's restart policy: backoff that doubles while a child keeps
dying, resets once it stayed up, and a failed restart is tried again."""

from __future__ import annotations

import pytest

from app.supervisor import Supervisor


class FakeChild:
    def __init__(self, name: str, fail_starts: int = 0) -> None:
        self.name = name
        self.code: int | None = None
        self.starts = 0
        self.fail_starts = fail_starts

    def start(self) -> None:
        self.starts += 1
        if self.starts > 1 and self.fail_starts > 0:
            self.fail_starts -= 1
            raise RuntimeError("port still taken")
        self.code = None

    def exit_code(self) -> int | None:
        return self.code

    def stop(self) -> None:
        pass


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


def test_a_dead_child_is_restarted_after_a_doubling_backoff(clock: Clock) -> None:
    sup = Supervisor(backoff_initial=1, backoff_max=8, healthy_after=60, clock=clock.monotonic)
    child = FakeChild("worker")
    sup.start(child)
    waits: list[float] = []
    for _ in range(5):
        child.code = -9
        sup.check()  # noticed: restart scheduled
        died_at = clock.now
        while child.code is not None:
            clock.now += 0.25
            sup.check()
        waits.append(clock.now - died_at)
        clock.now += 1  # dies again soon
    assert waits == [1, 2, 4, 8, 8]
    assert sup.restarts == 5

    clock.now += 60  # stayed up: the next death waits the initial backoff again
    child.code = 1
    sup.check()
    clock.now += 1
    sup.check()
    assert child.code is None and sup.restarts == 6


def test_a_failed_restart_is_tried_again(clock: Clock) -> None:
    sup = Supervisor(backoff_initial=1, backoff_max=30, clock=clock.monotonic)
    child = FakeChild("postgres", fail_starts=2)
    sup.start(child)
    child.code = -9
    sup.check()
    for _ in range(40):
        clock.now += 0.5
        sup.check()
    assert child.starts == 4  # the first start, two failed restarts, one that worked
    assert child.code is None and sup.restarts == 1


def test_each_restart_is_logged_with_its_own_childs_count(
    clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    sup = Supervisor(backoff_initial=1, backoff_max=8, clock=clock.monotonic)
    worker, api = FakeChild("worker"), FakeChild("api")
    sup.start(worker)
    sup.start(api)
    for child in (worker, worker, api):
        child.code = -9
        sup.check()
        clock.now += 10
        sup.check()
    logged = [(r.child, r.restarts) for r in caplog.records if r.getMessage() == "child restarted"]  # type: ignore[attr-defined]
    assert logged == [("worker", 1), ("worker", 2), ("api", 1)]
    assert sup.restarts == 3
