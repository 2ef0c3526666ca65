"""`make dev`: the whole system on embedded defaults, in one process tree.

Starts PostgreSQL and Temporal (unless DATABASE_URL / TEMPORAL_ADDRESS point at
real servers), applies migrations, runs the dev bootstrap hooks, then runs the
worker and the API as child processes. Ctrl-C stops every child, newest first.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import time
from collections.abc import Callable
from subprocess import Popen
from types import FrameType

from app.db import migrate
from app.embedded import (
    EmbeddedPostgres,
    EmbeddedTemporal,
    die_with_parent,
    python_module_command,
    stop_process,
)
from app.settings import Settings

log = logging.getLogger("dev")

# Steps run after migrations, before the worker and API start, e.g. loading a
# default number block or creating demo API keys. Each returns lines to print.
BootstrapHook = Callable[[Settings], list[str]]


def bootstrap_hooks() -> list[BootstrapHook]:
    from activities.inventory_cli import inventory_bootstrap_hook
    from api.demo import demo_keys_hook

    hooks: list[BootstrapHook] = []
    hooks.append(demo_keys_hook)  # a demo API key per role, stable across restarts
    hooks.append(inventory_bootstrap_hook)  # a small default number block, if the inventory is empty
    return hooks


class _Stop(Exception):
    pass


def run_dev(settings: Settings) -> int:
    env = dict(os.environ)
    env.setdefault("ENVIRONMENT", settings.environment)
    servers: list[EmbeddedPostgres | EmbeddedTemporal] = []
    children: list[tuple[str, Popen[bytes]]] = []

    def _raise_stop(signum: int, frame: FrameType | None) -> None:
        raise _Stop

    signal.signal(signal.SIGINT, _raise_stop)
    signal.signal(signal.SIGTERM, _raise_stop)
    data_dir = settings.data_dir
    try:
        if not settings.database_url:
            pg = EmbeddedPostgres(data_dir / "postgres", settings.embedded_postgres_port)
            log.info("starting embedded PostgreSQL", extra={"data": str(pg.data_dir)})
            pg.start()
            servers.append(pg)
            settings.database_url = pg.url
            env["DATABASE_URL"] = pg.url
        if not settings.temporal_address:
            tmp = EmbeddedTemporal(
                data_dir / "temporal",
                settings.embedded_temporal_port,
                settings.temporal_ui_port,
                namespace=settings.temporal_namespace,
                codec_endpoint=f"http://{settings.api_host}:{settings.api_port}/v1/codec",
            )
            log.info("starting Temporal dev server", extra={"data": str(tmp.data_dir)})
            tmp.start()
            servers.append(tmp)
            settings.temporal_address = tmp.address
            env["TEMPORAL_ADDRESS"] = tmp.address
            # The UI's page calls the codec from the browser: allow the port it is really on.
            ui = settings.temporal_ui_port
            env.setdefault("CODEC_CORS_ORIGINS", f"http://localhost:{ui},http://127.0.0.1:{ui}")

        log.info("applying migrations")
        migrate(settings.database_url)
        notes: list[str] = []
        for hook in bootstrap_hooks():
            notes += hook(settings)

        children.append(("worker", _spawn_inherit(["worker"], env)))
        children.append(("api", _spawn_inherit(["api"], env)))
        _wait_http(settings, children)
        base = f"http://{settings.api_host}:{settings.api_port}"
        lines = [
            "",
            "400 registration backend is up",
            f"  API docs     {base}/docs",
            f"  Readiness    {base}/readyz",
        ]
        if any(isinstance(s, EmbeddedTemporal) for s in servers):
            lines.append(f"  Temporal UI  http://127.0.0.1:{settings.temporal_ui_port} (payloads decrypted)")
            lines.append(
                f"  Payloads     temporal workflow show --address {settings.temporal_address} "
                f"-w registration-<application id> --codec-endpoint {base}/v1/codec"
            )
        lines.append(f"  PostgreSQL   {settings.database_url}")
        lines += notes
        lines += ["", "Ctrl-C stops everything; data stays in " + str(data_dir), ""]
        print("\n".join(lines), flush=True)
        while True:
            for name, proc in children:
                if proc.poll() is not None:
                    log.error("child exited; stopping", extra={"child": name, "code": proc.returncode})
                    return 1
            time.sleep(0.5)
    except _Stop:
        log.info("stopping")
        return 0
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        for _name, proc in reversed(children):
            stop_process(proc, signal.SIGTERM, timeout=20)
        for server in reversed(servers):
            server.stop()
        log.info("stopped")


def _spawn_inherit(args: list[str], env: dict[str, str]) -> Popen[bytes]:
    # Children share the terminal's stderr so their log lines interleave with ours.
    return subprocess.Popen(
        python_module_command("app", *args),
        env=env,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
        preexec_fn=die_with_parent,  # noqa: PLW1509
    )


def _wait_http(settings: Settings, children: list[tuple[str, Popen[bytes]]], timeout: float = 60) -> None:
    import urllib.request

    deadline = time.monotonic() + timeout
    url = f"http://{settings.api_host}:{settings.api_port}/healthz"
    while time.monotonic() < deadline:
        for name, proc in children:
            if proc.poll() is not None:
                raise RuntimeError(f"{name} exited at start with code {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except OSError:
            time.sleep(0.3)
    raise TimeoutError(f"API did not answer on {url} within {timeout}s")
