"""`python -m app ...`: `up` and `test` bootstrap a virtualenv first (standard library only);
every other command needs the installed dependencies, and is run by .venv's Python when the
machine's `python3` lacks them (`python3 -m app down`, as the README says, after `up`)."""

import sys

if len(sys.argv) > 1 and sys.argv[1] in ("up", "test"):
    from app.bootstrap import main as bootstrap_main

    sys.exit(bootstrap_main(sys.argv[1:]))

from app.bootstrap import run_in_venv_if_needed  # noqa: E402

run_in_venv_if_needed(sys.argv[1:])

from app.cli import main  # noqa: E402

sys.exit(main(sys.argv[1:]))
