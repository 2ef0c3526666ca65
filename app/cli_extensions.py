"""Commands added by feature packages (number import, API keys, ...)."""

from __future__ import annotations

import argparse
from typing import Any

from app.settings import Settings


def add_commands(sub: Any) -> None:
    """Register extra sub-commands on the `python -m app` parser."""


def run(args: argparse.Namespace, settings: Settings) -> int:
    raise SystemExit(f"unknown command {args.command!r}")
