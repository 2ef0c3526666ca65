"""Workflow code must stay deterministic. The workflows run outside the SDK's
sandbox for speed (workflows/registration.py says why), so nothing watches
them at run time: this test reads every module under workflows/ and domain/
(the rules they call) and refuses the calls that would make a replay take a
different path."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]
WORKFLOWS = sorted([*(ROOT / "workflows").glob("*.py"), *(ROOT / "domain").rglob("*.py")])

# module attribute calls that read the clock, randomness, the environment or do I/O;
# workflow.now(), workflow.random() and workflow.uuid4() are the deterministic ones.
FORBIDDEN = {
    ("datetime", "now"),
    ("datetime", "utcnow"),
    ("datetime", "today"),
    ("date", "today"),
    ("time", "time"),
    ("time", "monotonic"),
    ("time", "perf_counter"),
    ("time", "sleep"),
    ("random", "random"),
    ("random", "randint"),
    ("random", "choice"),
    ("uuid", "uuid1"),
    ("uuid", "uuid4"),
    ("os", "getenv"),
    ("os", "urandom"),
    ("secrets", "token_hex"),
}
FORBIDDEN_NAMES = {"open", "input", "print"}
FORBIDDEN_IMPORTS = {
    "random",
    "secrets",
    "requests",
    "httpx",
    "socket",
    "threading",
    "subprocess",
    "zoneinfo",
}


def _origins(tree: ast.AST) -> dict[str, str]:
    """Where each imported local name comes from: ``import time as t`` gives
    {"t": "time"}, ``from uuid import uuid4 as u`` gives {"u": "uuid.uuid4"}."""
    origins: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                # ``import a.b`` binds ``a``; ``import a.b as x`` binds ``x`` to ``a.b``.
                local = alias.asname or alias.name.split(".")[0]
                origins[local] = alias.name if alias.asname else local
        elif isinstance(node, ast.ImportFrom):
            for alias in node.names:
                origins[alias.asname or alias.name] = f"{node.module}.{alias.name}"
    return origins


def _dotted(node: ast.expr, origins: dict[str, str]) -> str | None:
    """``t.monotonic`` as "time.monotonic" after ``import time as t``; None for
    anything that is not a plain name or attribute chain."""
    if isinstance(node, ast.Name):
        return origins.get(node.id, node.id)
    if isinstance(node, ast.Attribute):
        owner = _dotted(node.value, origins)
        return f"{owner}.{node.attr}" if owner else None
    return None


def violations(source: str) -> list[str]:
    tree = ast.parse(source)
    origins = _origins(tree)
    found: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            name = _dotted(node.func, origins)
            if name is not None and (tuple(name.split(".")[-2:]) in FORBIDDEN or name in FORBIDDEN_NAMES):
                found.append(f"line {node.lineno}: {name}()")
        elif isinstance(node, ast.Name | ast.Attribute) and _dotted(node, origins) == "os.environ":
            found.append(f"line {node.lineno}: os.environ")
        elif isinstance(node, ast.Import | ast.ImportFrom):
            modules = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
            found += [
                f"line {node.lineno}: import {m}" for m in modules if m.split(".")[0] in FORBIDDEN_IMPORTS
            ]
    return found


def test_the_guard_catches_what_it_should() -> None:
    sample = (
        "import random\nfrom datetime import datetime\nimport os, uuid\n"
        "def f():\n    datetime.now()\n    uuid.uuid4()\n    os.environ['X']\n    open('f')\n"
    )
    assert len(violations(sample)) == 5
    # Names imported from the module, and aliases, are followed too.
    for call in (
        "from time import time\ntime()",
        "from time import monotonic as clock\nclock()",
        "import time as t\nt.monotonic()",
        "from uuid import uuid4\nuuid4()",
        "from os import getenv\ngetenv('X')",
        "import datetime as dt\ndt.datetime.now()",
        "from datetime import date as d\nd.today()",
        "from os import environ\nenviron['X']",
    ):
        assert len(violations(call)) == 1, call
    assert (
        violations("from temporalio import workflow\ndef f():\n    workflow.now(); workflow.uuid4()\n") == []
    )
    # A name of the same spelling from elsewhere is not the forbidden one.
    assert violations("from app.clock import time\ntime()") == []


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: str(p.relative_to(ROOT)))
def test_workflow_module_is_deterministic(path: Path) -> None:
    assert violations(path.read_text()) == [], f"{path.name} must only use workflow.now/random/uuid4"
