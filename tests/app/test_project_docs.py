"""The project's own docs: the domain description lives in the repository, the
README and CONTRIBUTING link it, nothing points outside the repository, and the
ranked vanity examples in docs/domain.md are what the classifier says."""

from __future__ import annotations

import re
import subprocess

from app.settings import PROJECT_ROOT
from domain.vanity import classify
from tests.domain.test_vanity import RANKED

DOMAIN = PROJECT_ROOT / "docs" / "domain.md"


def _tracked_text_files() -> list[str]:
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    return [f for f in listed if f.endswith((".md", ".py", ".toml", ".yml", ".json", ".sql", "Makefile"))]


def test_readme_and_contributing_link_the_domain_description_in_the_repository() -> None:
    assert DOMAIN.is_file()
    for name in ("README.md", "CONTRIBUTING.md"):
        text = (PROJECT_ROOT / name).read_text(encoding="utf-8")
        assert "](docs/domain.md)" in text, name


def test_nothing_points_at_a_domain_description_outside_the_repository() -> None:
    outside = re.compile(r"\.\./shared|shared/domain\.md")
    offenders = [
        f for f in _tracked_text_files() if outside.search((PROJECT_ROOT / f).read_text(encoding="utf-8"))
    ]
    assert offenders == []


def test_domain_description_covers_what_users_meet() -> None:
    text = DOMAIN.read_text(encoding="utf-8")
    for heading in ("## Registration", "## After activation", "## States", "## Numbers people want"):
        assert heading in text
    from domain.lifecycle import Lifecycle
    from domain.timeline import Stage, Status

    for value in (*Lifecycle, *Stage, *Status):
        assert f"`{value.value}`" in text, value


def test_the_ranked_vanity_examples_are_what_the_classifier_says() -> None:
    rows = re.findall(
        r"^\| (400-\d{3}-\d{4}) \| (−?-?\d+) \| (\w+) \|$", DOMAIN.read_text(encoding="utf-8"), re.M
    )
    documented = [(n.replace("-", ""), int(score.replace("−", "-")), tier) for n, score, tier in rows]
    assert [n for n, _, _ in documented] == [n for n, _ in RANKED]
    for number, score, tier in documented:
        result = classify(number)
        assert (result.score, result.tier) == (score, tier), number


def test_the_readme_says_how_to_see_decrypted_payloads() -> None:
    text = (PROJECT_ROOT / "README.md").read_text(encoding="utf-8")
    for needed in ("--codec-endpoint", "--codec-auth", "/v1/codec", "TEMPORAL_CODEC_ENDPOINT", "Codec"):
        assert needed in text, needed
