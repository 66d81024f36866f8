"""Phone numbers as people write them ("98765 43210", "+91-98765-43210", "098765 43210"),
stored one way: E.164, "+919876543210". SMS gateways and the duplicate check then compare like
with like (issue 13)."""

from __future__ import annotations

import re

_SEPARATORS = re.compile(r"[\s\-().]")
INDIAN_MOBILE = re.compile(r"^[6-9][0-9]{9}$")
HINT = "a 10-digit mobile number (spaces, dashes, +91 or a leading 0 are fine)"


def normalise_phone(raw: str) -> str | None:
    """The number in E.164, or None when it is not a phone number we can text.

    Without a country code a number is Indian: ten digits starting 6-9, optionally after 0,
    91 or 0091. Another country's number needs its "+" and code."""
    text = _SEPARATORS.sub("", raw.strip())
    if text.startswith("+"):
        digits = text[1:]
        if not digits.isdigit():
            return None
        if digits.startswith("91"):
            return "+" + digits if INDIAN_MOBILE.match(digits[2:]) else None
        return "+" + digits if 8 <= len(digits) <= 14 else None
    if not text.isdigit():
        return None
    for prefix in ("0091", "91", "0"):
        if text.startswith(prefix) and INDIAN_MOBILE.match(text[len(prefix):]):
            return "+91" + text[len(prefix):]
    return "+91" + text if INDIAN_MOBILE.match(text) else None


def phone_digits(raw: str) -> str:
    """Only the digits: for searching by any part of a number."""
    return re.sub(r"\D", "", raw)
