"""Every setting the app reads is documented in docs/operations.md (STYLE: a test that fails when
a setting is undocumented)."""

import re
from pathlib import Path

import pytest

from app.settings import DOCUMENTED_SETTINGS, REPO_ROOT

OPERATIONS_DOC = REPO_ROOT / "docs" / "operations.md"


def test_every_setting_is_in_the_operations_doc() -> None:
    text = OPERATIONS_DOC.read_text()
    missing = [name for name in DOCUMENTED_SETTINGS if f"`{name}`" not in text]
    assert not missing, f"settings missing from docs/operations.md: {missing}"


def test_every_environment_variable_read_is_a_documented_setting() -> None:
    source = "\n".join(p.read_text() for p in Path(REPO_ROOT / "app").rglob("*.py"))
    read = set(re.findall(r"""(?:environ\.get\(|_int\(|_float\(|_bool\(|_str\()\s*["']([A-Z][A-Z0-9_]+)["']""",
                          source))
    read |= set(re.findall(r"""environ\[["']([A-Z][A-Z0-9_]+)["']\]""", source))
    undocumented = sorted(read - set(DOCUMENTED_SETTINGS))
    assert not undocumented, f"read but not in DOCUMENTED_SETTINGS: {undocumented}"


def test_engine_setting_refuses_unknown_values(monkeypatch: pytest.MonkeyPatch) -> None:
    from app.settings import Settings

    monkeypatch.setenv("OPD_ENGINE", "Off ")
    assert Settings.from_env().engine == "off"
    monkeypatch.setenv("OPD_ENGINE", "sometimes")
    with pytest.raises(ValueError, match="OPD_ENGINE must be one of auto, off"):
        Settings.from_env()
