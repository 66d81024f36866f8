"""The layers hold (issue 16): the API, the live pipe and the pages do not import each other, and
nothing below them (identity, the database, messages, settings) imports any of the three. What
they share lives below: app/errors.py, app/security/, app/phones.py, app/jsonutil.py. Only the
wiring at the top (app/main.py, app/cli.py) sees everything."""

from __future__ import annotations

import ast
from pathlib import Path

from app.settings import REPO_ROOT

APP = REPO_ROOT / "app"
LAYERS = ("api", "live", "web")
TOP = {"main.py", "cli.py", "__main__.py"}


def imported_app_modules(path: Path) -> set[str]:
    """The app modules a file imports at run time (those under `if TYPE_CHECKING:` are only
    annotations, not a dependency)."""
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
            return
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("app."):
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name.startswith("app."))
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(path.read_text()))
    return found


def layer_of(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in LAYERS else None


def test_the_api_the_live_pipe_and_the_pages_do_not_import_each_other() -> None:
    crossings = []
    for layer in LAYERS:
        for path in (APP / layer).rglob("*.py"):
            for module in imported_app_modules(path):
                other = layer_of(module)
                if other is not None and other != layer:
                    crossings.append(f"{path.relative_to(REPO_ROOT)} imports {module}")
    assert not crossings, "\n".join(crossings)


def test_nothing_below_the_layers_imports_them() -> None:
    upward = []
    for path in APP.rglob("*.py"):
        relative = path.relative_to(APP)
        if relative.parts[0] in LAYERS or (len(relative.parts) == 1 and relative.name in TOP):
            continue
        for module in imported_app_modules(path):
            if layer_of(module) is not None:
                upward.append(f"{path.relative_to(REPO_ROOT)} imports {module}")
    assert not upward, "\n".join(upward)
