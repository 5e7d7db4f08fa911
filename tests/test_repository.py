"""A fresh clone is enough: nothing in the repository reads or links a file outside it, and
without Chromium the browser tests skip with one line saying how to install it."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# A path that leaves the repository for the workplace's shared folder: the parent folder's
# `shared`, `/work/`, or `… / "shared" / …` built with pathlib (other `../` strings are attacks
# the tests send).
OUTSIDE = re.compile(r"\.\./+shared\b|/work/|\"shared\"\s*/")
LINK = re.compile(r"\]\(([^)\s]+)\)")


def repository_files() -> list[Path]:
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=REPO, capture_output=True, text=True, check=True).stdout.split()
    return [REPO / name for name in listed
            if name.endswith((".py", ".md", ".toml", ".yaml", ".ini")) or name == ".ci/run"]


def test_no_file_of_the_repository_reaches_outside_it() -> None:
    this = Path(__file__).resolve()
    found = [f"{path.relative_to(REPO)}:{number}: {line.strip()}"
             for path in repository_files() if path != this and path.exists()
             for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
             if OUTSIDE.search(line)]
    assert found == []


def test_every_relative_link_of_the_readme_names_a_file_of_the_repository() -> None:
    targets = LINK.findall((REPO / "README.md").read_text(encoding="utf-8"))
    relative = [t.split("#")[0] for t in targets
                if not re.match(r"[a-z]+:", t) and not t.startswith("#")]
    assert "docs/money.md" in relative
    for target in relative:
        path = (REPO / target).resolve()
        assert path.is_relative_to(REPO) and path.exists(), target


def test_without_chromium_the_browser_tests_skip_with_one_line_on_how_to_install_it() -> None:
    env = {**os.environ, "FLATTR_TEST_CHROMIUM": str(REPO / "no-such-chromium")}
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
         "tests/test_browser_journeys.py"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    lines = [line for line in run.stdout.splitlines() if "apt-get install chromium" in line]
    assert len(lines) == 1, run.stdout
    assert "browser tests skipped" in lines[0]
