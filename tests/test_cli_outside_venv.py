"""The README's commands work from the machine's own `python3`: `up` and `test` set up .venv,
and every other command (`python3 -m app down`, after `up`) is handed to .venv's Python, which
has the dependencies the machine's Python lacks (app/__main__.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from app.settings import REPO_ROOT

# The Python this virtualenv was made from: the machine's, without the app's dependencies.
MACHINE_PYTHON = Path(sys.base_prefix) / "bin" / "python3"


@pytest.mark.skipif(not MACHINE_PYTHON.exists() or sys.prefix == sys.base_prefix,
                    reason="needs to run inside .venv, with the machine's python3 beside it")
def test_a_command_that_needs_the_dependencies_runs_from_the_machines_python3(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    env["OPD_VAR_DIR"] = str(tmp_path)  # nothing running there: `down` says so
    done = subprocess.run([str(MACHINE_PYTHON), "-m", "app", "down"], cwd=REPO_ROOT, env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert f"no embedded PostgreSQL running in {tmp_path / 'pgdata'}" in done.stdout
