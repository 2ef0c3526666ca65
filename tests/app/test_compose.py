"""docker-compose.yml cannot run here (no Docker engine); its structure is checked instead."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import yaml

from api.config import ApiSettings
from app.embedded import EmbeddedPostgres, temporal_cli_path
from app.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
APP_SERVICES = {"migrate", "worker", "api"}


def _compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return data


def _tag(service: dict[str, Any]) -> str:
    return str(service["image"]).rsplit(":", 1)[1]


def test_services_are_the_production_shape() -> None:
    services = _compose()["services"]
    assert {
        "postgresql",
        "temporal-schema",
        "temporal",
        "temporal-setup",
        "temporal-ui",
        "migrate",
        "worker",
        "api",
        "prometheus",
        "grafana",
    } <= set(services)


def test_temporal_is_the_server_image_at_the_dev_servers_version() -> None:
    services = _compose()["services"]
    out = subprocess.run(
        [str(temporal_cli_path()), "--version"], capture_output=True, text=True, check=True
    ).stdout
    server = re.search(r"Server (\d+\.\d+\.\d+)", out)
    ui = re.search(r"UI (\d+\.\d+\.\d+)", out)
    assert server and ui, out
    assert services["temporal"]["image"] == f"temporalio/server:{server[1]}"  # not auto-setup
    for job in ("temporal-schema", "temporal-setup"):
        assert services[job]["image"] == f"temporalio/admin-tools:{server[1]}"
        assert services[job]["restart"] == "no"
    assert _tag(services["temporal-ui"]) == ui[1]
    # The schema job creates and upgrades both databases before the server starts.
    schema = " ".join(services["temporal-schema"]["command"])
    for db, kind in (("temporal", "temporal"), ("temporal_visibility", "visibility")):
        assert f"--db {db} update-schema --schema-name postgresql/v12/{kind}" in schema
    assert (
        services["temporal"]["depends_on"]["temporal-schema"]["condition"] == "service_completed_successfully"
    )


def test_postgresql_is_the_embedded_major_version() -> None:
    pg = EmbeddedPostgres(Path("unused"), 0)
    out = subprocess.run(
        [str(pg.bin_dir / "postgres"), "--version"], capture_output=True, text=True, check=True
    )
    embedded = re.search(r"(\d+)\.(\d+)", out.stdout)
    assert embedded, out.stdout
    tag = _tag(_compose()["services"]["postgresql"])
    assert tag.split(".")[0] == embedded[1], (tag, out.stdout)


def test_worker_and_api_scale_out() -> None:
    services = _compose()["services"]
    for name in ("worker", "api"):
        assert "container_name" not in services[name], f"{name} cannot be scaled with a fixed name"
    # A replica each: the API's host port is a range, the worker publishes none.
    assert "ports" not in services["worker"]
    for mapping in services["api"]["ports"]:
        host = str(mapping).split(":")[0]
        assert "-" in host, f"api host port {host} cannot take several replicas"


def test_prometheus_scrapes_every_replica_and_loads_the_alert_rules() -> None:
    services = _compose()["services"]
    mounts = " ".join(services["prometheus"]["volumes"])
    assert "deploy/prometheus/alerts.yml" in mounts and "deploy/prometheus/prometheus.yml" in mounts
    config = yaml.safe_load((ROOT / "deploy" / "prometheus" / "prometheus.yml").read_text())
    assert config["rule_files"] == ["/etc/prometheus/alerts.yml"]
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    api_env, worker_env = services["api"]["environment"], services["worker"]["environment"]
    ports = {"api": int(api_env["API_PORT"]), "worker": int(worker_env["WORKER_METRICS_PORT"])}
    for name, port in ports.items():
        (sd,) = jobs[name]["dns_sd_configs"]  # one address per replica
        assert sd["names"] == [name] and sd["port"] == port
    assert worker_env["WORKER_METRICS_HOST"] == "0.0.0.0"


def test_grafana_provisions_the_datasource_and_the_dashboard() -> None:
    services = _compose()["services"]
    for mount in services["grafana"]["volumes"]:
        source = mount.split(":")[0]
        assert (ROOT / source).is_dir(), source
    assert (ROOT / "deploy" / "grafana" / "dashboards" / "hotline400.json").is_file()
    providers = yaml.safe_load(
        (ROOT / "deploy" / "grafana" / "provisioning" / "dashboards" / "hotline400.yml").read_text()
    )
    assert providers["providers"][0]["options"]["path"] == "/var/lib/grafana/dashboards"


def test_the_api_knows_the_servers_long_poll() -> None:
    services = _compose()["services"]
    dynamic = yaml.safe_load((ROOT / "deploy" / "temporal" / "dynamicconfig.yaml").read_text())
    long_poll = dynamic["matching.longPollExpirationInterval"][0]["value"]
    assert long_poll == f"{services['api']['environment']['API_TEMPORAL_LONG_POLL_SECONDS']}s"
    assert "temporal_long_poll_seconds" in ApiSettings.model_fields


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
    for name in ("postgresql", "temporal", "temporal-ui", "worker", "api", "prometheus", "grafana"):
        assert "healthcheck" in services[name], f"{name} has no healthcheck"
        assert services[name]["healthcheck"]["test"], f"{name} healthcheck is empty"


def test_dependencies_wait_for_health_or_completion() -> None:
    services = _compose()["services"]
    expected = {
        "temporal-schema": {"postgresql": "service_healthy"},
        "temporal": {"temporal-schema": "service_completed_successfully"},
        "temporal-setup": {"temporal": "service_healthy"},
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
    for secret in (
        "POSTGRES_PASSWORD",
        "PAYLOAD_ENCRYPTION_KEYS",
        "API_KEY_PEPPER",
        "GRAFANA_ADMIN_PASSWORD",
    ):
        assert re.search(r"\$\{" + secret + r":\?", text), f"{secret} must be ${{{secret}:?...}}"
        assert not re.search(r"\$\{" + secret + r":-", text), f"{secret} must not have a default"


def test_app_environment_names_are_settings_the_code_reads() -> None:
    fields = set(Settings.model_fields)
    services = _compose()["services"]
    for name in APP_SERVICES:
        env = services[name]["environment"]
        for key in env:
            if key.startswith("OTEL_"):
                continue  # read by OpenTelemetry's exporter (app/tracing.py)
            if key.startswith("API_") and key.lower().removeprefix("api_") in ApiSettings.model_fields:
                continue
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
