"""The key that signs cookies: OPD_SECRET_KEY, else one generated once and kept in var/."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from app.settings import Settings


def secret_key(settings: Settings) -> str:
    if settings.secret_key:
        return str(settings.secret_key)
    path = Path(settings.var_dir) / "secret_key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_urlsafe(48))
    return path.read_text().strip()
