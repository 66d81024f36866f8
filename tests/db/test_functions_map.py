"""sql/functions.sql keeps its map: the contents at the top list its sections in order, and old
function signatures are dropped by migrations, not there (issue 16)."""

from __future__ import annotations

import re

from app.settings import REPO_ROOT

FUNCTIONS_SQL = (REPO_ROOT / "sql" / "functions.sql").read_text()


def test_the_contents_list_every_section_in_order() -> None:
    sections = re.findall(r"^-- (.+?) -{3,}$", FUNCTIONS_SQL, re.MULTILINE)
    contents = FUNCTIONS_SQL.split("-- Contents", 1)[1].split("\n--\n", 1)[0]
    listed = re.findall(r"^--   (.+)$", contents, re.MULTILINE)
    assert listed == sections


def test_every_drop_function_there_recreates_its_function() -> None:
    """A DROP FUNCTION left in functions.sql must be of a current signature (dropped so that its
    result type can change); an old signature's drop belongs in a migration."""
    for name, args in re.findall(r"^DROP FUNCTION IF EXISTS (\w+)\(([^)]*)\)", FUNCTIONS_SQL, re.MULTILINE):
        created = re.search(rf"^CREATE OR REPLACE FUNCTION {name}\(", FUNCTIONS_SQL, re.MULTILINE)
        assert created, f"DROP FUNCTION {name}({args}) without a CREATE: move it to a migration"
