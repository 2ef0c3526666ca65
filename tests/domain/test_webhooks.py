"""The webhook rules: catalogue routes, the retry schedule, address classes, deadline kinds."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from domain.webhooks import (
    CATALOGUE,
    RetrySchedule,
    refused_address_class,
    routes_for,
    schedule_table,
)

DEFAULT = RetrySchedule(timedelta(seconds=5), timedelta(hours=6), timedelta(days=3), 0.2)
NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


def test_routes_send_one_event_as_every_type_subscribed_in_catalogue_order() -> None:
    routes = routes_for(["prepayment.due", "application.approved", "service.suspended"])
    assert routes["ApplicationApproved"] == ["application.approved", "prepayment.due"]
    assert routes["OperatorSuspended"] == ["service.suspended"]
    assert "ApplicationSubmitted" not in routes
    assert routes_for(["deadline.recomputed"]) == {"DeadlineRecomputed": ["deadline.recomputed"]}
    with pytest.raises(KeyError, match=r"no\.such"):
        routes_for(["no.such"])
    assert len({t.type for t in CATALOGUE}) == len(CATALOGUE)


def test_backoff_doubles_up_to_its_cap() -> None:
    assert [DEFAULT.nominal_delay(n).total_seconds() for n in (1, 2, 3, 4)] == [5, 10, 20, 40]
    assert DEFAULT.nominal_delay(40) == timedelta(hours=6)
    assert DEFAULT.nominal_delay(10**6) == timedelta(hours=6)  # no overflow


def test_jitter_spreads_the_delay_and_the_window_ends_the_retries() -> None:
    low = DEFAULT.next_attempt(3, NOW, NOW, 0.0)
    high = DEFAULT.next_attempt(3, NOW, NOW, 0.999999)
    assert low == NOW + timedelta(seconds=16)
    assert high is not None and NOW + timedelta(seconds=23.99) < high <= NOW + timedelta(seconds=24)
    started = NOW - timedelta(days=3) + timedelta(minutes=1)
    assert DEFAULT.next_attempt(30, NOW, started, 0.5) is None  # past the 3 days


def test_the_documented_schedule_retries_for_three_days() -> None:
    table = schedule_table(DEFAULT)
    assert table[0] == (1, timedelta(0), timedelta(0))
    assert table[1][1] == timedelta(seconds=5)
    assert table[-1][2] <= timedelta(days=3) < table[-1][2] + timedelta(hours=6)
    assert 20 <= len(table) <= 30


@pytest.mark.parametrize(
    ("address", "refused"),
    [
        ("93.184.216.34", None),
        ("2606:2800:220:1::1", None),
        ("127.0.0.1", "loopback"),
        ("::ffff:192.168.0.1", "private"),
        ("169.254.169.254", "metadata"),
        ("100.100.100.200", "metadata"),
        ("100.64.1.1", "reserved"),
    ],
)
def test_address_classes(address: str, refused: str | None) -> None:
    assert refused_address_class(address) == refused
    assert refused_address_class("127.0.0.1", allow_loopback=True) is None


def test_the_docs_list_the_whole_catalogue_and_the_default_schedule() -> None:
    from pathlib import Path

    from app.settings import WebhookSettings

    docs = (Path(__file__).parents[2] / "docs" / "webhooks.md").read_text()
    for entry in CATALOGUE:
        assert f"| `{entry.type}` |" in docs, entry.type
    w = WebhookSettings()
    table = schedule_table(
        RetrySchedule(w.retry_initial, w.retry_max_interval, w.retry_window, w.retry_jitter)
    )
    assert f"| 15–{len(table)} | 6 h each |" in docs
    assert (w.retry_initial, w.retry_max_interval, w.retry_window) == (
        timedelta(seconds=5),
        timedelta(hours=6),
        timedelta(days=3),
    )
