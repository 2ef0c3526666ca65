"""`python -m app calendar load|show|status`, as an operations team runs it
beside the stack: the load is stored and its recompute started on the stack's
worker, a bad file names each date at fault, and `show` prints a file that
loads back unchanged."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import asyncpg
import pytest

from app.__main__ import main
from app.settings import Settings, get_settings
from tests.api.test_calendar import fresh_year
from tests.conftest import TEST_KEYS


@pytest.fixture
def cli_env(monkeypatch: pytest.MonkeyPatch, stack_settings: Settings, api_worker: object) -> Iterator[None]:
    for name, value in {
        "ENVIRONMENT": "test",
        "DATABASE_URL": stack_settings.database_url,
        "TEMPORAL_ADDRESS": stack_settings.temporal_address,
        "TEMPORAL_TASK_QUEUE": stack_settings.temporal_task_queue,
        "PAYLOAD_ENCRYPTION_KEYS": TEST_KEYS,
    }.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


async def run(*argv: str) -> int:
    return await asyncio.to_thread(main, list(argv))


async def test_load_show_and_status(
    cli_env: None, pool: asyncpg.Pool, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    year = await fresh_year(pool)
    schedule = tmp_path / f"{year}.yaml"
    schedule.write_text(
        f"year: {year}\nsource: 国务院办公厅关于{year}年部分节假日安排的通知 (test)\nholidays:\n"
        f"  - {{name: 元旦, start: {year}-01-01, end: {year}-01-03}}\nmakeup_days: []\n",
        encoding="utf-8",
    )
    assert await run("calendar", "load", str(schedule)) == 0
    out = capsys.readouterr().out
    assert f"loaded {year} as calendar version" in out and "(first load)" in out
    assert f"added    {year}-01-01  - -> holiday 元旦" in out
    assert f"recompute started: calendar-recompute-{year}-v" in out

    assert await run("calendar", "show", str(year)) == 0
    shown = capsys.readouterr().out
    again = tmp_path / "again.yaml"
    again.write_text(shown, encoding="utf-8")
    assert await run("calendar", "load", str(again)) == 0
    out = capsys.readouterr().out
    assert "(was version" in out and "added" not in out and "removed" not in out

    assert await run("calendar", "status") == 0
    assert "official schedules: 2004-" in capsys.readouterr().out


async def test_a_bad_file_names_every_date_and_stores_nothing(
    cli_env: None, pool: asyncpg.Pool, tmp_path: Path
) -> None:
    year = await fresh_year(pool)
    weekday = next(date(year, 1, d) for d in range(5, 12) if date(year, 1, d).weekday() < 5)
    bad = tmp_path / "bad.json"
    bad.write_text(
        f'{{"year": {year}, "holidays": [{{"name": "元旦", "start": "{year - 1}-12-31"}}],'
        f' "makeup_days": [{{"date": "{weekday}", "name": "元旦"}}]}}',
        encoding="utf-8",
    )
    with pytest.raises(SystemExit) as refused:
        await run("calendar", "load", str(bad))
    message = str(refused.value.code)
    assert f"holidays[0].start: {year - 1}-12-31 is not in {year}." in message
    assert f"makeup_days[0].date: {weekday} is a " in message
    async with pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM calendar_year WHERE year = $1", year) == 0
