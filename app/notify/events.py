"""The events a patient is told about, in the order the admin page lists them."""

MESSAGE_EVENTS = ["TOKEN_CREATED", "T_MINUS_3", "CALL_NOW", "DELAYED", "RESCHEDULED", "CANCELLED"]
