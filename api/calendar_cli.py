"""`python -m app calendar load|show|status|recompute`: the working-day calendar from a shell.

    python -m app calendar load 2027.yaml     # the year's official schedule (JSON or YAML)
    python -m app calendar show 2027          # as loaded, in the file's format
    python -m app calendar status             # which year is missing
    python -m app calendar recompute 2027     # start the recompute again (after a load that could not)

A load is checked (every problem named with its date), stored in one
transaction as the calendar's next version, and followed by the recompute of
the deadlines it may move, exactly as ``PUT /v1/calendar/{year}`` does
(docs/calendar.md). Needs DATABASE_URL, and TEMPORAL_ADDRESS for the recompute.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
import yaml

from activities.calendar import CalendarStore
from activities.repositories import calendar as repo
from api.errors import ApiError, exit_with, run_cli_action
from api.schemas.calendar import CalendarLoad, RecomputeStarted
from api.services import calendar
from app.settings import Settings

T = TypeVar("T")


def add_calendar_commands(sub: Any) -> None:
    parser = sub.add_parser("calendar", help="load and show the official holiday schedules")
    actions = parser.add_subparsers(dest="calendar_command", required=True)

    load = actions.add_parser("load", help="load a year's official holiday schedule (YAML or JSON)")
    load.add_argument("file", type=Path, help="the schedule: .json for JSON, anything else is read as YAML")
    load.add_argument("--year", type=int, help="the year, when the file does not say")
    load.add_argument(
        "--expected-version",
        type=int,
        help="refuse the load unless the year is at this version (0: never loaded), as If-Match does",
    )
    load.add_argument("--loaded-by", default=None, help="who loads it (default: the shell's user)")
    load.add_argument("--json", action="store_true", help="print the answer as JSON")
    load.set_defaults(handler=_load)

    show = actions.add_parser("show", help="print a year's schedule in the file format")
    show.add_argument("year", type=int)
    show.set_defaults(handler=_show)

    status = actions.add_parser("status", help="which year's schedule is missing")
    status.set_defaults(handler=_status)

    recompute = actions.add_parser("recompute", help="start the recompute after the year's last load again")
    recompute.add_argument("year", type=int)
    recompute.set_defaults(handler=_recompute)


def _run(settings: Settings, action: Callable[[asyncpg.Connection], Awaitable[T]]) -> T:
    return run_cli_action(settings, "calendar", action)


def _temporal_address(settings: Settings) -> str:
    """TEMPORAL_ADDRESS, or in development the Temporal server of a running
    `python -m app dev`, found on its port (as the database is: app.db.cli_database_url)."""
    if settings.temporal_address or settings.environment != "development":
        return settings.temporal_address
    from app.embedded import port_open

    if port_open("127.0.0.1", settings.embedded_temporal_port):
        return f"127.0.0.1:{settings.embedded_temporal_port}"
    return ""


async def _start(settings: Settings, year: int, version: int) -> RecomputeStarted:
    from app.temporal import connect

    address = _temporal_address(settings)
    if not address:
        return RecomputeStarted(
            workflow_id="", started=False, detail="TEMPORAL_ADDRESS is not set: no recompute was started"
        )
    try:
        client = await asyncio.wait_for(connect(settings, address), 15)
    except Exception as exc:  # noqa: BLE001 - the load stands; say what is left to do
        return RecomputeStarted(workflow_id="", started=False, detail=f"Temporal not reachable ({exc})")
    return await calendar.start_recompute(client, settings.temporal_task_queue, year, version)


def _load(args: argparse.Namespace, settings: Settings) -> int:
    path: Path = args.file
    try:
        raw = path.read_bytes()
    except OSError as exc:
        sys.exit(f"calendar: cannot read {path}: {exc.strerror}")
    media = calendar.JSON if path.suffix.lower() == ".json" else calendar.YAML_TYPES[0]
    try:
        schedule = calendar.parse_schedule(raw, media)
    except ApiError as exc:
        exit_with("calendar", exc)
    year = args.year or schedule.year
    if year is None:
        sys.exit(f"calendar: {path} does not say which year it is for: give --year")
    loaded_by = args.loaded_by or f"cli:{_user()}"
    loaded = _run(
        settings,
        lambda conn: calendar.load(
            conn, year, schedule, loaded_by=loaded_by, expected_version=args.expected_version
        ),
    )
    started = asyncio.run(_start(settings, year, loaded.version))
    answer = calendar.load_answer(year, loaded, started)
    if args.json:
        print(answer.model_dump_json(indent=2))
    else:
        _print_load(answer)
    return _print_started(started)


def _user() -> str:
    try:
        return getpass.getuser()
    except (OSError, KeyError):
        return "unknown"


def _show(args: argparse.Namespace, settings: Settings) -> int:
    view = _run(settings, lambda conn: calendar.year_view(conn, args.year))
    if not view.official:
        print(f"# {args.year}: no official schedule loaded; deadlines across it are provisional")
        return 1
    print(f"# version {view.version}, loaded by {view.loaded_by} at {view.loaded_at:%Y-%m-%d %H:%M %Z}")
    document = {
        "year": view.year,
        "source": view.source,
        "holidays": [h.model_dump(mode="json") for h in view.holidays],
        "makeup_days": [m.model_dump(mode="json") for m in view.makeup_days],
    }
    print(yaml.safe_dump(document, allow_unicode=True, sort_keys=False), end="")
    return 0


def _status(args: argparse.Namespace, settings: Settings) -> int:
    found = _run(settings, lambda conn: calendar.status(conn, CalendarStore()))
    print(f"today (China): {found.today}; calendar version {found.version}")
    years = found.official_years
    print(
        f"official schedules: {years[0]}-{years[-1]} ({len(years)} years)"
        if years
        else "no official schedule"
    )
    if found.missing:
        print(found.detail)
        return 1
    return 0


def _recompute(args: argparse.Namespace, settings: Settings) -> int:
    record = _run(settings, lambda conn: repo.year_record(conn, args.year))
    if record is None:
        sys.exit(f"calendar: no schedule of {args.year} is loaded")
    started = asyncio.run(_start(settings, args.year, record["version"]))
    return _print_started(started)


def _print_started(started: RecomputeStarted) -> int:
    if started.started:
        print(f"recompute started: {started.workflow_id}")
        return 0
    print(f"recompute NOT started: {started.detail}", file=sys.stderr)
    return 1


def _print_load(answer: CalendarLoad) -> None:
    before = f" (was version {answer.previous_version})" if answer.previous_version else " (first load)"
    print(f"loaded {answer.year} as calendar version {answer.version}{before}")
    for label, changes in (("added", answer.added), ("removed", answer.removed), ("changed", answer.changed)):
        for c in changes:
            was = f"{c.before.kind} {c.before.name}" if c.before else "-"
            now = f"{c.after.kind} {c.after.name}" if c.after else "-"
            print(f"  {label:<8} {c.date}  {was} -> {now}")
    print(f"deadlines to recompute: {answer.deadlines_to_recompute}")
