"""docs/api.md lists every operation the app registers, and nothing it does not: the table is
checked against the same registry that routes, validates and builds /openapi.json."""

from __future__ import annotations

import re

from app.api.registry import api
from app.main import create_app
from app.settings import REPO_ROOT

ROW = re.compile(r"^\| `(GET|POST|PUT|PATCH|DELETE) (/api/v[0-9]/[^`]*)` \|", re.MULTILINE)


def test_the_endpoint_table_is_the_registry() -> None:
    create_app()   # every operation module registered
    documented = set(ROW.findall((REPO_ROOT / "docs" / "api.md").read_text()))
    registered = {(op.method, op.full_path) for op in api.operations}
    assert sorted(registered - documented) == [], "registered but not in docs/api.md"
    assert sorted(documented - registered) == [], "in docs/api.md but not registered"
