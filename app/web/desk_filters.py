"""The statuses the reception desk filters by (a module of its own: the reception page and the
desk list both use it, and pages.py must not import desk.py, which imports pages.py)."""

STATUSES = ("BOOKED", "CHECKED_IN", "WAITING", "IN_CONSULTATION", "COMPLETED", "NO_SHOW", "CANCELLED",
            "RESCHEDULED")
