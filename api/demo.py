"""Demo API keys for `make dev`: one per role, the same ones across restarts.

Tokens are only ever stored hashed in the database, so the dev stack keeps the
plaintext of its demo keys in ``<data dir>/demo-keys.json`` (mode 0600, outside
the repository) and re-creates any that no longer work (deleted file, revoked
key, a wiped database, a changed pepper).
"""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

import asyncpg

from api.auth import Role
from api.services import keys
from app.settings import Settings

DEMO_ORGANISATION = "org_demo"
DEMO_FILE = "demo-keys.json"


def load_saved(path: Path) -> dict[str, str]:
    """The name -> secret pairs saved in ``path`` (empty if missing or unreadable)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict):
        return {}
    return {str(k): str(v) for k, v in data.items() if isinstance(v, str)}


def save_private(path: Path, tokens: dict[str, str]) -> None:
    """Saves name -> secret pairs readable by their owner only (mode 0600)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    # Created 0600 from the start, never world-readable even for an instant.
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(tokens, fh, indent=2)
    os.chmod(tmp, 0o600)
    tmp.replace(path)


async def ensure_demo_keys(settings: Settings) -> dict[str, str]:
    """Role -> token for a working demo key of each role, creating what is missing."""
    path = settings.data_dir / DEMO_FILE
    tokens = load_saved(path)
    changed = False
    conn = await asyncpg.connect(settings.database_url)
    try:
        for role in Role:
            token = tokens.get(role.value)
            if token and await keys.token_is_valid(conn, settings.api_key_pepper, token):
                continue
            created = await keys.create_key(
                conn,
                settings.api_key_pepper,
                role=role,
                organisation_id=DEMO_ORGANISATION if role is Role.APPLICANT else None,
                name=f"demo {role.value} (make dev)",
                created_by="dev-bootstrap",
            )
            tokens[role.value] = created.token
            changed = True
    finally:
        await conn.close()
    if changed or path.stat().st_mode & 0o077:
        save_private(path, {r.value: tokens[r.value] for r in Role})
    return tokens


def demo_keys_hook(settings: Settings) -> list[str]:
    """Bootstrap hook for app.dev: makes sure the demo keys exist and prints them."""
    tokens = asyncio.run(ensure_demo_keys(settings))
    lines = ["", f"  Demo API keys (kept in {settings.data_dir / DEMO_FILE}):"]
    for role in Role:
        scope = f" ({DEMO_ORGANISATION})" if role is Role.APPLICANT else ""
        lines.append(f"    {role.value + scope:<22} {tokens[role.value]}")
    lines.append('    use as: curl -H "Authorization: Bearer <key>" .../v1/...')
    return lines
