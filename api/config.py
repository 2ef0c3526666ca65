"""HTTP-API-only settings, read from ``API_*`` environment variables.

Kept apart from ``app.settings`` because only the API process reads them.
"""

from __future__ import annotations

from datetime import timedelta

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class ApiSettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="API_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    # Uploads: the limit applies to the file itself; the multipart envelope may add
    # a few KiB, which max_request_bytes for uploads allows for.
    max_upload_bytes: int = Field(default=10 * 1024 * 1024, gt=0)
    # Any other request body (JSON): generous for an application form, small enough
    # that nobody can make the process buffer megabytes of garbage.
    max_json_bytes: int = Field(default=256 * 1024, gt=0)

    # How long a verified API key is trusted without re-reading its row. A key
    # revoked from another process (the CLI) stops working within this time; one
    # revoked through the API in this process stops at once.
    auth_cache_seconds: float = Field(default=5.0, ge=0)
    # Failed authentications allowed in the window, per key id and per client
    # address, before that key id or address gets 429 until the window moves on.
    auth_failures_per_key: int = Field(default=10, ge=1)
    auth_failures_per_address: int = Field(default=30, ge=1)
    auth_failure_window_seconds: float = Field(default=300.0, gt=0)

    # Connections opened in the background at start (the pool itself starts empty).
    pool_min_size: int = Field(default=10, ge=0)
    pool_max_size: int = Field(default=20, ge=1)
    # Waiting longer than this for a pooled connection means PostgreSQL is
    # unreachable or saturated: answer 503 rather than queueing without bound.
    pool_acquire_timeout: float = Field(default=5.0, gt=0)

    # How far ahead an applicant may ask for activation (activation_at); later,
    # or already past, is refused at submission with 422.
    activation_horizon: timedelta = Field(default=timedelta(days=180), gt=timedelta(0))

    # Temporal Updates wait for the workflow to accept and run the handler.
    update_timeout_seconds: float = Field(default=15.0, gt=0)
    retry_after_seconds: int = Field(default=5, ge=1)

    # How often the task queue's pollers are looked up (api/readiness.py), and the
    # server's long poll (matching.longPollExpirationInterval): a worker's last poll
    # older than that plus a margin means it is gone. Requests that need a workflow
    # fail at once with 503 while Temporal is down or no worker polls.
    health_interval_seconds: float = Field(default=1.0, gt=0)
    temporal_long_poll_seconds: float = Field(default=60.0, gt=0)
    poller_margin_seconds: float = Field(default=5.0, ge=0)
    poller_grace_seconds: float = Field(default=3.0, ge=0)
    # Domain metrics (api/metrics.py) are recomputed at most this often.
    metrics_max_age_seconds: float = Field(default=15.0, ge=0)

    # Server-Sent Events: how often the event log is polled; how long a missing
    # position is waited for before it is taken to be a rolled-back insert; how long
    # one stream lasts before the client is asked to reconnect (with Last-Event-ID).
    sse_poll_seconds: float = Field(default=0.5, gt=0)
    sse_gap_seconds: float = Field(default=2.0, ge=0)
    sse_max_stream_seconds: float = Field(default=300.0, gt=0)
    sse_ping_seconds: float = Field(default=15.0, gt=0)  # comment lines that keep proxies from timing out
    sse_batch: int = Field(default=200, ge=1)
    # Streams one API key may hold open at once (each holds a poller on the event log).
    sse_max_streams_per_key: int = Field(default=5, ge=1)

    # The Temporal UI posts payloads to /v1/codec. In development the embedded UI
    # calls it without credentials unless this is true; outside development it
    # always needs an operator or admin key, whatever this says.
    codec_requires_auth: bool = False
