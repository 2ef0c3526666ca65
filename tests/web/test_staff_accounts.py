"""Staff accounts outside the browser: the CLI, password storage, idle sessions."""

from __future__ import annotations

import asyncio
import json
import os
import stat
import subprocess
import sys
import uuid
from datetime import timedelta
from pathlib import Path

import asyncpg
import pytest

from app.settings import PROJECT_ROOT, Settings
from web.demo import DEMO_FILE, demo_staff_hook, ensure_demo_staff
from web.services import staff


def _cli(pg_url: str, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DATABASE_URL": pg_url, "ENVIRONMENT": "test"}
    return subprocess.run(
        [sys.executable, "-m", "app", "staff", *args],
        input=stdin,
        capture_output=True,
        text=True,
        cwd=PROJECT_ROOT,
        env=env,
        timeout=60,
        check=False,
    )


async def test_the_cli_creates_an_account_that_can_sign_in(pg_url: str, pool: asyncpg.Pool) -> None:
    username = f"cli-{uuid.uuid4().hex[:8]}"
    created = _cli(pg_url, "create", "--username", username, "--role", "viewer", "--name", "CLI viewer")
    assert created.returncode == 0, created.stderr
    password = created.stdout.split("store it now): ")[1].strip()
    account = await staff.sign_in(
        pool.acquire, username, password, max_failures=5, lockout=timedelta(minutes=1)
    )
    stored = await pool.fetchval("SELECT password_hash FROM staff_account WHERE id = $1", account.id)
    assert account.role == "viewer"
    assert stored.startswith("$argon2id$") and password not in stored

    typed = _cli(
        pg_url,
        "create",
        "--username",
        f"{username}-2",
        "--role",
        "operator",
        "--password-stdin",
        stdin="a password typed in\n",
    )
    assert typed.returncode == 0 and "password" not in typed.stdout, typed.stdout
    again = _cli(pg_url, "create", "--username", username, "--role", "admin")
    assert again.returncode != 0 and "taken" in again.stderr
    short = _cli(
        pg_url,
        "create",
        "--username",
        f"{username}-3",
        "--role",
        "admin",
        "--password-stdin",
        stdin="short\n",
    )
    assert short.returncode != 0 and "password" in short.stderr
    listed = _cli(pg_url, "list")
    assert username in listed.stdout and f"{username}-2" in listed.stdout


async def test_an_idle_session_is_over(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn:
        account = await staff.create_account(
            conn,
            username=f"idle-{uuid.uuid4().hex[:8]}",
            display_name="Idle",
            role="operator",
            password="x" * 12,
            created_by="tests",
        )
        token = await staff.open_session(conn, account.id)
        assert await staff.session(conn, token, idle_timeout=60) is not None
        await conn.execute(
            "UPDATE staff_session SET last_seen_at = now() - interval '61 seconds' WHERE staff_id = $1",
            account.id,
        )
        assert await staff.session(conn, token, idle_timeout=60) is None
        # Gone for good, not only refused this once.
        assert await staff.session(conn, token, idle_timeout=3600) is None


async def test_make_dev_keeps_one_demo_login_per_role(
    settings: Settings, pool: asyncpg.Pool, tmp_path: Path
) -> None:
    dev = settings.model_copy(update={"data_dir": tmp_path})
    lines = await asyncio.to_thread(
        demo_staff_hook, dev
    )  # the hook runs its own event loop, as in `make dev`
    saved = json.loads((tmp_path / DEMO_FILE).read_text())
    assert sorted(saved) == ["demo-admin", "demo-operator", "demo-viewer"]
    assert all(f"{name:<22} {password}" in "\n".join(lines) for name, password in saved.items())
    for name, password in saved.items():
        account = await staff.sign_in(
            pool.acquire, name, password, max_failures=5, lockout=timedelta(minutes=1)
        )
        assert account.role == name.removeprefix("demo-")

    await asyncio.to_thread(demo_staff_hook, dev)
    assert json.loads((tmp_path / DEMO_FILE).read_text()) == saved  # a restart keeps the logins
    (tmp_path / DEMO_FILE).unlink()
    await asyncio.to_thread(demo_staff_hook, dev)
    renewed = json.loads((tmp_path / DEMO_FILE).read_text())
    async with pool.acquire() as conn:
        assert await staff.password_matches(conn, "demo-operator", renewed["demo-operator"])


async def test_the_demo_logins_file_is_kept_private_and_a_failure_does_not_hang(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dev = settings.model_copy(update={"data_dir": tmp_path})
    await asyncio.to_thread(demo_staff_hook, dev)
    saved = tmp_path / DEMO_FILE
    saved.chmod(0o644)  # a copy, a restore, a generous umask
    before = saved.read_text()
    await asyncio.to_thread(demo_staff_hook, dev)
    assert stat.S_IMODE(saved.stat().st_mode) == 0o600
    assert saved.read_text() == before  # the same logins, only the mode tightened

    async def broken(*args: object) -> bool:
        raise RuntimeError("the database went away")

    # The connection goes back to the pool whatever happens: closing the pool waits for it.
    monkeypatch.setattr(staff, "reset_password", broken)
    saved.unlink()
    with pytest.raises(RuntimeError, match="went away"):
        await asyncio.wait_for(ensure_demo_staff(dev), timeout=30)
