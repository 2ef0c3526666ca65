"""docker-compose.yml cannot run here (no Docker engine); its structure is checked instead."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from app.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
APP_SERVICES = {"migrate", "worker", "api"}


def _compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return data


def test_services_are_the_production_shape() -> None:
    services = _compose()["services"]
    assert {"postgresql", "temporal", "temporal-ui", "migrate", "worker", "api"} <= set(services)


def test_every_image_is_pinned() -> None:
    for name, svc in _compose()["services"].items():
        image = svc.get("image")
        if image is None:
            assert "build" in svc, f"{name} has neither image nor build"
            continue
        assert ":" in image, f"{name} image {image} has no tag"
        tag = image.rsplit(":", 1)[1]
        assert tag != "latest" and re.search(r"\d", tag), f"{name} image {image} is not pinned"


def test_long_running_services_have_healthchecks() -> None:
    services = _compose()["services"]
    for name in ("postgresql", "temporal", "temporal-ui", "worker", "api"):
        assert "healthcheck" in services[name], f"{name} has no healthcheck"
        assert services[name]["healthcheck"]["test"], f"{name} healthcheck is empty"


def test_dependencies_wait_for_health_or_completion() -> None:
    services = _compose()["services"]
    expected = {
        "temporal": {"postgresql": "service_healthy"},
        "migrate": {"postgresql": "service_healthy"},
        "worker": {"migrate": "service_completed_successfully"},
        "api": {"migrate": "service_completed_successfully"},
        "temporal-ui": {"temporal": "service_healthy"},
    }
    for name, deps in expected.items():
        depends = services[name]["depends_on"]
        assert isinstance(depends, dict), f"{name} depends_on must use conditions"
        for dep, condition in deps.items():
            assert depends[dep]["condition"] == condition, f"{name} -> {dep}"
    for name in ("worker", "api"):
        assert services[name]["depends_on"]["temporal-setup"]["condition"] == "service_completed_successfully"


def test_secrets_are_required_not_defaulted() -> None:
    text = (ROOT / "docker-compose.yml").read_text()
    for secret in ("POSTGRES_PASSWORD", "PAYLOAD_ENCRYPTION_KEYS", "API_KEY_PEPPER"):
        assert re.search(r"\$\{" + secret + r":\?", text), f"{secret} must be ${{{secret}:?...}}"
        assert not re.search(r"\$\{" + secret + r":-", text), f"{secret} must not have a default"


def test_app_environment_names_are_settings_the_code_reads() -> None:
    fields = set(Settings.model_fields)
    services = _compose()["services"]
    for name in APP_SERVICES:
        env = services[name]["environment"]
        for key in env:
            top = key.lower().split("__", 1)[0]
            assert top in fields, f"{name}: {key} is not a setting the code reads"
    # And the secrets the code refuses to default in production are all provided.
    api_env = services["api"]["environment"]
    for required in ("DATABASE_URL", "TEMPORAL_ADDRESS", "PAYLOAD_ENCRYPTION_KEYS", "API_KEY_PEPPER"):
        assert required in api_env


def test_search_attributes_registered_match_the_workflows() -> None:
    from workflows.search_attributes import CLI_TYPES

    command = " ".join(_compose()["services"]["temporal-setup"]["command"])
    for name, kind in CLI_TYPES.items():
        assert f"--name {name} --type {kind}" in command
