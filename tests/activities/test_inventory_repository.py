"""The inventory repository against real PostgreSQL, including real concurrent callers.

Single-caller tests run in the rolled-back ``db`` transaction. Race tests need
committed rows seen by separate connections, so they take fresh numbers and
delete them afterwards.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest
from pydantic import ValidationError

from activities.repositories import inventory as inv
from activities.repositories.inventory import (
    InvalidNumberState,
    NumberNotHeld,
    NumberRecord,
    RegistrationHoldsAnotherNumber,
    SearchCriteria,
)
from domain.vanity import Classification, classify
from tests.factories_inventory import add_fresh_numbers, delete_numbers, in_minutes, new_registration_id


@pytest.fixture(autouse=True)
def _fresh_layout_cache() -> None:
    # Searches cache carrier blocks and number extents for seconds; tests add
    # and roll back prefixes and numbers faster than that.
    inv.forget_cached_layout()


def _ago(seconds: float) -> datetime:
    return datetime.now(UTC) - timedelta(seconds=seconds)


async def _fresh(db: asyncpg.Connection, count: int = 1) -> list[str]:
    return await add_fresh_numbers(db, count)


# --- hold ----------------------------------------------------------------------


async def test_hold_takes_an_available_number_and_is_idempotent(db: asyncpg.Connection) -> None:
    (number,) = await _fresh(db)
    reg = new_registration_id()
    held = await inv.hold_number(db, number, reg, in_minutes(30))
    assert held is not None
    assert (held.status, held.registration_id) == ("held", reg)

    later = in_minutes(60)
    again = await inv.hold_number(db, number, reg, later)
    assert again is not None and again.registration_id == reg
    assert again.hold_expires_at == later  # a repeated hold refreshes the expiry
    assert again.status_changed_at == held.status_changed_at

    assert await inv.hold_number(db, number, new_registration_id(), in_minutes(30)) is None


async def test_hold_of_an_unknown_number_is_none(db: asyncpg.Connection) -> None:
    number = (await _fresh(db))[0]
    await db.execute("DELETE FROM number_inventory WHERE number = $1", number)
    assert await inv.hold_number(db, number, new_registration_id(), in_minutes(5)) is None
    assert await inv.get_number(db, number) is None


async def test_a_registration_holds_one_number_at_a_time(db: asyncpg.Connection) -> None:
    first, second = await _fresh(db, 2)
    reg = new_registration_id()
    await inv.hold_number(db, first, reg, in_minutes(30))
    with pytest.raises(RegistrationHoldsAnotherNumber) as err:
        await inv.hold_number(db, second, reg, in_minutes(30))
    assert err.value.held_number == first
    # The savepoint kept the caller's transaction usable, and nothing changed.
    second_row = await inv.get_number(db, second)
    assert second_row is not None and second_row.status == "available"


async def test_an_expired_hold_can_be_taken_by_another_registration(db: asyncpg.Connection) -> None:
    (number,) = await _fresh(db)
    loser, winner = new_registration_id(), new_registration_id()
    await inv.hold_number(db, number, loser, _ago(1))
    taken = await inv.hold_number(db, number, winner, in_minutes(30))
    assert taken is not None and taken.registration_id == winner
    assert not await inv.extend_hold(db, number, loser, in_minutes(30))
    assert not await inv.release(db, number, loser)  # never touches the new holder's number
    with pytest.raises(NumberNotHeld):
        await inv.allocate(db, number, loser)


async def test_a_quarantined_number_is_takeable_only_after_quarantine(db: asyncpg.Connection) -> None:
    (number,) = await _fresh(db)
    reg = await _active(db, number)
    await inv.quarantine(db, number, reg, in_minutes(60))
    assert await inv.hold_number(db, number, new_registration_id(), in_minutes(5)) is None
    await db.execute("UPDATE number_inventory SET quarantine_until = $2 WHERE number = $1", number, _ago(1))
    taken = await inv.hold_number(db, number, (other := new_registration_id()), in_minutes(5))
    assert taken is not None and taken.registration_id == other and taken.quarantine_until is None


async def test_extend_hold(db: asyncpg.Connection) -> None:
    (number,) = await _fresh(db)
    reg = new_registration_id()
    await inv.hold_number(db, number, reg, in_minutes(1))
    until = in_minutes(90)
    assert await inv.extend_hold(db, number, reg, until)
    row = await inv.get_number(db, number)
    assert row is not None and row.hold_expires_at == until
    assert not await inv.extend_hold(db, number, new_registration_id(), until)


async def test_naive_datetimes_are_refused(db: asyncpg.Connection) -> None:
    (number,) = await _fresh(db)
    with pytest.raises(ValueError, match="timezone-aware"):
        await inv.hold_number(db, number, new_registration_id(), datetime(2030, 1, 1))


# --- lifecycle -----------------------------------------------------------------


async def _active(db: asyncpg.Connection, number: str) -> str:
    reg = new_registration_id()
    assert await inv.hold_number(db, number, reg, in_minutes(30))
    await inv.allocate(db, number, reg)
    await inv.activate(db, number, reg)
    return reg


async def test_allocate_activate_and_service_states(db: asyncpg.Connection) -> None:
    (number,) = await _fresh(db)
    reg = new_registration_id()
    await inv.hold_number(db, number, reg, in_minutes(30))

    allocated = await inv.allocate(db, number, reg)
    assert (allocated.status, allocated.hold_expires_at) == ("allocated", None)
    assert (await inv.allocate(db, number, reg)) == allocated  # a retry changes nothing

    active = await inv.activate(db, number, reg)
    assert active.status == "active"
    assert (await inv.activate(db, number, reg)).version == active.version

    for status in ("restricted", "suspended", "frozen", "active"):
        row = await inv.set_service_status(db, number, reg, status)
        assert row.status == status
        assert (await inv.set_service_status(db, number, reg, status)).version == row.version
    with pytest.raises(ValueError, match="service status"):
        await inv.set_service_status(db, number, reg, "available")


async def test_allocate_requires_the_registrations_hold(db: asyncpg.Connection) -> None:
    available, held = await _fresh(db, 2)
    with pytest.raises(NumberNotHeld, match="not this registration"):
        await inv.allocate(db, available, new_registration_id())
    await inv.hold_number(db, held, new_registration_id(), in_minutes(30))
    with pytest.raises(NumberNotHeld):
        await inv.allocate(db, held, new_registration_id())
    with pytest.raises(NumberNotHeld, match="not in the inventory"):
        await inv.allocate(db, "4005999999", new_registration_id())


async def test_activate_needs_an_allocation(db: asyncpg.Connection) -> None:
    (number,) = await _fresh(db)
    reg = new_registration_id()
    await inv.hold_number(db, number, reg, in_minutes(30))
    with pytest.raises(InvalidNumberState, match="it is held"):
        await inv.activate(db, number, reg)
    with pytest.raises(InvalidNumberState):
        await inv.set_service_status(db, number, reg, "suspended")


async def test_release_before_activation_only(db: asyncpg.Connection) -> None:
    held, allocated, active = await _fresh(db, 3)
    reg_h, reg_a = new_registration_id(), new_registration_id()
    await inv.hold_number(db, held, reg_h, in_minutes(30))
    await inv.hold_number(db, allocated, reg_a, in_minutes(30))
    await inv.allocate(db, allocated, reg_a)
    reg_active = await _active(db, active)

    assert not await inv.release(db, held, new_registration_id())
    assert await inv.release(db, held, reg_h)
    assert not await inv.release(db, held, reg_h)  # the retry finds nothing to do
    assert await inv.release(db, allocated, reg_a)
    for number in (held, allocated):
        row = await inv.get_number(db, number)
        assert row is not None and (row.status, row.registration_id) == ("available", None)
    with pytest.raises(InvalidNumberState, match="cannot release"):
        await inv.release(db, active, reg_active)


async def test_quarantine_and_its_expiry(db: asyncpg.Connection) -> None:
    (number,) = await _fresh(db)
    reg = await _active(db, number)
    until = in_minutes(60 * 24 * 90)
    q = await inv.quarantine(db, number, reg, until)
    assert (q.status, q.registration_id, q.quarantine_until) == ("quarantined", None, until)
    assert (await inv.quarantine(db, number, reg, until)).version == q.version  # retry
    with pytest.raises(NumberNotHeld):
        await inv.quarantine(db, number, new_registration_id(), until)

    assert await inv.release_expired(db, until - timedelta(seconds=1)) >= 0
    row = await inv.get_number(db, number)
    assert row is not None and row.status == "quarantined"
    assert await inv.release_expired(db, until) >= 1
    row = await inv.get_number(db, number)
    assert row is not None and (row.status, row.quarantine_until) == ("available", None)


async def test_release_expired_frees_only_expired_holds(db: asyncpg.Connection) -> None:
    expired, live = await _fresh(db, 2)
    reg_expired, reg_live = new_registration_id(), new_registration_id()
    await inv.hold_number(db, expired, reg_expired, _ago(5))
    await inv.hold_number(db, live, reg_live, in_minutes(30))
    assert await inv.release_expired(db, datetime.now(UTC)) >= 1
    row = await inv.get_number(db, expired)
    assert row is not None and (row.status, row.registration_id, row.hold_expires_at) == (
        "available",
        None,
        None,
    )
    row = await inv.get_number(db, live)
    assert row is not None and row.registration_id == reg_live
    assert await inv.hold_number(db, expired, new_registration_id(), in_minutes(5))


# --- the database's own guarantees ---------------------------------------------


async def test_database_rejects_double_assignment_by_hand(db: asyncpg.Connection) -> None:
    first, second = await _fresh(db, 2)
    reg, thief = new_registration_id(), new_registration_id()
    await inv.hold_number(db, first, reg, in_minutes(30))
    await inv.allocate(db, first, reg)

    # One number per registration: a second number for the same registration.
    with pytest.raises(asyncpg.UniqueViolationError):
        async with db.transaction():
            await db.execute(
                """UPDATE number_inventory SET status = 'held', registration_id = $2,
                   hold_expires_at = now() + interval '1 hour' WHERE number = $1""",
                second,
                reg,
            )
    # One registration per number: moving an allocated number to someone else.
    with pytest.raises(asyncpg.IntegrityConstraintViolationError, match="belongs to another registration"):
        async with db.transaction():
            await db.execute(
                "UPDATE number_inventory SET registration_id = $2 WHERE number = $1", first, thief
            )
    # One row per number.
    with pytest.raises(asyncpg.UniqueViolationError):
        async with db.transaction():
            await db.execute(
                """INSERT INTO number_inventory (number, carrier_code, tier, has_four,
                   min_monthly_spend_fen) VALUES ($1, 'china_mobile', 'standard', false, 0)""",
                first,
            )
    # A live hold cannot be passed on either; an expired one can (that is a takeover).
    await inv.hold_number(db, second, thief, in_minutes(30))
    with pytest.raises(asyncpg.IntegrityConstraintViolationError):
        async with db.transaction():
            await db.execute(
                "UPDATE number_inventory SET registration_id = $2 WHERE number = $1",
                second,
                new_registration_id(),
            )
    row = await inv.get_number(db, first)
    assert row is not None and row.registration_id == reg


# --- real concurrency ----------------------------------------------------------


@pytest.fixture
async def committed(pool: asyncpg.Pool) -> AsyncIterator[Callable[..., object]]:
    """Adds committed fresh numbers; deletes them when the test ends."""
    made: list[str] = []

    async def make(count: int = 1, prefix: str = "4001") -> list[str]:
        numbers = await add_fresh_numbers(pool, count, prefix)
        made.extend(numbers)
        return numbers

    yield make
    await delete_numbers(pool, made)


Call = Callable[[asyncpg.Connection], Awaitable[Any]]


def _hold(number: str, reg: str) -> Call:
    return lambda c: inv.hold_number(c, number, reg, in_minutes(30))


def _hold_matching(reg: str, criteria: SearchCriteria) -> Call:
    return lambda c: inv.hold_matching(c, reg, criteria, in_minutes(30))


async def _each_on_own_connection(pool: asyncpg.Pool, calls: Sequence[Call]) -> list[Any]:
    """Run every call at once, each on its own pooled connection, released together."""
    gate = asyncio.Event()

    async def run(call: Call) -> Any:
        async with pool.acquire() as conn:
            await gate.wait()
            return await call(conn)

    tasks = [asyncio.create_task(run(c)) for c in calls]
    await asyncio.sleep(0.2)  # let every task take its connection first
    gate.set()
    return await asyncio.gather(*tasks, return_exceptions=True)


async def test_racers_for_one_number_have_exactly_one_winner(pool: asyncpg.Pool, committed) -> None:
    (number,) = await committed(1)
    regs = [new_registration_id() for _ in range(32)]
    results = await _each_on_own_connection(pool, [_hold(number, r) for r in regs])
    assert not [r for r in results if isinstance(r, BaseException)]
    winners = [r for r in results if r is not None]
    assert len(winners) == 1
    assert isinstance(winners[0], NumberRecord)
    row = await pool.fetchrow(
        "SELECT status, registration_id FROM number_inventory WHERE number = $1", number
    )
    assert (row["status"], row["registration_id"]) == ("held", winners[0].registration_id)


async def test_racers_for_an_expired_hold_have_exactly_one_winner(pool: asyncpg.Pool, committed) -> None:
    (number,) = await committed(1)
    async with pool.acquire() as conn:
        await inv.hold_number(conn, number, new_registration_id(), _ago(1))
    regs = [new_registration_id() for _ in range(32)]
    calls = [_hold(number, r) for r in regs]
    # The sweeper races them too; whoever goes first, there is one holder at the end.
    calls.append(lambda c: inv.release_expired(c, datetime.now(UTC)))
    results = await _each_on_own_connection(pool, calls)
    assert not [r for r in results if isinstance(r, BaseException)]
    winners = [r for r in results[:-1] if r is not None]
    assert len(winners) == 1
    row = await pool.fetchrow("SELECT registration_id FROM number_inventory WHERE number = $1", number)
    assert row["registration_id"] == winners[0].registration_id


async def test_racers_for_matching_numbers_never_share_one(pool: asyncpg.Pool, committed) -> None:
    # A 7-digit prefix of our own, with exactly 5 numbers in it, and 32 racers.
    prefix = await _empty_prefix(pool)
    numbers = await committed(5, prefix)
    criteria = SearchCriteria(starts_with=prefix)
    regs = [new_registration_id() for _ in range(32)]
    results = await _each_on_own_connection(pool, [_hold_matching(r, criteria) for r in regs])
    assert not [r for r in results if isinstance(r, BaseException)]
    won = [r.number for r in results if r is not None]
    assert sorted(won) == sorted(numbers)  # every number went, each to one racer
    held = await pool.fetch(
        "SELECT number, registration_id FROM number_inventory WHERE number = ANY($1::text[])", numbers
    )
    assert len({r["registration_id"] for r in held}) == 5


async def test_one_registration_racing_itself_gets_one_number(pool: asyncpg.Pool, committed) -> None:
    prefix = await _empty_prefix(pool)
    numbers = await committed(10, prefix)
    reg = new_registration_id()
    criteria = SearchCriteria(starts_with=prefix)
    results = await _each_on_own_connection(pool, [_hold_matching(reg, criteria) for _ in range(16)])
    assert not [r for r in results if isinstance(r, BaseException)]
    assert len({r.number for r in results if r is not None}) == 1
    count = await pool.fetchval(
        "SELECT count(*) FROM number_inventory WHERE registration_id = $1 AND number = ANY($2::text[])",
        reg,
        numbers,
    )
    assert count == 1


async def test_concurrent_allocation_and_release_keep_one_owner(pool: asyncpg.Pool, committed) -> None:
    # The holder allocates while a stale retry of its release and rival holds run at once.
    (number,) = await committed(1)
    reg = new_registration_id()
    async with pool.acquire() as conn:
        await inv.hold_number(conn, number, reg, in_minutes(30))
    calls: list[Call] = [lambda c: inv.allocate(c, number, reg)]
    calls += [_hold(number, new_registration_id()) for _ in range(8)]
    results = await _each_on_own_connection(pool, calls)
    assert isinstance(results[0], NumberRecord) and results[0].status == "allocated"
    assert all(r is None for r in results[1:])


async def _empty_prefix(pool: asyncpg.Pool) -> str:
    rng = random.Random()
    async with pool.acquire() as conn:
        while True:
            prefix = f"4001{rng.randrange(1000):03d}"
            if not await inv.count_numbers(conn, prefix):
                return prefix


# --- hold_matching -------------------------------------------------------------


async def test_hold_matching_picks_a_match_and_is_idempotent(db: asyncpg.Connection) -> None:
    prefix = await _unused_prefix(db)
    numbers = [f"{prefix}{i:03d}" for i in range(1000)]
    await inv.insert_numbers(db, numbers)
    reg = new_registration_id()
    criteria = SearchCriteria(starts_with=prefix, ends_with="8", exclude_four=True)
    held = await inv.hold_matching(db, reg, criteria, in_minutes(30))
    assert held is not None and held.number.startswith(prefix) and held.number.endswith("8")
    assert not held.has_four
    again = await inv.hold_matching(db, reg, SearchCriteria(starts_with=prefix), in_minutes(60))
    assert again is not None and again.number == held.number
    assert again.hold_expires_at is not None and again.hold_expires_at > held.hold_expires_at  # type: ignore[operator]
    # Nothing matches (a 4 wanted while fours are excluded): None, and nothing taken.
    # Not a pattern tag: a random prefix such as 4007111 makes 4007111111 a six-run.
    empty = SearchCriteria(starts_with=prefix, contains="4", exclude_four=True)
    assert await inv.hold_matching(db, new_registration_id(), empty, in_minutes(5)) is None


async def test_hold_matching_spreads_callers_over_the_matches(db: asyncpg.Connection) -> None:
    prefix = await _unused_prefix(db)
    await inv.insert_numbers(db, [f"{prefix}{i:03d}" for i in range(1000)])
    criteria = SearchCriteria(starts_with=prefix)
    picked = set()
    for _ in range(20):
        row = await inv.hold_matching(db, new_registration_id(), criteria, in_minutes(5))
        assert row is not None
        picked.add(row.number)
    # Random starting points: twenty callers do not queue up on the first numbers.
    assert len(picked) == 20
    assert sorted(picked) != [f"{prefix}{i:03d}" for i in range(20)]


# --- search --------------------------------------------------------------------


async def _unused_prefix(db: asyncpg.Connection) -> str:
    # A 7-digit prefix of a real carrier with no rows, so results are ours
    # alone, and without a 4, so that "no 4" searches find some.
    rng = random.Random()
    while True:
        prefix = f"4007{rng.randrange(1000):03d}"
        if "4" not in prefix[3:] and not await inv.count_numbers(db, prefix):
            return prefix


@pytest.fixture
async def block(db: asyncpg.Connection) -> tuple[str, dict[str, Classification]]:
    """All 1000 numbers of an unused 7-digit prefix, with what the classifier says of each."""
    prefix = await _unused_prefix(db)
    numbers = [f"{prefix}{i:03d}" for i in range(1000)]
    assert await inv.insert_numbers(db, numbers) == 1000
    return prefix, {n: classify(n) for n in numbers}


async def _all_pages(db, criteria, limit=37, sample=False, seed=None) -> list[str]:
    seen: list[str] = []
    after = None
    while True:
        page = await inv.search(db, criteria, limit=limit, after=after, sample=sample, seed=seed)
        assert len(page.items) <= limit
        seen += [r.number for r in page.items]
        if page.next_cursor is None:
            return seen
        after, seed = page.next_cursor, page.seed


CASES: list[tuple[dict[str, Any], Callable[[str, Classification], bool]]] = [
    ({}, lambda n, c: True),
    ({"ends_with": "8"}, lambda n, c: n.endswith("8")),
    ({"ends_with": "88"}, lambda n, c: n.endswith("88")),
    ({"contains": "66"}, lambda n, c: "66" in n[3:]),
    ({"contains": "123"}, lambda n, c: "123" in n[3:]),
    ({"tags": ["aaa_end"]}, lambda n, c: "aaa_end" in c.tags),
    (
        {"tags": ["no_four", "lucky_digits_3plus"]},
        lambda n, c: {"no_four", "lucky_digits_3plus"} <= set(c.tags),
    ),
    ({"tier": "standard"}, lambda n, c: c.tier == "standard"),
    ({"tier": "economy"}, lambda n, c: c.tier == "economy"),
    ({"exclude_four": True}, lambda n, c: not c.has_four),
    ({"max_monthly_spend_fen": 10000}, lambda n, c: c.min_monthly_spend_fen <= 10000),
    ({"max_monthly_spend_fen": 0}, lambda n, c: False),
    ({"carrier": "china_mobile"}, lambda n, c: True),
    ({"carrier": "china_unicom"}, lambda n, c: False),
    ({"exclude_four": True, "ends_with": "4"}, lambda n, c: False),
    ({"exclude_four": True, "tags": ["has_four"]}, lambda n, c: False),
    (
        {"ends_with": "9", "contains": "8", "exclude_four": True, "max_monthly_spend_fen": 30000},
        lambda n, c: n.endswith("9") and "8" in n[3:] and not c.has_four and c.min_monthly_spend_fen <= 30000,
    ),
]


@pytest.mark.parametrize(("filters", "expected"), CASES)
async def test_search_filters_match_the_classifier(db, block, filters, expected) -> None:
    prefix, classes = block
    criteria = SearchCriteria(starts_with=prefix, **filters)
    want = sorted(n for n, c in classes.items() if expected(n, c))
    assert await _all_pages(db, criteria) == want
    sampled = await _all_pages(db, criteria, sample=True, seed=7)
    assert sorted(sampled) == want and len(sampled) == len(set(sampled))


async def test_search_starts_with_and_exact_ends_with(db, block) -> None:
    prefix, _ = block
    number = f"{prefix}123"
    page = await inv.search(db, SearchCriteria(starts_with=number[:9]))
    assert [r.number for r in page.items] == [f"{number[:9]}{d}" for d in range(10)]
    page = await inv.search(db, SearchCriteria(starts_with=prefix[:7], ends_with=number[4:]))
    assert [r.number for r in page.items] == [number]
    page = await inv.search(db, SearchCriteria(ends_with=number))
    assert [r.number for r in page.items] == [number]


async def test_available_only_hides_held_numbers(db, block) -> None:
    prefix, _ = block
    number = f"{prefix}500"
    await inv.hold_number(db, number, new_registration_id(), in_minutes(30))
    visible = await _all_pages(db, SearchCriteria(starts_with=prefix))
    assert number not in visible and len(visible) == 999
    everything = await _all_pages(db, SearchCriteria(starts_with=prefix, available_only=False))
    assert number in everything and len(everything) == 1000


async def test_sampled_pages_start_at_different_places(db, block) -> None:
    prefix, _ = block
    criteria = SearchCriteria(starts_with=prefix)
    firsts = set()
    for _ in range(10):
        page = await inv.search(db, criteria, limit=5, sample=True)
        assert page.sampled and page.seed is not None
        firsts.add(page.items[0].number)
        # The seed handed back continues the same walk: the same page again.
        again = await inv.search(db, criteria, limit=5, sample=True, seed=page.seed)
        assert again.items == page.items
        assert page.seed is not None and str(page.seed) <= page.items[0].number
    assert len(firsts) > 1


async def test_search_rejects_bad_input(db) -> None:
    with pytest.raises(ValidationError, match="digits"):
        SearchCriteria(contains="8a8")
    with pytest.raises(ValidationError, match="at most 7"):
        SearchCriteria(contains="12345678")
    with pytest.raises(ValidationError, match="did you mean '4008888'"):
        SearchCriteria(starts_with="8888")
    with pytest.raises(ValidationError, match="unknown tags"):
        SearchCriteria(tags=["lucky"])
    with pytest.raises(ValidationError, match="unknown tier"):
        SearchCriteria(tier="platinum")
    with pytest.raises(ValidationError):
        SearchCriteria(carrier="China Unicom")
    with pytest.raises(ValidationError):
        SearchCriteria(colour="red")  # type: ignore[call-arg]
    assert SearchCriteria(starts_with="400-888").starts_with == "400888"
    with pytest.raises(ValueError, match="limit"):
        await inv.search(db, SearchCriteria(), limit=0)
    with pytest.raises(ValueError, match="invalid 400 number"):
        await inv.search(db, SearchCriteria(), after="12345")


@pytest.mark.parametrize(
    ("filters", "index"),
    [
        ({}, "number_inventory_available"),
        ({"tags": ["aaaa"]}, "number_inventory_tag_aaaa"),
        ({"tier": "gold"}, "number_inventory_tier_gold"),
        ({"ends_with": "8888"}, "number_inventory_last4"),
        ({"ends_with": "888"}, "number_inventory_last4"),
        ({"contains": "8888"}, "number_inventory_tag_aaaa"),
        ({"carrier": "china_telecom"}, "number_inventory_available"),
    ],
)
async def test_search_queries_match_the_indexes(db, block, filters, index) -> None:
    """Each kind of search can use the index meant for it: the expressions and
    partial-index predicates in the SQL match the migration's exactly."""
    # Statistics for the rows at hand; and the table is small, so the planner
    # would rightly read it whole: forbid that.
    await db.execute("ANALYZE number_inventory")
    await db.execute("SET LOCAL enable_seqscan = off")
    q = await inv._plan(db, SearchCriteria(**filters), available_only=True)
    assert q is not None
    sql = inv._page_sql(q, inv.FIRST_NUMBER, inv.END_NUMBER, 21)
    plan = "\n".join(r[0] for r in await db.fetch(f"EXPLAIN {sql}"))
    if index == "number_inventory_available" and index not in plan:
        # With most rows on offer, the planner may find walking the primary key
        # as cheap as this partial index (statistics left by earlier tests):
        # then check that the index's predicate is spelled in the query instead.
        definition = await db.fetchval(f"SELECT pg_get_indexdef('{index}'::regclass)")
        predicate = definition.split(" WHERE ", 1)[1].strip("() ")
        assert sql is not None and predicate.replace("::text", "") in sql.replace("::text", ""), (
            predicate,
            sql,
        )
        return
    assert index in plan, plan


async def test_contains_matches_the_trigram_index(db) -> None:
    # On a table this small the planner prefers reading any index whole to the
    # trigram index, so compare with the index definition instead of a plan
    # (the bench shows the plan on 10 million rows).
    clauses: list[str] = []
    assert inv._contains("5201", clauses)  # True: this one goes to the trigram index
    definition = await db.fetchval("SELECT pg_get_indexdef('number_inventory_suffix_trgm'::regclass)")
    assert "gin (substr((number)::text, 4) gin_trgm_ops)" in definition
    assert clauses == ["substr(number::text, 4) LIKE '%5201%'"]


@pytest.mark.parametrize(
    "digits", ["8888", "88888", "1314", "5201", "888", "520", "66666", "1689", "8", "98"]
)
async def test_contains_finds_runs_and_long_patterns(db, digits) -> None:
    """Every strategy behind "contains" (scan, run tag, trigrams) finds exactly the matches."""
    prefix = "40098"
    suffixes = ["88812", "88881", "88889", "20131", "13145", "13140", "99999", "88123", "12388", "52013"]
    suffixes += ["14520", "66666", "16888", "88886", "98888", "16890", "31400"]
    await inv.insert_numbers(db, [prefix + s for s in suffixes])
    lo, hi = inv._prefix_range(prefix)
    rows = await db.fetch(
        "SELECT number FROM number_inventory WHERE number >= $1 AND number < $2 AND status = 'available'",
        lo,
        hi,
    )
    want = sorted(r["number"] for r in rows if digits in r["number"][3:])
    assert await _all_pages(db, SearchCriteria(starts_with=prefix, contains=digits)) == want
    assert want  # the fixture holds at least one match of each


def test_errors_survive_pickling() -> None:
    import pickle

    for err in (
        NumberNotHeld("4001234567", "reg-1", "it is available"),
        InvalidNumberState("4001234567", "held", "activate", ["allocated"]),
        RegistrationHoldsAnotherNumber("reg-1", "4001234567"),
    ):
        again = pickle.loads(pickle.dumps(err))
        assert type(again) is type(err) and str(again) == str(err)


def test_digit_filters_refuse_a_trailing_newline() -> None:
    with pytest.raises(ValidationError):
        SearchCriteria(ends_with="88\n8")
    assert SearchCriteria(ends_with=" 888\n").ends_with == "888"  # surrounding blanks are dropped
    with pytest.raises(ValueError, match="invalid 400 number"):
        inv._check_number("4001234567\n")


async def test_sweeper_releases_expired_holds_until_stopped(pool: asyncpg.Pool, committed) -> None:
    from activities.inventory_sweeper import sweep_forever

    (number,) = await committed(1)
    async with pool.acquire() as conn:
        await inv.hold_number(conn, number, new_registration_id(), _ago(1))
    stop = asyncio.Event()
    task = asyncio.create_task(sweep_forever(pool, timedelta(milliseconds=50), stop))
    try:
        for _ in range(100):
            row = await pool.fetchrow("SELECT status FROM number_inventory WHERE number = $1", number)
            if row["status"] == "available":
                break
            await asyncio.sleep(0.05)
        assert row["status"] == "available"
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=5)
