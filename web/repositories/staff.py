"""SQL for staff accounts and their console sessions."""

from __future__ import annotations

from datetime import datetime

import asyncpg

_ACCOUNT = """id, username, display_name, role, password_hash, created_by, created_at, disabled_at,
    failed_attempts, locked_until"""


async def insert_account(
    conn: asyncpg.Connection,
    *,
    staff_id: str,
    username: str,
    display_name: str,
    role: str,
    password_hash: str,
    created_by: str,
) -> asyncpg.Record | None:
    """The new account, or None when the username is taken."""
    row: asyncpg.Record | None = await conn.fetchrow(
        f"""INSERT INTO staff_account (id, username, display_name, role, password_hash, created_by)
            VALUES ($1, $2, $3, $4, $5, $6)
            ON CONFLICT (username) DO NOTHING
            RETURNING {_ACCOUNT}""",
        staff_id,
        username,
        display_name,
        role,
        password_hash,
        created_by,
    )
    return row


async def by_username(conn: asyncpg.Connection, username: str) -> asyncpg.Record | None:
    row: asyncpg.Record | None = await conn.fetchrow(
        f"SELECT {_ACCOUNT} FROM staff_account WHERE username = $1", username
    )
    return row


async def by_id(conn: asyncpg.Connection, staff_id: str) -> asyncpg.Record | None:
    row: asyncpg.Record | None = await conn.fetchrow(
        f"SELECT {_ACCOUNT} FROM staff_account WHERE id = $1", staff_id
    )
    return row


async def list_accounts(conn: asyncpg.Connection) -> list[asyncpg.Record]:
    rows: list[asyncpg.Record] = await conn.fetch(f"SELECT {_ACCOUNT} FROM staff_account ORDER BY username")
    return rows


async def set_password(conn: asyncpg.Connection, staff_id: str, password_hash: str) -> None:
    await conn.execute("UPDATE staff_account SET password_hash = $2 WHERE id = $1", staff_id, password_hash)


async def record_failure(
    conn: asyncpg.Connection, staff_id: str, max_failures: int, lock_until: datetime
) -> asyncpg.Record:
    """Counts a failed sign-in; the count that reaches ``max_failures`` locks the
    account until ``lock_until`` and starts the count again. Returns
    (failed_attempts, locked_until, locked_now)."""
    row: asyncpg.Record = await conn.fetchrow(
        """UPDATE staff_account SET
               failed_attempts = CASE WHEN failed_attempts + 1 >= $2 THEN 0 ELSE failed_attempts + 1 END,
               locked_until = CASE WHEN failed_attempts + 1 >= $2 THEN $3 ELSE locked_until END
           WHERE id = $1
           RETURNING failed_attempts, locked_until, (locked_until = $3) AS locked_now""",
        staff_id,
        max_failures,
        lock_until,
    )
    return row


async def clear_failures(conn: asyncpg.Connection, staff_id: str) -> None:
    await conn.execute(
        "UPDATE staff_account SET failed_attempts = 0, locked_until = NULL WHERE id = $1", staff_id
    )


async def insert_session(conn: asyncpg.Connection, token_hash: bytes, staff_id: str, csrf_token: str) -> None:
    await conn.execute(
        "INSERT INTO staff_session (token_hash, staff_id, csrf_token) VALUES ($1, $2, $3)",
        token_hash,
        staff_id,
        csrf_token,
    )


async def session(conn: asyncpg.Connection, token_hash: bytes) -> asyncpg.Record | None:
    """The session with its account, and how many seconds it has been idle (by the database's clock)."""
    row: asyncpg.Record | None = await conn.fetchrow(
        """SELECT s.staff_id, s.csrf_token,
                  extract(epoch FROM now() - s.last_seen_at)::float8 AS idle_seconds,
                  a.username, a.display_name, a.role, a.disabled_at
           FROM staff_session s JOIN staff_account a ON a.id = s.staff_id
           WHERE s.token_hash = $1""",
        token_hash,
    )
    return row


async def touch_session(conn: asyncpg.Connection, token_hash: bytes) -> None:
    await conn.execute("UPDATE staff_session SET last_seen_at = now() WHERE token_hash = $1", token_hash)


async def delete_session(conn: asyncpg.Connection, token_hash: bytes) -> None:
    await conn.execute("DELETE FROM staff_session WHERE token_hash = $1", token_hash)


async def delete_idle_sessions(conn: asyncpg.Connection, idle_seconds: float) -> int:
    result: str = await conn.execute(
        "DELETE FROM staff_session WHERE last_seen_at < now() - make_interval(secs => $1)", idle_seconds
    )
    return int(result.rsplit(maxsplit=1)[-1])
