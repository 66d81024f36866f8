-- The notification dispatcher's queries (app/notify/dispatcher.py). Rows are written PENDING by
-- enqueue_notification() in sql/functions.sql; these send them on and record what happened.
-- Their times are opd_now(), like the rows' own: under a demo's or test's clock (`up --clock`)
-- a message due "now" was never claimed while the claim compared it with the real now().

-- name: claim_due_notifications
-- Takes up to $1 due messages and moves their next_attempt_at $2 seconds ahead: that lease keeps
-- every other dispatcher off them until this one has recorded a result, or has died and the lease
-- has run out (then they are sent again, with the same idempotency key). What each message
-- carries comes from the view outbox_messages (sql/functions.sql); the claim changes none of it.
WITH due AS (
    SELECT notification_id FROM notifications_log
    WHERE delivery_status = 'PENDING' AND next_attempt_at <= opd_now()
    ORDER BY next_attempt_at, created_at
    LIMIT $1
    FOR UPDATE SKIP LOCKED
), claimed AS (
    UPDATE notifications_log n
    SET next_attempt_at = opd_now() + make_interval(secs => $2)
    FROM due
    WHERE n.notification_id = due.notification_id
    RETURNING n.notification_id
)
SELECT m.* FROM outbox_messages m JOIN claimed USING (notification_id);

-- name: record_notification_results
-- One statement for a whole claimed batch: $1 ids, $2 results (SENT, RETRY, FAILED), $3 the
-- provider's message ids, $4 reasons, $5 seconds until the retry. Only PENDING rows: a delivery
-- receipt may already have arrived while the send was in flight. On a retry the last error stays
-- in failed_reason while the row waits, so operators can see why.
UPDATE notifications_log n
SET delivery_status = CASE r.result WHEN 'RETRY' THEN n.delivery_status ELSE r.result END,
    external_id = CASE r.result WHEN 'SENT' THEN r.external_id ELSE n.external_id END,
    sent_at = CASE r.result WHEN 'SENT' THEN opd_now() ELSE n.sent_at END,
    failed_reason = CASE r.result WHEN 'SENT' THEN NULL ELSE r.reason END,
    retry_count = n.retry_count + CASE r.result WHEN 'RETRY' THEN 1 ELSE 0 END,
    next_attempt_at = CASE r.result WHEN 'RETRY' THEN opd_now() + make_interval(secs => r.retry_in_s)
                                    ELSE n.next_attempt_at END
FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::float8[])
     AS r(notification_id, result, external_id, reason, retry_in_s)
WHERE n.notification_id = r.notification_id AND n.delivery_status = 'PENDING';

-- name: lock_notification_by_id
SELECT notification_id, delivery_status FROM notifications_log
WHERE notification_id = $1
FOR UPDATE;

-- name: lock_notifications_by_external_id
-- external_id is the provider's message id; two rows sharing one (two providers) is refused.
SELECT notification_id, delivery_status FROM notifications_log
WHERE external_id = $1
LIMIT 2
FOR UPDATE;

-- name: record_delivery_receipt
-- A receipt can beat the dispatcher's own "sent" update, so sent_at is filled in if missing.
UPDATE notifications_log
SET delivery_status = $2::text,
    sent_at = COALESCE(sent_at, opd_now()),
    delivered_at = CASE WHEN $2::text = 'DELIVERED' THEN opd_now() END,
    failed_reason = CASE WHEN $2::text = 'FAILED' THEN $3 ELSE failed_reason END
WHERE notification_id = $1
RETURNING notification_id, delivery_status;

-- name: publish_public_url
-- enqueue_notification() builds tracking links from this value.
INSERT INTO app_settings (key, value) VALUES ('public_url', $1)
ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, updated_at = now()
WHERE app_settings.value IS DISTINCT FROM EXCLUDED.value;

-- name: registration_problems
-- Every hospital's registered message texts that would not pass their checks now.
SELECT h.code, r.event_type, r.language, r.channel, p.problems
FROM message_registrations r JOIN hospitals h USING (hospital_id),
     LATERAL (SELECT message_registration_problems(r.channel, r.body,
                  (SELECT value FROM app_settings WHERE key = 'public_url')) AS problems) p
WHERE cardinality(p.problems) > 0;

-- name: drop_push_subscriptions
-- Subscriptions the push service says are gone (404 or 410): the browser unsubscribed, the
-- permission was revoked or the subscription expired. $1 endpoints.
DELETE FROM push_subscriptions WHERE endpoint = ANY($1::text[]);

-- name: vapid_private_key
-- The shared generated VAPID key: $1 a freshly generated PEM, kept only if no process stored one
-- first; every caller gets the one stored.
WITH stored AS (
    INSERT INTO web_push_vapid (private_key_pem) VALUES ($1) ON CONFLICT (singleton) DO NOTHING
    RETURNING private_key_pem
)
SELECT private_key_pem FROM stored
UNION ALL
SELECT private_key_pem FROM web_push_vapid
LIMIT 1;
