"""Workflow code must stay deterministic. The workflows run outside the SDK's
sandbox for speed (workflows/registration_flow.py says why), so nothing watches
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


def violations(source: str) -> list[str]:
    found: list[str] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call):
            func = node.func
            if isinstance(func, ast.Attribute):
                owner = func.value
                name = owner.attr if isinstance(owner, ast.Attribute) else getattr(owner, "id", None)
                if (name, func.attr) in FORBIDDEN:
                    found.append(f"line {node.lineno}: {name}.{func.attr}()")
            elif isinstance(func, ast.Name) and func.id in FORBIDDEN_NAMES:
                found.append(f"line {node.lineno}: {func.id}()")
        elif (
            isinstance(node, ast.Attribute)
            and getattr(node.value, "id", None) == "os"
            and node.attr == "environ"
        ):
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
    assert (
        violations("from temporalio import workflow\ndef f():\n    workflow.now(); workflow.uuid4()\n") == []
    )


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: str(p.relative_to(ROOT)))
def test_workflow_module_is_deterministic(path: Path) -> None:
    assert violations(path.read_text()) == [], f"{path.name} must only use workflow.now/random/uuid4"
