"""Production is the default: a deployment that forgets ENVIRONMENT refuses the
development secrets and keeps the payload codec for operators and admins."""

from __future__ import annotations

import base64
import os
import subprocess
import sys

import pytest
from temporalio.api.common.v1 import Payload

from api.config import ApiSettings
from app.codec import EncryptionCodec
from app.settings import PROJECT_ROOT, DevelopmentSettings, Settings
from tests.api.fixtures import Keys
from tests.api.test_errors import other_app

REAL_KEY = base64.b64encode(b"k" * 32).decode()


def test_the_environment_defaults_to_production(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ENVIRONMENT", raising=False)
    assert Settings.model_fields["environment"].default == "production"
    with pytest.raises(ValueError, match="PAYLOAD_ENCRYPTION_KEYS"):
        Settings(_env_file=None, database_url="postgres://db", temporal_address="t:7233")  # type: ignore[call-arg]
    # Only the developer's commands default to development, and ENVIRONMENT still wins.
    assert DevelopmentSettings(_env_file=None).environment == "development"  # type: ignore[call-arg]
    monkeypatch.setenv("ENVIRONMENT", "test")
    assert DevelopmentSettings(_env_file=None).environment == "test"  # type: ignore[call-arg]


@pytest.mark.parametrize("command", ["api", "worker", "migrate"])
def test_python_m_app_without_environment_refuses_the_development_secrets(command: str) -> None:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("ENVIRONMENT", "PAYLOAD_ENCRYPTION_KEYS", "API_KEY_PEPPER")
    }
    env |= {"DATABASE_URL": "postgres://nobody@127.0.0.1:1/none", "TEMPORAL_ADDRESS": "127.0.0.1:1"}
    done = subprocess.run(
        [sys.executable, "-m", "app", command],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode != 0
    assert "PAYLOAD_ENCRYPTION_KEYS must be set to a real key outside development" in done.stderr


def test_the_container_does_not_turn_development_on() -> None:
    dockerfile = (PROJECT_ROOT / "Dockerfile").read_text()
    assert "ENVIRONMENT=development" not in dockerfile
    assert "ENVIRONMENT=production" in dockerfile


@pytest.mark.parametrize("environment", ["production", "test"])
async def test_outside_development_the_codec_is_for_operators_and_admins(
    stack_settings: Settings, api_keys: Keys, environment: str
) -> None:
    """The codec decrypted for anyone by default: unmasked ID numbers and phones."""
    settings = stack_settings.model_copy(update={"environment": environment})
    codec = EncryptionCodec(settings.encryption_keys)
    secret = Payload(metadata={"encoding": b"json/plain"}, data=b'"110101198001011232"')
    body = {
        "payloads": [
            {
                "metadata": {k: base64.b64encode(v).decode() for k, v in p.metadata.items()},
                "data": base64.b64encode(p.data).decode(),
            }
            for p in await codec.encode([secret])
        ]
    }
    # Even when told it need not: the setting can only add the check in development.
    async with other_app(settings, ApiSettings(_env_file=None, codec_requires_auth=False)) as client:  # type: ignore[call-arg]
        for path in ("/v1/codec/decode", "/v1/codec/encode"):
            assert (await client.post(path, json=body)).status_code == 401
            for role in ("applicant", "viewer"):
                refused = await client.post(path, json=body, headers=api_keys.headers(role))
                assert refused.status_code == 403, (role, refused.text)
                assert "110101198001011232" not in refused.text
        for role in ("operator", "admin"):
            decoded = await client.post("/v1/codec/decode", json=body, headers=api_keys.headers(role))
            assert decoded.status_code == 200, decoded.text
            assert base64.b64decode(decoded.json()["payloads"][0]["data"]) == secret.data
