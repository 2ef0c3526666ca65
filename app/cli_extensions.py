"""Commands added by feature packages (number import, API keys, ...).

Each feature contributes one function that adds its sub-commands to the parser and
binds each to a handler with ``parser.set_defaults(handler=...)``; ``run`` calls
whichever handler the parsed command carries. A feature therefore touches this
file only to list its function in ``_features``.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from app.settings import Settings

# A handler gets the parsed arguments and the settings, and returns the exit code.
Handler = Callable[[argparse.Namespace, Settings], int]


def _features() -> list[Callable[[Any], None]]:
    # Imported here so `python -m app dev` does not pay for every feature's imports.
    from activities.carrier_cli import add_fake_carrier_commands
    from activities.inventory_cli import add_number_commands
    from api.calendar_cli import add_calendar_commands
    from api.cli import add_apikey_commands
    from web.cli import add_staff_commands

    return [
        add_apikey_commands,
        add_number_commands,
        add_fake_carrier_commands,
        add_staff_commands,
        add_calendar_commands,
    ]


def add_commands(sub: Any) -> None:
    """Register extra sub-commands on the `python -m app` parser."""
    for add in _features():
        add(sub)


def run(args: argparse.Namespace, settings: Settings) -> int:
    handler: Handler | None = getattr(args, "handler", None)
    if handler is None:
        raise SystemExit(f"unknown command {args.command!r}")
    return handler(args, settings)
