"""The container image holds exactly what the Dockerfile copies; no Docker engine
runs here, so the image's tree is rebuilt from its COPY lines and every entry
point is imported from it alone."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _copied() -> list[str]:
    lines = (ROOT / "Dockerfile").read_text().splitlines()
    found: list[str] = []
    for line in lines:
        match = re.fullmatch(r"COPY\s+(\S+(?:\s+\S+)*)\s+\S+", line.strip())
        if match:
            found += match.group(1).split()
    return found


def test_the_image_tree_runs_every_entry_point(tmp_path: Path) -> None:
    for name in _copied():
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(source, tmp_path / name)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "DATABASE_URL", "TEMPORAL_ADDRESS")}
    probe = "import api.main, app.__main__, app.worker, app.cli_extensions; print('ok')"
    done = subprocess.run(
        [sys.executable, "-c", probe],
        check=False,
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-2000:]
    # Not importable from the project itself: the probe saw only the image's tree.
    assert not (tmp_path / "tests").exists()
