"""`python -m app ...`: `up` and `test` bootstrap a virtualenv first (standard library only);
every other command needs the installed dependencies."""

import sys

if len(sys.argv) > 1 and sys.argv[1] in ("up", "test"):
    from app.bootstrap import main as bootstrap_main

    sys.exit(bootstrap_main(sys.argv[1:]))

from app.cli import main  # noqa: E402

sys.exit(main(sys.argv[1:]))
