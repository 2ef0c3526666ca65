"""Console settings, read from ``CONSOLE_*`` environment variables."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from web.services.hashing import default_slots


class ConsoleSettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="CONSOLE_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    # A session unused for this long is over; the next request signs in again.
    idle_timeout_seconds: float = Field(default=30 * 60, gt=0)
    # Failed sign-ins in a row that lock an account, and for how long.
    max_failed_sign_ins: int = Field(default=5, ge=1)
    lockout_seconds: float = Field(default=15 * 60, gt=0)
    # Sign-in attempts one client address may make per minute, whatever the username
    # (unknown usernames have no account to lock).
    sign_ins_per_minute: int = Field(default=20, ge=1)
    # Passwords hashed or checked at once (argon2id: CPU and 64 MiB each, in worker
    # threads), and how long a sign-in waits for a turn before it is told to retry (429).
    password_hashing_slots: int = Field(default_factory=default_slots, ge=1)  # half the CPUs
    password_hashing_wait_seconds: float = Field(default=5.0, gt=0)
    # Live-update streams (/console/live, one per open page) one session may hold at once.
    live_streams_per_session: int = Field(default=8, ge=1)
    # Secure cookies need HTTPS; only development serves the console over plain HTTP.
    # None: Secure everywhere but ENVIRONMENT=development.
    cookie_secure: bool | None = None
    # A claim on a case lapses after this long without a decision.
    claim_seconds: float = Field(default=30 * 60, gt=0)
    default_language: str = "zh_CN"
