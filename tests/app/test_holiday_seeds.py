"""The seed holiday schedules (domain/data/holidays/) are chinese-calendar's data,
transcribed as `python -m app calendar load` reads it, and each passes the
loader's checks."""

from __future__ import annotations

from app import holiday_seeds
from app.settings import PROJECT_ROOT


def test_the_seed_files_are_what_chinese_calendar_says() -> None:
    generated = holiday_seeds.library_schedules()
    assert set(generated) == set(range(2004, 2027))
    files = holiday_seeds.seed_files()
    assert [p.stem for p in files] == [str(y) for y in sorted(generated)]
    for path in files:
        assert path.read_text(encoding="utf-8") == generated[int(path.stem)], path


def test_every_seed_passes_the_loaders_checks() -> None:
    for path in holiday_seeds.seed_files():
        schedule = holiday_seeds.read_seed(path)  # raises on any problem the loader's checks find
        assert schedule.year == int(path.stem)
        assert "chinese-calendar" in (schedule.source or "")


def test_the_migration_seeds_the_files() -> None:
    """The migration's INSERTs are what `--sql` prints from the files."""
    migration = next(PROJECT_ROOT.glob("migrations/*_calendar.sql")).read_text(encoding="utf-8")
    sql = holiday_seeds.seed_sql(holiday_seeds.read_seed(p) for p in holiday_seeds.seed_files())
    assert sql in migration
