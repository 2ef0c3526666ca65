"""`make dev`: the whole system on embedded defaults, in one process tree.

Starts PostgreSQL and Temporal (unless DATABASE_URL / TEMPORAL_ADDRESS point at
real servers), applies migrations, runs the dev bootstrap hooks, then runs the
worker and the API as child processes. A child that dies unexpectedly is
restarted with backoff (app/supervisor.py); Ctrl-C stops every child, newest first.

The one command that defaults to ENVIRONMENT=development (app.__main__), which
its children inherit: the embedded servers, the development secrets, and the
payload codec open to the embedded Temporal UI.
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
    DEV_LONG_POLL_SECONDS,
    EmbeddedPostgres,
    EmbeddedTemporal,
    die_with_parent,
    python_module_command,
)
from app.settings import Settings
from app.supervisor import ProcessChild, ServerChild, Supervisor

log = logging.getLogger("dev")

# Steps run after migrations, before the worker and API start, e.g. loading a
# default number block or creating demo API keys. Each returns lines to print.
BootstrapHook = Callable[[Settings], list[str]]


def bootstrap_hooks() -> list[BootstrapHook]:
    from activities.inventory_cli import inventory_bootstrap_hook
    from api.demo import demo_keys_hook
    from web.demo import demo_staff_hook

    hooks: list[BootstrapHook] = []
    hooks.append(demo_keys_hook)  # a demo API key per role, stable across restarts
    hooks.append(demo_staff_hook)  # a demo console login per staff role, printed beside the keys
    hooks.append(inventory_bootstrap_hook)  # a small default number block, if the inventory is empty
    return hooks


class _Stop(Exception):
    pass


def creates_demo_accounts(settings: Settings, *, embedded_postgres: bool) -> bool:
    """Demo keys and logins (an admin's among them) go only into the embedded
    database of a development stack, never into a real one `make dev` was
    pointed at (DATABASE_URL) or a production environment."""
    return settings.environment == "development" and embedded_postgres


def run_dev(settings: Settings) -> int:
    env = dict(os.environ)
    env.setdefault("ENVIRONMENT", settings.environment)
    # Several stacks share a machine: the worker's metrics port follows the API's.
    env.setdefault("WORKER_METRICS_PORT", str(settings.api_port + 1000))
    supervisor = Supervisor()

    def _raise_stop(signum: int, frame: FrameType | None) -> None:
        raise _Stop

    signal.signal(signal.SIGINT, _raise_stop)
    signal.signal(signal.SIGTERM, _raise_stop)
    data_dir = settings.data_dir
    embedded_temporal = False
    embedded_postgres = not settings.database_url
    try:
        if embedded_postgres:
            pg = EmbeddedPostgres(data_dir / "postgres", settings.embedded_postgres_port)
            log.info("starting embedded PostgreSQL", extra={"data": str(pg.data_dir)})
            supervisor.start(ServerChild("postgres", pg))
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
            supervisor.start(ServerChild("temporal", tmp))
            embedded_temporal = True
            settings.temporal_address = tmp.address
            env["TEMPORAL_ADDRESS"] = tmp.address
            env.setdefault("API_TEMPORAL_LONG_POLL_SECONDS", str(DEV_LONG_POLL_SECONDS))
            # The UI's page calls the codec from the browser: allow the port it is really on.
            ui = settings.temporal_ui_port
            env.setdefault("CODEC_CORS_ORIGINS", f"http://localhost:{ui},http://127.0.0.1:{ui}")

        log.info("applying migrations")
        migrate(settings.database_url)
        notes: list[str] = []
        if creates_demo_accounts(settings, embedded_postgres=embedded_postgres):
            for hook in bootstrap_hooks():
                notes += hook(settings)
        else:
            log.warning("demo keys and logins not created: not a development stack on embedded PostgreSQL")

        supervisor.start(ProcessChild("worker", lambda: _spawn_inherit(["worker"], env)))
        supervisor.start(
            ProcessChild("api", lambda: _spawn_inherit(["api"], env), ready=lambda p: _wait_http(settings, p))
        )
        base = f"http://{settings.api_host}:{settings.api_port}"
        lines = [
            "",
            "400 registration backend is up",
            f"  API docs     {base}/docs",
            f"  Readiness    {base}/readyz",
            f"  Metrics      {base}/metrics (worker: port {env['WORKER_METRICS_PORT']})",
        ]
        if embedded_temporal:
            lines.append(f"  Temporal UI  http://127.0.0.1:{settings.temporal_ui_port} (payloads decrypted)")
            lines.append(
                "  Payloads     .venv/bin/temporal workflow show --detailed "
                f"--address {settings.temporal_address} "
                f"-w registration-<application id> --codec-endpoint {base}/v1/codec"
            )
        lines.append(f"  PostgreSQL   {settings.database_url}")
        lines += notes
        lines += ["", "Ctrl-C stops everything; data stays in " + str(data_dir), ""]
        print("\n".join(lines), flush=True)
        while True:
            # A child that dies is started again (with backoff); only Ctrl-C ends this.
            supervisor.check()
            time.sleep(0.5)
    except _Stop:
        log.info("stopping")
        return 0
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        supervisor.stop_all()
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


def _wait_http(settings: Settings, proc: Popen[bytes], timeout: float = 60) -> None:
    import urllib.request

    deadline = time.monotonic() + timeout
    url = f"http://{settings.api_host}:{settings.api_port}/healthz"
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the API exited at start with code {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except OSError:
            time.sleep(0.3)
    raise TimeoutError(f"API did not answer on {url} within {timeout}s")
