from __future__ import annotations

import base64
from datetime import timedelta

import pytest
from pydantic import ValidationError

from app.settings import Settings, get_settings

REAL_KEY = base64.b64encode(b"k" * 32).decode()


def test_production_refuses_the_development_secrets() -> None:
    with pytest.raises(ValidationError, match="PAYLOAD_ENCRYPTION_KEYS"):
        Settings(
            _env_file=None, environment="production", database_url="postgres://x", temporal_address="t:1"
        )  # type: ignore[call-arg]


def test_the_servers_are_required_by_the_commands_that_use_them(monkeypatch: pytest.MonkeyPatch) -> None:
    """Real secrets but no server addresses: the API and the worker refuse to
    start, naming what is missing; a database-only tool is not asked for Temporal."""
    from app.__main__ import main

    monkeypatch.setenv("ENVIRONMENT", "production")
    monkeypatch.setenv("PAYLOAD_ENCRYPTION_KEYS", REAL_KEY)
    monkeypatch.setenv("API_KEY_PEPPER", "p" * 32)
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.delenv("TEMPORAL_ADDRESS", raising=False)
    get_settings.cache_clear()
    try:
        for command in ("api", "worker"):
            with pytest.raises(SystemExit, match="DATABASE_URL and TEMPORAL_ADDRESS"):
                main([command])
        with pytest.raises(SystemExit, match="staff: set DATABASE_URL") as refused:
            main(["staff", "list"])
        assert "TEMPORAL" not in str(refused.value)
    finally:
        get_settings.cache_clear()


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


def test_make_dev_creates_demo_accounts_only_in_its_own_embedded_development_database() -> None:
    from app.dev import creates_demo_accounts

    dev = Settings(_env_file=None, environment="development")  # type: ignore[call-arg]
    assert creates_demo_accounts(dev, embedded_postgres=True)
    assert not creates_demo_accounts(dev, embedded_postgres=False)  # DATABASE_URL: a real database
    test = Settings(_env_file=None, environment="test")  # type: ignore[call-arg]
    assert not creates_demo_accounts(test, embedded_postgres=True)
