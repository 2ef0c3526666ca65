"""`python -m app staff create|list`: console accounts from a shell.

The password is read from standard input (``--password-stdin``) or generated
and printed once; only its argon2 hash is stored.
"""

from __future__ import annotations

import argparse
import secrets
import sys
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import asyncpg

from api.errors import run_cli_action
from app.settings import Settings
from web.services import staff

T = TypeVar("T")


def add_staff_commands(sub: Any) -> None:
    parser = sub.add_parser("staff", help="create and list operator console accounts")
    actions = parser.add_subparsers(dest="staff_command", required=True)

    create = actions.add_parser("create", help="create a console account")
    create.add_argument("--username", required=True, help="3-64 lower-case letters, digits, '.', '_' or '-'")
    create.add_argument("--role", required=True, choices=[r.value for r in staff.STAFF_ROLES])
    create.add_argument(
        "--name", dest="display_name", help="the name the console shows (default: the username)"
    )
    create.add_argument(
        "--password-stdin",
        action="store_true",
        help="read the password from standard input (else one is generated)",
    )
    create.set_defaults(handler=_create)

    listing = actions.add_parser("list", help="list console accounts")
    listing.set_defaults(handler=_list)


def _run(settings: Settings, action: Callable[[asyncpg.Connection], Awaitable[T]]) -> T:
    return run_cli_action(settings, "staff", action)


def new_password() -> str:
    return secrets.token_urlsafe(15)  # 20 characters, 120 random bits


def _create(args: argparse.Namespace, settings: Settings) -> int:
    generated = not args.password_stdin
    password = new_password() if generated else sys.stdin.readline().rstrip("\n")
    account = _run(
        settings,
        lambda conn: staff.create_account(
            conn,
            username=args.username,
            display_name=args.display_name or args.username,
            role=args.role,
            password=password,
            created_by="cli",
        ),
    )
    print(f"created {account.role} account {account.username} ({account.id})")
    if generated:
        print(f"password (shown once, store it now): {password}")
    return 0


def _list(args: argparse.Namespace, settings: Settings) -> int:
    accounts = _run(settings, staff.list_accounts)
    for a in accounts:
        locked = f"locked until {a.locked_until:%Y-%m-%d %H:%M}" if a.locked_until else ""
        print(f"{a.username:<24} {a.role:<9} {a.display_name:<24} {locked}")
    if not accounts:
        print("no accounts")
    return 0
