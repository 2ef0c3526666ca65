"""The seed holiday schedules: one file per year in ``domain/data/holidays/``.

    .venv/bin/python -m app.holiday_seeds            # rewrite the files from chinese-calendar
    .venv/bin/python -m app.holiday_seeds --check    # exit 1 if a file differs from it
    .venv/bin/python -m app.holiday_seeds --sql      # print the migration's seed INSERTs

The files were generated once from ``chinese-calendar`` (a development
dependency only: nothing at run time reads it) and are in the format
``python -m app calendar load`` takes, so that every year, seeded or loaded,
comes the same way. The migration ``*_calendar.sql`` holds the same days as
SQL (``--sql``); tests/activities/test_calendar_deadlines.py
(test_the_database_holds_the_seed_files) checks that the database and the files agree.

Holiday days that follow each other make one range, named as the notice names
it (2025's National Day and Mid-Autumn Festival: ``国庆节、中秋节``, 10-01..10-08).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable
from datetime import date
from pathlib import Path

import yaml

from app.settings import PROJECT_ROOT
from domain.holiday_schedule import CalendarDay, YearSchedule, check_schedule, days_of

SEEDS = PROJECT_ROOT / "domain" / "data" / "holidays"

# The names the notices use for chinese-calendar's holidays.
CHINESE_NAMES = {
    "New Year's Day": "元旦",
    "Spring Festival": "春节",
    "Tomb-sweeping Day": "清明节",
    "Labour Day": "劳动节",
    "Dragon Boat Festival": "端午节",
    "Mid-autumn Festival": "中秋节",
    "National Day": "国庆节",
    "Anti-Fascist 70th Day": "中国人民抗日战争暨世界反法西斯战争胜利70周年纪念日",
}


def seed_files() -> list[Path]:
    return sorted(SEEDS.glob("*.yaml"))


def read_seed(path: Path) -> YearSchedule:
    schedule = YearSchedule.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")))
    assert schedule.year is not None, path
    problems = check_schedule(schedule, schedule.year)
    if problems:
        raise ValueError(f"{path}: {problems}")
    return schedule


def library_schedules() -> dict[int, str]:
    """Every year chinese-calendar knows, as the text of its seed file."""
    try:
        import chinese_calendar
        from chinese_calendar import constants
    except ImportError:  # pragma: no cover - a development dependency
        sys.exit("needs chinese-calendar: `make install` installs it with the development tools")
    version = chinese_calendar.__version__
    by_year: dict[int, tuple[dict[date, str], dict[date, str]]] = {}
    for day, name in constants.holidays.items():
        by_year.setdefault(day.year, ({}, {}))[0][day] = CHINESE_NAMES[name]
    for day, name in constants.workdays.items():
        by_year.setdefault(day.year, ({}, {}))[1][day] = CHINESE_NAMES[name]
    return {year: _file_text(year, off, worked, version) for year, (off, worked) in sorted(by_year.items())}


def _file_text(year: int, off: dict[date, str], worked: dict[date, str], version: str) -> str:
    ranges: list[tuple[list[str], date, date]] = []
    for day in sorted(off):
        if ranges and (day - ranges[-1][2]).days == 1:
            names, start, _ = ranges[-1]
            ranges[-1] = (names if off[day] in names else [*names, off[day]], start, day)
        else:
            ranges.append(([off[day]], day, day))
    lines = [
        f"# The official holiday schedule of {year} (放假安排), as the State Council published it.",
        f"# Generated from chinese-calendar {version} by `python -m app.holiday_seeds`;",
        "# the format `python -m app calendar load FILE` takes (docs/calendar.md).",
        f"year: {year}",
        f"source: 国务院办公厅关于{year}年部分节假日安排的通知 "
        f"(as transcribed in chinese-calendar {version})",
        "holidays:",
        *(
            f"  - {{name: {'、'.join(n)}, start: {s.isoformat()}, end: {e.isoformat()}}}"
            for n, s, e in ranges
        ),
    ]
    if worked:
        lines.append("makeup_days:")
        lines += [f"  - {{date: {d.isoformat()}, name: {worked[d]}}}" for d in sorted(worked)]
    else:
        lines.append("makeup_days: []")
    return "\n".join(lines) + "\n"


def seed_sql(schedules: Iterable[YearSchedule]) -> str:
    """The INSERTs that seed the calendar tables with ``schedules`` at version 1."""
    years: list[str] = []
    days: list[str] = []
    for schedule in schedules:
        assert schedule.year is not None
        years.append(f"    ({schedule.year}, 1, {_literal(schedule.source or '')}, 'migration')")
        for d in sorted(days_of(schedule).values(), key=lambda d: d.day):
            days.append(f"    ('{d.day.isoformat()}', {d.day.year}, '{d.kind.value}', {_literal(d.name)})")
    return (
        "INSERT INTO calendar_year (year, version, source, loaded_by) VALUES\n"
        + ",\n".join(years)
        + ";\n\nINSERT INTO calendar_day (day, year, kind, name) VALUES\n"
        + ",\n".join(days)
        + ";\n"
    )


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def stored_days(schedule: YearSchedule) -> list[CalendarDay]:
    return sorted(days_of(schedule).values(), key=lambda d: d.day)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m app.holiday_seeds", description=__doc__.split("\n\n")[0])
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--check", action="store_true", help="compare the files with chinese-calendar")
    mode.add_argument("--sql", action="store_true", help="print the seed INSERTs of the files")
    args = parser.parse_args(argv)
    if args.sql:
        print(seed_sql(read_seed(p) for p in seed_files()), end="")
        return 0
    generated = library_schedules()
    if args.check:
        stale = [y for y, text in generated.items() if _read(SEEDS / f"{y}.yaml") != text]
        for year in stale:
            print(f"{SEEDS / f'{year}.yaml'} differs from chinese-calendar")
        return 1 if stale else 0
    SEEDS.mkdir(parents=True, exist_ok=True)
    for year, text in generated.items():
        (SEEDS / f"{year}.yaml").write_text(text, encoding="utf-8")
        read_seed(SEEDS / f"{year}.yaml")  # every file written passes the loader's checks
    print(f"wrote {len(generated)} files to {SEEDS}")
    return 0


def _read(path: Path) -> str | None:
    return path.read_text(encoding="utf-8") if path.exists() else None


if __name__ == "__main__":
    sys.exit(main())
