"""`python -m app apikey create|revoke|list`: manage API keys from a shell.

The token is printed once, on creation; only its hash is stored.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import asyncpg

from api.auth import Role
from api.errors import run_cli_action
from api.services import keys
from app.settings import Settings

T = TypeVar("T")


def add_apikey_commands(sub: Any) -> None:
    parser = sub.add_parser("apikey", help="create, revoke and list API keys")
    actions = parser.add_subparsers(dest="apikey_command", required=True)

    create = actions.add_parser("create", help="create a key and print its token (shown once)")
    create.add_argument("--role", required=True, choices=[r.value for r in Role])
    create.add_argument("--organisation", "--org", dest="organisation", help="required for --role applicant")
    create.add_argument("--name", required=True, help="what the key is for, e.g. 'Acme ERP integration'")
    expiry = create.add_mutually_exclusive_group()
    expiry.add_argument(
        "--expires-at",
        type=_aware_datetime,
        help="when the key stops working, ISO 8601 with offset (e.g. 2027-06-30T00:00:00+08:00)",
    )
    expiry.add_argument("--expires-in-days", type=_days, help="the key stops working this many days from now")
    create.add_argument("--json", action="store_true", help="print the key as JSON")
    create.set_defaults(handler=_create)

    revoke = actions.add_parser("revoke", help="revoke a key by its id (the part after h400_)")
    revoke.add_argument("key_id")
    revoke.set_defaults(handler=_revoke)

    listing = actions.add_parser("list", help="list keys (never their tokens)")
    listing.add_argument("--all", action="store_true", help="include revoked keys")
    listing.add_argument("--organisation", "--org", dest="organisation")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(handler=_list)


def _aware_datetime(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 date-time: {text!r}") from None
    if value.utcoffset() is None:
        raise argparse.ArgumentTypeError("give the UTC offset too, e.g. 2027-06-30T00:00:00+08:00")
    return value


def _days(text: str) -> timedelta:
    try:
        days = int(text)
    except ValueError:
        days = 0
    if days < 1:
        raise argparse.ArgumentTypeError(f"a whole number of days, 1 or more: {text!r}")
    return timedelta(days=days)


def _run(settings: Settings, action: Callable[[asyncpg.Connection], Awaitable[T]]) -> T:
    return run_cli_action(settings, "apikey", action)


def _create(args: argparse.Namespace, settings: Settings) -> int:
    expires_at = args.expires_at
    if args.expires_in_days is not None:
        expires_at = datetime.now(UTC) + args.expires_in_days
    created = _run(
        settings,
        lambda conn: keys.create_key(
            conn,
            settings.api_key_pepper,
            role=Role(args.role),
            organisation_id=args.organisation,
            name=args.name,
            created_by="cli",
            expires_at=expires_at,
        ),
    )
    if args.json:
        print(created.model_dump_json(indent=2))
    else:
        org = f" for {created.organisation_id}" if created.organisation_id else ""
        until = f", expires {created.expires_at:%Y-%m-%d %H:%M %Z}" if created.expires_at else ""
        print(f"created {created.role} key {created.id}{org}{until}")
        print(f"token (shown once, store it now): {created.token}")
    return 0


def _revoke(args: argparse.Namespace, settings: Settings) -> int:
    revoked = _run(settings, lambda conn: keys.revoke_key(conn, args.key_id))
    print(f"revoked {revoked.id} at {revoked.revoked_at:%Y-%m-%d %H:%M:%S %Z}")
    return 0


def _list(args: argparse.Namespace, settings: Settings) -> int:
    items = _run(
        settings,
        lambda conn: keys.list_keys(conn, include_revoked=args.all, organisation_id=args.organisation),
    )
    if args.json:
        print(json.dumps([k.model_dump(mode="json") for k in items], indent=2))
        return 0
    for k in items:
        if k.revoked_at:
            state = f"revoked {k.revoked_at:%Y-%m-%d}"
        elif k.expires_at and k.expires_at <= datetime.now(UTC):
            state = f"expired {k.expires_at:%Y-%m-%d}"
        elif k.expires_at:
            state = f"until {k.expires_at:%Y-%m-%d}"
        else:
            state = "active"
        print(f"{k.id}  {k.role:<9}  {k.organisation_id or '-':<20}  {state:<18}  {k.name}")
    if not items:
        print("no keys")
    return 0
