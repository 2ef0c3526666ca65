"""Entry points: `python -m app <command>`.

dev      the whole system on embedded defaults (PostgreSQL, Temporal, worker, API)
api      the HTTP API alone, against DATABASE_URL and TEMPORAL_ADDRESS
worker   the Temporal worker alone
migrate  apply database migrations (dbmate up)
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from app.logging_setup import configure_logging
from app.settings import DevelopmentSettings, Settings, get_settings

# Commands for a developer's machine, which alone default to ENVIRONMENT=development;
# every other one (api, worker, migrate, apikey, numbers) defaults to production.
DEVELOPMENT_COMMANDS = frozenset({"dev", "fake-carrier"})


def _require_servers(settings: Settings, command: str) -> None:
    missing = [
        n
        for n, v in (("DATABASE_URL", settings.database_url), ("TEMPORAL_ADDRESS", settings.temporal_address))
        if not v
    ]
    if missing:
        # Checked here, not in the settings: a database-only tool (staff, numbers,
        # apikey) needs no Temporal address.
        sys.exit(
            f"{command}: set {' and '.join(missing)} (or use `make dev` for embedded servers; "
            "ENVIRONMENT=development runs a part beside it)"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m app", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("dev", help="start everything on embedded defaults")
    sub.add_parser("api", help="run the HTTP API (uvicorn)")
    sub.add_parser("worker", help="run the Temporal worker")
    sub.add_parser("migrate", help="apply database migrations")
    from app import cli_extensions

    cli_extensions.add_commands(sub)
    args = parser.parse_args(argv)

    try:
        settings = DevelopmentSettings() if args.command in DEVELOPMENT_COMMANDS else get_settings()
    except Exception as exc:  # noqa: BLE001 - settings errors are the user's to fix, say which
        sys.exit(f"invalid settings: {exc}")
    configure_logging(settings.effective_log_format, settings.log_level)

    if args.command == "dev":
        from app.dev import run_dev

        return run_dev(settings)
    if args.command == "api":
        _require_servers(settings, "api")
        import uvicorn

        from api.main import create_app

        uvicorn.run(create_app(settings), host=settings.api_host, port=settings.api_port, log_config=None)
        return 0
    if args.command == "worker":
        _require_servers(settings, "worker")
        from app.worker import run_worker

        asyncio.run(run_worker(settings))
        return 0
    if args.command == "migrate":
        if not settings.database_url:
            sys.exit("migrate: set DATABASE_URL")
        from app.db import migrate

        print(migrate(settings.database_url), end="")
        return 0
    return cli_extensions.run(args, settings)


if __name__ == "__main__":
    sys.exit(main())
