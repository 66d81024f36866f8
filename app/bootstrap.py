"""`python3 -m app up` and `python3 -m app test`: set up .venv, then run the app or the tests.

Standard library only: this runs before any dependency is installed, under whatever `python3`
the machine has, hence the version check and the postponed annotations (Python 3.8 reads this).
"""

# These calls run fixed commands (venv, pip, apt-get, pytest) on purpose; S603/S606 do not apply.
# ruff: noqa: S603, S606, UP017
from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
VENV_DIR = REPO_ROOT / ".venv"
VENV_PYTHON = VENV_DIR / "bin" / "python"
# Records what was installed, so a second run starts at once instead of re-running pip.
INSTALL_STAMP = VENV_DIR / ".opd-installed"
# Where the browser tests look for Chromium (Debian's package installs the first).
CHROMIUM_PATHS = ("/usr/bin/chromium", "/usr/bin/chromium-browser")
CHROMIUM_PACKAGES = ("chromium", "fonts-dejavu-core")
PYTEST_NO_TESTS_COLLECTED = 5


def main(argv: list[str]) -> int:
    """Run `up` or `test`; `argv` is what follows `python3 -m app`."""
    if sys.version_info < (3, 11):  # noqa: UP036 - an older python3 may run this file
        print("OPD Queue Board needs Python 3.11 or newer.", file=sys.stderr)
        return 1
    command, rest = (argv[0], argv[1:]) if argv else ("", [])
    if command == "up":
        return up(rest)
    if command == "test":
        # Everything after `test` goes to pytest untouched (argparse would eat `-h`, `-k`).
        return run_tests(rest)
    print("usage: python3 -m app {up [--host H] [--port P] | test [pytest args]}", file=sys.stderr)
    return 2


def run_in_venv_if_needed(argv: list[str]) -> None:
    """Replace this process with .venv's Python running `-m app <argv>` when this Python is not
    that one and .venv exists (the machine's `python3` has none of the app's dependencies)."""
    if not VENV_PYTHON.exists() or Path(sys.prefix).resolve() == VENV_DIR.resolve():
        return
    os.execv(VENV_PYTHON, [str(VENV_PYTHON), "-m", "app", *argv])


def up(argv: list[str]) -> int:
    """Install the app into .venv and replace this process with the demo server."""
    parser = argparse.ArgumentParser(prog="python3 -m app up")
    parser.add_argument("--host", help="interface to listen on")
    parser.add_argument("--port", help="TCP port to listen on")
    parser.add_argument("--clock", help="run the demo as if it were this instant, e.g. 2026-12-31T23:50+05:30 "
                                        "(time flows from there; for the embedded or a demo database only)")
    args = parser.parse_args(argv)
    if args.clock:
        offset = clock_offset(args.clock)
        if offset is None:
            return 2
        os.environ["OPD_CLOCK_OFFSET_S"] = offset
    if not ensure_installed(extras=()):
        return 1
    serve_args = ["-m", "app", "serve", "--demo"]
    if args.host:
        serve_args += ["--host", args.host]
    if args.port:
        serve_args += ["--port", args.port]
    print("» starting the demo server", flush=True)
    # The app's relative paths (var/, .env) are the repository's, wherever this was run from.
    os.chdir(REPO_ROOT)
    os.execv(VENV_PYTHON, [str(VENV_PYTHON), *serve_args])


def run_tests(pytest_args: list[str]) -> int:
    """Install the app with its dev tools, make sure Chromium exists, run pytest: the whole suite
    on the real clock, then the date-sensitive tests under each of CALENDAR_CLOCKS.

    `test --clock ISO [pytest args]` runs pytest once under that clock; `test [pytest args]` with
    arguments runs just that pytest call on the real clock."""
    if not ensure_installed(extras=("dev",)) or not ensure_chromium():
        return 1
    if pytest_args[:1] == ["--clock"] and len(pytest_args) >= 2:
        return run_pytest(pytest_args[2:], clock=pytest_args[1])
    if pytest_args:
        return run_pytest(pytest_args)
    results = {"real clock": run_pytest([])}
    for clock in CALENDAR_CLOCKS:
        results[clock] = run_pytest(["-m", "calendar", "-q"], clock=clock)
    failed = [name for name, code in results.items() if code != 0]
    print("» calendar runs: " + ", ".join(f"{name}: {'passed' if code == 0 else 'FAILED'}"
                                          for name, code in results.items()), flush=True)
    if failed:
        print(f"FAILED under: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


# The date-sensitive tests (marked `calendar`) run again with the clock of the app, the database
# and the tests moved to each of these instants (time still flows from there; app/clock.py).
# Fixed instants, so a run on any real date tests the same edges (issue 11): the first and last
# day of a month, the year's last minutes in the hospital, 29 February, and 18:45 UTC, when the
# hospital's day (IST, UTC+5:30) is already the next one.
CALENDAR_CLOCKS = (
    "2027-03-01T08:30:00+05:30",
    "2027-04-30T16:00:00+05:30",
    "2026-12-31T23:50:00+05:30",
    "2028-02-29T11:00:00+05:30",
    "2027-06-15T18:45:00+00:00",
)


def run_pytest(pytest_args: list[str], clock: str | None = None) -> int:
    """One pytest run; with `clock`, every process of it lives at that instant (app/clock.py)."""
    env = dict(os.environ)
    label = "on the real clock"
    if clock is not None:
        offset = clock_offset(clock)
        if offset is None:
            return 2
        env["OPD_CLOCK_OFFSET_S"] = offset
        label = f"with the clock at {clock}"
    print(f"» running pytest {' '.join(pytest_args)} {label}".replace("  ", " "), flush=True)
    exit_code = subprocess.call([VENV_PYTHON, "-m", "pytest", *pytest_args], cwd=REPO_ROOT, env=env)
    if exit_code == PYTEST_NO_TESTS_COLLECTED:
        # A filter that matches nothing must not pass as green.
        print("pytest collected no tests; check the test path or -k/-m filter.", file=sys.stderr)
        return 1
    return exit_code


def ensure_installed(extras: tuple[str, ...]) -> bool:
    """Create .venv if needed and `pip install -e .[extras]` unless the stamp says it's done."""
    if not VENV_PYTHON.exists():
        print(f"» creating {VENV_DIR}", flush=True)
        if subprocess.call([sys.executable, "-m", "venv", VENV_DIR]) != 0:
            # Debian's own python3 ships venv without ensurepip.
            print("Could not create .venv; try: apt-get install python3-venv", file=sys.stderr)
            return False
    pyproject_hash = hashlib.sha256((REPO_ROOT / "pyproject.toml").read_bytes()).hexdigest()
    if is_installed(pyproject_hash, extras):
        return True
    target = f".[{','.join(extras)}]" if extras else "."
    print(f"» pip install -e '{target}' into .venv (a first install takes a minute)", flush=True)
    pip = [str(VENV_PYTHON), "-m", "pip", "install", "--disable-pip-version-check", "-e", target]
    if subprocess.call(pip, cwd=REPO_ROOT) != 0:
        print("pip install failed; see its output above.", file=sys.stderr)
        return False
    stamp = {"pyproject_sha256": pyproject_hash, "extras": sorted(extras)}
    INSTALL_STAMP.write_text(json.dumps(stamp) + "\n")
    return True


def is_installed(pyproject_hash: str, extras: tuple[str, ...]) -> bool:
    """Whether the stamp shows this pyproject.toml installed with at least these extras."""
    try:
        stamp = json.loads(INSTALL_STAMP.read_text())
    except (OSError, ValueError):
        return False
    # An install with more extras (test's `dev`) also serves a run that needs fewer (up).
    return (
        isinstance(stamp, dict)
        and stamp.get("pyproject_sha256") == pyproject_hash
        and set(extras) <= set(stamp.get("extras", []))
    )


def ensure_chromium() -> bool:
    """Install Chromium for the browser tests if it's missing and we may; else say what to do."""
    if any(Path(path).exists() for path in CHROMIUM_PATHS):
        return True
    packages = " ".join(CHROMIUM_PACKAGES)
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        print(
            f"The browser tests need Chromium at {' or '.join(CHROMIUM_PATHS)}.\n"
            f"Install it, e.g.: sudo apt-get install --no-install-recommends {packages}",
            file=sys.stderr,
        )
        return False
    print(f"» installing {packages} with apt-get", flush=True)
    apt_env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "--no-install-recommends", *CHROMIUM_PACKAGES]
    for apt_command in (["apt-get", "update"], install):
        if subprocess.call(apt_command, env=apt_env) != 0:
            print(f"`{' '.join(apt_command)}` failed; see its output above.", file=sys.stderr)
            return False
    return True


def clock_offset(clock: str) -> str | None:
    """OPD_CLOCK_OFFSET_S that puts the clock at `clock` now (app/clock.py), or None and a message."""
    import datetime as dt

    try:
        target: dt.datetime | None = dt.datetime.fromisoformat(clock)
    except ValueError:
        target = None
    if target is None or target.tzinfo is None:
        print(f"--clock needs an ISO instant with its UTC offset, e.g. 2026-12-31T23:50+05:30, not {clock!r}",
              file=sys.stderr)
        return None
    return str((target - dt.datetime.now(dt.timezone.utc)).total_seconds())
