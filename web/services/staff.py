"""Staff accounts: creation, passwords (argon2id), sign-in with lockout, sessions.

A sign-in, a failed one and a lockout are events in the account's own stream
(``staff:<id>`` in domain_event), so who signed in when, and every attack on an
account, stay in the audit trail with everything else.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import uuid
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import asyncpg

from api import textguard
from api.errors import Conflict, InvalidInput, field_error
from api.ids import new_id
from api.permissions import Role
from api.services import audit
from app.logging_setup import request_id_var
from domain import hidden_text
from web.repositories import staff as repo
from web.services.hashing import DEFAULT as DEFAULT_HASHING
from web.services.hashing import PasswordHashing

STAFF_ROLES = (Role.OPERATOR, Role.ADMIN, Role.VIEWER)
# Gives a pooled connection: ``pool.acquire`` or ``api.db.Context.connection``.
Connect = Callable[[], AbstractAsyncContextManager[asyncpg.Connection]]
USERNAME = re.compile(r"[a-z0-9][a-z0-9._-]{2,63}")
MIN_PASSWORD = 12

SIGNED_IN = "StaffSignedIn"
SIGN_IN_FAILED = "StaffSignInFailed"
LOCKED_OUT = "StaffLockedOut"
SIGNED_OUT = "StaffSignedOut"
ACCOUNT_CREATED = "StaffAccountCreated"

# Verified against when the username is unknown, so that the answer takes as long
# as for a real account and does not tell which usernames exist.
_DUMMY_HASH = DEFAULT_HASHING.hasher.hash(secrets.token_urlsafe(16))


@dataclass(frozen=True, slots=True)
class StaffAccount:
    id: str
    username: str
    display_name: str
    role: Role
    created_at: datetime
    locked_until: datetime | None
    disabled: bool


def _account(row: asyncpg.Record) -> StaffAccount:
    return StaffAccount(
        id=row["id"],
        username=row["username"],
        display_name=row["display_name"],
        role=Role(row["role"]),
        created_at=row["created_at"],
        locked_until=row["locked_until"],
        disabled=row["disabled_at"] is not None,
    )


def stream_of(staff_id: str) -> str:
    return f"staff:{staff_id}"


async def _record(
    conn: asyncpg.Connection,
    staff_id: str,
    event_type: str,
    actor: str,
    reason: str | None = None,
    **payload: object,
) -> None:
    await audit.append(
        conn,
        stream_id=stream_of(staff_id),
        event_id=str(uuid.uuid4()),
        event_type=event_type,
        actor=actor,
        actor_role="system" if actor == "system" else "staff",
        reason=reason,
        correlation_id=request_id_var.get() or str(uuid.uuid4()),
        payload=dict(payload),
        occurred_at=datetime.now(UTC),
    )


def check_new_account(username: str, display_name: str, role: str, password: str) -> list[dict[str, str]]:
    errors = []
    if not USERNAME.fullmatch(username):
        errors.append(
            field_error("username", "invalid_format", "3-64 lower-case letters, digits, '.', '_' or '-'.")
        )
    if not 1 <= len(display_name.strip()) <= 100:
        errors.append(field_error("display_name", "invalid_length", "1-100 characters."))
    elif textguard.is_unsafe(display_name):
        errors.append(field_error("display_name", "invalid_character", textguard.MESSAGE))
    elif hidden_text.has_hidden_characters(display_name):
        errors.append(field_error("display_name", "hidden_characters", hidden_text.MESSAGE))
    if role not in {r.value for r in STAFF_ROLES}:
        errors.append(field_error("role", "invalid_role", "One of operator, admin, viewer."))
    if len(password) < MIN_PASSWORD:
        errors.append(field_error("password", "too_short", f"At least {MIN_PASSWORD} characters."))
    return errors


async def create_account(
    conn: asyncpg.Connection,
    *,
    username: str,
    display_name: str,
    role: str,
    password: str,
    created_by: str,
    hashing: PasswordHashing = DEFAULT_HASHING,
) -> StaffAccount:
    username = username.strip().lower()
    errors = check_new_account(username, display_name, role, password)
    if errors:
        raise InvalidInput("The account has invalid fields", errors=errors)
    password_hash = await hashing.hash(password)  # before the transaction: no lock held meanwhile
    async with conn.transaction():
        row = await repo.insert_account(
            conn,
            staff_id=new_id("stf"),
            username=username,
            display_name=display_name.strip(),
            role=role,
            password_hash=password_hash,
            created_by=created_by,
        )
        if row is None:
            raise Conflict(f"The username {username!r} is taken", code="username_taken")
        await _record(conn, row["id"], ACCOUNT_CREATED, created_by, role=role, username=username)
    return _account(row)


async def list_accounts(conn: asyncpg.Connection) -> list[StaffAccount]:
    return [_account(r) for r in await repo.list_accounts(conn)]


async def password_matches(conn: asyncpg.Connection, username: str, password: str) -> bool:
    """Whether ``password`` is the account's (used by `make dev` to keep demo logins)."""
    row = await repo.by_username(conn, username.strip().lower())
    return row is not None and await DEFAULT_HASHING.verify(row["password_hash"], password)


async def reset_password(conn: asyncpg.Connection, username: str, password: str) -> bool:
    """Sets a new password (and lifts a lockout); False when there is no such account."""
    row = await repo.by_username(conn, username.strip().lower())
    if row is None:
        return False
    await repo.set_password(conn, row["id"], await DEFAULT_HASHING.hash(password))
    await repo.clear_failures(conn, row["id"])
    return True


class SignInRefused(Exception):
    """Wrong username or password, or the account is locked or disabled: the
    console says only that, whichever it was."""

    def __init__(self, locked_until: datetime | None = None) -> None:
        super().__init__("sign-in refused")
        self.locked_until = locked_until


async def sign_in(
    connect: Connect,
    username: str,
    password: str,
    *,
    max_failures: int,
    lockout: timedelta,
    hashing: PasswordHashing = DEFAULT_HASHING,
) -> StaffAccount:
    """The account, if ``password`` is its own and it is neither locked nor disabled.

    ``connect`` gives a connection (``pool.acquire``, ``Context.connection``): none
    is held while the password is checked, which may wait for a hashing slot."""
    username = username.strip().lower()
    row = None
    # No account has a name outside USERNAME (one with a NUL could not even be looked up).
    if USERNAME.fullmatch(username):
        async with connect() as conn:
            row = await repo.by_username(conn, username)
    if row is None:
        await hashing.verify(_DUMMY_HASH, password)
        raise SignInRefused()
    now = datetime.now(UTC)
    if row["locked_until"] is not None and row["locked_until"] > now:
        # Not verified at all while locked: guessing on cannot succeed, or even tell.
        async with connect() as conn:
            await _record(conn, row["id"], SIGN_IN_FAILED, "system", "locked")
        raise SignInRefused(row["locked_until"])
    if row["disabled_at"] is not None or not await hashing.verify(row["password_hash"], password):
        async with connect() as conn, conn.transaction():
            counted = await repo.record_failure(conn, row["id"], max_failures, now + lockout)
            await _record(conn, row["id"], SIGN_IN_FAILED, "system", "wrong password or disabled")
            if counted["locked_now"]:
                await _record(
                    conn,
                    row["id"],
                    LOCKED_OUT,
                    "system",
                    f"{max_failures} failed sign-ins in a row",
                    locked_until=counted["locked_until"].isoformat(),
                )
        raise SignInRefused(counted["locked_until"] if counted["locked_now"] else None)
    rehashed = await hashing.hash(password) if hashing.needs_rehash(row["password_hash"]) else None
    async with connect() as conn, conn.transaction():
        if rehashed is not None:
            await repo.set_password(conn, row["id"], rehashed)
        await repo.clear_failures(conn, row["id"])
        await _record(conn, row["id"], SIGNED_IN, f"staff:{row['id']}")
    return _account(row)


# --------------------------------------------------------------------------
# Sessions
# --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Session:
    staff_id: str
    username: str
    display_name: str
    role: Role
    csrf_token: str
    token_hash: bytes


def _hash(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


async def open_session(conn: asyncpg.Connection, staff_id: str) -> str:
    """A new session for the account; the cookie's token (only its hash is stored)."""
    token = secrets.token_urlsafe(32)
    await repo.insert_session(conn, _hash(token), staff_id, secrets.token_urlsafe(32))
    return token


async def session(conn: asyncpg.Connection, token: str, idle_timeout: float) -> Session | None:
    """The live session of ``token``: None when unknown, idle for too long (then
    it is deleted) or its account is disabled. Using it keeps it alive."""
    token_hash = _hash(token)
    row = await repo.session(conn, token_hash)
    if row is None:
        return None
    if row["idle_seconds"] > idle_timeout or row["disabled_at"] is not None:
        await repo.delete_session(conn, token_hash)
        return None
    if row["idle_seconds"] > 30:  # a write per request would be waste: a minute's precision is plenty
        await repo.touch_session(conn, token_hash)
    return Session(
        staff_id=row["staff_id"],
        username=row["username"],
        display_name=row["display_name"],
        role=Role(row["role"]),
        csrf_token=row["csrf_token"],
        token_hash=token_hash,
    )


async def close_session(conn: asyncpg.Connection, token: str) -> None:
    token_hash = _hash(token)
    row = await repo.session(conn, token_hash)
    await repo.delete_session(conn, token_hash)
    if row is not None:
        await _record(conn, row["staff_id"], SIGNED_OUT, f"staff:{row['staff_id']}")
