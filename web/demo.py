"""Demo console accounts for `make dev`: one per role, the same across restarts.

Like the demo API keys (api/demo.py), the plaintext passwords live in
``<data dir>/demo-staff.json`` (mode 0600, outside the repository); an account
whose saved password no longer works (a wiped database, a deleted file) is
created again, or given a new password.
"""

from __future__ import annotations

import asyncio

from api.demo import load_saved, save_private
from app.db import create_pool
from app.settings import Settings
from web.cli import new_password
from web.services import staff

DEMO_FILE = "demo-staff.json"


def demo_username(role: str) -> str:
    return f"demo-{role}"


async def ensure_demo_staff(settings: Settings) -> dict[str, str]:
    """Username -> password of a working demo account per staff role."""
    path = settings.data_dir / DEMO_FILE
    passwords = load_saved(path)
    changed = False
    pool = await create_pool(settings.database_url, min_size=1, max_size=1)
    try:
        # Given back however the block ends: closing the pool waits for every connection.
        async with pool.acquire() as conn:
            for role in staff.STAFF_ROLES:
                username = demo_username(role.value)
                known = passwords.get(username)
                if known and await staff.password_matches(conn, username, known):
                    continue
                password = new_password()
                if not await staff.reset_password(conn, username, password):
                    await staff.create_account(
                        conn,
                        username=username,
                        display_name=f"Demo {role.value}",
                        role=role.value,
                        password=password,
                        created_by="dev-bootstrap",
                    )
                passwords[username] = password
                changed = True
    finally:
        await pool.close()
    # Rewritten 0600 also when only its mode was too open (a copy, a restore, a umask).
    if changed or path.stat().st_mode & 0o077:
        save_private(path, passwords)
    return passwords


def demo_staff_hook(settings: Settings) -> list[str]:
    """Bootstrap hook for app.dev: the demo console logins, printed beside the API keys."""
    passwords = asyncio.run(ensure_demo_staff(settings))
    base = f"http://{settings.api_host}:{settings.api_port}/console/"
    lines = ["", f"  Operator console {base}  (logins kept in {settings.data_dir / DEMO_FILE}):"]
    for username, password in sorted(passwords.items()):
        lines.append(f"    {username:<22} {password}")
    return lines
