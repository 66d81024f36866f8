"""Patient notifications: the outbox dispatcher (dispatcher.py) and its providers (providers.py).

Rows are written by enqueue_notification() in sql/functions.sql, in the same transaction as the
token change that causes them; this package only sends them (docs/operations.md, Notifications).
"""
