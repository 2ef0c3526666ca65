from __future__ import annotations

import base64
from datetime import timedelta

import pytest
from pydantic import ValidationError

from app.settings import Settings

REAL_KEY = base64.b64encode(b"k" * 32).decode()


def test_production_refuses_the_development_secrets() -> None:
    with pytest.raises(ValidationError, match="PAYLOAD_ENCRYPTION_KEYS"):
        Settings(
            _env_file=None, environment="production", database_url="postgres://x", temporal_address="t:1"
        )  # type: ignore[call-arg]


def test_production_refuses_missing_servers() -> None:
    with pytest.raises(ValidationError, match="DATABASE_URL"):
        Settings(  # type: ignore[call-arg]
            _env_file=None,
            environment="production",
            payload_encryption_keys=REAL_KEY,
            api_key_pepper="p" * 32,
        )


def test_production_accepts_real_secrets() -> None:
    s = Settings(  # type: ignore[call-arg]
        _env_file=None,
        environment="production",
        payload_encryption_keys=REAL_KEY,
        api_key_pepper="p" * 32,
        database_url="postgres://db",
        temporal_address="temporal:7233",
    )
    assert s.effective_log_format == "json"


def test_durations_come_from_the_environment_per_carrier(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DURATIONS__PREPAYMENT_WINDOW", "PT10S")
    monkeypatch.setenv("CARRIER_OVERRIDES", '{"china_unicom": {"arrears_grace": "P20D"}}')
    s = Settings(_env_file=None, environment="test")  # type: ignore[call-arg]
    assert s.durations.prepayment_window == timedelta(seconds=10)
    assert s.durations_for("china_unicom").arrears_grace == timedelta(days=20)
    assert s.durations_for("china_unicom").prepayment_window == timedelta(seconds=10)
    assert s.durations_for("china_mobile").arrears_grace == timedelta(days=15)


def test_bad_carrier_override_names_the_carrier(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CARRIER_OVERRIDES", '{"china_mobile": {"arrears_grace": "soon"}}')
    with pytest.raises(ValidationError, match="china_mobile"):
        Settings(_env_file=None, environment="test")  # type: ignore[call-arg]


def test_bad_encryption_key_length_is_refused() -> None:
    s = Settings(  # type: ignore[call-arg]
        _env_file=None, environment="test", payload_encryption_keys=base64.b64encode(b"short").decode()
    )
    with pytest.raises(ValueError, match="16/24/32"):
        _ = s.encryption_keys
