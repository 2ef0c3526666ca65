"""The importer against real PostgreSQL, on a few thousand numbers.

Most tests run inside the rolled-back ``db`` transaction, importing 7-digit
prefixes (1,000 numbers) of 4009 that no other test uses. The first-load path
(empty table: bulk, TRUNCATE + COPY FREEZE, worker processes) needs an empty
inventory, so it gets a database of its own.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import AsyncIterator
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

from activities import inventory_import as imp
from activities.repositories import inventory as inv
from app.db import migrate
from domain.vanity import classify
from tests.factories_inventory import add_fresh_numbers, in_minutes, new_registration_id


@pytest.fixture(autouse=True)
def _fresh_layout_cache() -> None:
    inv.forget_cached_layout()


async def _unused_prefix(db: asyncpg.Connection, block: str = "4009") -> str:
    rng = random.Random()
    while True:
        prefix = f"{block}{rng.randrange(1000):03d}"
        if not await inv.count_numbers(db, prefix):
            return prefix


async def _rows(db: asyncpg.Connection, prefix: str) -> dict[str, asyncpg.Record]:
    lo, hi = inv._prefix_range(prefix)
    rows = await db.fetch(
        "SELECT * FROM number_inventory WHERE number >= $1 AND number < $2 ORDER BY number", lo, hi
    )
    return {r["number"]: r for r in rows}


def _index_defs_sql() -> str:
    return """SELECT pg_get_indexdef(indexrelid) FROM pg_index
              WHERE indrelid = 'number_inventory'::regclass ORDER BY 1"""


def test_scopes() -> None:
    assert imp.prefix_scope("40061").size == 100_000
    assert imp.prefix_scope("40061").first_number == "4006100000"
    assert imp.prefix_scope("40061").last_number == "4006199999"
    assert imp.whole_space().size == 10_000_000
    for bad in ("4106", "400x", "40012345678", "12"):
        with pytest.raises(imp.InventoryImportError, match="prefix must be"):
            imp.prefix_scope(bad)


async def test_block_must_be_a_configured_carrier_block(db: asyncpg.Connection) -> None:
    scope = await imp.block_scope(db, "4008")
    assert (scope.first_number, scope.size) == ("4008000000", 1_000_000)
    assert "china_telecom" in scope.label
    with pytest.raises(imp.InventoryImportError, match=r"not a configured carrier block.*4008 \(china_tel"):
        await imp.block_scope(db, "4005")


def test_encoded_rows_carry_the_classifier_verdict_and_carrier() -> None:
    carriers = {"4009": "china_telecom", "40095": "china_mobile"}
    lines = imp.encode_chunk(4_009_499_990, 4_009_500_010, carriers).decode().splitlines()
    assert len(lines) == 20
    for line in lines:
        number, carrier, status, tier, tags, has_four, price = line.split("\t")
        c = classify(number)
        expected_carrier = "china_mobile" if number.startswith("40095") else "china_telecom"
        assert (carrier, status) == (expected_carrier, "available")
        assert (tier, tags, has_four, int(price)) == (
            c.tier,
            "{" + ",".join(c.tags) + "}",
            "t" if c.has_four else "f",
            c.min_monthly_spend_fen,
        )
    unassigned = imp.encode_chunk(4_005_000_000, 4_005_000_001, carriers).decode()
    assert unassigned.split("\t")[1:3] == ["unassigned", "retired"]


@pytest.mark.parametrize("mode", ["merge", "bulk"])
async def test_import_loads_and_rerun_changes_nothing(db: asyncpg.Connection, mode) -> None:
    prefix = await _unused_prefix(db)
    indexes_before = await db.fetch(_index_defs_sql())
    result = await imp.import_numbers(db, imp.prefix_scope(prefix), mode=mode, progress=False)
    assert (result.mode, result.numbers, result.inserted, result.reclassified) == (mode, 1000, 1000, 0)
    rows = await _rows(db, prefix)
    assert len(rows) == 1000
    for number, row in rows.items():
        c = classify(number)
        assert (row["carrier_code"], row["status"]) == ("china_telecom", "available")
        assert (row["tier"], tuple(row["tags"]), row["has_four"]) == (c.tier, c.tags, c.has_four)
        assert row["min_monthly_spend_fen"] == c.min_monthly_spend_fen
    # Bulk mode set the indexes and foreign keys aside and put them all back.
    assert await db.fetch(_index_defs_sql()) == indexes_before
    foreign_keys = await db.fetchval(
        "SELECT count(*) FROM pg_constraint WHERE conrelid = 'number_inventory'::regclass AND contype = 'f'"
    )
    assert foreign_keys == 1

    again = await imp.import_numbers(db, imp.prefix_scope(prefix), mode=mode, progress=False)
    assert (again.inserted, again.reclassified) == (0, 0)
    assert await _rows(db, prefix) == rows
    run = await db.fetchrow("SELECT * FROM number_import_run ORDER BY id DESC LIMIT 1")
    assert (run["scope"], run["inserted"], run["finished_at"] is not None) == (f"prefix {prefix}", 0, True)


async def test_rerun_never_touches_numbers_in_use(db: asyncpg.Connection) -> None:
    prefix = await _unused_prefix(db)
    await imp.import_numbers(db, imp.prefix_scope(prefix), progress=False)
    held, allocated, stale = f"{prefix}001", f"{prefix}002", f"{prefix}003"
    reg_h, reg_a = new_registration_id(), new_registration_id()
    await inv.hold_number(db, held, reg_h, in_minutes(30))
    await inv.hold_number(db, allocated, reg_a, in_minutes(30))
    await inv.allocate(db, allocated, reg_a)
    # As if the price rules had changed since these numbers were loaded.
    await db.execute(
        """UPDATE number_inventory SET tier = 'premium', min_monthly_spend_fen = 1
           WHERE number = ANY($1::bpchar[])""",
        [held, allocated, stale],
    )
    result = await imp.import_numbers(db, imp.prefix_scope(prefix), mode="merge", progress=False)
    assert (result.inserted, result.reclassified) == (0, 1)
    rows = await _rows(db, prefix)
    assert rows[stale]["tier"] == classify(stale).tier  # still on offer: re-priced
    for number, reg, status in ((held, reg_h, "held"), (allocated, reg_a, "allocated")):
        # In use: keeps the price it was taken at, and its holder.
        assert (rows[number]["status"], rows[number]["registration_id"]) == (status, reg)
        assert (rows[number]["tier"], rows[number]["min_monthly_spend_fen"]) == ("premium", 1)


async def test_numbers_of_an_unassigned_prefix_wait_retired_until_it_is_configured(
    db: asyncpg.Connection,
) -> None:
    prefix = await _unused_prefix(db, "4005")
    result = await imp.import_numbers(db, imp.prefix_scope(prefix), progress=False)
    assert result.inserted == 1000
    rows = await _rows(db, prefix)
    assert {(r["carrier_code"], r["status"]) for r in rows.values()} == {("unassigned", "retired")}
    page = await inv.search(db, inv.SearchCriteria(starts_with=prefix))
    assert page.items == ()

    await db.execute("INSERT INTO carrier_prefix (prefix, carrier_code) VALUES ($1, 'china_mobile')", prefix)
    result = await imp.import_numbers(db, imp.prefix_scope(prefix), progress=False)
    assert (result.inserted, result.reclassified) == (0, 1000)
    rows = await _rows(db, prefix)
    assert {(r["carrier_code"], r["status"]) for r in rows.values()} == {("china_mobile", "available")}
    page = await inv.search(db, inv.SearchCriteria(starts_with=prefix, carrier="china_mobile"))
    assert len(page.items) == 20


async def test_one_import_at_a_time(db: asyncpg.Connection, pool: asyncpg.Pool) -> None:
    async with pool.acquire() as other:
        assert await other.fetchval("SELECT pg_try_advisory_lock($1)", imp._LOCK_KEY)
        try:
            with pytest.raises(imp.InventoryImportError, match="another number import is running"):
                await imp.import_numbers(db, imp.prefix_scope("4009999"), progress=False)
        finally:
            await other.fetchval("SELECT pg_advisory_unlock($1)", imp._LOCK_KEY)


# --- first load into an empty inventory ----------------------------------------


@pytest.fixture
async def empty_db(pg_url: str) -> AsyncIterator[asyncpg.Connection]:
    """A freshly migrated database of its own: the first-load path needs an empty table."""
    name = f"inventory_import_{uuid.uuid4().hex[:12]}"
    parts = urlsplit(pg_url)
    url = urlunsplit(parts._replace(path=f"/{name}"))
    admin = await asyncpg.connect(urlunsplit(parts._replace(path="/postgres")))
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        migrate(url)
        conn = await asyncpg.connect(url)
        try:
            yield conn
        finally:
            await conn.close()
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


async def test_first_load_is_bulk_frozen_and_uses_worker_processes(
    empty_db: asyncpg.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Small chunks, so that 6,000 numbers still go through two worker processes.
    monkeypatch.setattr(imp, "CHUNK", 1500)
    scope = imp.prefix_scope("400612")
    six_thousand = imp.ImportScope("test", scope.first, scope.first + 6000)
    result = await imp.import_numbers(empty_db, six_thousand, workers=2, progress=False)
    assert (result.mode, result.inserted) == ("bulk", 6000)
    assert "waiting for classification" in result.timings
    # COPY FREEZE wrote the rows frozen and all-visible (the visibility map, which
    # ANALYZE counted into relallvisible): no VACUUM is needed before searching.
    pages, visible = await empty_db.fetchrow(
        "SELECT relpages, relallvisible FROM pg_class WHERE relname = 'number_inventory'"
    )
    assert pages > 0 and visible == pages
    numbers = [r["number"] for r in await empty_db.fetch("SELECT number FROM number_inventory ORDER BY 1")]
    assert numbers == [f"{n:010d}" for n in range(scope.first, scope.first + 6000)]
    page = await inv.search(empty_db, inv.SearchCriteria(tags=["aaa_end"]))
    assert [r.number for r in page.items] == [n for n in numbers if "aaa_end" in classify(n).tags][:20]
    # A re-run finds everything there: online merge, nothing added.
    again = await imp.import_numbers(empty_db, six_thousand, progress=False)
    assert (again.mode, again.inserted, again.reclassified) == ("merge", 0, 0)


def test_dev_hook_loads_the_default_block_once(pg_url: str, settings) -> None:
    """`python -m app dev`: an empty inventory gets the default block, and the way to load the rest."""
    import asyncio

    from activities.inventory_cli import inventory_bootstrap_hook

    name = f"inventory_hook_{uuid.uuid4().hex[:12]}"
    parts = urlsplit(pg_url)
    url = urlunsplit(parts._replace(path=f"/{name}"))
    admin_url = urlunsplit(parts._replace(path="/postgres"))

    async def admin(sql: str) -> None:
        conn = await asyncpg.connect(admin_url)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(admin(f'CREATE DATABASE "{name}"'))
    try:
        migrate(url)
        dev = settings.model_copy(update={"database_url": url, "default_embedded_block": "4006012"})
        first = inventory_bootstrap_hook(dev)
        assert "1,000 numbers of prefix 4006012 loaded" in first[0]
        assert any("numbers import --all" in line for line in first)
        second = inventory_bootstrap_hook(dev)  # a restart: already loaded, nothing imported
        assert "1,000 numbers in the inventory" in second[0]
    finally:
        asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


async def test_cli_import_beside_a_running_stack_does_not_lock_out_readers(
    pool: asyncpg.Pool, pg_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`python -m app numbers import` into an inventory in use stays online, however
    large: a search that is running meanwhile neither blocks the import nor is
    blocked by it, and holds go on."""
    import asyncio

    from app.__main__ import main

    # Size decided before (the bulk path from 500,000 missing numbers on); a
    # threshold of one number stands for a large import here.
    monkeypatch.setattr(imp, "BULK_THRESHOLD", 1, raising=False)
    monkeypatch.setenv("DATABASE_URL", pg_url)
    # Beside a `make dev` stack, as the dev banner says to run it.
    monkeypatch.setenv("ENVIRONMENT", "development")
    await add_fresh_numbers(pool, 1, prefix="4006")  # the inventory is in use
    async with pool.acquire() as probe:
        prefix = await _unused_prefix(probe)
    lo, hi = inv._prefix_range(prefix)
    async with pool.acquire() as reader, pool.acquire() as writer:
        # A long search, still open: a table lock would have to wait for it, and
        # every request after it would queue behind that lock.
        search = reader.transaction()
        await search.start()
        await reader.fetchval("SELECT count(*) FROM number_inventory WHERE number < '4000100000'")
        importing = asyncio.create_task(
            asyncio.to_thread(main, ["numbers", "import", "--prefix", prefix, "--no-progress"])
        )
        try:
            done, _ = await asyncio.wait({importing}, timeout=60)
            assert done, "the import waited for the open search: it took a table lock"
            assert importing.result() == 0
            # Meanwhile and after, others read and hold without waiting on a lock.
            await writer.execute("SET lock_timeout = '2s'")
            assert (
                await writer.fetchval(
                    "SELECT count(*) FROM number_inventory WHERE number >= $1 AND number < $2", lo, hi
                )
                == 1000
            )
            held = await inv.hold_number(writer, f"{prefix}123", new_registration_id(), in_minutes(5))
            assert held is not None and held.status == "held"
        finally:
            await search.rollback()
            await asyncio.wait({importing}, timeout=120)
            async with pool.acquire() as conn:
                await conn.execute("DELETE FROM number_inventory WHERE number >= $1 AND number < $2", lo, hi)
    assert "merge mode" in capsys.readouterr().out
