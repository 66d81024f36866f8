"""Every setting the app reads is declared once in app/settings.py, and docs/operations.md's table
is exactly what that declaration generates (STYLE: a test that fails when a setting is
undocumented, or documented with another default)."""

import re
from pathlib import Path

import pytest

from app.settings import DOCUMENTED_SETTINGS, REPO_ROOT, settings_table

OPERATIONS_DOC = REPO_ROOT / "docs" / "operations.md"


def test_the_operations_doc_has_the_generated_settings_table() -> None:
    text = OPERATIONS_DOC.read_text()
    begin = text.index("<!-- settings table:")
    table = text[text.index("\n", begin) + 1:text.index("<!-- end of the settings table -->")].strip()
    assert table == settings_table(), (
        "docs/operations.md's settings table differs from app/settings.py: paste the output of "
        "`python -m app settings-table` between the markers")


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


def test_a_setting_that_is_not_a_number_is_refused_by_name(monkeypatch: pytest.MonkeyPatch) -> None:
    from app.settings import Settings

    monkeypatch.setenv("OPD_DB_WAIT_S", "two")
    with pytest.raises(ValueError, match="OPD_DB_WAIT_S must be a number, not 'two'"):
        Settings.from_env()


def test_values_are_read_by_their_declared_kind(monkeypatch: pytest.MonkeyPatch) -> None:
    from app.settings import Secret, Settings

    monkeypatch.setenv("OPD_NOTIFY_PROVIDER", " MSG91, WhatsApp ")
    monkeypatch.setenv("OPD_NOTIFY_COUNTRY_CODE", "+44")
    monkeypatch.setenv("OPD_WORKERS", "3")
    monkeypatch.setenv("OPD_METRICS_TOKEN", "t0ken")
    monkeypatch.setenv("OPD_TRUSTED_PROXIES", "10.0.0.1, 10.0.0.2")
    monkeypatch.setenv("OPD_LOG_LEVEL", "")   # empty: the default
    settings = Settings.from_env()
    assert settings.notify_provider == ("msg91", "whatsapp") and settings.notify_country_code == "44"
    assert settings.workers == 3 and settings.trusted_proxies == ("10.0.0.1", "10.0.0.2")
    assert isinstance(settings.metrics_token, Secret) and "t0ken" not in repr(settings)
    assert settings.log_level == "INFO"
