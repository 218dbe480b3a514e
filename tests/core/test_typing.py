"""``froster`` type-checks with mypy: ``froster/py.typed`` tells users' type checkers to trust its
annotations, so they must hold.

mypy runs with pyproject.toml's ``[tool.mypy]`` settings, in a subprocess, with its cache in the
repository's git-ignored ``.mypy_cache`` (a cold run analyses torch's stubs: about a minute of
CPU; a warm one takes seconds).
"""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_froster_type_checks_with_mypy():
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--config-file", str(REPO / "pyproject.toml"), "--cache-dir", str(REPO / ".mypy_cache")],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"mypy found type errors in froster/ (run `mypy` in the repository):\n{output}"
    # Every module was checked: a config that selects fewer files must not pass quietly.
    checked = re.search(r"no issues found in (\d+) source files?", output)
    modules = sorted((REPO / "froster").rglob("*.py"))
    assert checked is not None and int(checked.group(1)) == len(modules), output
