-- Every function, trigger and view of OPD Queue Board. Applied on every `db upgrade`, so each
-- statement is written to be re-applied (CREATE OR REPLACE, DROP ... IF EXISTS).
--
-- Errors raised here carry our own SQLSTATEs so the API can map them without parsing text:
--   OPD10 illegal transition or state conflict  -> 409
--   OPD11 a day or session is full              -> 409
--   OPD12 nobody is waiting                     -> 409
--   OPD13 outside the hospital's geofence       -> 422
--   OPD14 doctor not on shift / on a break      -> 409
--   OPD15 not found                             -> 404
--   OPD16 invalid input                         -> 422
--
-- One convention for SQL called from Python: a lifecycle step or a read the API, the engine or
-- the dispatcher makes is a function here, called as `SELECT ... FROM fn(...)`; short one-off
-- reads stay inline beside their caller, and the dispatcher's statements are named queries in
-- sql/queries/. Functions are grouped by what they serve; old signatures are dropped by
-- migrations (sql/migrations/009_old_function_signatures.sql), not here.
--
-- The entry points of a click and of the engine's recompute (the lifecycle steps, doctor_live_views,
-- write_back_queues) carry `SET plan_cache_mode = force_generic_plan`, which holds for everything
-- they call. The app's pooled sessions set it too (app/db/pool.py); here it also holds for a
-- session opened any other way (behind PgBouncer with the startup parameter dropped, a tool).
-- Their statements read the partitioned tokens table, and PostgreSQL may otherwise plan them
-- afresh at every call: without fresh statistics (a new install, a month's new partition before
-- autovacuum analyzes it) doctor_live_views took 5.7 ms against 1.9 ms with generic plans; with
-- custom plans forced on analyzed tables, 14.6 ms against 2.0 ms (bench/sql_costs.py).
--
-- Contents (each a section below, in this order; tests/db/test_functions_map.py keeps the list true):
--   Time
--   Partitions
--   Geofence
--   Default message texts
--   Messages as registered (docs/operations.md, "Sending messages in India")
--   The patient's tracker: push subscriptions and running late
--   Messages: WhatsApp replies, consent, the outbox and its preview
--   Token triggers
--   The lifecycle
--   Queue and ETA
--   Views
--   Operations: doctor leave and redistribution
--   Operations: bottleneck alerts
--   Operations: daily doctor metrics
--   Operations: archive
--   Operations: the live dashboard and department rebalancing
--   Queue engine support
--   Queue engine leadership (sql/migrations/003_engine_lease.sql)
--   Queue engine shards (sql/migrations/010_engine_members.sql)
--   Roster
--   Patient search
--   ABDM Scan & Share (sql/migrations/011_abdm_scan_share.sql)
--

-- Time ---------------------------------------------------------------------------------------
-- The one clock of the database. Two test seams, never set in production:
--   opd.fake_now      a fixed instant (a test that needs the clock to stand still);
--   opd.clock_offset  an interval added to the real clock, so time still flows but the day is
--                     another one (the suite's calendar runs, `OPD_CLOCK_OFFSET_S`; app/clock.py).
CREATE OR REPLACE FUNCTION opd_now() RETURNS TIMESTAMPTZ
LANGUAGE sql STABLE AS $$
    SELECT COALESCE(NULLIF(current_setting('opd.fake_now', true), '')::timestamptz,
                    now() + COALESCE(NULLIF(current_setting('opd.clock_offset', true), '')::interval,
                                     interval '0'))
$$;

-- Like opd_now() but the current moment, not the transaction's start.
CREATE OR REPLACE FUNCTION opd_clock() RETURNS TIMESTAMPTZ
LANGUAGE sql VOLATILE AS $$
    SELECT COALESCE(NULLIF(current_setting('opd.fake_now', true), '')::timestamptz,
                    clock_timestamp() + COALESCE(NULLIF(current_setting('opd.clock_offset', true), '')::interval,
                                                 interval '0'))
$$;

-- The small lookups below are PL/pgSQL, not SQL functions: a SQL function that reads a table
-- cannot be inlined, and is planned again at every statement that calls it, while PL/pgSQL
-- keeps its statements' plans for the session. They run several times per click (perf showed
-- the planning; docs/performance.md).
CREATE OR REPLACE FUNCTION hospital_today(p_hospital_id UUID) RETURNS DATE
LANGUAGE plpgsql STABLE AS $$
DECLARE
    v_day DATE;
BEGIN
    SELECT (opd_now() AT TIME ZONE h.timezone)::date INTO v_day FROM hospitals h
    WHERE h.hospital_id = p_hospital_id;
    RETURN v_day;
END $$;

-- A hospital-local date and wall-clock time as an absolute instant.
CREATE OR REPLACE FUNCTION hospital_local_time(p_hospital_id UUID, p_day DATE, p_time TIME)
RETURNS TIMESTAMPTZ
LANGUAGE plpgsql STABLE AS $$
DECLARE
    v_at TIMESTAMPTZ;
BEGIN
    SELECT (p_day + p_time) AT TIME ZONE h.timezone INTO v_at FROM hospitals h
    WHERE h.hospital_id = p_hospital_id;
    RETURN v_at;
END $$;

-- How far ahead a token can be booked.
CREATE OR REPLACE FUNCTION booking_horizon_days() RETURNS INT
LANGUAGE sql IMMUTABLE AS $$ SELECT 92 $$;

-- Minutes an online booking may be late and still keep its slot's place in the queue.
CREATE OR REPLACE FUNCTION online_grace_minutes() RETURNS INT
LANGUAGE sql IMMUTABLE AS $$ SELECT 15 $$;

-- Partitions ----------------------------------------------------------------------------------
-- Creates the monthly partition of p_table holding p_day, unless it exists. Safe to call
-- concurrently: a transaction-level advisory lock serialises creators.
CREATE OR REPLACE FUNCTION create_partition_if_not_exists(p_table TEXT, p_day DATE)
RETURNS TEXT
LANGUAGE plpgsql AS $$
DECLARE
    v_start DATE := date_trunc('month', p_day)::date;
    v_end DATE := (date_trunc('month', p_day) + INTERVAL '1 month')::date;
    v_name TEXT := format('%s_%s', p_table, to_char(v_start, 'YYYY_MM'));
BEGIN
    IF p_table <> 'tokens' THEN
        RAISE EXCEPTION 'only tokens is partitioned, not %', p_table USING ERRCODE = 'OPD16';
    END IF;
    IF to_regclass(v_name) IS NOT NULL THEN
        RETURN NULL;
    END IF;
    PERFORM pg_advisory_xact_lock(hashtext('opd.create_partition'));
    -- Re-check with a catalog query: to_regclass may answer from this backend's stale cache.
    IF EXISTS (SELECT 1 FROM pg_class WHERE relname = v_name
               AND relnamespace = current_schema()::regnamespace) THEN
        RETURN NULL;
    END IF;
    BEGIN
        -- Free space on every page lets the engine's position/ETA write-backs (no indexed column
        -- changes) be HOT updates: no index maintenance on the hottest path.
        EXECUTE format('CREATE TABLE %I PARTITION OF %I FOR VALUES FROM (%L) TO (%L) WITH (fillfactor = 70)',
                       v_name, p_table, v_start, v_end);
    EXCEPTION WHEN duplicate_table THEN
        RETURN NULL;
    END;
    RETURN v_name;
END $$;

-- This month and the next p_months_ahead months, by the earliest time zone (today anywhere).
CREATE OR REPLACE FUNCTION ensure_token_partitions(p_months_ahead INT DEFAULT 2)
RETURNS TEXT[]
LANGUAGE plpgsql AS $$
DECLARE
    v_created TEXT[] := '{}';
    v_name TEXT;
    v_base DATE := (opd_now() AT TIME ZONE 'UTC')::date - 1;
BEGIN
    FOR i IN 0..p_months_ahead LOOP
        v_name := create_partition_if_not_exists('tokens',
                                                 (date_trunc('month', v_base) + make_interval(months => i))::date);
        IF v_name IS NOT NULL THEN
            v_created := v_created || v_name;
        END IF;
    END LOOP;
    RETURN v_created;
END $$;

-- Who is acting: the API sets these per transaction (set_config(..., true)); plain SQL leaves
-- them empty and the audit row says so.
CREATE OR REPLACE FUNCTION opd_set_actor(p_actor UUID, p_reason TEXT) RETURNS VOID
LANGUAGE sql AS $$
    SELECT set_config('opd.actor_id', COALESCE(p_actor::text, ''), true),
           set_config('opd.reason', COALESCE(left(p_reason, 255), ''), true);
$$;

CREATE OR REPLACE FUNCTION opd_actor() RETURNS UUID
LANGUAGE sql STABLE AS $$ SELECT NULLIF(current_setting('opd.actor_id', true), '')::uuid $$;

CREATE OR REPLACE FUNCTION opd_reason() RETURNS TEXT
LANGUAGE sql STABLE AS $$ SELECT NULLIF(current_setting('opd.reason', true), '') $$;

-- The HTTP request an action came from (its X-Request-ID, app/logs.py), for the audit trail: the
-- API passes its actor argument through opd_request_actor(actor, request id), which notes the
-- request for this transaction and returns the actor. An argument is evaluated before its
-- function runs, so the note is there when the token trigger writes token_history (its
-- metadata.request_id joins the audit row to the request's log lines).
CREATE OR REPLACE FUNCTION opd_request_actor(p_actor UUID, p_request_id TEXT) RETURNS UUID
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM set_config('opd.request_id', COALESCE(left(p_request_id, 64), ''), true);
    RETURN p_actor;
END $$;

CREATE OR REPLACE FUNCTION opd_request_id() RETURNS TEXT
LANGUAGE sql STABLE AS $$ SELECT NULLIF(current_setting('opd.request_id', true), '') $$;

-- The channel an action came through when it is not a person or a key (the ABDM gateway's Scan &
-- Share): set for the transaction, written by the token trigger as token_history.metadata.via.
CREATE OR REPLACE FUNCTION opd_set_via(p_via TEXT) RETURNS VOID
LANGUAGE sql AS $$ SELECT set_config('opd.via', COALESCE(left(p_via, 64), ''), true) $$;

CREATE OR REPLACE FUNCTION opd_via() RETURNS TEXT
LANGUAGE sql STABLE AS $$ SELECT NULLIF(current_setting('opd.via', true), '') $$;

-- Geofence ------------------------------------------------------------------------------------
-- Great-circle distance in metres (earthdistance's sphere).
CREATE OR REPLACE FUNCTION distance_to_hospital_m(p_hospital_id UUID, p_lat NUMERIC, p_lon NUMERIC)
RETURNS DOUBLE PRECISION
LANGUAGE sql STABLE AS $$
    SELECT earth_distance(ll_to_earth(h.latitude, h.longitude), ll_to_earth(p_lat, p_lon))
    FROM hospitals h WHERE h.hospital_id = p_hospital_id
$$;

-- Inside means within geofence_radius; half a metre of slack so a point computed to lie exactly
-- on the circle is not refused for floating-point rounding (phone GPS is far coarser anyway).
CREATE OR REPLACE FUNCTION is_inside_geofence(p_hospital_id UUID, p_lat NUMERIC, p_lon NUMERIC)
RETURNS BOOLEAN
LANGUAGE sql STABLE AS $$
    SELECT distance_to_hospital_m(p_hospital_id, p_lat, p_lon) <= h.geofence_radius + 0.5
    FROM hospitals h WHERE h.hospital_id = p_hospital_id
$$;

-- The doctor's shift on a day: the one covering p_at, else the next to start, else the last.
CREATE OR REPLACE FUNCTION doctor_shift(p_doctor_id UUID, p_day DATE, p_at TIMESTAMPTZ)
RETURNS cabin_doctors
LANGUAGE plpgsql STABLE AS $$
DECLARE
    v_shift cabin_doctors;  -- stays NULL when the doctor has no shift that day
BEGIN
    SELECT cd.* INTO v_shift
    FROM cabin_doctors cd
    JOIN doctors d ON d.doctor_id = cd.doctor_id
    WHERE cd.doctor_id = p_doctor_id AND cd.shift_date = p_day AND cd.status <> 'CANCELLED'
    ORDER BY
        (p_at < hospital_local_time(d.hospital_id, p_day, cd.shift_end_time)) DESC,
        cd.shift_start_time
    LIMIT 1;
    RETURN v_shift;
END $$;

-- Default message texts ----------------------------------------------------------------------
INSERT INTO notification_templates (event_type, language, body) VALUES
    ('TOKEN_CREATED', 'en', '{hospital}: your token is {token} for {doctor} ({department}). Follow your turn live: {link}'),
    ('TOKEN_CREATED', 'hi', '{hospital}: आपका टोकन {token} है, {doctor} ({department})। अपनी बारी लाइव देखें: {link}'),
    ('T_MINUS_3', 'en', '{hospital}: token {token}, your turn is near ({position} in line, in {low}-{high} min). Please be near cabin {cabin}.'),
    ('T_MINUS_3', 'hi', '{hospital}: टोकन {token}, आपकी बारी नज़दीक है (क्रम {position}, {low}-{high} मिनट में)। कृपया केबिन {cabin} के पास रहें।'),
    ('CALL_NOW', 'en', '{hospital}: token {token}, please go to cabin {cabin} now.'),
    ('CALL_NOW', 'hi', '{hospital}: टोकन {token}, कृपया अभी केबिन {cabin} में जाएँ।'),
    ('DELAYED', 'en', '{hospital}: token {token} is delayed; now expected by {by} (in {low}-{high} min). Live status: {link}'),
    ('DELAYED', 'hi', '{hospital}: टोकन {token} में देरी है; अब {by} तक ({low}-{high} मिनट में)। लाइव स्थिति: {link}'),
    ('RESCHEDULED', 'en', '{hospital}: your visit moved to {time}; new token {token} for {doctor}. {link}'),
    ('RESCHEDULED', 'hi', '{hospital}: आपकी मुलाक़ात {time} पर बदली गई; नया टोकन {token}, {doctor}। {link}'),
    ('CANCELLED', 'en', '{hospital}: token {token} was cancelled. Please contact the reception desk.'),
    ('CANCELLED', 'hi', '{hospital}: टोकन {token} रद्द कर दिया गया। कृपया रिसेप्शन से संपर्क करें।')
ON CONFLICT (event_type, language) DO UPDATE SET body = EXCLUDED.body;

-- Messages as registered (docs/operations.md, "Sending messages in India") ------------------------
-- The {variables} a message text may use.
CREATE OR REPLACE FUNCTION message_known_variables() RETURNS TEXT[]
LANGUAGE sql IMMUTABLE AS $$
    SELECT ARRAY['hospital', 'token', 'doctor', 'department', 'cabin', 'time', 'link', 'code',
                 'position', 'eta', 'low', 'high', 'by']
$$;

-- The longest value a DLT content template's {#var#} carries: longer values are cut to it, so
-- the text still matches the registered template (a gateway would refuse the whole message).
CREATE OR REPLACE FUNCTION sms_variable_max_chars() RETURNS INT
LANGUAGE sql IMMUTABLE AS $$ SELECT 30 $$;

-- The {variables} of a text in order of appearance: a WhatsApp template's body parameters.
CREATE OR REPLACE FUNCTION message_variables(p_body TEXT) RETURNS TEXT[]
LANGUAGE sql IMMUTABLE AS $$
    SELECT COALESCE(array_agg(r.m[1] ORDER BY r.n), '{}')
    FROM regexp_matches(p_body, '\{([a-z_]+)\}', 'g') WITH ORDINALITY AS r(m, n)
$$;

-- A text with its variables filled in, and the values in order ([{name, value}]).
CREATE OR REPLACE FUNCTION render_message(p_body TEXT, p_vars JSONB, p_max_chars INT DEFAULT NULL,
                                          OUT text TEXT, OUT variables JSONB)
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    v_name TEXT;
    v_value TEXT;
BEGIN
    text := p_body;
    variables := '[]';
    FOREACH v_name IN ARRAY message_variables(p_body) LOOP
        v_value := COALESCE(p_vars ->> v_name, '');
        IF p_max_chars IS NOT NULL THEN
            v_value := left(v_value, p_max_chars);
        END IF;
        text := replace(text, '{' || v_name || '}', v_value);
        variables := variables || jsonb_build_array(jsonb_build_object('name', v_name, 'value', v_value));
    END LOOP;
END $$;

-- What is wrong with a text a hospital wants to register (empty: nothing). For SMS, what DLT
-- checks: at least 30 % fixed text (each variable counted at its longest), and every URL in the
-- fixed text under the hospital's public URL (the one whitelisted on the DLT portal; unlisted
-- URLs are blocked since 1 October 2024), so a link is that URL followed by {code}.
CREATE OR REPLACE FUNCTION message_registration_problems(p_channel TEXT, p_body TEXT, p_public_url TEXT)
RETURNS TEXT[]
LANGUAGE plpgsql STABLE AS $$
DECLARE
    v_problems TEXT[] := '{}';
    v_vars TEXT[] := message_variables(p_body);
    v_fixed INT := length(regexp_replace(p_body, '\{[a-z_]+\}', '', 'g'));
    v_unknown TEXT;
    v_share DOUBLE PRECISION;
    v_url TEXT;
BEGIN
    IF btrim(COALESCE(p_body, '')) = '' THEN
        RETURN ARRAY['the text is empty'];
    END IF;
    SELECT string_agg(DISTINCT '{' || v || '}', ', ') INTO v_unknown
    FROM unnest(v_vars) v WHERE v <> ALL (message_known_variables());
    IF v_unknown IS NOT NULL THEN
        v_problems := v_problems || format('unknown variables %s; known: {%s}', v_unknown,
                                           array_to_string(message_known_variables(), '}, {'));
    END IF;
    IF p_channel = 'SMS' THEN
        v_share := v_fixed::float8 / GREATEST(v_fixed + cardinality(v_vars) * sms_variable_max_chars(), 1);
        IF v_share < 0.30 THEN
            v_problems := v_problems || format(
                'fixed text is %s%% of the message (each variable counted as %s characters); DLT needs at least 30%%',
                round(100 * v_share), sms_variable_max_chars());
        END IF;
        IF 'link' = ANY (v_vars) THEN
            v_problems := v_problems || format(
                'an SMS cannot carry {link} (DLT blocks URLs that are not whitelisted and fixed): write %s/t/{code}',
                COALESCE(NULLIF(p_public_url, ''), 'https://your-public-url'));
        END IF;
        FOR v_url IN SELECT m[1] FROM regexp_matches(p_body, '(https?://[^\s{]*)', 'g') AS m LOOP
            IF COALESCE(p_public_url, '') = '' OR position(p_public_url IN v_url) <> 1 THEN
                v_problems := v_problems || format(
                    'the URL %s is not under the hospital''s public URL %s (the one whitelisted on the DLT portal)',
                    v_url, COALESCE(NULLIF(p_public_url, ''), '(not set: OPD_PUBLIC_URL)'));
            END IF;
        END LOOP;
    END IF;
    RETURN v_problems;
END $$;

-- The patient's tracker: push subscriptions and running late ---------------------------------
-- The tracker's "Notify me when my turn is near" (app/notify/web_push.py): keeps the browser's
-- Web Push subscription for the token while it can still be called, at most p_max per token
-- (the oldest goes). An endpoint given again replaces its keys. False: the token is past that.
CREATE OR REPLACE FUNCTION store_push_subscription(p_token_id UUID, p_endpoint TEXT, p_p256dh TEXT,
                                                   p_auth TEXT, p_max INT) RETURNS BOOLEAN
LANGUAGE plpgsql AS $$
DECLARE
    v_visit_date DATE;
BEGIN
    SELECT visit_date INTO v_visit_date FROM tokens
    WHERE token_id = p_token_id AND status IN ('BOOKED', 'CHECKED_IN', 'WAITING')
    FOR SHARE;
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    INSERT INTO push_subscriptions (token_id, visit_date, endpoint, p256dh, auth, created_at)
    VALUES (p_token_id, v_visit_date, p_endpoint, p_p256dh, p_auth, clock_timestamp())
    ON CONFLICT (token_id, endpoint) DO UPDATE
        SET p256dh = EXCLUDED.p256dh, auth = EXCLUDED.auth, created_at = EXCLUDED.created_at;
    DELETE FROM push_subscriptions WHERE subscription_id IN (
        SELECT subscription_id FROM push_subscriptions WHERE token_id = p_token_id
        ORDER BY created_at DESC OFFSET p_max);
    RETURN true;
END $$;

-- The patient says, from the tracker, that they will be late: written to the token's history
-- (metadata running_late_minutes, until) for the reception desk to see. Their place is kept:
-- staff decide whether to call somebody else first. Only before the call.
CREATE OR REPLACE FUNCTION patient_running_late(p_token_id UUID, p_minutes INT) RETURNS TIMESTAMPTZ
LANGUAGE plpgsql AS $$
DECLARE
    v tokens := token_for_update(p_token_id);
    v_until TIMESTAMPTZ := opd_now() + make_interval(mins => p_minutes);
BEGIN
    IF v.status NOT IN ('BOOKED', 'CHECKED_IN') THEN
        RAISE EXCEPTION 'token % is %: it can no longer wait for you', v.token_number,
            replace(lower(v.status), '_', ' ') USING ERRCODE = 'OPD10';
    END IF;
    INSERT INTO token_history (token_id, visit_date, previous_status, new_status, change_reason, metadata, changed_at)
    VALUES (v.token_id, v.visit_date, v.status, v.status, format('patient: running late, about %s min', p_minutes),
            jsonb_build_object('running_late_minutes', p_minutes, 'until', v_until, 'source', 'tracker'), opd_now());
    RETURN v_until;
END $$;

-- Until when the patient said they would be late, if they said so and that is still ahead.
CREATE OR REPLACE FUNCTION token_running_late_until(p_token_id UUID) RETURNS TIMESTAMPTZ
LANGUAGE sql STABLE AS $$
    SELECT (h.metadata ->> 'until')::timestamptz FROM token_history h
    WHERE h.token_id = p_token_id AND h.metadata ? 'running_late_minutes'
      AND (h.metadata ->> 'until')::timestamptz > opd_now()
    ORDER BY h.changed_at DESC LIMIT 1
$$;

-- Messages: WhatsApp replies, consent, the outbox and its preview ----------------------------
-- The answer to a patient who wrote "STATUS" on WhatsApp: each of their open tokens of the day,
-- where it stands, as free text (they just wrote, so the 24-hour window is open). Returns the
-- number of replies written to the outbox.
CREATE OR REPLACE FUNCTION whatsapp_status_reply(p_phone TEXT) RETURNS INT
LANGUAGE plpgsql AS $$
DECLARE
    v RECORD;
    v_count INT := 0;
    v_state TEXT;
    v_link TEXT := COALESCE((SELECT value FROM app_settings WHERE key = 'public_url'), '') || '/t/';
BEGIN
    -- Position and range computed now (doctor_queue), not read from the last write-back.
    FOR v IN SELECT t.token_id, t.token_number, t.status, q.queue_position, q.eta_low_minutes, q.eta_high_minutes,
                    t.tracking_code, t.scheduled_time, p.patient_id, p.preferred_language AS lang, h.name AS hospital,
                    h.timezone, c.cabin_number
             FROM patients p JOIN tokens t ON t.patient_id = p.patient_id
             JOIN hospitals h ON h.hospital_id = t.hospital_id LEFT JOIN cabins c ON c.cabin_id = t.cabin_id
             LEFT JOIN LATERAL (SELECT x.queue_position, x.eta_low_minutes, x.eta_high_minutes
                                FROM doctor_queue(t.doctor_id, t.visit_date) x WHERE x.token_id = t.token_id) q ON true
             WHERE p.phone = p_phone AND p.whatsapp_opt_in AND t.visit_date = hospital_today(t.hospital_id)
               AND t.status IN ('BOOKED', 'CHECKED_IN', 'WAITING', 'IN_CONSULTATION') LOOP
        v_state := CASE
            WHEN v.status = 'CHECKED_IN' AND v.lang = 'hi' THEN
                format('कतार में %s वें, लगभग %s-%s मिनट में', v.queue_position, v.eta_low_minutes, v.eta_high_minutes)
            WHEN v.status = 'CHECKED_IN' THEN
                format('%s in line, expected in %s-%s min', v.queue_position, v.eta_low_minutes, v.eta_high_minutes)
            WHEN v.status = 'WAITING' AND v.lang = 'hi' THEN format('बुलाया गया — केबिन %s में जाएँ', v.cabin_number)
            WHEN v.status = 'WAITING' THEN format('called — please go to cabin %s', v.cabin_number)
            WHEN v.status = 'IN_CONSULTATION' AND v.lang = 'hi' THEN 'डॉक्टर के पास'
            WHEN v.status = 'IN_CONSULTATION' THEN 'with the doctor'
            WHEN v.lang = 'hi' THEN format('%s के लिए बुक; पहुँचकर चेक-इन करें',
                                           to_char(v.scheduled_time AT TIME ZONE v.timezone, 'HH24:MI'))
            ELSE format('booked for %s; check in when you arrive',
                        to_char(v.scheduled_time AT TIME ZONE v.timezone, 'HH24:MI')) END;
        INSERT INTO notifications_log (patient_id, token_id, channel, event_type, language, message,
                                       phone_number, next_attempt_at)
        VALUES (v.patient_id, v.token_id, 'WHATSAPP', 'STATUS_REPLY', v.lang,
                format('%s: %s %s — %s. %s', v.hospital, CASE v.lang WHEN 'hi' THEN 'टोकन' ELSE 'token' END,
                       v.token_number, v_state, v_link || v.tracking_code),
                p_phone, opd_now());
        v_count := v_count + 1;
    END LOOP;
    RETURN v_count;
END $$;

-- Consent is recorded as it changes, whichever path changed it (reception, the API, a WhatsApp
-- STOP): the source comes from the transaction's opd.consent_source, the actor from opd_actor().
CREATE OR REPLACE FUNCTION patients_record_consent() RETURNS TRIGGER
LANGUAGE plpgsql AS $$
DECLARE
    v_source TEXT := COALESCE(NULLIF(current_setting('opd.consent_source', true), ''), 'staff');
BEGIN
    IF (TG_OP = 'INSERT' AND NEW.sms_opt_in) OR (TG_OP = 'UPDATE' AND NEW.sms_opt_in <> OLD.sms_opt_in) THEN
        INSERT INTO consent_events (patient_id, channel, granted, source, actor, at)
        VALUES (NEW.patient_id, 'SMS', NEW.sms_opt_in, v_source, opd_actor(), opd_now());
    END IF;
    IF (TG_OP = 'INSERT' AND NEW.whatsapp_opt_in)
       OR (TG_OP = 'UPDATE' AND NEW.whatsapp_opt_in <> OLD.whatsapp_opt_in) THEN
        INSERT INTO consent_events (patient_id, channel, granted, source, actor, at)
        VALUES (NEW.patient_id, 'WHATSAPP', NEW.whatsapp_opt_in, v_source, opd_actor(), opd_now());
    END IF;
    RETURN NULL;
END $$;

DROP TRIGGER IF EXISTS patients_record_consent ON patients;
CREATE TRIGGER patients_record_consent AFTER INSERT OR UPDATE OF sms_opt_in, whatsapp_opt_in ON patients
    FOR EACH ROW EXECUTE FUNCTION patients_record_consent();

-- An ETA that moves later by more than this many minutes tells the patient (DELAYED).
CREATE OR REPLACE FUNCTION delay_notify_minutes() RETURNS INT
LANGUAGE sql IMMUTABLE AS $$ SELECT 20 $$;

-- Writes one outbox row per channel the patient opted in to, in the caller's transaction, so the
-- message exists exactly when the change that causes it commits. Once-per-token events
-- (TOKEN_CREATED, T_MINUS_3, RESCHEDULED, CANCELLED) are never written twice.
CREATE OR REPLACE FUNCTION enqueue_notification(p_token_id UUID, p_event TEXT, p_vars JSONB DEFAULT '{}')
RETURNS INT
LANGUAGE plpgsql AS $$
DECLARE
    v RECORD;
    v_default TEXT;
    v_vars JSONB;
    v_count INT := 0;
    v_channel TEXT;
    v_registered message_registrations;
    v_rendered RECORD;
BEGIN
    SELECT t.token_id, t.token_number, t.tracking_code, t.scheduled_time, t.hospital_id, p.patient_id, p.phone,
           p.preferred_language, p.sms_opt_in, p.whatsapp_opt_in, p.fcm_token,
           h.name AS hospital, h.timezone, h.dlt_pe_id, h.sms_service_implicit, d.name AS doctor,
           dep.name AS department, c.cabin_number
    INTO v
    FROM tokens t JOIN patients p ON p.patient_id = t.patient_id
    JOIN hospitals h ON h.hospital_id = t.hospital_id JOIN doctors d ON d.doctor_id = t.doctor_id
    JOIN departments dep ON dep.dept_id = t.dept_id LEFT JOIN cabins c ON c.cabin_id = t.cabin_id
    WHERE t.token_id = p_token_id;
    IF NOT FOUND THEN
        RETURN 0;
    END IF;
    SELECT body INTO v_default FROM notification_templates
    WHERE event_type = p_event AND language = v.preferred_language;
    v_vars := jsonb_build_object(
        'hospital', v.hospital, 'token', v.token_number, 'doctor', v.doctor,
        'department', v.department, 'cabin', COALESCE(v.cabin_number, '-'),
        'time', to_char(v.scheduled_time AT TIME ZONE v.timezone, 'DD Mon HH24:MI'),
        'code', v.tracking_code,
        'link', COALESCE((SELECT value FROM app_settings WHERE key = 'public_url'), '') || '/t/' || v.tracking_code
    ) || p_vars;
    FOREACH v_channel IN ARRAY ARRAY['SMS', 'WHATSAPP', 'PUSH'] LOOP
        -- Consent: nothing on a channel the patient did not agree to; SMS also when the
        -- hospital's DLT registration is "service implicit" (docs/operations.md).
        CONTINUE WHEN v_channel = 'SMS' AND NOT (v.sms_opt_in OR v.sms_service_implicit);
        CONTINUE WHEN v_channel = 'WHATSAPP' AND NOT v.whatsapp_opt_in;
        -- Push: the patient's app (fcm_token) or a tracker that asked to be notified (Web
        -- Push; the browser's permission prompt is the consent).
        CONTINUE WHEN v_channel = 'PUSH' AND v.fcm_token IS NULL
            AND NOT EXISTS (SELECT 1 FROM push_subscriptions s WHERE s.token_id = v.token_id);
        -- The hospital's registered text for this event, language and channel when there is
        -- one (an SMS's variables cut to what a DLT template carries), else the default text.
        SELECT * INTO v_registered FROM message_registrations r
        WHERE r.hospital_id = v.hospital_id AND r.event_type = p_event AND r.language = v.preferred_language
          AND r.channel = v_channel;
        IF FOUND THEN
            SELECT * INTO v_rendered FROM render_message(
                v_registered.body, v_vars, CASE WHEN v_channel = 'SMS' THEN sms_variable_max_chars() END);
        ELSE
            SELECT * INTO v_rendered FROM render_message(v_default, v_vars);
        END IF;
        INSERT INTO notifications_log (patient_id, token_id, channel, event_type, language, message,
                                       phone_number, next_attempt_at, variables, registration)
        VALUES (v.patient_id, v.token_id, v_channel, p_event, v.preferred_language, v_rendered.text,
                CASE WHEN v_channel <> 'PUSH' THEN v.phone END, opd_now(), v_rendered.variables,
                CASE WHEN v_registered.hospital_id IS NOT NULL THEN jsonb_build_object(
                    'body', v_registered.body, 'dlt_template_id', v_registered.dlt_template_id,
                    'sms_header', v_registered.sms_header, 'pe_id', v.dlt_pe_id,
                    'gateway_template_id', v_registered.gateway_template_id,
                    'wa_template_name', v_registered.wa_template_name, 'wa_language', v_registered.wa_language) END)
        ON CONFLICT (token_id, event_type, channel)
            WHERE event_type IN ('TOKEN_CREATED', 'T_MINUS_3', 'RESCHEDULED', 'CANCELLED')
        DO NOTHING;
        v_registered := NULL;
        v_count := v_count + 1;
    END LOOP;
    RETURN v_count;
END $$;

-- What the dispatcher hands a provider for each outbox row (app/notify/providers.py, Message):
-- the row, plus what its channel needs — an app's device token or the tracker's Web Push
-- subscriptions (newest first), the token's number and tracking code (a push notification's title
-- and the page a tap opens), and whether WhatsApp's 24-hour window is open (the patient wrote to
-- us within 24 h: free text allowed).
CREATE OR REPLACE VIEW outbox_messages AS
SELECT n.notification_id, n.patient_id, n.token_id, n.channel, n.event_type, n.language,
       n.message, n.phone_number, n.retry_count,
       CASE WHEN n.channel = 'PUSH' THEN p.fcm_token END AS push_token,
       CASE WHEN n.channel = 'PUSH' THEN (
           SELECT jsonb_agg(jsonb_build_object('endpoint', s.endpoint, 'p256dh', s.p256dh, 'auth', s.auth)
                            ORDER BY s.created_at DESC)
           FROM push_subscriptions s WHERE s.token_id = n.token_id) END AS web_push,
       CASE WHEN n.channel = 'PUSH' THEN (SELECT t.token_number FROM tokens t WHERE t.token_id = n.token_id)
           END AS token_number,
       CASE WHEN n.channel = 'PUSH' THEN (SELECT t.tracking_code FROM tokens t WHERE t.token_id = n.token_id)
           END AS tracking_code,
       n.variables, n.registration,
       n.channel = 'WHATSAPP' AND EXISTS (
           SELECT 1 FROM whatsapp_inbound w
           WHERE w.phone = n.phone_number AND w.received_at > now() - interval '24 hours') AS window_open
FROM notifications_log n JOIN patients p ON p.patient_id = n.patient_id;

-- The message of event p_event in p_language as the hospital's latest token would produce it on
-- every channel, for the admin's preview (app/notify/preview.py). The CALLER ROLLS BACK: this
-- writes outbox rows, consent and a sample push subscription so that enqueue_notification()
-- runs exactly as it does for real. The patient's phone is replaced by a sample number.
CREATE OR REPLACE FUNCTION preview_notification_rows(p_hospital_id UUID, p_event TEXT, p_language TEXT,
                                                     p_vars JSONB, p_endpoint TEXT, p_p256dh TEXT,
                                                     p_auth TEXT)
RETURNS SETOF outbox_messages
LANGUAGE plpgsql AS $$
DECLARE
    v_token RECORD;
BEGIN
    SELECT token_id, visit_date, patient_id INTO v_token FROM tokens
    WHERE hospital_id = p_hospital_id ORDER BY created_at DESC LIMIT 1;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    UPDATE patients SET sms_opt_in = true, whatsapp_opt_in = true, preferred_language = p_language,
                        phone = '+919800000001'
    WHERE patient_id = v_token.patient_id;
    INSERT INTO push_subscriptions (token_id, visit_date, endpoint, p256dh, auth)
    VALUES (v_token.token_id, v_token.visit_date, p_endpoint, p_p256dh, p_auth)
    ON CONFLICT DO NOTHING;
    -- Once-per-token events already sent would not be written again.
    DELETE FROM notifications_log WHERE token_id = v_token.token_id AND event_type = p_event;
    PERFORM enqueue_notification(v_token.token_id, p_event, p_vars);
    RETURN QUERY SELECT m.* FROM outbox_messages m JOIN notifications_log n USING (notification_id)
        WHERE n.token_id = v_token.token_id AND n.event_type = p_event
        ORDER BY array_position(ARRAY['SMS', 'WHATSAPP', 'PUSH'], n.channel::text);
END $$;

-- Token triggers ------------------------------------------------------------------------------
CREATE OR REPLACE FUNCTION queue_joined_at(p_booking_type TEXT, p_scheduled TIMESTAMPTZ,
                                           p_check_in TIMESTAMPTZ)
RETURNS TIMESTAMPTZ
LANGUAGE sql IMMUTABLE AS $$
    -- Fairness rule (docs/schema.md): an online booking that arrives by its slot plus the grace
    -- period queues from its slot time (arriving early does not jump the queue); arriving later,
    -- or walking in, queues from the arrival.
    SELECT CASE
        WHEN p_booking_type = 'ONLINE'
             AND p_check_in <= p_scheduled + make_interval(mins => online_grace_minutes())
        THEN p_scheduled
        ELSE p_check_in
    END
$$;

CREATE OR REPLACE FUNCTION tokens_before_insert() RETURNS TRIGGER
LANGUAGE plpgsql AS $$
DECLARE
    v_doctor doctors;
    v_dept departments;
    v_shift cabin_doctors;
    v_now TIMESTAMPTZ := opd_now();
    v_taken INT;
BEGIN
    SELECT * INTO v_doctor FROM doctors WHERE doctor_id = NEW.doctor_id AND hospital_id = NEW.hospital_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'doctor % does not exist in this hospital', NEW.doctor_id USING ERRCODE = 'OPD15';
    END IF;
    IF v_doctor.status <> 'ACTIVE' THEN
        RAISE EXCEPTION '% is %, not taking patients', v_doctor.name, lower(v_doctor.status)
            USING ERRCODE = 'OPD14';
    END IF;
    NEW.dept_id := COALESCE(NEW.dept_id, v_doctor.primary_dept_id);
    IF NEW.dept_id <> v_doctor.primary_dept_id THEN
        RAISE EXCEPTION '% does not work in that department', v_doctor.name USING ERRCODE = 'OPD16';
    END IF;
    NEW.scheduled_time := COALESCE(NEW.scheduled_time, v_now);
    NEW.visit_date := COALESCE(NEW.visit_date,
        (NEW.scheduled_time AT TIME ZONE (SELECT timezone FROM hospitals WHERE hospital_id = NEW.hospital_id))::date);
    IF NEW.visit_date < hospital_today(NEW.hospital_id) THEN
        RAISE EXCEPTION 'cannot issue a token for a past day (%)', NEW.visit_date USING ERRCODE = 'OPD16';
    END IF;

    IF doctor_on_leave(NEW.doctor_id, GREATEST(v_now, NEW.scheduled_time)) THEN
        RAISE EXCEPTION '% is away then (leave); choose another doctor', v_doctor.name USING ERRCODE = 'OPD14';
    END IF;
    v_shift := doctor_shift(NEW.doctor_id, NEW.visit_date, GREATEST(v_now, NEW.scheduled_time));
    IF v_shift.assignment_id IS NULL THEN
        RAISE EXCEPTION '% has no shift on %', v_doctor.name, NEW.visit_date USING ERRCODE = 'OPD14';
    END IF;
    NEW.cabin_id := COALESCE(NEW.cabin_id, v_shift.cabin_id);

    -- Numbering: the counter row is locked until this transaction ends, which also serialises
    -- concurrent issuers of one department, so the session count below is exact.
    INSERT INTO token_counters AS c (dept_id, visit_date, last_number)
    VALUES (NEW.dept_id, NEW.visit_date, 1)
    ON CONFLICT (dept_id, visit_date) DO UPDATE SET last_number = c.last_number + 1
    RETURNING last_number INTO NEW.serial;

    SELECT * INTO v_dept FROM departments WHERE dept_id = NEW.dept_id;
    IF NEW.serial > v_dept.max_tokens_per_day THEN
        RAISE EXCEPTION '% is full for %: all % tokens of the day are issued',
            v_dept.name, NEW.visit_date, v_dept.max_tokens_per_day USING ERRCODE = 'OPD11';
    END IF;
    SELECT count(*) INTO v_taken FROM tokens
    WHERE doctor_id = NEW.doctor_id AND visit_date = NEW.visit_date
      AND status NOT IN ('CANCELLED', 'RESCHEDULED');
    IF v_taken >= v_doctor.max_tokens_per_session THEN
        RAISE EXCEPTION '% is full for %: % of % tokens issued',
            v_doctor.name, NEW.visit_date, v_taken, v_doctor.max_tokens_per_session USING ERRCODE = 'OPD11';
    END IF;
    NEW.token_number := v_dept.code || '-' || lpad(NEW.serial::text, 3, '0');

    IF NEW.tracking_code IS NULL THEN
        -- 18 bytes: all of one v4 UUID (122 random bits) and two random bytes of another,
        -- 138 random bits in 24 URL-safe characters. (pgcrypto is not in every PostgreSQL build.)
        NEW.tracking_code := translate(encode(substring(
            uuid_send(gen_random_uuid()) || uuid_send(gen_random_uuid()) FROM 1 FOR 18), 'base64'),
            '+/', '-_');
    END IF;
    IF NEW.booking_type = 'EMERGENCY' THEN
        NEW.priority := 3;
    END IF;

    IF NEW.status NOT IN ('BOOKED', 'CHECKED_IN') THEN
        RAISE EXCEPTION 'a new token starts as BOOKED or CHECKED_IN, not %', NEW.status USING ERRCODE = 'OPD10';
    END IF;
    IF NEW.status = 'CHECKED_IN' THEN
        IF NEW.visit_date <> hospital_today(NEW.hospital_id) THEN
            RAISE EXCEPTION 'only today''s tokens can be checked in' USING ERRCODE = 'OPD10';
        END IF;
        -- Taken after the counter lock, so concurrent walk-ins join in token-number order.
        NEW.check_in_time := COALESCE(NEW.check_in_time, opd_clock());
        NEW.queue_joined_at := queue_joined_at(NEW.booking_type, NEW.scheduled_time, NEW.check_in_time);
    END IF;
    NEW.created_at := v_now;
    NEW.updated_at := v_now;
    RETURN NEW;
END $$;

CREATE OR REPLACE FUNCTION tokens_before_update() RETURNS TRIGGER
LANGUAGE plpgsql AS $$
DECLARE
    v_now TIMESTAMPTZ := opd_now();
    v_to doctors;
    v_shift cabin_doctors;
BEGIN
    IF NEW.token_id <> OLD.token_id OR NEW.visit_date <> OLD.visit_date OR NEW.serial <> OLD.serial
       OR NEW.token_number <> OLD.token_number OR NEW.tracking_code <> OLD.tracking_code
       OR NEW.hospital_id <> OLD.hospital_id OR NEW.patient_id <> OLD.patient_id
       OR NEW.booking_type <> OLD.booking_type OR NEW.dept_id <> OLD.dept_id THEN
        RAISE EXCEPTION 'a token''s identity (number, day, department, patient, hospital, booking type) never changes'
            USING ERRCODE = 'OPD10';
    END IF;

    IF NEW.status <> OLD.status THEN
        IF NOT EXISTS (SELECT 1 FROM token_transitions
                       WHERE from_status = OLD.status AND to_status = NEW.status) THEN
            RAISE EXCEPTION 'token % cannot go from % to %', OLD.token_number, OLD.status, NEW.status
                USING ERRCODE = 'OPD10',
                      HINT = 'allowed changes are listed in the token_transitions table';
        END IF;
        IF NEW.status IN ('CHECKED_IN', 'WAITING', 'IN_CONSULTATION')
           AND OLD.visit_date <> hospital_today(OLD.hospital_id) THEN
            RAISE EXCEPTION 'token % is for %, not today', OLD.token_number, OLD.visit_date
                USING ERRCODE = 'OPD10';
        END IF;
        CASE NEW.status
            WHEN 'CHECKED_IN' THEN
                IF OLD.status = 'BOOKED' THEN
                    NEW.check_in_time := COALESCE(NEW.check_in_time, v_now);
                    NEW.queue_joined_at := queue_joined_at(NEW.booking_type, NEW.scheduled_time, NEW.check_in_time);
                ELSIF OLD.status IN ('WAITING', 'NO_SHOW') THEN
                    -- Back to the queue (undo of a call or of a no-show): keeps its old place;
                    -- a no-show that never arrived before is checked in now.
                    NEW.called_time := NULL;
                    NEW.closed_at := NULL;
                    NEW.check_in_time := COALESCE(NEW.check_in_time, v_now);
                    NEW.queue_joined_at := COALESCE(NEW.queue_joined_at,
                        queue_joined_at(NEW.booking_type, NEW.scheduled_time, NEW.check_in_time));
                END IF;
            WHEN 'WAITING' THEN
                IF OLD.status = 'IN_CONSULTATION' THEN
                    NEW.consultation_start_time := NULL;       -- undo of "start"
                ELSE
                    NEW.called_time := v_now;
                    NEW.call_count := OLD.call_count + 1;
                END IF;
            WHEN 'IN_CONSULTATION' THEN
                IF OLD.status = 'COMPLETED' THEN
                    NEW.consultation_end_time := NULL;         -- undo of "complete"
                ELSE
                    NEW.called_time := COALESCE(NEW.called_time, v_now);
                    NEW.consultation_start_time := v_now;
                END IF;
            WHEN 'COMPLETED' THEN
                NEW.consultation_end_time := v_now;
            ELSE  -- NO_SHOW, CANCELLED, RESCHEDULED
                NEW.closed_at := v_now;
        END CASE;
        IF NEW.status NOT IN ('CHECKED_IN') THEN
            NEW.queue_position := NULL;
            NEW.estimated_wait_time := NULL;
        END IF;
    ELSIF NEW.call_count > OLD.call_count THEN
        IF OLD.status <> 'WAITING' THEN
            RAISE EXCEPTION 'only a called token can be called again (% is %)', OLD.token_number, OLD.status
                USING ERRCODE = 'OPD10';
        END IF;
        NEW.called_time := v_now;                                -- a recall: announce again
    END IF;

    IF NEW.doctor_id <> OLD.doctor_id THEN
        IF OLD.status NOT IN ('BOOKED', 'CHECKED_IN') OR NEW.status <> OLD.status THEN
            RAISE EXCEPTION 'only a token that is booked or waiting in the queue can move to another doctor (% is %)',
                OLD.token_number, OLD.status USING ERRCODE = 'OPD10';
        END IF;
        SELECT * INTO v_to FROM doctors WHERE doctor_id = NEW.doctor_id AND hospital_id = OLD.hospital_id;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'doctor % does not exist in this hospital', NEW.doctor_id USING ERRCODE = 'OPD15';
        END IF;
        IF v_to.primary_dept_id <> OLD.dept_id THEN
            RAISE EXCEPTION '% is in another department; a transfer stays in the department', v_to.name
                USING ERRCODE = 'OPD16';
        END IF;
        IF v_to.status <> 'ACTIVE' THEN
            RAISE EXCEPTION '% is %, not taking patients', v_to.name, lower(v_to.status) USING ERRCODE = 'OPD14';
        END IF;
        IF doctor_on_leave(NEW.doctor_id, v_now) THEN
            RAISE EXCEPTION '% is away (leave); choose another doctor', v_to.name USING ERRCODE = 'OPD14';
        END IF;
        v_shift := doctor_shift(NEW.doctor_id, OLD.visit_date, v_now);
        IF v_shift.assignment_id IS NULL THEN
            RAISE EXCEPTION '% has no shift on %', v_to.name, OLD.visit_date USING ERRCODE = 'OPD14';
        END IF;
        NEW.cabin_id := v_shift.cabin_id;
        NEW.queue_position := NULL;
        NEW.estimated_wait_time := NULL;
    END IF;

    IF NEW.booking_type = 'EMERGENCY' AND NEW.priority <> 3 THEN
        RAISE EXCEPTION 'an emergency token keeps priority 3' USING ERRCODE = 'OPD16';
    END IF;
    NEW.updated_at := v_now;
    RETURN NEW;
END $$;

-- Audit and NOTIFY, in the writing transaction: the history row commits with the change or not
-- at all, and PostgreSQL delivers the NOTIFY only after commit.
CREATE OR REPLACE FUNCTION tokens_after_write() RETURNS TRIGGER
LANGUAGE plpgsql AS $$
DECLARE
    v_old_status TEXT := CASE WHEN TG_OP = 'UPDATE' THEN OLD.status END;
    v_old_doctor UUID := CASE WHEN TG_OP = 'UPDATE' THEN OLD.doctor_id END;
    v_meta JSONB := '{}';
BEGIN
    IF TG_OP = 'INSERT' OR NEW.status <> OLD.status OR NEW.doctor_id <> OLD.doctor_id THEN
        IF TG_OP = 'UPDATE' AND NEW.doctor_id <> OLD.doctor_id THEN
            v_meta := jsonb_build_object('from_doctor_id', OLD.doctor_id, 'to_doctor_id', NEW.doctor_id);
        END IF;
        IF TG_OP = 'INSERT' AND NEW.rescheduled_from_token_id IS NOT NULL THEN
            v_meta := jsonb_build_object('rescheduled_from_token_id', NEW.rescheduled_from_token_id);
        END IF;
        IF opd_request_id() IS NOT NULL THEN
            v_meta := v_meta || jsonb_build_object('request_id', opd_request_id());
        END IF;
        IF opd_via() IS NOT NULL THEN
            v_meta := v_meta || jsonb_build_object('via', opd_via());
        END IF;
        INSERT INTO token_history (token_id, visit_date, previous_status, new_status, changed_by,
                                   changed_by_key, change_reason, metadata, changed_at)
        VALUES (NEW.token_id, NEW.visit_date, v_old_status, NEW.status,
                (SELECT user_id FROM staff_users WHERE user_id = opd_actor()),
                (SELECT key_id FROM api_keys WHERE key_id = opd_actor()),
                COALESCE(opd_reason(), CASE WHEN TG_OP = 'UPDATE' AND NEW.doctor_id <> OLD.doctor_id
                                            THEN 'TRANSFER' END),
                v_meta, opd_now());
    END IF;
    IF TG_OP = 'INSERT' THEN
        PERFORM enqueue_notification(NEW.token_id,
            CASE WHEN NEW.rescheduled_from_token_id IS NULL THEN 'TOKEN_CREATED' ELSE 'RESCHEDULED' END);
    ELSIF NEW.status <> OLD.status AND NEW.status = 'WAITING' AND OLD.status = 'CHECKED_IN' THEN
        PERFORM enqueue_notification(NEW.token_id, 'CALL_NOW');
    ELSIF NEW.status <> OLD.status AND NEW.status = 'CANCELLED' THEN
        PERFORM enqueue_notification(NEW.token_id, 'CANCELLED');
    END IF;
    PERFORM pg_notify('opd_changes', json_build_object(
        'kind', 'token',
        'token_id', NEW.token_id,
        'visit_date', NEW.visit_date,
        'doctor_id', NEW.doctor_id,
        'old_doctor_id', CASE WHEN v_old_doctor IS DISTINCT FROM NEW.doctor_id THEN v_old_doctor END,
        'dept_id', NEW.dept_id,
        'hospital_id', NEW.hospital_id,
        'status', NEW.status,
        'old_status', v_old_status,
        'at', extract(epoch FROM clock_timestamp())
    )::text);
    RETURN NULL;
END $$;

DROP TRIGGER IF EXISTS tokens_before_insert ON tokens;
CREATE TRIGGER tokens_before_insert BEFORE INSERT ON tokens
    FOR EACH ROW EXECUTE FUNCTION tokens_before_insert();

-- The WHEN clauses keep the ETA write-back (queue_position, estimated_wait_time, eta_updated_at)
-- free of trigger work: it neither audits nor notifies.
DROP TRIGGER IF EXISTS tokens_before_update ON tokens;
CREATE TRIGGER tokens_before_update BEFORE UPDATE ON tokens
    FOR EACH ROW
    WHEN (OLD.status IS DISTINCT FROM NEW.status OR OLD.doctor_id IS DISTINCT FROM NEW.doctor_id
          OR OLD.priority IS DISTINCT FROM NEW.priority OR OLD.call_count IS DISTINCT FROM NEW.call_count
          OR OLD.token_id IS DISTINCT FROM NEW.token_id OR OLD.visit_date IS DISTINCT FROM NEW.visit_date
          OR OLD.serial IS DISTINCT FROM NEW.serial OR OLD.token_number IS DISTINCT FROM NEW.token_number
          OR OLD.tracking_code IS DISTINCT FROM NEW.tracking_code
          OR OLD.hospital_id IS DISTINCT FROM NEW.hospital_id
          OR OLD.patient_id IS DISTINCT FROM NEW.patient_id
          OR OLD.booking_type IS DISTINCT FROM NEW.booking_type
          OR OLD.dept_id IS DISTINCT FROM NEW.dept_id)
    EXECUTE FUNCTION tokens_before_update();

DROP TRIGGER IF EXISTS tokens_after_insert ON tokens;
CREATE TRIGGER tokens_after_insert AFTER INSERT ON tokens
    FOR EACH ROW EXECUTE FUNCTION tokens_after_write();

DROP TRIGGER IF EXISTS tokens_after_update ON tokens;
CREATE TRIGGER tokens_after_update AFTER UPDATE ON tokens
    FOR EACH ROW
    WHEN (OLD.status IS DISTINCT FROM NEW.status OR OLD.doctor_id IS DISTINCT FROM NEW.doctor_id
          OR OLD.priority IS DISTINCT FROM NEW.priority OR OLD.called_time IS DISTINCT FROM NEW.called_time)
    EXECUTE FUNCTION tokens_after_write();

-- History is append-only.
CREATE OR REPLACE FUNCTION token_history_append_only() RETURNS TRIGGER
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'token_history is append-only' USING ERRCODE = 'OPD10';
END $$;

DROP TRIGGER IF EXISTS token_history_append_only ON token_history;
CREATE TRIGGER token_history_append_only BEFORE UPDATE OR DELETE ON token_history
    FOR EACH ROW EXECUTE FUNCTION token_history_append_only();
DROP TRIGGER IF EXISTS token_history_no_truncate ON token_history;
CREATE TRIGGER token_history_no_truncate BEFORE TRUNCATE ON token_history
    FOR EACH STATEMENT EXECUTE FUNCTION token_history_append_only();

-- A doctor's break, leave or shift change alters their queue's ETAs and the boards.
CREATE OR REPLACE FUNCTION doctors_after_update() RETURNS TRIGGER
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('opd_changes', json_build_object(
        'kind', 'doctor', 'doctor_id', NEW.doctor_id, 'dept_id', NEW.primary_dept_id,
        'hospital_id', NEW.hospital_id, 'at', extract(epoch FROM clock_timestamp()))::text);
    RETURN NULL;
END $$;

DROP TRIGGER IF EXISTS doctors_after_update ON doctors;
CREATE TRIGGER doctors_after_update AFTER UPDATE ON doctors
    FOR EACH ROW
    WHEN (OLD.paused_at IS DISTINCT FROM NEW.paused_at OR OLD.status IS DISTINCT FROM NEW.status
          OR OLD.avg_consultation_time IS DISTINCT FROM NEW.avg_consultation_time
          OR OLD.name IS DISTINCT FROM NEW.name)
    EXECUTE FUNCTION doctors_after_update();

CREATE OR REPLACE FUNCTION cabin_doctors_after_write() RETURNS TRIGGER
LANGUAGE plpgsql AS $$
DECLARE
    v_row cabin_doctors := COALESCE(NEW, OLD);
BEGIN
    PERFORM pg_notify('opd_changes', json_build_object(
        'kind', 'doctor', 'doctor_id', d.doctor_id, 'dept_id', d.primary_dept_id,
        'hospital_id', d.hospital_id, 'at', extract(epoch FROM clock_timestamp()))::text)
    FROM doctors d WHERE d.doctor_id = v_row.doctor_id;
    RETURN NULL;
END $$;

DROP TRIGGER IF EXISTS cabin_doctors_after_write ON cabin_doctors;
CREATE TRIGGER cabin_doctors_after_write AFTER INSERT OR UPDATE OR DELETE ON cabin_doctors
    FOR EACH ROW EXECUTE FUNCTION cabin_doctors_after_write();

-- The lifecycle ------------------------------------------------------------------------------
INSERT INTO token_transitions (from_status, to_status, meaning) VALUES
    ('BOOKED', 'CHECKED_IN', 'the patient arrived and joined the queue'),
    ('BOOKED', 'NO_SHOW', 'the patient never arrived'),
    ('BOOKED', 'CANCELLED', 'cancelled before arrival'),
    ('BOOKED', 'RESCHEDULED', 'moved to another session; a new token replaces it'),
    ('CHECKED_IN', 'WAITING', 'called to the cabin'),
    ('CHECKED_IN', 'IN_CONSULTATION', 'taken in without a separate call'),
    ('CHECKED_IN', 'NO_SHOW', 'left the hall before being called'),
    ('CHECKED_IN', 'CANCELLED', 'cancelled while queued'),
    ('CHECKED_IN', 'RESCHEDULED', 'moved to another session while queued'),
    ('WAITING', 'IN_CONSULTATION', 'the called patient came in'),
    ('WAITING', 'NO_SHOW', 'called and did not come'),
    ('WAITING', 'CANCELLED', 'cancelled after being called'),
    ('WAITING', 'CHECKED_IN', 'call undone: back to the head of the queue'),
    ('IN_CONSULTATION', 'COMPLETED', 'consultation finished'),
    ('IN_CONSULTATION', 'WAITING', 'start undone'),
    ('COMPLETED', 'IN_CONSULTATION', 'complete undone'),
    ('NO_SHOW', 'CHECKED_IN', 'no-show undone, or the patient came back: rejoins at their old place')
ON CONFLICT (from_status, to_status) DO UPDATE SET meaning = EXCLUDED.meaning;

-- Issues a token. p_doctor_id NULL means "any doctor of p_dept_id on shift": the one whose
-- queue is shortest. Returns the new token row.
CREATE OR REPLACE FUNCTION issue_token(
    p_hospital_id UUID, p_patient_id UUID, p_doctor_id UUID, p_dept_id UUID,
    p_booking_type TEXT, p_priority INT, p_scheduled_time TIMESTAMPTZ, p_visit_reason TEXT,
    p_actor UUID DEFAULT NULL, p_rescheduled_from UUID DEFAULT NULL)
RETURNS tokens
LANGUAGE plpgsql SET plan_cache_mode = force_generic_plan AS $$
DECLARE
    v_token tokens;
    v_doctor_id UUID := p_doctor_id;
    v_now TIMESTAMPTZ := opd_now();
    v_when TIMESTAMPTZ := COALESCE(p_scheduled_time, v_now);
    v_day DATE;
BEGIN
    PERFORM opd_set_actor(p_actor, CASE WHEN p_rescheduled_from IS NULL THEN 'ISSUED' ELSE 'RESCHEDULED' END);
    SELECT (v_when AT TIME ZONE h.timezone)::date INTO v_day FROM hospitals h WHERE h.hospital_id = p_hospital_id;
    IF v_day IS NULL THEN
        RAISE EXCEPTION 'hospital % does not exist', p_hospital_id USING ERRCODE = 'OPD15';
    END IF;
    IF v_doctor_id IS NULL THEN
        IF p_dept_id IS NULL OR NOT EXISTS (SELECT 1 FROM departments WHERE dept_id = p_dept_id AND hospital_id = p_hospital_id) THEN
            RAISE EXCEPTION 'department % does not exist in this hospital', p_dept_id USING ERRCODE = 'OPD15';
        END IF;
        SELECT d.doctor_id INTO v_doctor_id
        FROM doctors d
        JOIN cabin_doctors cd ON cd.doctor_id = d.doctor_id AND cd.shift_date = v_day AND cd.status <> 'CANCELLED'
        WHERE d.primary_dept_id = p_dept_id AND d.status = 'ACTIVE'
          AND v_when < hospital_local_time(d.hospital_id, v_day, cd.shift_end_time)
          AND NOT doctor_on_leave(d.doctor_id, GREATEST(v_when, v_now))
        ORDER BY (SELECT count(*) FROM tokens t
                  WHERE t.doctor_id = d.doctor_id AND t.visit_date = v_day
                    AND t.status IN ('BOOKED', 'CHECKED_IN', 'WAITING', 'IN_CONSULTATION')),
                 d.name
        LIMIT 1;
        IF v_doctor_id IS NULL THEN
            RAISE EXCEPTION 'no doctor of this department is on shift on %', v_day USING ERRCODE = 'OPD14';
        END IF;
    END IF;
    IF p_booking_type = 'ONLINE' AND p_scheduled_time IS NULL THEN
        RAISE EXCEPTION 'an online booking needs a scheduled_time' USING ERRCODE = 'OPD16';
    END IF;
    IF v_day > hospital_today(p_hospital_id) + booking_horizon_days() THEN
        RAISE EXCEPTION 'bookings open at most % days ahead; % is too far', booking_horizon_days(), v_day
            USING ERRCODE = 'OPD16';
    END IF;
    PERFORM create_partition_if_not_exists('tokens', v_day);  -- a booking beyond the ready months
    INSERT INTO tokens (hospital_id, patient_id, doctor_id, dept_id, booking_type, priority, status,
                        scheduled_time, visit_date, visit_reason, rescheduled_from_token_id)
    VALUES (p_hospital_id, p_patient_id, v_doctor_id, p_dept_id, p_booking_type,
            CASE WHEN p_booking_type = 'EMERGENCY' THEN 3 ELSE COALESCE(p_priority, 1) END,
            -- Walk-ins and emergencies are issued at the desk, so the patient is already here;
            -- an online booking (or a token for a later day) waits for check-in.
            CASE WHEN p_booking_type <> 'ONLINE' AND v_day = hospital_today(p_hospital_id)
                 THEN 'CHECKED_IN' ELSE 'BOOKED' END,
            v_when, v_day, p_visit_reason, p_rescheduled_from)
    RETURNING * INTO v_token;
    RETURN v_token;
END $$;

CREATE OR REPLACE FUNCTION token_for_update(p_token_id UUID) RETURNS tokens
LANGUAGE plpgsql AS $$
DECLARE
    v_token tokens;
BEGIN
    SELECT * INTO v_token FROM tokens WHERE token_id = p_token_id FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'token % does not exist', p_token_id USING ERRCODE = 'OPD15';
    END IF;
    RETURN v_token;
END $$;

-- Moves a token to p_status (the trigger checks the transition and stamps the times).
-- p_from, when given, is where this action may start: "start" is for a called patient, not a
-- way to reopen a completed one, even though COMPLETED -> IN_CONSULTATION exists for "undo".
CREATE OR REPLACE FUNCTION set_token_status(p_token_id UUID, p_status TEXT, p_actor UUID,
                                            p_reason TEXT DEFAULT NULL, p_from TEXT[] DEFAULT NULL)
RETURNS tokens
LANGUAGE plpgsql SET plan_cache_mode = force_generic_plan AS $$
DECLARE
    v_token tokens := token_for_update(p_token_id);
BEGIN
    IF v_token.status = p_status THEN
        RAISE EXCEPTION 'token % is already %', v_token.token_number, v_token.status USING ERRCODE = 'OPD10';
    END IF;
    IF p_from IS NOT NULL AND NOT v_token.status = ANY(p_from) THEN
        RAISE EXCEPTION 'token % is %; this works only on a token that is %', v_token.token_number,
            v_token.status, array_to_string(p_from, ' or ') USING ERRCODE = 'OPD10';
    END IF;
    PERFORM opd_set_actor(p_actor, COALESCE(p_reason, p_status));
    IF p_status IN ('WAITING', 'IN_CONSULTATION') AND v_token.status NOT IN ('WAITING', 'IN_CONSULTATION', 'COMPLETED') THEN
        PERFORM assert_doctor_free(v_token.doctor_id, v_token.visit_date);
    END IF;
    UPDATE tokens SET status = p_status,
                      cancellation_reason = CASE WHEN p_status = 'CANCELLED' THEN p_reason ELSE cancellation_reason END
    WHERE token_id = p_token_id RETURNING * INTO v_token;
    RETURN v_token;
END $$;

-- Locks the doctor (so calls for one doctor run one at a time) and refuses when someone is
-- already called or in consultation, or the doctor is on a break.
CREATE OR REPLACE FUNCTION assert_doctor_free(p_doctor_id UUID, p_day DATE) RETURNS VOID
LANGUAGE plpgsql AS $$
DECLARE
    v_doctor doctors;
    v_busy TEXT;
BEGIN
    SELECT * INTO v_doctor FROM doctors WHERE doctor_id = p_doctor_id FOR NO KEY UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'doctor % does not exist', p_doctor_id USING ERRCODE = 'OPD15';
    END IF;
    IF v_doctor.paused_at IS NOT NULL THEN
        RAISE EXCEPTION '% is on a break; resume first', v_doctor.name USING ERRCODE = 'OPD14';
    END IF;
    SELECT token_number || ' is ' || CASE status WHEN 'WAITING' THEN 'called' ELSE 'in consultation' END
    INTO v_busy
    FROM tokens WHERE doctor_id = p_doctor_id AND visit_date = p_day
                  AND status IN ('WAITING', 'IN_CONSULTATION');
    IF v_busy IS NOT NULL THEN
        RAISE EXCEPTION '% already: complete it or mark it no-show first', v_busy USING ERRCODE = 'OPD10';
    END IF;
    UPDATE doctors SET last_active_at = opd_now() WHERE doctor_id = p_doctor_id;
    -- The first call of a shift starts it (DOCTOR_LATE alerts and first-patient delay use this).
    UPDATE cabin_doctors SET status = 'ACTIVE', actual_start_time = COALESCE(actual_start_time, opd_now())
    WHERE assignment_id = (doctor_shift(p_doctor_id, p_day, opd_now())).assignment_id AND status = 'SCHEDULED';
END $$;

-- Calls the doctor's next patient: highest priority first, then earliest queue_joined_at.
-- p_complete_current first completes the patient in consultation ("complete and call next").
CREATE OR REPLACE FUNCTION call_next_token(p_doctor_id UUID, p_actor UUID,
                                           p_complete_current BOOLEAN DEFAULT FALSE)
RETURNS tokens
LANGUAGE plpgsql SET plan_cache_mode = force_generic_plan AS $$
DECLARE
    v_day DATE;
    v_token tokens;
BEGIN
    SELECT hospital_today(hospital_id) INTO v_day FROM doctors WHERE doctor_id = p_doctor_id;
    IF v_day IS NULL THEN
        RAISE EXCEPTION 'doctor % does not exist', p_doctor_id USING ERRCODE = 'OPD15';
    END IF;
    PERFORM opd_set_actor(p_actor, 'CALL_NEXT');
    IF p_complete_current THEN
        -- Lock the doctor first so a double click waits here and then finds the new call.
        PERFORM 1 FROM doctors WHERE doctor_id = p_doctor_id FOR NO KEY UPDATE;
        UPDATE tokens SET status = 'COMPLETED'
        WHERE doctor_id = p_doctor_id AND visit_date = v_day AND status = 'IN_CONSULTATION';
    END IF;
    PERFORM assert_doctor_free(p_doctor_id, v_day);
    SELECT * INTO v_token FROM tokens
    WHERE doctor_id = p_doctor_id AND visit_date = v_day AND status = 'CHECKED_IN'
    ORDER BY priority DESC, queue_joined_at, serial
    LIMIT 1
    FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'nobody is waiting for this doctor' USING ERRCODE = 'OPD12';
    END IF;
    UPDATE tokens SET status = 'WAITING' WHERE token_id = v_token.token_id AND visit_date = v_day
    RETURNING * INTO v_token;
    RETURN v_token;
END $$;

CREATE OR REPLACE FUNCTION recall_token(p_token_id UUID, p_actor UUID) RETURNS tokens
LANGUAGE plpgsql SET plan_cache_mode = force_generic_plan AS $$
DECLARE
    v_token tokens := token_for_update(p_token_id);
BEGIN
    PERFORM opd_set_actor(p_actor, 'RECALL');
    UPDATE tokens SET call_count = call_count + 1 WHERE token_id = p_token_id RETURNING * INTO v_token;
    RETURN v_token;
END $$;

CREATE OR REPLACE FUNCTION check_in_token(p_token_id UUID, p_lat NUMERIC, p_lon NUMERIC,
                                          p_override_reason TEXT, p_actor UUID)
RETURNS tokens
LANGUAGE plpgsql SET plan_cache_mode = force_generic_plan AS $$
DECLARE
    v_token tokens := token_for_update(p_token_id);
    v_distance DOUBLE PRECISION;
    v_radius INT;
BEGIN
    IF v_token.status <> 'BOOKED' THEN
        RAISE EXCEPTION 'token % is already %', v_token.token_number, v_token.status USING ERRCODE = 'OPD10';
    END IF;
    IF p_override_reason IS NULL OR btrim(p_override_reason) = '' THEN
        IF p_lat IS NULL OR p_lon IS NULL THEN
            RAISE EXCEPTION 'check-in needs latitude and longitude, or a staff override with a reason'
                USING ERRCODE = 'OPD16';
        END IF;
        IF NOT is_inside_geofence(v_token.hospital_id, p_lat, p_lon) THEN
            SELECT distance_to_hospital_m(v_token.hospital_id, p_lat, p_lon), geofence_radius
            INTO v_distance, v_radius FROM hospitals WHERE hospital_id = v_token.hospital_id;
            RAISE EXCEPTION 'you are % m from the hospital; check-in works within % m',
                round(v_distance::numeric), v_radius
                USING ERRCODE = 'OPD13', DETAIL = json_build_object('distance_m', round(v_distance::numeric), 'radius_m', v_radius)::text;
        END IF;
    END IF;
    PERFORM opd_set_actor(p_actor, CASE WHEN p_override_reason IS NULL THEN 'CHECK_IN'
                                        ELSE 'CHECK_IN_OVERRIDE: ' || p_override_reason END);
    UPDATE tokens SET status = 'CHECKED_IN', check_in_latitude = p_lat, check_in_longitude = p_lon,
                      check_in_override_reason = NULLIF(btrim(p_override_reason), '')
    WHERE token_id = p_token_id RETURNING * INTO v_token;
    RETURN v_token;
END $$;

CREATE OR REPLACE FUNCTION transfer_token(p_token_id UUID, p_to_doctor_id UUID, p_actor UUID,
                                          p_reason TEXT DEFAULT NULL)
RETURNS tokens
LANGUAGE plpgsql SET plan_cache_mode = force_generic_plan AS $$
DECLARE
    v_token tokens := token_for_update(p_token_id);
BEGIN
    IF v_token.doctor_id = p_to_doctor_id THEN
        RAISE EXCEPTION 'token % is already with that doctor', v_token.token_number USING ERRCODE = 'OPD10';
    END IF;
    PERFORM opd_set_actor(p_actor, COALESCE('TRANSFER: ' || p_reason, 'TRANSFER'));
    UPDATE tokens SET doctor_id = p_to_doctor_id WHERE token_id = p_token_id RETURNING * INTO v_token;
    RETURN v_token;
END $$;

-- Closes the token as RESCHEDULED and issues its replacement (same patient, same department)
-- for p_scheduled_time, with p_doctor_id or the same doctor. Returns the new token.
CREATE OR REPLACE FUNCTION reschedule_token(p_token_id UUID, p_scheduled_time TIMESTAMPTZ,
                                            p_doctor_id UUID, p_actor UUID, p_reason TEXT DEFAULT NULL)
RETURNS tokens
LANGUAGE plpgsql SET plan_cache_mode = force_generic_plan AS $$
DECLARE
    v_old tokens := token_for_update(p_token_id);
    v_new tokens;
BEGIN
    PERFORM opd_set_actor(p_actor, COALESCE('RESCHEDULED: ' || p_reason, 'RESCHEDULED'));
    UPDATE tokens SET status = 'RESCHEDULED', cancellation_reason = p_reason
    WHERE token_id = p_token_id RETURNING * INTO v_old;
    v_new := issue_token(v_old.hospital_id, v_old.patient_id, COALESCE(p_doctor_id, v_old.doctor_id),
                         v_old.dept_id, 'ONLINE', v_old.priority, p_scheduled_time, v_old.visit_reason,
                         p_actor, v_old.token_id);
    RETURN v_new;
END $$;

CREATE OR REPLACE FUNCTION set_doctor_paused(p_doctor_id UUID, p_paused BOOLEAN) RETURNS doctors
LANGUAGE plpgsql SET plan_cache_mode = force_generic_plan AS $$
DECLARE
    v_doctor doctors;
BEGIN
    SELECT * INTO v_doctor FROM doctors WHERE doctor_id = p_doctor_id FOR NO KEY UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'doctor % does not exist', p_doctor_id USING ERRCODE = 'OPD15';
    END IF;
    IF p_paused AND v_doctor.paused_at IS NULL THEN
        INSERT INTO doctor_breaks (doctor_id, started_at) VALUES (p_doctor_id, opd_now());
    ELSIF NOT p_paused AND v_doctor.paused_at IS NOT NULL THEN
        UPDATE doctor_breaks SET ended_at = opd_now() WHERE doctor_id = p_doctor_id AND ended_at IS NULL;
        PERFORM pace_observe_break(p_doctor_id, extract(epoch FROM opd_now() - v_doctor.paused_at) / 60);
    END IF;
    UPDATE doctors SET paused_at = CASE WHEN p_paused THEN COALESCE(paused_at, opd_now()) END,
                       last_active_at = opd_now()
    WHERE doctor_id = p_doctor_id RETURNING * INTO v_doctor;
    RETURN v_doctor;
END $$;

-- Queue and ETA -------------------------------------------------------------------------------
-- The ETA model (docs/eta.md). Each doctor's pace is learned from what happens (doctor_pace,
-- updated by pace_observe as tokens are called and closed) and doctor_queue turns it into a
-- median and a range for every waiting patient:
--   wait = (time until the doctor can take the next patient
--           + patients ahead x (1 - share who leave uncalled) x minutes per call)
--          / (1 - share of calls that go to later arrivals of higher priority)
-- "Minutes per call" mixes attended patients and no-shows by the learned no-show share. The
-- time until the doctor is free counts the current patient's remaining time given how long it
-- has run, a break's remaining time, and a doctor not started yet as expected at the shift start
-- plus their usual lateness. The range comes from the spread of consultations, of the start and
-- of the pace estimate itself (wider for a doctor with little history).

-- Tuning constants, in one place (bench/eta.py measured them; docs/eta.md).
CREATE OR REPLACE FUNCTION eta_tuning() RETURNS JSONB
LANGUAGE sql IMMUTABLE AS $$
    SELECT jsonb_build_object(
        'alpha_min', 0.03,        -- weight of the newest cycle once the estimate is settled
        'share_alpha', 0.05,      -- weight of the newest call in the shares (no-show, jumps, leaves)
        'late_alpha', 0.30,       -- weight of today's lateness against earlier days'
        'break_alpha', 0.30,
        'prior_rel_var_configured', 0.40,  -- how unsure a configured average is (relative variance)
        'prior_rel_var_department', 0.12,
        'prior_rel_var_hospital', 0.25,
        'late_history_min', 5,   -- days of a doctor's own late starts before they replace the normal curve
        'early_jump_window_mins', 30,  -- arrivals counted for the jumps before the doctor starts
        'configured_scale', 0.50, -- a configured slot length read as a pace (doctor_pace_prior)
        'z_low', 2.20,            -- the range: quantiles of a log-normal around the median
        'z_high', 2.10
    )
$$;

-- A doctor's pace as it starts without history of their own: the department's doctors' learned
-- pace; else the hospital's doctors' learned pace, as a ratio to what each one's department
-- configured, applied to this doctor's configured time; else the configured consultation +
-- buffer time scaled by configured_scale, with common shares. Configured times are slot lengths
-- for planning (10-20 minutes) while Indian public OPDs see 2-8 minute consultations, so the
-- configured figure is read as an upper bound, not as the pace (docs/eta.md).
CREATE OR REPLACE FUNCTION doctor_pace_prior(p_doctor_id UUID) RETURNS doctor_pace
LANGUAGE plpgsql STABLE AS $$
DECLARE
    v doctor_pace;
    v_doctor doctors;
    v_configured DOUBLE PRECISION;
    v_ratio DOUBLE PRECISION;
BEGIN
    SELECT * INTO v_doctor FROM doctors WHERE doctor_id = p_doctor_id;
    v_configured := doctor_configured_minutes(p_doctor_id);
    SELECT p_doctor_id, avg(p.attended_mins), avg(p.attended_var), avg(p.noshow_mins), avg(p.noshow_share),
           avg(p.leave_share), avg(p.jump_share_2), avg(p.jump_share_3), avg(p.late_mins), avg(p.late_var),
           avg(p.break_mins), 2.0, 'department'
    INTO v.doctor_id, v.attended_mins, v.attended_var, v.noshow_mins, v.noshow_share, v.leave_share,
         v.jump_share_2, v.jump_share_3, v.late_mins, v.late_var, v.break_mins, v.evidence, v.source
    FROM doctor_pace p
    JOIN doctors o ON o.doctor_id = p.doctor_id
    WHERE o.primary_dept_id = v_doctor.primary_dept_id AND p.doctor_id <> p_doctor_id AND p.evidence >= 3
    HAVING count(*) > 0;
    IF v.doctor_id IS NULL AND v_configured IS NOT NULL THEN
        SELECT p_doctor_id, avg(p.attended_mins / doctor_configured_minutes(p.doctor_id)),
               avg(p.attended_var / power(doctor_configured_minutes(p.doctor_id), 2)),
               avg(p.noshow_mins), avg(p.noshow_share), avg(p.leave_share), avg(p.jump_share_2),
               avg(p.jump_share_3), avg(p.late_mins), avg(p.late_var), avg(p.break_mins), 1.0, 'hospital'
        INTO v.doctor_id, v_ratio, v.attended_var, v.noshow_mins, v.noshow_share, v.leave_share,
             v.jump_share_2, v.jump_share_3, v.late_mins, v.late_var, v.break_mins, v.evidence, v.source
        FROM doctor_pace p
        JOIN doctors o ON o.doctor_id = p.doctor_id
        WHERE o.hospital_id = v_doctor.hospital_id AND p.doctor_id <> p_doctor_id AND p.evidence >= 3
          AND doctor_configured_minutes(p.doctor_id) > 0
        HAVING count(*) > 0;
        v.attended_mins := v_ratio * v_configured;
        v.attended_var := v.attended_var * power(v_configured, 2);
    END IF;
    IF v.doctor_id IS NULL THEN
        v.doctor_id := p_doctor_id;
        v.attended_mins := COALESCE(v_configured, 12) * (eta_tuning()->>'configured_scale')::float8;
        v.attended_var := power(0.6 * v.attended_mins, 2);
        v.noshow_mins := 2.5;
        v.noshow_share := 0.15;
        v.leave_share := 0.03;
        v.jump_share_2 := 0.10;
        v.jump_share_3 := 0.03;
        v.late_mins := 10;
        v.late_var := 225;
        v.break_mins := 15;
        v.evidence := 0.5;
        v.source := 'configured';
    END IF;
    v.calls_today := 0;
    v.break_since_call := 0;
    v.late_recent := '{}';
    v.updated_at := opd_now();
    RETURN v;
END $$;

-- The consultation + buffer minutes a doctor's department (or the doctor) is configured with.
CREATE OR REPLACE FUNCTION doctor_configured_minutes(p_doctor_id UUID) RETURNS DOUBLE PRECISION
LANGUAGE sql STABLE AS $$
    SELECT (COALESCE(d.avg_consultation_time, dep.avg_consultation_time) + dep.buffer_time)::float8
    FROM doctors d JOIN departments dep ON dep.dept_id = d.primary_dept_id
    WHERE d.doctor_id = p_doctor_id
$$;

-- The doctor's pace now: their own row, or the prior when they have none yet.
CREATE OR REPLACE FUNCTION doctor_pace_now(p_doctor_id UUID) RETURNS doctor_pace
LANGUAGE plpgsql STABLE AS $$
DECLARE
    v doctor_pace;
BEGIN
    SELECT * INTO v FROM doctor_pace WHERE doctor_id = p_doctor_id;
    IF NOT FOUND THEN
        v := doctor_pace_prior(p_doctor_id);
    END IF;
    RETURN v;
END $$;

-- The doctor's pace row, created from the prior the first time, locked for an update.
CREATE OR REPLACE FUNCTION doctor_pace_for_update(p_doctor_id UUID) RETURNS doctor_pace
LANGUAGE plpgsql AS $$
DECLARE
    v doctor_pace;
BEGIN
    SELECT * INTO v FROM doctor_pace WHERE doctor_id = p_doctor_id FOR UPDATE;
    IF NOT FOUND THEN
        INSERT INTO doctor_pace SELECT (doctor_pace_prior(p_doctor_id)).* ON CONFLICT (doctor_id) DO NOTHING;
        SELECT * INTO v FROM doctor_pace WHERE doctor_id = p_doctor_id FOR UPDATE;
    END IF;
    RETURN v;
END $$;

-- Learns from one token's status change, in O(1): the minutes from the previous call to this
-- one (by what became of the previous patient), the shares of no-shows, of patients leaving
-- uncalled and of calls going to seniors and emergencies, and the doctor's lateness at the
-- day's first call. Idle time (nobody waiting) and breaks are not counted as consulting.
CREATE OR REPLACE FUNCTION pace_observe() RETURNS TRIGGER
LANGUAGE plpgsql AS $$
DECLARE
    v doctor_pace;
    v_now TIMESTAMPTZ := opd_now();
    v_tune JSONB := eta_tuning();
    v_alpha DOUBLE PRECISION;
    v_share_alpha DOUBLE PRECISION := (v_tune->>'share_alpha')::float8;
    v_busy_from TIMESTAMPTZ;
    v_x DOUBLE PRECISION;
    v_cap DOUBLE PRECISION;
    v_shift cabin_doctors;
    v_shift_start TIMESTAMPTZ;
    v_jumped BOOLEAN;
BEGIN
    IF OLD.status = 'CHECKED_IN' AND NEW.status = 'WAITING' THEN          -- a call
        v := doctor_pace_for_update(NEW.doctor_id);
        -- Since when the doctor had somebody to call: the earliest arrival still waiting.
        SELECT LEAST(NEW.check_in_time, min(t.check_in_time)) INTO v_busy_from FROM tokens t
        WHERE t.doctor_id = NEW.doctor_id AND t.visit_date = NEW.visit_date AND t.status = 'CHECKED_IN';
        IF v.day = NEW.visit_date AND v.last_call_at IS NOT NULL AND v.last_outcome IS NOT NULL THEN
            v_x := extract(epoch FROM v_now - GREATEST(v.last_call_at, v_busy_from)) / 60 - v.break_since_call;
            v_alpha := GREATEST((v_tune->>'alpha_min')::float8, 1 / (v.evidence + 1));
            IF v_x > 0 AND v.last_outcome = 'ATTENDED' THEN
                -- A surprise (the doctor called away) would teach a wrong pace: cap the outlier.
                v_cap := v.attended_mins + 4 * sqrt(v.attended_var) + 5;
                v_x := LEAST(v_x, v_cap);
                v.attended_var := (1 - v_alpha) * (v.attended_var + v_alpha * power(v_x - v.attended_mins, 2));
                v.attended_mins := v.attended_mins + v_alpha * (v_x - v.attended_mins);
                v.evidence := LEAST(v.evidence + 1, 1 / (v_tune->>'alpha_min')::float8);
            ELSIF v_x > 0 AND v.last_outcome = 'NO_SHOW' THEN
                v.noshow_mins := v.noshow_mins + 0.2 * (LEAST(v_x, 15) - v.noshow_mins);
            END IF;
        ELSIF v.day IS DISTINCT FROM NEW.visit_date THEN
            -- The day's first call: how late the doctor started, counted from when there was
            -- somebody to see.
            v_shift := doctor_shift(NEW.doctor_id, NEW.visit_date, v_now);
            IF v_shift.assignment_id IS NOT NULL THEN
                v_shift_start := hospital_local_time(NEW.hospital_id, NEW.visit_date, v_shift.shift_start_time);
                v_x := extract(epoch FROM v_now - GREATEST(v_shift_start, v_busy_from)) / 60;
                IF v_x BETWEEN -60 AND 240 THEN
                    v_alpha := (v_tune->>'late_alpha')::float8;
                    v.late_var := (1 - v_alpha) * (v.late_var + v_alpha * power(v_x - v.late_mins, 2));
                    v.late_mins := v.late_mins + v_alpha * (v_x - v.late_mins);
                    v.late_recent := (v.late_recent || v_x)[GREATEST(cardinality(v.late_recent) - 18, 1):];
                END IF;
            END IF;
            v.calls_today := 0;
        END IF;
        -- A jump: this call went ahead of somebody of lower priority who was here first. Seniors
        -- already in line when a patient arrived are counted in their position, not here.
        -- (Counting only those who arrived after the doctor's first call, as the early jumps of
        -- doctor_eta_basis count the others, measured MAE 0.2-0.7 min better but biased 2-4
        -- minutes later than told: the cautious side was kept, docs/eta.md.)
        v_jumped := NEW.priority >= 2 AND EXISTS (
            SELECT 1 FROM tokens t WHERE t.doctor_id = NEW.doctor_id AND t.visit_date = NEW.visit_date
              AND t.status = 'CHECKED_IN' AND t.priority < NEW.priority AND t.check_in_time < NEW.check_in_time);
        v.jump_share_2 := v.jump_share_2 + v_share_alpha * (v_jumped::int - v.jump_share_2);
        v.jump_share_3 := v.jump_share_3 + v_share_alpha * ((v_jumped AND NEW.priority >= 3)::int - v.jump_share_3);
        v.leave_share := v.leave_share * (1 - v_share_alpha);
        UPDATE doctor_pace SET attended_mins = v.attended_mins, attended_var = v.attended_var,
               noshow_mins = v.noshow_mins, late_mins = v.late_mins, late_var = v.late_var,
               late_recent = v.late_recent,
               jump_share_2 = v.jump_share_2, jump_share_3 = v.jump_share_3, leave_share = v.leave_share,
               evidence = v.evidence, day = NEW.visit_date, calls_today = v.calls_today + 1,
               last_call_at = v_now, last_call_token = NEW.token_id, last_outcome = NULL,
               break_since_call = 0, updated_at = v_now
        WHERE doctor_id = NEW.doctor_id;
    ELSIF OLD.status IN ('WAITING', 'IN_CONSULTATION') AND NEW.status IN ('COMPLETED', 'NO_SHOW') THEN
        UPDATE doctor_pace SET
            last_outcome = CASE NEW.status WHEN 'COMPLETED' THEN 'ATTENDED' ELSE 'NO_SHOW' END,
            noshow_share = noshow_share + v_share_alpha * ((NEW.status = 'NO_SHOW')::int - noshow_share),
            updated_at = v_now
        WHERE doctor_id = NEW.doctor_id AND last_call_token = NEW.token_id AND last_outcome IS NULL;
    ELSIF OLD.status = 'WAITING' AND NEW.status = 'CHECKED_IN' THEN      -- a call undone
        UPDATE doctor_pace SET last_outcome = 'UNDONE', updated_at = v_now
        WHERE doctor_id = NEW.doctor_id AND last_call_token = NEW.token_id;
    ELSIF OLD.status = 'CHECKED_IN' AND NEW.status = 'CANCELLED' THEN    -- left before the call
        UPDATE doctor_pace SET leave_share = leave_share + v_share_alpha * (1 - leave_share), updated_at = v_now
        WHERE doctor_id = NEW.doctor_id;
    END IF;
    RETURN NULL;
END $$;

DROP TRIGGER IF EXISTS tokens_pace_observe ON tokens;
CREATE TRIGGER tokens_pace_observe AFTER UPDATE ON tokens
    FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status)
    EXECUTE FUNCTION pace_observe();

-- A break has ended: learn its length, and do not count it as consulting time.
CREATE OR REPLACE FUNCTION pace_observe_break(p_doctor_id UUID, p_minutes DOUBLE PRECISION) RETURNS VOID
LANGUAGE plpgsql AS $$
DECLARE
    v_alpha DOUBLE PRECISION := (eta_tuning()->>'break_alpha')::float8;
BEGIN
    PERFORM doctor_pace_for_update(p_doctor_id);
    UPDATE doctor_pace SET break_mins = break_mins + v_alpha * (LEAST(p_minutes, 120) - break_mins),
                           break_since_call = break_since_call + p_minutes, updated_at = opd_now()
    WHERE doctor_id = p_doctor_id;
END $$;

-- E[Z - z | Z > z] for a standard normal Z: how much longer to wait for something already
-- z standard deviations past its mean. Near the mean from the tail ratio (erfc by Abramowitz &
-- Stegun 7.1.26, whose exponentials cancel); far out by the continued fraction, where the
-- polynomial's relative error grows. About 1/z for large z, -z for very negative z.
CREATE OR REPLACE FUNCTION normal_mean_residual(z DOUBLE PRECISION) RETURNS DOUBLE PRECISION
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    x DOUBLE PRECISION := abs(z) / sqrt(2);
    t DOUBLE PRECISION := 1 / (1 + 0.3275911 * abs(z) / sqrt(2));
    poly DOUBLE PRECISION;   -- erfc(x) = poly * exp(-x^2) for x >= 0
    tail DOUBLE PRECISION;   -- P(Z > z)
BEGIN
    IF z > 3 THEN
        RETURN 1 / (z + 2 / (z + 3 / (z + 4 / (z + 5 / z))));
    END IF;
    IF z < -6 THEN
        -- Far below the mean (hours before a shift): the tail is 1 to double precision, the
        -- residual -z; and exp(-z^2/2) would underflow, which PostgreSQL raises as an error.
        RETURN -z;
    END IF;
    poly := t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))));
    tail := CASE WHEN z >= 0 THEN 0.5 * poly * exp(-x * x) ELSE 1 - 0.5 * poly * exp(-x * x) END;
    RETURN exp(-z * z / 2) / sqrt(2 * pi()) / tail - z;
END $$;

-- Everything of the doctor's state that every waiting patient's ETA shares, computed once per
-- queue: the minutes until the doctor can take the next patient (and their variance), the
-- minutes per call (and variance), how unsure the pace is, the shares, and the shift's end.
-- Dropped and created again at every apply: its result columns changed between versions, which
-- CREATE OR REPLACE cannot do (the same for the other DROPs of current signatures below).
DROP FUNCTION IF EXISTS doctor_eta_basis(UUID, DATE);
CREATE OR REPLACE FUNCTION doctor_eta_basis(p_doctor_id UUID, p_day DATE,
    OUT free_mins DOUBLE PRECISION, OUT free_var DOUBLE PRECISION,
    OUT call_mins DOUBLE PRECISION, OUT call_var DOUBLE PRECISION, OUT pace_rel_var DOUBLE PRECISION,
    OUT leave_share DOUBLE PRECISION, OUT jump_share_2 DOUBLE PRECISION, OUT jump_share_3 DOUBLE PRECISION,
    OUT shift_end_at TIMESTAMPTZ, OUT early_jumps_2 DOUBLE PRECISION, OUT early_jumps_3 DOUBLE PRECISION)
LANGUAGE plpgsql STABLE AS $$
DECLARE
    v doctor_pace := doctor_pace_now(p_doctor_id);
    v_tune JSONB := eta_tuning();
    v_now TIMESTAMPTZ := opd_now();
    v_doctor doctors;
    v_shift cabin_doctors;
    v_current tokens;
    v_p DOUBLE PRECISION := LEAST(GREATEST(v.noshow_share, 0), 0.9);
    v_elapsed DOUBLE PRECISION;
    v_start TIMESTAMPTZ;
    v_prior_rel_var DOUBLE PRECISION;
    v_obs_rel_var DOUBLE PRECISION;
    v_late_sd DOUBLE PRECISION;
    v_overdue DOUBLE PRECISION;
    v_residual DOUBLE PRECISION;
    v_residual_var DOUBLE PRECISION;
    v_longer INT;
    v_window DOUBLE PRECISION;
    v_arrived_2 INT;
    v_arrived_3 INT;
BEGIN
    SELECT * INTO v_doctor FROM doctors WHERE doctor_id = p_doctor_id;
    v_shift := doctor_shift(p_doctor_id, p_day, v_now);
    call_mins := (1 - v_p) * v.attended_mins + v_p * v.noshow_mins;
    call_var := (1 - v_p) * v.attended_var + v_p * 1.0
                + v_p * (1 - v_p) * power(v.attended_mins - v.noshow_mins, 2);
    -- How unsure the pace itself is: the prior's doubt, narrowed by each cycle seen.
    v_prior_rel_var := CASE v.source WHEN 'configured' THEN (v_tune->>'prior_rel_var_configured')::float8
                                     WHEN 'hospital' THEN (v_tune->>'prior_rel_var_hospital')::float8
                                     ELSE (v_tune->>'prior_rel_var_department')::float8 END;
    v_obs_rel_var := GREATEST(call_var / GREATEST(power(call_mins, 2), 0.01), 0.05);
    pace_rel_var := 1 / (1 / v_prior_rel_var + v.evidence / v_obs_rel_var);
    leave_share := LEAST(GREATEST(v.leave_share, 0), 0.5);
    jump_share_2 := LEAST(GREATEST(v.jump_share_2, 0), 0.5);
    jump_share_3 := LEAST(GREATEST(v.jump_share_3, 0), 0.5);

    free_mins := 0;
    free_var := 0;
    early_jumps_2 := 0;
    early_jumps_3 := 0;
    SELECT t.* INTO v_current FROM tokens t
    WHERE t.doctor_id = p_doctor_id AND t.visit_date = p_day AND t.status IN ('WAITING', 'IN_CONSULTATION')
    LIMIT 1;
    IF v_current.token_id IS NOT NULL THEN
        v_elapsed := GREATEST(extract(epoch FROM v_now - v_current.called_time) / 60, 0);
        IF v_current.status = 'IN_CONSULTATION' THEN
            -- A consultation that has run long is likely to run on a little more, not end now.
            free_mins := GREATEST(v.attended_mins - v_elapsed, 0.3 * v.attended_mins);
            free_var := 0.5 * v.attended_var;
        ELSE  -- called, not here yet: they may come, or be marked absent
            free_mins := v_p * GREATEST(v.noshow_mins - v_elapsed, 0.5)
                         + (1 - v_p) * GREATEST(v.attended_mins - v_elapsed, 0.3 * v.attended_mins);
            free_var := call_var;
        END IF;
    ELSIF v_shift.assignment_id IS NOT NULL AND v_shift.actual_start_time IS NULL AND v_shift.status = 'SCHEDULED' THEN
        -- Not started yet: expected at the shift start plus the doctor's usual lateness. Once
        -- overdue, the lateness still to come given that it has already lasted this long (a
        -- normal's mean residual): a doctor 20 minutes late is likely to be some minutes more,
        -- neither "now" nor the usual lateness all over again, so ETAs do not slide a minute per
        -- minute while the hall waits.
        v_start := hospital_local_time(v_doctor.hospital_id, p_day, v_shift.shift_start_time);
        v_late_sd := sqrt(GREATEST(v.late_var, 4));
        v_overdue := extract(epoch FROM v_now - v_start) / 60;
        -- With enough days of this doctor's own, their late starts that lasted longer than this
        -- one has so far say how much longer it will last (a doctor is on time most days and
        -- sometimes very late: no normal curve fits that); else the normal's residual.
        SELECT avg(l - v_overdue), var_pop(l - v_overdue), count(*)
        INTO v_residual, v_residual_var, v_longer
        FROM unnest(v.late_recent) l WHERE l > v_overdue;
        IF cardinality(v.late_recent) >= (v_tune->>'late_history_min')::float8 AND v_longer >= 2 THEN
            free_mins := GREATEST(v_residual, 1);
            free_var := GREATEST(v_residual_var, 4);
        ELSE
            free_mins := GREATEST(v_late_sd * normal_mean_residual((v_overdue - v.late_mins) / v_late_sd), 1);
            free_var := power(LEAST(free_mins, v_late_sd), 2);
        END IF;
        -- Until the doctor starts the hall keeps filling, often faster than at any other time
        -- (the morning rush), and the seniors and emergencies among the newcomers go ahead of
        -- those already waiting: at the rate they arrived lately, for as long as the start is away.
        v_window := (v_tune->>'early_jump_window_mins')::float8;
        SELECT count(*) FILTER (WHERE t.priority >= 2), count(*) FILTER (WHERE t.priority >= 3)
        INTO v_arrived_2, v_arrived_3
        FROM tokens t
        WHERE t.doctor_id = p_doctor_id AND t.visit_date = p_day
          AND t.check_in_time > v_now - make_interval(secs => v_window * 60) AND t.check_in_time <= v_now;
        early_jumps_2 := v_arrived_2 / v_window * free_mins;
        early_jumps_3 := v_arrived_3 / v_window * free_mins;
    END IF;
    IF v_doctor.paused_at IS NOT NULL THEN
        v_elapsed := extract(epoch FROM v_now - v_doctor.paused_at) / 60;
        free_mins := free_mins + GREATEST(v.break_mins - v_elapsed, 2);
        free_var := free_var + power(0.5 * v.break_mins, 2);
    END IF;
    IF v_shift.assignment_id IS NOT NULL THEN
        shift_end_at := hospital_local_time(v_doctor.hospital_id, p_day, v_shift.shift_end_time);
    END IF;
END $$;

-- Every live token of a doctor's day with its position and ETA, in one pass. The token called
-- or in consultation comes first with position 0; waiting tokens follow from position 1.
-- eta_minutes is the median estimate, eta_low_minutes / eta_high_minutes the range shown
-- (docs/eta.md); eta_beyond_shift: the median falls after the doctor's shift ends.
DROP FUNCTION IF EXISTS calculate_token_eta(UUID);
DROP FUNCTION IF EXISTS doctor_queue(UUID, DATE);
CREATE OR REPLACE FUNCTION doctor_queue(p_doctor_id UUID, p_day DATE)
RETURNS TABLE (token_id UUID, token_number TEXT, status TEXT, priority INT, booking_type TEXT,
               queue_position INT, eta_minutes INT, queue_joined_at TIMESTAMPTZ,
               eta_low_minutes INT, eta_high_minutes INT, eta_beyond_shift BOOLEAN)
LANGUAGE sql STABLE AS $$
    WITH live AS (
        SELECT t.* FROM tokens t
        WHERE t.doctor_id = p_doctor_id AND t.visit_date = p_day
          AND t.status IN ('CHECKED_IN', 'WAITING', 'IN_CONSULTATION')
    ),
    current_token AS (
        SELECT l.* FROM live l WHERE l.status IN ('WAITING', 'IN_CONSULTATION') LIMIT 1
    ),
    basis AS MATERIALIZED (  -- once per queue, not once per waiting patient
        SELECT b.*, eta_tuning() AS tune FROM doctor_eta_basis(p_doctor_id, p_day) b
    ),
    waiting AS (
        SELECT l.*, row_number() OVER (ORDER BY l.priority DESC, l.queue_joined_at, l.serial)::int AS pos
        FROM live l WHERE l.status = 'CHECKED_IN'
    ),
    estimate AS (
        SELECT w.*, b.*,
               (ahead + CASE w.priority WHEN 1 THEN b.early_jumps_2 WHEN 2 THEN b.early_jumps_3 ELSE 0 END)
                 * b.call_mins + b.free_mins AS base,
               1 - CASE w.priority WHEN 1 THEN b.jump_share_2 WHEN 2 THEN b.jump_share_3 ELSE 0 END AS keep
        FROM waiting w, basis b,
             LATERAL (SELECT (w.pos - 1) * (1 - b.leave_share) AS ahead) a
    ),
    spread AS (
        SELECT e.*, m.mean, m.calls,
               -- log-normal around the mean: its median and spread
               ln(1 + (e.free_var + m.calls * e.call_var + power(m.calls * e.call_mins, 2) * e.pace_rel_var)
                      / power(GREATEST(m.mean, 1), 2)) AS sigma2
        FROM estimate e,
             LATERAL (SELECT e.base / e.keep AS mean,
                             (e.base / e.keep - e.free_mins) / GREATEST(e.call_mins, 0.5) AS calls) m
    )
    SELECT c.token_id, c.token_number::text, c.status::text, c.priority, c.booking_type::text,
           0, 0, c.queue_joined_at, 0, 0, false
    FROM current_token c
    UNION ALL
    SELECT s.token_id, s.token_number::text, s.status::text, s.priority, s.booking_type::text, s.pos,
           round(s.mean * exp(-s.sigma2 / 2))::int,
           s.queue_joined_at,
           floor(s.mean * exp(-s.sigma2 / 2 - (s.tune->>'z_low')::float8 * sqrt(s.sigma2)))::int,
           ceil(s.mean * exp(-s.sigma2 / 2 + (s.tune->>'z_high')::float8 * sqrt(s.sigma2)))::int,
           s.shift_end_at IS NOT NULL
               AND opd_now() + make_interval(secs => s.mean * exp(-s.sigma2 / 2) * 60) > s.shift_end_at
    FROM spread s
    ORDER BY 6
$$;

-- The design's per-token ETA, kept for reports: the same answer as doctor_queue.
CREATE OR REPLACE FUNCTION calculate_token_eta(p_token_id UUID) RETURNS INT
LANGUAGE sql STABLE AS $$
    SELECT q.eta_minutes
    FROM tokens t, doctor_queue(t.doctor_id, t.visit_date) q
    WHERE t.token_id = p_token_id AND q.token_id = t.token_id
$$;

-- Position- and ETA-driven messages, decided at each write-back: T_MINUS_3 once when at most
-- three patients are ahead (a wobbling position does not repeat it); DELAYED when the median
-- estimate moved later than what the patient was told by more than delay_notify_minutes(), and
-- was still that late delay_confirm_minutes() on (a passing jitter sends nothing). What a patient
-- is told is the cautious end, the upper estimate; the median passing it means the call is now
-- more likely than not to come after what they were told (bench/eta.py: 83-100 % of DELAYED
-- patients were then called later than first told; on the upper end it was 7-22 %).
CREATE OR REPLACE FUNCTION delay_confirm_minutes() RETURNS INT
LANGUAGE sql IMMUTABLE AS $$ SELECT 5 $$;

-- How accurate the ETAs were (python -m app eta-report, the operations dashboard): every
-- recorded estimate of a token that was later called, with the error of its median (told minus
-- real, in minutes: positive = called earlier than told) and whether the call fell inside the
-- range and before its end. p_hospital_id NULL: every hospital.
CREATE OR REPLACE FUNCTION eta_accuracy_rows(p_hospital_id UUID, p_from DATE, p_to DATE)
RETURNS TABLE (hospital_id UUID, dept_id UUID, doctor_id UUID, token_id UUID, visit_date DATE,
               queue_position INT, told_at TIMESTAMPTZ, called_at TIMESTAMPTZ, error_minutes DOUBLE PRECISION,
               within_range BOOLEAN, before_range_end BOOLEAN)
LANGUAGE sql STABLE AS $$
    SELECT e.hospital_id, e.dept_id, e.doctor_id, e.token_id, e.visit_date, e.queue_position, e.told_at,
           c.called_at,
           extract(epoch FROM e.told_at + make_interval(mins => e.eta_minutes) - c.called_at) / 60,
           c.called_at BETWEEN e.told_at + make_interval(mins => e.eta_low_minutes)
                           AND e.told_at + make_interval(mins => e.eta_high_minutes),
           c.called_at <= e.told_at + make_interval(mins => e.eta_high_minutes)
    FROM eta_told e
    JOIN LATERAL (SELECT min(h.changed_at) AS called_at FROM token_history h
                  WHERE h.token_id = e.token_id AND h.visit_date = e.visit_date
                    AND h.new_status = 'WAITING' AND h.previous_status = 'CHECKED_IN') c ON true
    WHERE (p_hospital_id IS NULL OR e.hospital_id = p_hospital_id)
      AND e.visit_date BETWEEN p_from AND p_to
      AND c.called_at IS NOT NULL AND c.called_at >= e.told_at
$$;

-- The operations dashboard's accuracy table: eta_accuracy_rows summed per department, in SQL so
-- a week of estimates (a row per waiting minute at most) never travels to the app.
CREATE OR REPLACE FUNCTION eta_accuracy_by_department(p_hospital_id UUID, p_from DATE, p_to DATE)
RETURNS TABLE (dept_id UUID, dept_code TEXT, dept_name TEXT, estimates BIGINT, mae DOUBLE PRECISION,
               p90 DOUBLE PRECISION, bias DOUBLE PRECISION, in_range DOUBLE PRECISION,
               before_end DOUBLE PRECISION)
LANGUAGE sql STABLE AS $$
    SELECT dep.dept_id, dep.code::text, dep.name::text, count(*), avg(abs(a.error_minutes)),
           percentile_disc(0.9) WITHIN GROUP (ORDER BY abs(a.error_minutes)), avg(a.error_minutes),
           avg(a.within_range::int), avg(a.before_range_end::int)
    FROM eta_accuracy_rows(p_hospital_id, p_from, p_to) a
    JOIN departments dep ON dep.dept_id = a.dept_id
    GROUP BY dep.dept_id, dep.code, dep.name
    ORDER BY dep.code
$$;

-- Writes a doctor's computed positions and ETAs (p_queue: doctor_queue's rows as JSON; computed
-- here when NULL) and, in the same single UPDATE, what follows from them for each waiting patient:
--   * eta_told (what the patient is told, for the accuracy report): a token's first estimate, then
--     whenever its expected time moved by more than a minute, at most once a minute, and every
--     five minutes regardless. Bounded: at most one row per token per minute waited.
--   * notified_expected_at: the cautious end first told (DELAYED compares against it);
--   * delay_pending_since: since when the median has been later than told by more than
--     delay_notify_minutes(); confirmed delay_confirm_minutes() on, DELAYED is sent and what the
--     patient is told moves to the new cautious end.
-- Then the messages, only for the few tokens that need one: T_MINUS_3 (at most three ahead, once
-- per token) and DELAYED. One UPDATE, not three: each token row is written once per write-back
-- (it was written three times, and a 63-patient queue's write-back after a call took about 10 ms
-- of PostgreSQL alone; now about 4 ms, docs/performance.md). No trigger fires for these columns. Returns the number of tokens whose
-- position or ETA changed.
CREATE OR REPLACE FUNCTION write_back_queue(p_doctor_id UUID, p_day DATE, p_queue JSON DEFAULT NULL)
RETURNS INT
LANGUAGE plpgsql AS $$
DECLARE
    v_queue JSON := p_queue;
    v_now TIMESTAMPTZ := opd_now();
    v_count INT;
    v_near JSON;
    v_delayed JSON;
    v RECORD;
    v_timezone TEXT;
BEGIN
    IF v_queue IS NULL THEN
        SELECT COALESCE(json_agg(q), '[]') INTO v_queue FROM doctor_queue(p_doctor_id, p_day) q;
    END IF;
    WITH fresh AS (
        SELECT t.token_id, t.status = 'CHECKED_IN' AS queued,
               NULLIF(q.queue_position, 0) AS pos, q.eta_minutes AS eta, q.eta_high_minutes AS high,
               q.eta_low_minutes AS new_low, t.eta_low_minutes AS old_low,
               t.queue_position IS DISTINCT FROM NULLIF(q.queue_position, 0)
                 OR t.estimated_wait_time IS DISTINCT FROM q.eta_minutes
                 OR t.eta_high_minutes IS DISTINCT FROM q.eta_high_minutes AS moved,
               t.eta_told_at, t.eta_told_expected_at, t.notified_expected_at, t.delay_pending_since
        FROM json_to_recordset(v_queue) AS q(token_id UUID, queue_position INT, eta_minutes INT,
                                             eta_low_minutes INT, eta_high_minutes INT)
        -- doctor_id too, so the planner reads this doctor's rows, not the whole day's.
        JOIN tokens t ON t.token_id = q.token_id AND t.visit_date = p_day AND t.doctor_id = p_doctor_id
    ),
    told AS (
        SELECT f.*, CASE WHEN f.moved THEN f.new_low ELSE f.old_low END AS low,
               f.queued AND f.eta IS NOT NULL AND f.pos IS NOT NULL
                 AND (f.eta_told_at IS NULL
                      OR (f.eta_told_at <= v_now - interval '1 minute'
                          AND (f.eta_told_at <= v_now - interval '5 minutes'
                               OR abs(extract(epoch FROM v_now + make_interval(mins => f.eta)
                                                         - f.eta_told_expected_at)) > 60))) AS tell,
               CASE WHEN f.queued AND f.eta IS NOT NULL AND f.notified_expected_at IS NULL
                    THEN v_now + make_interval(mins => COALESCE(f.high, f.eta))
                    ELSE f.notified_expected_at END AS notified
        FROM fresh f
    ),
    late AS (
        -- Later than told: since when (kept while it lasts); back within what was told: forgotten.
        SELECT t.*,
               CASE WHEN NOT (t.queued AND t.eta IS NOT NULL AND t.notified IS NOT NULL) THEN t.delay_pending_since
                    WHEN v_now + make_interval(mins => t.eta) > t.notified + make_interval(mins => delay_notify_minutes())
                    THEN COALESCE(t.delay_pending_since, v_now) END AS pending
        FROM told t
    ),
    decided AS (
        SELECT l.*, l.queued AND l.pending <= v_now - make_interval(mins => delay_confirm_minutes()) AS delayed
        FROM late l
    ),
    written AS (
        UPDATE tokens t
        SET queue_position = d.pos, estimated_wait_time = d.eta, eta_low_minutes = d.low,
            eta_high_minutes = d.high,
            eta_updated_at = CASE WHEN d.moved THEN v_now ELSE t.eta_updated_at END,
            eta_told_at = CASE WHEN d.tell THEN v_now ELSE t.eta_told_at END,
            eta_told_expected_at = CASE WHEN d.tell THEN v_now + make_interval(mins => d.eta)
                                        ELSE t.eta_told_expected_at END,
            notified_expected_at = CASE WHEN d.delayed THEN v_now + make_interval(mins => COALESCE(d.high, d.eta))
                                        ELSE d.notified END,
            delay_pending_since = CASE WHEN d.delayed THEN NULL ELSE d.pending END
        FROM decided d
        WHERE t.token_id = d.token_id AND t.visit_date = p_day AND t.doctor_id = p_doctor_id
          AND (d.moved OR d.tell OR d.delayed OR d.notified IS DISTINCT FROM t.notified_expected_at
               OR d.pending IS DISTINCT FROM t.delay_pending_since)
        RETURNING t.token_id, t.visit_date, t.hospital_id, t.dept_id, t.doctor_id, d.tell
    ),
    recorded AS (
        INSERT INTO eta_told (token_id, visit_date, hospital_id, dept_id, doctor_id, told_at, queue_position,
                              eta_minutes, eta_low_minutes, eta_high_minutes)
        SELECT w.token_id, w.visit_date, w.hospital_id, w.dept_id, w.doctor_id, v_now, d.pos, d.eta,
               COALESCE(d.low, d.eta), COALESCE(d.high, d.eta)
        FROM written w JOIN decided d ON d.token_id = w.token_id
        WHERE w.tell
        ON CONFLICT DO NOTHING
    )
    SELECT count(*) FILTER (WHERE d.moved),
           json_agg(json_build_object('token_id', d.token_id, 'position', d.pos, 'eta', d.eta,
                                      'low', COALESCE(d.low, d.eta), 'high', COALESCE(d.high, d.eta)))
               FILTER (WHERE d.queued AND d.pos <= 4),
           json_agg(json_build_object('token_id', d.token_id, 'low', COALESCE(d.low, d.eta),
                                      'high', COALESCE(d.high, d.eta)))
               FILTER (WHERE d.delayed)
    INTO v_count, v_near, v_delayed
    FROM decided d;
    -- The messages, after the rows are written (a data-modifying WITH completes with its statement).
    FOR v IN SELECT n.* FROM json_to_recordset(v_near) AS n(token_id UUID, position INT, eta INT, low INT, high INT)
             WHERE NOT EXISTS (SELECT 1 FROM notifications_log l
                               WHERE l.token_id = n.token_id AND l.event_type = 'T_MINUS_3') LOOP
        PERFORM enqueue_notification(v.token_id, 'T_MINUS_3', jsonb_build_object(
            'position', v.position, 'eta', v.eta, 'low', v.low, 'high', v.high));
    END LOOP;
    IF v_delayed IS NOT NULL THEN
        SELECT h.timezone INTO v_timezone FROM doctors d JOIN hospitals h ON h.hospital_id = d.hospital_id
        WHERE d.doctor_id = p_doctor_id;
        FOR v IN SELECT n.* FROM json_to_recordset(v_delayed) AS n(token_id UUID, low INT, high INT) LOOP
            -- The message quotes the cautious end as a clock time: "now expected by 11:40".
            PERFORM enqueue_notification(v.token_id, 'DELAYED', jsonb_build_object(
                'eta', v.high, 'low', v.low, 'high', v.high,
                'by', to_char((v_now + make_interval(mins => v.high)) AT TIME ZONE v_timezone, 'HH24:MI')));
        END LOOP;
    END IF;
    RETURN v_count;
END $$;

-- The queue engine's deferred write-back: several doctors' queues, each as it is now, in one
-- round trip (docs/schema.md, "Derived columns"). It never makes a click wait: a doctor whose
-- rows an API transaction holds is skipped (lock_timeout, one subtransaction per doctor) and
-- returned, for the engine to retry at its next round. Its commit need not wait for the WAL
-- flush: everything it writes is derived again after any restart (positions, ETAs, and
-- T_MINUS_3/DELAYED rows decided by what is already there).
CREATE OR REPLACE FUNCTION write_back_queues(p_doctor_ids UUID[])
RETURNS UUID[]
LANGUAGE plpgsql SET plan_cache_mode = force_generic_plan AS $$
DECLARE
    v_doctor UUID;
    v_day DATE;
    v_skipped UUID[] := '{}';
BEGIN
    PERFORM set_config('synchronous_commit', 'off', true);
    PERFORM set_config('lock_timeout', '50ms', true);
    FOREACH v_doctor IN ARRAY p_doctor_ids LOOP
        SELECT hospital_today(hospital_id) INTO v_day FROM doctors WHERE doctor_id = v_doctor;
        CONTINUE WHEN v_day IS NULL;
        BEGIN
            PERFORM write_back_queue(v_doctor, v_day);
        EXCEPTION WHEN lock_not_available THEN
            v_skipped := v_skipped || v_doctor;
        END;
    END LOOP;
    RETURN v_skipped;
END $$;

-- How long a call stays on the boards' "recently called" strip after the next call.
CREATE OR REPLACE FUNCTION recent_call_minutes() RETURNS INT
LANGUAGE sql IMMUTABLE AS $$ SELECT 15 $$;

-- The doctor's queue snapshot as JSON (the shape of GET /api/v1/queues/doctors/{id}, plus
-- private fields that the engine strips per topic); with p_write_back, the positions and ETAs
-- are first written to the tokens (write_back_queue; tests and tools use it).
-- JSON, not JSONB: built once and sent straight out, it is never queried; json_build_object
-- costs a third of jsonb_build_object, which showed at every recompute.
DROP FUNCTION IF EXISTS doctor_queue_snapshot(UUID, DATE, BOOLEAN);
CREATE OR REPLACE FUNCTION doctor_queue_snapshot(p_doctor_id UUID, p_day DATE, p_write_back BOOLEAN)
RETURNS JSON
LANGUAGE plpgsql SET plan_cache_mode = force_generic_plan AS $$
DECLARE
    v_now TIMESTAMPTZ := opd_now();
    v_result JSON;
BEGIN
    IF p_write_back THEN
        PERFORM write_back_queue(p_doctor_id, p_day);
    END IF;
    -- The queue joined once to its tokens and patients: who is served comes from the same
    -- computed rows as the waiting list (its position-0 row), so a call committing meanwhile
    -- never shows a patient both in the cabin and first in line. (Passing the queue through
    -- JSON and joining it twice cost a third of this function.)
    WITH q AS MATERIALIZED (
        SELECT q.token_id, q.token_number, q.status, q.priority, q.booking_type,
               q.queue_position, q.eta_minutes, q.eta_low_minutes, q.eta_high_minutes, q.eta_beyond_shift,
               t.called_time, t.call_count,
               t.consultation_start_time, t.visit_reason,
               p.name AS patient_name, p.date_of_birth, p.gender
        FROM doctor_queue(p_doctor_id, p_day) q
        JOIN tokens t ON t.token_id = q.token_id AND t.visit_date = p_day AND t.doctor_id = p_doctor_id
        JOIN patients p ON p.patient_id = t.patient_id
    )
    SELECT json_build_object(
        'doctor_id', d.doctor_id,
        'doctor_name', d.name,
        'dept_id', d.primary_dept_id,
        'dept_code', dep.code,
        'dept_name', dep.name,
        'color_code', dep.color_code,
        'hospital_id', d.hospital_id,
        'visit_date', p_day,
        'paused', d.paused_at IS NOT NULL,
        'on_leave', doctor_on_leave(d.doctor_id, v_now),
        'doctor_status', d.status,
        'cabin_id', s.cabin_id,
        'cabin_number', c.cabin_number,
        'shift', CASE WHEN s.assignment_id IS NULL THEN NULL ELSE json_build_object(
                    'start', s.shift_start_time, 'end', s.shift_end_time, 'status', s.status) END,
        'now_serving', (
            SELECT to_json(x) FROM (
                SELECT q.token_id, q.token_number, q.status, q.priority, q.booking_type,
                       q.called_time, q.call_count, q.consultation_start_time, q.visit_reason,
                       q.patient_name, q.date_of_birth, q.gender
                FROM q WHERE q.queue_position = 0 LIMIT 1) x),
        'waiting', COALESCE((
            SELECT json_agg(x ORDER BY x.position) FROM (
                SELECT q.token_id, q.token_number, q.queue_position AS position,
                       q.eta_minutes, q.eta_low_minutes, q.eta_high_minutes, q.eta_beyond_shift,
                       q.priority, q.status, q.booking_type,
                       q.patient_name, q.visit_reason
                FROM q WHERE q.queue_position > 0) x), '[]'::json),
        -- Calls of the last minutes other than the one now serving: a screen that was cut off
        -- (a Redis restart, a dropped Wi-Fi) still shows a patient called meanwhile.
        'recent_calls', COALESCE((
            SELECT json_agg(x ORDER BY x.called_time DESC) FROM (
                SELECT t.token_number, t.called_time, t.status FROM tokens t
                WHERE t.doctor_id = p_doctor_id AND t.visit_date = p_day
                  AND t.called_time >= v_now - make_interval(mins => recent_call_minutes())
                  AND t.status IN ('WAITING', 'IN_CONSULTATION', 'COMPLETED', 'NO_SHOW')
                  AND t.token_id IS DISTINCT FROM (SELECT q.token_id FROM q WHERE q.queue_position = 0 LIMIT 1)
                ORDER BY t.called_time DESC LIMIT 3) x), '[]'::json),
        'booked_count', (SELECT count(*) FROM tokens t WHERE t.doctor_id = p_doctor_id
                           AND t.visit_date = p_day AND t.status = 'BOOKED'),
        'completed_count', (SELECT count(*) FROM tokens t WHERE t.doctor_id = p_doctor_id
                              AND t.visit_date = p_day AND t.status = 'COMPLETED'),
        'computed_at', v_now
    ) INTO v_result
    FROM doctors d
    JOIN departments dep ON dep.dept_id = d.primary_dept_id
    LEFT JOIN LATERAL (SELECT * FROM doctor_shift(p_doctor_id, p_day, v_now)) s ON true
    LEFT JOIN cabins c ON c.cabin_id = s.cabin_id
    WHERE d.doctor_id = p_doctor_id;
    RETURN v_result;
END $$;

-- Tokens as their patients see them (the token: topic and GET /api/v1/track/{code}): the token,
-- its place and the doctor's public details; no name, no phone. The engine calls it right after
-- writing positions back and reads those; a direct read (the API) computes them afresh.
DROP FUNCTION IF EXISTS token_public_view(UUID);
DROP FUNCTION IF EXISTS token_views(UUID[], BOOLEAN, JSON);
-- Positions and ETAs: from p_positions when given (the engine passes the waiting list it has just
-- computed, [{token_id, position, eta_minutes}]), computed afresh with p_compute_positions (a
-- direct read, the API), else the stored columns.
CREATE OR REPLACE FUNCTION token_views(p_token_ids UUID[], p_compute_positions BOOLEAN DEFAULT FALSE,
                                       p_positions JSON DEFAULT NULL)
RETURNS TABLE (token_id UUID, tracking_code TEXT, view JSON)
LANGUAGE sql STABLE AS $$
    WITH picked AS (
        SELECT t.* FROM tokens t WHERE t.token_id = ANY(p_token_ids)
    ),
    queues AS (
        SELECT q.token_id, q.queue_position, q.eta_minutes, q.eta_low_minutes, q.eta_high_minutes,
               q.eta_beyond_shift
        FROM (SELECT DISTINCT p.doctor_id, p.visit_date FROM picked p
              WHERE p.status = 'CHECKED_IN' AND p_compute_positions) k,
             LATERAL doctor_queue(k.doctor_id, k.visit_date) q
        UNION ALL
        SELECT g.token_id, g.position, g.eta_minutes, g.eta_low_minutes, g.eta_high_minutes, g.eta_beyond_shift
        FROM json_to_recordset(p_positions) AS g(token_id UUID, position INT, eta_minutes INT,
                                                 eta_low_minutes INT, eta_high_minutes INT,
                                                 eta_beyond_shift BOOLEAN)
    ),
    serving AS (
        SELECT DISTINCT ON (s.doctor_id, s.visit_date) s.doctor_id, s.visit_date, s.token_number
        FROM tokens s JOIN (SELECT DISTINCT p.doctor_id, p.visit_date FROM picked p) k
             ON k.doctor_id = s.doctor_id AND k.visit_date = s.visit_date
        WHERE s.status IN ('WAITING', 'IN_CONSULTATION')
    )
    SELECT t.token_id, t.tracking_code::text, json_build_object(
        'token_id', t.token_id,
        'token_number', t.token_number,
        'status', t.status,
        'visit_date', t.visit_date,
        'booking_type', t.booking_type,
        'priority', t.priority,
        'scheduled_time', t.scheduled_time,
        'position', CASE WHEN t.status = 'CHECKED_IN' THEN COALESCE(q.queue_position, t.queue_position) END,
        'eta_minutes', CASE WHEN t.status = 'CHECKED_IN' THEN COALESCE(q.eta_minutes, t.estimated_wait_time) END,
        'eta_low_minutes', CASE WHEN t.status = 'CHECKED_IN' THEN COALESCE(q.eta_low_minutes, t.eta_low_minutes) END,
        'eta_high_minutes', CASE WHEN t.status = 'CHECKED_IN' THEN COALESCE(q.eta_high_minutes, t.eta_high_minutes) END,
        'eta_beyond_shift', CASE WHEN t.status = 'CHECKED_IN' THEN COALESCE(q.eta_beyond_shift, false) END,
        'called_time', t.called_time,
        'call_count', t.call_count,
        'doctor_id', t.doctor_id,
        'doctor_name', d.name,
        'dept_name', dep.name,
        'dept_code', dep.code,
        'cabin_id', t.cabin_id,
        'cabin_number', c.cabin_number,
        'hospital_id', t.hospital_id,
        'hospital_name', h.name,
        -- Only while the visit is open: a closed token's view must not go stale as the queue
        -- moves on (the engine rebuilds open tokens' views only).
        'now_serving', CASE WHEN t.status IN ('BOOKED', 'CHECKED_IN', 'WAITING', 'IN_CONSULTATION')
                            THEN sv.token_number END,
        'replaced_by', (SELECT n.token_number FROM tokens n WHERE n.rescheduled_from_token_id = t.token_id LIMIT 1)
    )
    FROM picked t
    JOIN doctors d ON d.doctor_id = t.doctor_id
    JOIN departments dep ON dep.dept_id = t.dept_id
    JOIN hospitals h ON h.hospital_id = t.hospital_id
    LEFT JOIN cabins c ON c.cabin_id = t.cabin_id
    LEFT JOIN queues q ON q.token_id = t.token_id
    LEFT JOIN serving sv ON sv.doctor_id = t.doctor_id AND sv.visit_date = t.visit_date
$$;

CREATE OR REPLACE FUNCTION token_public_view(p_token_id UUID) RETURNS JSON
LANGUAGE sql STABLE AS $$ SELECT v.view FROM token_views(ARRAY[p_token_id], true) v $$;

-- Views ---------------------------------------------------------------------------------------
-- "Today" is each hospital's own day, not the database server's.
CREATE OR REPLACE VIEW vw_live_queue AS
SELECT
    t.token_id,
    t.token_number,
    t.hospital_id,
    p.name AS patient_name,
    p.phone AS patient_phone,
    d.name AS doctor_name,
    dept.name AS department_name,
    c.cabin_number,
    t.status,
    t.queue_position,
    t.estimated_wait_time,
    t.scheduled_time,
    t.check_in_time,
    EXTRACT(EPOCH FROM (opd_now() - t.check_in_time)) / 60 AS actual_wait_mins
FROM tokens t
JOIN hospitals h ON h.hospital_id = t.hospital_id
JOIN patients p ON t.patient_id = p.patient_id
JOIN doctors d ON t.doctor_id = d.doctor_id
JOIN departments dept ON t.dept_id = dept.dept_id
LEFT JOIN cabins c ON t.cabin_id = c.cabin_id
WHERE t.status IN ('CHECKED_IN', 'WAITING', 'IN_CONSULTATION')
  AND t.visit_date = (opd_now() AT TIME ZONE h.timezone)::date
ORDER BY t.doctor_id, t.queue_position NULLS FIRST;

-- Every doctor's status in one hospital, on the hospital's own day: the rule of
-- vw_doctor_status, in one place. The hospital's day and "now" are computed once: as a join
-- condition of the view, `(opd_now() AT TIME ZONE h.timezone)::date` was evaluated again for
-- each of the day's tokens, and the operations dashboard's read of a 196-doctor hospital took
-- 18 ms instead of 5 (docs/performance.md).
CREATE OR REPLACE FUNCTION hospital_doctor_statuses(p_hospital_id UUID)
RETURNS TABLE (doctor_id UUID, doctor_name VARCHAR(255), specialization VARCHAR(100), cabin_id UUID,
               cabin_number VARCHAR(20), pending_tokens BIGINT, last_consult_start TIMESTAMPTZ,
               current_status TEXT)
LANGUAGE plpgsql STABLE AS $$
#variable_conflict use_column
DECLARE
    v_day DATE := hospital_today(p_hospital_id);
    v_called_before TIMESTAMPTZ;
BEGIN
    SELECT opd_now() - make_interval(mins => h.called_not_seen_minutes) INTO v_called_before
    FROM hospitals h WHERE h.hospital_id = p_hospital_id;
    RETURN QUERY
    WITH day_tokens AS (
        SELECT t.doctor_id,
               count(*) FILTER (WHERE t.status = 'CHECKED_IN') AS pending,
               max(t.consultation_start_time) AS last_start,
               bool_or(t.status = 'WAITING' AND t.called_time < v_called_before) AS called_not_seen,
               bool_or(t.status IN ('WAITING', 'IN_CONSULTATION')) AS busy,
               bool_or(t.status = 'CHECKED_IN') AS has_checked_in
        FROM tokens t
        WHERE t.visit_date = v_day
          AND t.doctor_id IN (SELECT d.doctor_id FROM doctors d WHERE d.hospital_id = p_hospital_id)
        GROUP BY t.doctor_id
    )
    SELECT d.doctor_id, d.name, d.specialization, cd.cabin_id, c.cabin_number,
           COALESCE(k.pending, 0), k.last_start,
           CASE
               -- A patient called longer ago than the hospital's limit and not seen: not "busy" (issue 13).
               WHEN k.called_not_seen THEN 'CALLED_NOT_SEEN'
               WHEN k.busy THEN 'BUSY'
               WHEN d.paused_at IS NOT NULL THEN 'ON_BREAK'
               -- On shift with patients waiting and nobody called: idle, the patients are not moving.
               WHEN cd.status = 'ACTIVE' AND k.has_checked_in THEN 'IDLE'
               WHEN cd.status = 'ACTIVE' THEN 'AVAILABLE'
               ELSE 'OFFLINE'
           END
    FROM doctors d
    LEFT JOIN cabin_doctors cd ON cd.doctor_id = d.doctor_id AND cd.shift_date = v_day AND cd.status = 'ACTIVE'
    LEFT JOIN cabins c ON c.cabin_id = cd.cabin_id
    LEFT JOIN day_tokens k ON k.doctor_id = d.doctor_id
    WHERE d.hospital_id = p_hospital_id;
END $$;

-- The design's view, on each hospital's own day. Filtered by hospital, it reads that hospital
-- only (the filter applies to `h`).
CREATE OR REPLACE VIEW vw_doctor_status AS
SELECT s.doctor_id, h.hospital_id, s.doctor_name::VARCHAR(255) AS doctor_name,
       s.specialization::VARCHAR(100) AS specialization, s.cabin_id,
       s.cabin_number::VARCHAR(20) AS cabin_number, s.pending_tokens, s.last_consult_start,
       s.current_status
FROM hospitals h
CROSS JOIN LATERAL hospital_doctor_statuses(h.hospital_id) s;


-- Everything the queue engine publishes for one doctor, in one round trip: the doctor's queue
-- (computed now; written back later by write_back_queues) and the patient views the engine cannot
-- derive itself.
--
-- Which views: with p_known_ids NULL, every open token of the day (p_all_of_day: every token of
-- the day, closed ones too: after a reconnect nobody knows which closed unseen). Otherwise the
-- engine lists the open tokens whose views it holds, and gets the views of p_extra_token_ids
-- (tokens whose row changed: their NOTIFYs) and of open tokens it does not hold. The held views
-- it brings up to date itself: as the queue moves, only their position, ETA and "now serving"
-- change, and those come from the queue (app/live/engine.py, _patch_views). A call-next then
-- costs two views here instead of one per waiting patient.
CREATE OR REPLACE FUNCTION doctor_live_views(p_doctor_id UUID, p_extra_token_ids UUID[],
                                             p_all_of_day BOOLEAN DEFAULT FALSE,
                                             p_known_ids UUID[] DEFAULT NULL)
RETURNS JSON
LANGUAGE plpgsql SET plan_cache_mode = force_generic_plan AS $$
DECLARE
    v_day DATE;
    v_queue JSON;
    v_ids UUID[];
BEGIN
    SELECT hospital_today(hospital_id) INTO v_day FROM doctors WHERE doctor_id = p_doctor_id;
    IF v_day IS NULL THEN
        RETURN NULL;
    END IF;
    -- Read-only: the positions and ETAs go out from the computed queue, and the engine writes
    -- them back later, coalesced and off the click's path (write_back_queues).
    v_queue := doctor_queue_snapshot(p_doctor_id, v_day, false);
    v_ids := ARRAY(
        SELECT t.token_id FROM tokens t
        WHERE t.doctor_id = p_doctor_id AND t.visit_date = v_day
          AND (p_all_of_day OR t.status IN ('BOOKED', 'CHECKED_IN', 'WAITING', 'IN_CONSULTATION'))
          AND (p_known_ids IS NULL OR t.token_id <> ALL (p_known_ids))
        UNION
        SELECT unnest(p_extra_token_ids));
    RETURN json_build_object(
        'queue', v_queue,
        'tokens', COALESCE((
            SELECT json_agg(json_build_object('code', v.tracking_code, 'view', v.view))
            FROM token_views(v_ids, false, v_queue->'waiting') v), '[]'::json));
END $$;

-- What the engine needs to lay out boards: per hospital its departments, doctors and cabins.
-- Board notices (migration 007): posted by staff, shown on the hospital's boards and doors
-- until they end or are removed. The boards also hide one whose end has passed by their own
-- clock, so it goes at its time even between two refreshes of the layout.
CREATE OR REPLACE FUNCTION live_board_notices(p_hospital_id UUID) RETURNS JSONB
LANGUAGE sql STABLE AS $$
    SELECT COALESCE(jsonb_agg(jsonb_build_object(
               'notice_id', n.notice_id, 'dept_id', n.dept_id, 'text_en', n.text_en, 'text_hi', n.text_hi,
               'starts_at', n.starts_at, 'ends_at', n.ends_at) ORDER BY n.starts_at, n.notice_id), '[]')
    FROM board_notices n
    WHERE n.hospital_id = p_hospital_id AND n.removed_at IS NULL AND n.ends_at > opd_now()
$$;

CREATE OR REPLACE FUNCTION post_board_notice(p_hospital_id UUID, p_dept_id UUID, p_text_en TEXT, p_text_hi TEXT,
                                             p_starts TIMESTAMPTZ, p_ends TIMESTAMPTZ, p_actor UUID)
RETURNS board_notices
LANGUAGE plpgsql AS $$
DECLARE
    v_notice board_notices;
BEGIN
    IF p_dept_id IS NOT NULL AND NOT EXISTS (
            SELECT 1 FROM departments WHERE dept_id = p_dept_id AND hospital_id = p_hospital_id) THEN
        RAISE EXCEPTION 'department % does not exist in this hospital', p_dept_id USING ERRCODE = 'OPD15';
    END IF;
    INSERT INTO board_notices (hospital_id, dept_id, text_en, text_hi, starts_at, ends_at, posted_by)
    VALUES (p_hospital_id, p_dept_id, btrim(p_text_en), NULLIF(btrim(p_text_hi), ''),
            COALESCE(p_starts, opd_now()), p_ends, p_actor)
    RETURNING * INTO v_notice;
    RETURN v_notice;
END $$;

-- A change of what the boards show that is not a doctor's: the engine reloads the hospital's
-- layout and republishes its boards at once (not at the next safety refresh).
CREATE OR REPLACE FUNCTION notify_hospital_layout(p_hospital_id UUID) RETURNS VOID
LANGUAGE sql AS $$
    SELECT pg_notify('opd_changes', json_build_object(
        'kind', 'hospital', 'hospital_id', p_hospital_id, 'at', extract(epoch FROM clock_timestamp()))::text)
$$;

-- One trigger function for both tables: each row carries its hospital_id.
CREATE OR REPLACE FUNCTION hospital_layout_changed() RETURNS TRIGGER
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM notify_hospital_layout(NEW.hospital_id);
    RETURN NULL;
END $$;

DROP TRIGGER IF EXISTS board_notices_after_write ON board_notices;
CREATE TRIGGER board_notices_after_write AFTER INSERT OR UPDATE ON board_notices
    FOR EACH ROW EXECUTE FUNCTION hospital_layout_changed();

DROP TRIGGER IF EXISTS hospitals_after_update ON hospitals;
CREATE TRIGGER hospitals_after_update AFTER UPDATE ON hospitals
    FOR EACH ROW
    WHEN (OLD.name IS DISTINCT FROM NEW.name OR OLD.board_shows_names IS DISTINCT FROM NEW.board_shows_names
          OR OLD.announcement_languages IS DISTINCT FROM NEW.announcement_languages
          OR OLD.timezone IS DISTINCT FROM NEW.timezone)
    EXECUTE FUNCTION hospital_layout_changed();

CREATE OR REPLACE FUNCTION hospital_layout(p_hospital_id UUID) RETURNS JSONB
LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object(
        'hospital_id', h.hospital_id, 'code', h.code, 'name', h.name,
        'board_shows_names', h.board_shows_names, 'timezone', h.timezone,
        'latitude', h.latitude, 'longitude', h.longitude, 'geofence_radius', h.geofence_radius,
        'announcement_languages', h.announcement_languages,
        'notices', live_board_notices(h.hospital_id),
        'departments', COALESCE((SELECT jsonb_agg(jsonb_build_object(
                'dept_id', d.dept_id, 'code', d.code, 'name', d.name, 'color_code', d.color_code,
                'doctor_ids', COALESCE((SELECT jsonb_agg(doc.doctor_id ORDER BY doc.name) FROM doctors doc
                                        WHERE doc.primary_dept_id = d.dept_id AND doc.status <> 'INACTIVE'), '[]'),
                'cabins', COALESCE((SELECT jsonb_agg(jsonb_build_object('cabin_id', c.cabin_id,
                                        'cabin_number', c.cabin_number) ORDER BY c.cabin_number)
                                    FROM cabins c WHERE c.dept_id = d.dept_id), '[]'))
            ORDER BY d.code) FROM departments d WHERE d.hospital_id = h.hospital_id AND d.status = 'ACTIVE'), '[]'))
    FROM hospitals h WHERE h.hospital_id = p_hospital_id
$$;

-- Operations: doctor leave and redistribution -------------------------------------------------
-- Leave that is planned ahead waits for an admin; leave forced by events applies at once.
CREATE OR REPLACE FUNCTION exception_needs_approval(p_type TEXT) RETURNS BOOLEAN
LANGUAGE sql IMMUTABLE AS $$ SELECT p_type IN ('PLANNED_LEAVE', 'TRAINING') $$;

-- Is the doctor away (an applied schedule exception) at p_at?
CREATE OR REPLACE FUNCTION doctor_on_leave(p_doctor_id UUID, p_at TIMESTAMPTZ) RETURNS BOOLEAN
LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN EXISTS (SELECT 1 FROM schedule_exceptions e
                   WHERE e.doctor_id = p_doctor_id AND p_at >= e.start_datetime AND p_at < e.end_datetime
                     AND (NOT e.needs_approval OR e.approved_at IS NOT NULL));
END $$;

-- When a queued or booked token is expected to be seen: its ETA if queued today, else its slot.
CREATE OR REPLACE FUNCTION token_expected_at(p_status TEXT, p_scheduled TIMESTAMPTZ, p_eta INT)
RETURNS TIMESTAMPTZ
LANGUAGE sql STABLE AS $$
    SELECT CASE WHEN p_status = 'CHECKED_IN' THEN opd_now() + make_interval(mins => COALESCE(p_eta, 0))
                ELSE p_scheduled END
$$;

-- Records a schedule exception and, unless it waits for approval, applies it at once.
CREATE OR REPLACE FUNCTION record_schedule_exception(p_doctor_id UUID, p_type TEXT, p_start TIMESTAMPTZ,
                                                     p_end TIMESTAMPTZ, p_reason TEXT, p_actor UUID)
RETURNS schedule_exceptions
LANGUAGE plpgsql AS $$
DECLARE
    v_exception schedule_exceptions;
BEGIN
    INSERT INTO schedule_exceptions (doctor_id, exception_type, start_datetime, end_datetime, reason,
                                     needs_approval, created_by)
    VALUES (p_doctor_id, p_type, p_start, p_end, p_reason, exception_needs_approval(p_type), p_actor)
    RETURNING * INTO v_exception;
    IF NOT v_exception.needs_approval THEN
        v_exception := apply_schedule_exception(v_exception.exception_id, p_actor);
    END IF;
    RETURN v_exception;
END $$;

CREATE OR REPLACE FUNCTION approve_schedule_exception(p_exception_id UUID, p_approver UUID)
RETURNS schedule_exceptions
LANGUAGE plpgsql AS $$
DECLARE
    v_exception schedule_exceptions;
BEGIN
    UPDATE schedule_exceptions
    SET approved_at = opd_now(), approver_id = (SELECT user_id FROM staff_users WHERE user_id = p_approver),
        approved_by_key = (SELECT key_id FROM api_keys WHERE key_id = p_approver)
    WHERE exception_id = p_exception_id AND needs_approval AND approved_at IS NULL
    RETURNING * INTO v_exception;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'no leave waiting for approval with id %', p_exception_id USING ERRCODE = 'OPD10';
    END IF;
    RETURN apply_schedule_exception(p_exception_id, p_approver);
END $$;

-- Moves every token the doctor would have seen during the exception to a colleague of the same
-- department who is on shift then, not away, and below their session limit: each to the one
-- whose queue is then shortest (in minutes), in call order, so patients keep their relative
-- order and priority (a transfer keeps queue_joined_at). A token nobody can take moves to the
-- doctor's next session (RESCHEDULED, linked new token), or is cancelled when there is none.
-- All in the caller's transaction; the patients' messages are written by the token triggers.
CREATE OR REPLACE FUNCTION apply_schedule_exception(p_exception_id UUID, p_actor UUID)
RETURNS schedule_exceptions
LANGUAGE plpgsql AS $$
DECLARE
    v_exception schedule_exceptions;
    v_doctor doctors;
    v_token RECORD;
    v_target UUID;
    v_next cabin_doctors;
    v_moved INT := 0;
    v_rescheduled INT := 0;
    v_cancelled INT := 0;
BEGIN
    SELECT * INTO v_exception FROM schedule_exceptions WHERE exception_id = p_exception_id FOR UPDATE;
    SELECT * INTO v_doctor FROM doctors WHERE doctor_id = v_exception.doctor_id FOR NO KEY UPDATE;
    PERFORM opd_set_actor(p_actor, 'LEAVE: ' || v_exception.exception_type);
    FOR v_token IN
        SELECT t.token_id, t.status, t.visit_date, t.hospital_id, t.scheduled_time, t.priority,
               token_expected_at(t.status, t.scheduled_time, t.estimated_wait_time) AS expected_at
        FROM tokens t
        WHERE t.doctor_id = v_doctor.doctor_id AND t.status IN ('BOOKED', 'CHECKED_IN')
          AND t.visit_date BETWEEN (v_exception.start_datetime AT TIME ZONE 'UTC')::date - 1
                               AND (v_exception.end_datetime AT TIME ZONE 'UTC')::date + 1
          AND token_expected_at(t.status, t.scheduled_time, t.estimated_wait_time)
              BETWEEN v_exception.start_datetime AND v_exception.end_datetime
        ORDER BY t.visit_date, t.priority DESC, COALESCE(t.queue_joined_at, t.scheduled_time), t.serial
    LOOP
        SELECT d.doctor_id INTO v_target
        FROM doctors d
        JOIN LATERAL doctor_shift(d.doctor_id, v_token.visit_date, v_token.expected_at) s ON true
        JOIN departments dep ON dep.dept_id = d.primary_dept_id
        WHERE d.primary_dept_id = v_doctor.primary_dept_id AND d.doctor_id <> v_doctor.doctor_id
          AND d.status = 'ACTIVE' AND s.assignment_id IS NOT NULL AND s.status <> 'CANCELLED'
          AND v_token.expected_at < hospital_local_time(d.hospital_id, v_token.visit_date, s.shift_end_time)
          AND NOT doctor_on_leave(d.doctor_id, v_token.expected_at)
          AND (SELECT count(*) FROM tokens x WHERE x.doctor_id = d.doctor_id AND x.visit_date = v_token.visit_date
                 AND x.status NOT IN ('CANCELLED', 'RESCHEDULED')) < d.max_tokens_per_session
        -- Tokens moved earlier in this loop already count here: they belong to d now.
        ORDER BY (SELECT count(*) FROM tokens x WHERE x.doctor_id = d.doctor_id AND x.visit_date = v_token.visit_date
                      AND x.status IN ('BOOKED', 'CHECKED_IN', 'WAITING', 'IN_CONSULTATION'))
                   * (COALESCE(d.avg_consultation_time, dep.avg_consultation_time) + dep.buffer_time),
                 d.name
        LIMIT 1;
        IF v_target IS NOT NULL THEN
            UPDATE tokens SET doctor_id = v_target WHERE token_id = v_token.token_id AND visit_date = v_token.visit_date;
            v_moved := v_moved + 1;
            CONTINUE;
        END IF;
        SELECT cd.* INTO v_next FROM cabin_doctors cd
        WHERE cd.doctor_id = v_doctor.doctor_id AND cd.status <> 'CANCELLED'
          AND hospital_local_time(v_doctor.hospital_id, cd.shift_date, cd.shift_start_time) >= v_exception.end_datetime
        ORDER BY cd.shift_date, cd.shift_start_time LIMIT 1;
        IF v_next.assignment_id IS NOT NULL THEN
            PERFORM 1 FROM reschedule_token(v_token.token_id,
                hospital_local_time(v_doctor.hospital_id, v_next.shift_date, v_next.shift_start_time),
                NULL, p_actor, 'doctor away: ' || v_exception.exception_type);
            v_rescheduled := v_rescheduled + 1;
        ELSE
            PERFORM 1 FROM set_token_status(v_token.token_id, 'CANCELLED', p_actor,
                'doctor away and no later session: ' || v_exception.exception_type);
            v_cancelled := v_cancelled + 1;
        END IF;
    END LOOP;
    UPDATE schedule_exceptions SET
        affected_tokens_count = v_moved + v_rescheduled + v_cancelled,
        rescheduled_count = v_rescheduled,
        cancelled_count = v_cancelled,
        redistribution_status = CASE WHEN v_cancelled > 0 THEN 'CANCELLED'
                                     WHEN v_rescheduled > 0 THEN 'RESCHEDULED'
                                     ELSE 'REDISTRIBUTED' END
    WHERE exception_id = p_exception_id RETURNING * INTO v_exception;
    -- Boards show the doctor as away; the engine recomputes on this NOTIFY.
    PERFORM pg_notify('opd_changes', json_build_object(
        'kind', 'doctor', 'doctor_id', v_doctor.doctor_id, 'dept_id', v_doctor.primary_dept_id,
        'hospital_id', v_doctor.hospital_id, 'at', extract(epoch FROM clock_timestamp()))::text);
    RETURN v_exception;
END $$;

-- What approving a leave would do, without doing it: apply_schedule_exception itself runs in a
-- subtransaction that is then rolled back (its token changes, messages, history and NOTIFYs go
-- with it), so the preview and the approval can never disagree on who goes where. One row per
-- token: MOVED (to_doctor), RESCHEDULED (to_time, the doctor's next session) or CANCELLED.
CREATE OR REPLACE FUNCTION preview_schedule_exception(p_exception_id UUID)
RETURNS TABLE (token_id UUID, token_number TEXT, visit_date DATE, status TEXT, outcome TEXT,
               to_doctor_id UUID, to_doctor_name TEXT, to_time TIMESTAMPTZ)
LANGUAGE plpgsql AS $$
DECLARE
    v_exception schedule_exceptions;
    v_before JSONB;
    v_plan JSONB := '[]';
BEGIN
    SELECT * INTO v_exception FROM schedule_exceptions e WHERE e.exception_id = p_exception_id;
    IF NOT FOUND OR NOT v_exception.needs_approval OR v_exception.approved_at IS NOT NULL THEN
        RAISE EXCEPTION 'no leave waiting for approval with id %', p_exception_id USING ERRCODE = 'OPD10';
    END IF;
    SELECT COALESCE(jsonb_agg(jsonb_build_object('token_id', t.token_id, 'token_number', t.token_number,
                                                 'visit_date', t.visit_date, 'status', t.status)), '[]')
    INTO v_before FROM tokens t
    WHERE t.doctor_id = v_exception.doctor_id AND t.status IN ('BOOKED', 'CHECKED_IN');
    BEGIN
        PERFORM apply_schedule_exception(p_exception_id, NULL);
        SELECT COALESCE(jsonb_agg(jsonb_build_object(
                   'token_id', t.token_id, 'token_number', b->>'token_number', 'visit_date', t.visit_date,
                   'status', b->>'status',
                   'outcome', CASE WHEN t.status IN ('RESCHEDULED', 'CANCELLED') THEN t.status ELSE 'MOVED' END,
                   'to_doctor_id', CASE WHEN t.status NOT IN ('RESCHEDULED', 'CANCELLED') THEN t.doctor_id END,
                   'to_doctor_name', CASE WHEN t.status NOT IN ('RESCHEDULED', 'CANCELLED') THEN d.name END,
                   'to_time', n.scheduled_time)
                 ORDER BY t.visit_date, t.priority DESC, COALESCE(t.queue_joined_at, t.scheduled_time), t.serial), '[]')
        INTO v_plan
        FROM jsonb_array_elements(v_before) b
        JOIN tokens t ON t.token_id = (b->>'token_id')::uuid AND t.visit_date = (b->>'visit_date')::date
        JOIN doctors d ON d.doctor_id = t.doctor_id
        LEFT JOIN tokens n ON n.rescheduled_from_token_id = t.token_id AND t.status = 'RESCHEDULED'
        WHERE t.doctor_id <> v_exception.doctor_id OR t.status IS DISTINCT FROM b->>'status';
        RAISE EXCEPTION USING ERRCODE = 'OPD99', MESSAGE = 'preview only: roll back';
    EXCEPTION WHEN SQLSTATE 'OPD99' THEN
        NULL;   -- every change of the apply is undone; v_plan keeps what it would have been
    END;
    RETURN QUERY
    SELECT (p->>'token_id')::uuid, p->>'token_number', (p->>'visit_date')::date, p->>'status', p->>'outcome',
           (p->>'to_doctor_id')::uuid, p->>'to_doctor_name', (p->>'to_time')::timestamptz
    FROM jsonb_array_elements(v_plan) p;
END $$;

-- Operations: bottleneck alerts ---------------------------------------------------------------
-- Thresholds, in one place (docs/operations.md).
CREATE OR REPLACE FUNCTION alert_thresholds() RETURNS JSONB
LANGUAGE sql IMMUTABLE AS $$
    SELECT '{"bottleneck_pending": 20, "bottleneck_avg_wait_mins": 60, "long_wait_mins": 90,
             "doctor_idle_mins": 10, "doctor_late_mins": 10}'::jsonb
$$;

-- Opens an alert unless one is already open for the same thing; returns true if it opened one.
CREATE OR REPLACE FUNCTION raise_alert(p_hospital_id UUID, p_type TEXT, p_severity TEXT, p_entity_type TEXT,
                                       p_entity_id UUID, p_message TEXT, p_metadata JSONB)
RETURNS BOOLEAN
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO system_alerts (hospital_id, alert_type, severity, entity_type, entity_id, message, metadata, created_at)
    VALUES (p_hospital_id, p_type, p_severity, p_entity_type, p_entity_id, p_message, p_metadata, opd_now())
    ON CONFLICT (alert_type, entity_type, entity_id) WHERE is_resolved = FALSE
    DO UPDATE SET message = EXCLUDED.message, metadata = EXCLUDED.metadata, severity = EXCLUDED.severity;
    RETURN TRUE;
END $$;

-- One pass of the periodic check for a hospital: raises what holds now, resolves what no longer
-- does. Returns the number of open alerts.
CREATE OR REPLACE FUNCTION check_hospital_alerts(p_hospital_id UUID) RETURNS INT
LANGUAGE plpgsql AS $$
DECLARE
    v_today DATE := hospital_today(p_hospital_id);
    v_now TIMESTAMPTZ := opd_now();
    v_limits JSONB := alert_thresholds();
    v RECORD;
    v_open TEXT[] := '{}';     -- "TYPE:entity_id" of every alert that holds now
    v_alert UUID;
BEGIN
    FOR v IN
        SELECT dep.dept_id, dep.name, count(t.token_id) AS pending, avg(t.estimated_wait_time) AS avg_wait
        FROM departments dep
        LEFT JOIN tokens t ON t.dept_id = dep.dept_id AND t.visit_date = v_today AND t.status = 'CHECKED_IN'
        WHERE dep.hospital_id = p_hospital_id AND dep.status = 'ACTIVE'
        GROUP BY dep.dept_id, dep.name
        HAVING count(t.token_id) > (v_limits ->> 'bottleneck_pending')::int
            OR avg(t.estimated_wait_time) > (v_limits ->> 'bottleneck_avg_wait_mins')::int
    LOOP
        PERFORM raise_alert(p_hospital_id, 'BOTTLENECK',
            CASE WHEN v.pending > 2 * (v_limits ->> 'bottleneck_pending')::int THEN 'CRITICAL' ELSE 'WARNING' END,
            'DEPARTMENT', v.dept_id,
            format('%s: %s waiting, average wait %s min', v.name, v.pending, round(COALESCE(v.avg_wait, 0))),
            jsonb_build_object('pending', v.pending, 'avg_wait_mins', round(COALESCE(v.avg_wait, 0))));
        v_open := v_open || ('BOTTLENECK:' || v.dept_id);
    END LOOP;
    FOR v IN
        SELECT t.token_id, t.token_number, extract(epoch FROM v_now - t.check_in_time) / 60 AS waited
        FROM tokens t
        WHERE t.hospital_id = p_hospital_id AND t.visit_date = v_today AND t.status = 'CHECKED_IN'
          AND t.check_in_time < v_now - make_interval(mins => (v_limits ->> 'long_wait_mins')::int)
    LOOP
        PERFORM raise_alert(p_hospital_id, 'LONG_WAIT', 'WARNING', 'TOKEN', v.token_id,
            format('%s has waited %s min', v.token_number, round(v.waited)),
            jsonb_build_object('waited_mins', round(v.waited)));
        v_open := v_open || ('LONG_WAIT:' || v.token_id);
    END LOOP;
    -- Called and not seen (issue 13): a patient called long ago who never reached the cabin holds
    -- the doctor (call-next is refused while someone is called) and freezes the ETAs behind. When
    -- the hospital opts in, such a patient is marked absent (reception can put them back in line);
    -- otherwise an alert stays open until the doctor recalls, starts or marks them absent.
    FOR v IN
        SELECT t.token_id, t.token_number, t.call_count, d.name AS doctor_name,
               h.called_not_seen_minutes, h.auto_absent_minutes,
               extract(epoch FROM v_now - t.called_time) / 60 AS since_call
        FROM tokens t JOIN doctors d ON d.doctor_id = t.doctor_id JOIN hospitals h ON h.hospital_id = t.hospital_id
        WHERE t.hospital_id = p_hospital_id AND t.visit_date = v_today AND t.status = 'WAITING'
          AND t.called_time < v_now - make_interval(mins => h.called_not_seen_minutes)
    LOOP
        IF v.auto_absent_minutes IS NOT NULL AND v.since_call >= v.auto_absent_minutes THEN
            PERFORM set_token_status(v.token_id, 'NO_SHOW', NULL,
                format('not seen %s min after the call (marked absent by the hospital''s setting)',
                       round(v.since_call)), ARRAY['WAITING']);
            CONTINUE;
        END IF;
        PERFORM raise_alert(p_hospital_id, 'CALLED_NOT_SEEN', 'WARNING', 'TOKEN', v.token_id,
            format('%s called %s min ago (%s×) and not seen by %s', v.token_number, round(v.since_call),
                   v.call_count, v.doctor_name),
            jsonb_build_object('since_call_mins', round(v.since_call), 'call_count', v.call_count,
                               'doctor_name', v.doctor_name, 'token_number', v.token_number));
        v_open := v_open || ('CALLED_NOT_SEEN:' || v.token_id);
    END LOOP;
    FOR v IN
        SELECT d.doctor_id, d.name, s.status AS shift_status,
               hospital_local_time(d.hospital_id, s.shift_date, s.shift_start_time) AS shift_start,
               hospital_local_time(d.hospital_id, s.shift_date, s.shift_end_time) AS shift_end,
               (SELECT count(*) FROM tokens t WHERE t.doctor_id = d.doctor_id AND t.visit_date = v_today
                  AND t.status = 'CHECKED_IN') AS waiting,
               (SELECT count(*) FROM tokens t WHERE t.doctor_id = d.doctor_id AND t.visit_date = v_today
                  AND t.status IN ('WAITING', 'IN_CONSULTATION')) AS busy,
               GREATEST((SELECT max(t.called_time) FROM tokens t WHERE t.doctor_id = d.doctor_id
                           AND t.visit_date = v_today), d.last_active_at) AS last_call,
               d.paused_at
        FROM doctors d
        JOIN LATERAL doctor_shift(d.doctor_id, v_today, v_now) s ON true
        WHERE d.hospital_id = p_hospital_id AND d.status = 'ACTIVE' AND s.assignment_id IS NOT NULL
          AND s.status <> 'CANCELLED' AND NOT doctor_on_leave(d.doctor_id, v_now)
    LOOP
        CONTINUE WHEN v_now < v.shift_start OR v_now >= v.shift_end;
        IF v.shift_status = 'SCHEDULED' AND v.last_call IS NULL
           AND v_now > v.shift_start + make_interval(mins => (v_limits ->> 'doctor_late_mins')::int) THEN
            PERFORM raise_alert(p_hospital_id, 'DOCTOR_LATE', 'WARNING', 'DOCTOR', v.doctor_id,
                format('%s has not started; the shift began %s min ago', v.name,
                       round(extract(epoch FROM v_now - v.shift_start) / 60)),
                jsonb_build_object('shift_start', v.shift_start, 'waiting', v.waiting));
            v_open := v_open || ('DOCTOR_LATE:' || v.doctor_id);
        ELSIF v.waiting > 0 AND v.busy = 0 AND v.paused_at IS NULL
              AND COALESCE(v.last_call, v.shift_start)
                  < v_now - make_interval(mins => (v_limits ->> 'doctor_idle_mins')::int) THEN
            PERFORM raise_alert(p_hospital_id, 'DOCTOR_IDLE', 'WARNING', 'DOCTOR', v.doctor_id,
                format('%s has %s waiting and has not called for %s min', v.name, v.waiting,
                       round(extract(epoch FROM v_now - COALESCE(v.last_call, v.shift_start)) / 60)),
                jsonb_build_object('waiting', v.waiting));
            v_open := v_open || ('DOCTOR_IDLE:' || v.doctor_id);
        END IF;
    END LOOP;
    -- Resolve what no longer holds.
    UPDATE system_alerts SET is_resolved = TRUE, resolved_at = v_now
    WHERE hospital_id = p_hospital_id AND NOT is_resolved AND NOT ((alert_type || ':' || entity_id) = ANY(v_open));
    RETURN (SELECT count(*) FROM system_alerts WHERE hospital_id = p_hospital_id AND NOT is_resolved);
END $$;

-- Operations: daily doctor metrics ------------------------------------------------------------
-- Computes (or recomputes) doctor_performance_metrics for every doctor of a hospital for one
-- hospital day. Wait = check-in to call; consultation = start to end; utilization = consulting
-- time / (shift time so far - breaks).
CREATE OR REPLACE FUNCTION compute_doctor_metrics(p_hospital_id UUID, p_day DATE) RETURNS INT
LANGUAGE plpgsql AS $$
DECLARE
    v_count INT;
    v_now TIMESTAMPTZ := opd_now();
BEGIN
    WITH shifts AS (
        SELECT cd.doctor_id,
               min(hospital_local_time(p_hospital_id, cd.shift_date, cd.shift_start_time)) AS starts,
               sum(extract(epoch FROM LEAST(v_now, hospital_local_time(p_hospital_id, cd.shift_date, cd.shift_end_time))
                                    - hospital_local_time(p_hospital_id, cd.shift_date, cd.shift_start_time)) / 60) AS minutes
        FROM cabin_doctors cd JOIN doctors d ON d.doctor_id = cd.doctor_id
        WHERE d.hospital_id = p_hospital_id AND cd.shift_date = p_day AND cd.status <> 'CANCELLED'
        GROUP BY cd.doctor_id
    ),
    day_tokens AS (
        SELECT t.* FROM tokens t WHERE t.hospital_id = p_hospital_id AND t.visit_date = p_day
    ),
    per_doctor AS (
        SELECT d.doctor_id,
               count(t.token_id) FILTER (WHERE t.status NOT IN ('CANCELLED', 'RESCHEDULED')) AS scheduled,
               count(t.token_id) FILTER (WHERE t.status = 'COMPLETED') AS completed,
               count(t.token_id) FILTER (WHERE t.status = 'NO_SHOW') AS no_show,
               avg(extract(epoch FROM t.consultation_end_time - t.consultation_start_time) / 60)
                   FILTER (WHERE t.status = 'COMPLETED') AS avg_consult,
               sum(extract(epoch FROM t.consultation_end_time - t.consultation_start_time) / 60)
                   FILTER (WHERE t.status = 'COMPLETED') AS consult_minutes,
               avg(extract(epoch FROM t.called_time - t.check_in_time) / 60)
                   FILTER (WHERE t.called_time IS NOT NULL AND t.check_in_time IS NOT NULL) AS avg_wait,
               min(t.called_time) AS first_call,
               max(t.consultation_end_time) AS last_end
        FROM doctors d LEFT JOIN day_tokens t ON t.doctor_id = d.doctor_id
        WHERE d.hospital_id = p_hospital_id
        GROUP BY d.doctor_id
    ),
    breaks AS (
        SELECT b.doctor_id,
               sum(extract(epoch FROM LEAST(COALESCE(b.ended_at, v_now), hospital_local_time(p_hospital_id, p_day + 1, '00:00'))
                                    - GREATEST(b.started_at, hospital_local_time(p_hospital_id, p_day, '00:00'))) / 60) AS minutes
        FROM doctor_breaks b JOIN doctors d ON d.doctor_id = b.doctor_id
        WHERE d.hospital_id = p_hospital_id
          AND b.started_at < hospital_local_time(p_hospital_id, p_day + 1, '00:00')
          AND COALESCE(b.ended_at, v_now) > hospital_local_time(p_hospital_id, p_day, '00:00')
        GROUP BY b.doctor_id
    )
    INSERT INTO doctor_performance_metrics AS m (
        doctor_id, metric_date, tokens_scheduled, tokens_completed, tokens_no_show,
        avg_consultation_time_mins, avg_wait_time_mins, first_patient_delay_mins, last_patient_time,
        idle_time_mins, break_time_mins, utilization_rate, created_at)
    SELECT p.doctor_id, p_day, p.scheduled, p.completed, p.no_show,
           round(p.avg_consult::numeric, 2), round(p.avg_wait::numeric, 2),
           CASE WHEN p.first_call IS NOT NULL AND s.starts IS NOT NULL
                THEN round(extract(epoch FROM p.first_call - s.starts) / 60)::int END,
           date_trunc('second', p.last_end AT TIME ZONE (SELECT timezone FROM hospitals WHERE hospital_id = p_hospital_id))::time,
           GREATEST(0, round(COALESCE(s.minutes, 0) - COALESCE(p.consult_minutes, 0) - COALESCE(b.minutes, 0)))::int,
           round(COALESCE(b.minutes, 0))::int,
           CASE WHEN COALESCE(s.minutes, 0) - COALESCE(b.minutes, 0) > 0
                THEN LEAST(100, round((100 * COALESCE(p.consult_minutes, 0)
                                       / (s.minutes - COALESCE(b.minutes, 0)))::numeric, 2)) END,
           v_now
    FROM per_doctor p LEFT JOIN shifts s ON s.doctor_id = p.doctor_id LEFT JOIN breaks b ON b.doctor_id = p.doctor_id
    WHERE p.scheduled > 0 OR s.doctor_id IS NOT NULL
    ON CONFLICT (doctor_id, metric_date) DO UPDATE SET
        tokens_scheduled = EXCLUDED.tokens_scheduled, tokens_completed = EXCLUDED.tokens_completed,
        tokens_no_show = EXCLUDED.tokens_no_show, avg_consultation_time_mins = EXCLUDED.avg_consultation_time_mins,
        avg_wait_time_mins = EXCLUDED.avg_wait_time_mins, first_patient_delay_mins = EXCLUDED.first_patient_delay_mins,
        last_patient_time = EXCLUDED.last_patient_time, idle_time_mins = EXCLUDED.idle_time_mins,
        break_time_mins = EXCLUDED.break_time_mins, utilization_rate = EXCLUDED.utilization_rate,
        created_at = EXCLUDED.created_at;
    GET DIAGNOSTICS v_count = ROW_COUNT;
    RETURN v_count;
END $$;

-- Operations: archive ---------------------------------------------------------------------------
CREATE OR REPLACE FUNCTION partition_has_rows(p_name TEXT) RETURNS BOOLEAN
LANGUAGE plpgsql AS $$
DECLARE
    v BOOLEAN;
BEGIN
    EXECUTE format('SELECT EXISTS (SELECT 1 FROM %I)', p_name) INTO v;
    RETURN v;
END $$;

-- Moves tokens whose visit day is older than p_keep_days into tokens_archive, at most p_batch
-- per call (short transactions beside live traffic), and drops monthly partitions left empty.
-- Their history stays in token_history, readable by token_id. Concurrent callers serialise on
-- an advisory lock; a second caller simply finds less to do.
CREATE OR REPLACE FUNCTION archive_old_tokens(p_keep_days INT DEFAULT 90, p_batch INT DEFAULT 5000)
RETURNS JSONB
LANGUAGE plpgsql AS $$
DECLARE
    v_cutoff DATE := (opd_now() AT TIME ZONE 'UTC')::date - p_keep_days;
    v_moved INT;
    v_dropped TEXT[] := '{}';
    v_part RECORD;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext('opd.archive'));
    WITH victims AS (
        SELECT token_id, visit_date FROM tokens WHERE visit_date < v_cutoff LIMIT p_batch FOR UPDATE SKIP LOCKED
    ), moved AS (
        DELETE FROM tokens t USING victims v
        WHERE t.token_id = v.token_id AND t.visit_date = v.visit_date RETURNING t.*
    )
    INSERT INTO tokens_archive SELECT * FROM moved ON CONFLICT DO NOTHING;
    GET DIAGNOSTICS v_moved = ROW_COUNT;
    -- What those patients were told goes with them (eta_told, docs/eta.md).
    WITH told AS (
        DELETE FROM eta_told e WHERE e.visit_date < v_cutoff
          AND NOT EXISTS (SELECT 1 FROM tokens t WHERE t.token_id = e.token_id AND t.visit_date = e.visit_date)
        RETURNING e.*
    )
    INSERT INTO eta_told_archive SELECT * FROM told;
    -- A tracker's push subscription is useless once its visit day is past.
    DELETE FROM push_subscriptions WHERE visit_date < v_cutoff;
    FOR v_part IN
        SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
        WHERE i.inhparent = 'tokens'::regclass AND c.relname ~ '^tokens_\d{4}_\d{2}$'
          AND to_date(substring(c.relname FROM 8), 'YYYY_MM') + INTERVAL '1 month' <= v_cutoff
    LOOP
        IF NOT partition_has_rows(v_part.relname) THEN
            EXECUTE format('DROP TABLE %I', v_part.relname);
            v_dropped := v_dropped || v_part.relname::text;
        END IF;
    END LOOP;
    RETURN jsonb_build_object('cutoff', v_cutoff, 'archived', v_moved, 'dropped_partitions', v_dropped);
END $$;

-- Operations: the live dashboard and department rebalancing ----------------------------------
-- The operations dashboard's live data for a hospital: every doctor's status (hospital_doctor_statuses, the rule of vw_doctor_status)
-- and the open alerts. Department loads come from the boards the engine already has.
CREATE OR REPLACE FUNCTION hospital_operations(p_hospital_id UUID) RETURNS JSONB
LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object(
        'doctors', COALESCE((SELECT jsonb_agg(jsonb_build_object(
                'doctor_id', s.doctor_id, 'doctor_name', s.doctor_name, 'cabin_number', s.cabin_number,
                'pending_tokens', s.pending_tokens, 'current_status', s.current_status,
                'on_leave', doctor_on_leave(s.doctor_id, opd_now()))
            ORDER BY s.doctor_name) FROM hospital_doctor_statuses(p_hospital_id) s), '[]'),
        'alerts', COALESCE((SELECT jsonb_agg(jsonb_build_object(
                'alert_id', a.alert_id, 'alert_type', a.alert_type, 'severity', a.severity,
                'entity_type', a.entity_type, 'entity_id', a.entity_id, 'message', a.message,
                'metadata', a.metadata, 'created_at', a.created_at)
            ORDER BY a.created_at) FROM system_alerts a WHERE a.hospital_id = p_hospital_id AND NOT a.is_resolved), '[]'))
$$;

-- The remedy for a bottleneck: move queued patients from the longest queues of a department to
-- the shortest, last-joined first, until no doctor on shift has two more waiting than another.
-- Returns how many moved.
CREATE OR REPLACE FUNCTION rebalance_department(p_dept_id UUID, p_actor UUID) RETURNS INT
LANGUAGE plpgsql AS $$
DECLARE
    v_day DATE;
    v_moved INT := 0;
    v_longest UUID;
    v_longest_waiting INT;
    v_shortest UUID;
    v_shortest_waiting INT;
    v_token UUID;
BEGIN
    SELECT hospital_today(hospital_id) INTO v_day FROM departments WHERE dept_id = p_dept_id;
    PERFORM opd_set_actor(p_actor, 'REBALANCE');
    LOOP
        CREATE TEMP TABLE IF NOT EXISTS _loads (doctor_id UUID, name TEXT, waiting INT) ON COMMIT DROP;
        TRUNCATE _loads;
        INSERT INTO _loads
        SELECT d.doctor_id, d.name,
               (SELECT count(*) FROM tokens t WHERE t.doctor_id = d.doctor_id AND t.visit_date = v_day
                  AND t.status = 'CHECKED_IN')
        FROM doctors d JOIN LATERAL doctor_shift(d.doctor_id, v_day, opd_now()) s ON true
        WHERE d.primary_dept_id = p_dept_id AND d.status = 'ACTIVE' AND s.assignment_id IS NOT NULL
          AND s.status <> 'CANCELLED' AND d.paused_at IS NULL AND NOT doctor_on_leave(d.doctor_id, opd_now())
          AND opd_now() < hospital_local_time(d.hospital_id, v_day, s.shift_end_time);
        SELECT doctor_id, waiting INTO v_longest, v_longest_waiting FROM _loads ORDER BY waiting DESC, name LIMIT 1;
        SELECT doctor_id, waiting INTO v_shortest, v_shortest_waiting FROM _loads ORDER BY waiting, name LIMIT 1;
        EXIT WHEN v_longest IS NULL OR v_longest_waiting - v_shortest_waiting < 2;
        SELECT t.token_id INTO v_token FROM tokens t
        WHERE t.doctor_id = v_longest AND t.visit_date = v_day AND t.status = 'CHECKED_IN'
        ORDER BY t.priority, t.queue_joined_at DESC, t.serial DESC LIMIT 1 FOR UPDATE;
        UPDATE tokens SET doctor_id = v_shortest WHERE token_id = v_token AND visit_date = v_day;
        v_moved := v_moved + 1;
    END LOOP;
    RETURN v_moved;
END $$;

-- Queue engine support -----------------------------------------------------------------------
-- Doctors whose tokens changed in the last day, most recent first: the order of the engine's
-- rebuild after a reconnect.
CREATE OR REPLACE FUNCTION recently_active_doctors() RETURNS TABLE (doctor_id UUID)
LANGUAGE sql STABLE AS $$
    SELECT t.doctor_id FROM tokens t
    WHERE t.visit_date >= (opd_now() AT TIME ZONE 'UTC')::date - 1 AND t.updated_at > opd_now() - INTERVAL '1 day'
    GROUP BY t.doctor_id ORDER BY max(t.updated_at) DESC
$$;

-- Run once by each new connection of the queue engine's pool, before the engine uses it: a new
-- PostgreSQL session loads the catalog entries of the tokens partitions and their indexes and
-- plans every statement of a PL/pgSQL function on first use, which made a doctor's first
-- recompute on a connection cost 21 ms instead of 3 (docs/performance.md). Read-only: one
-- doctor of an active hospital, the busiest one when there is traffic.
CREATE OR REPLACE FUNCTION warm_up_connection() RETURNS VOID
LANGUAGE plpgsql AS $$
DECLARE
    v_doctor UUID;
BEGIN
    SELECT r.doctor_id INTO v_doctor FROM recently_active_doctors() r LIMIT 1;
    IF v_doctor IS NULL THEN
        SELECT d.doctor_id INTO v_doctor FROM doctors d
        JOIN hospitals h ON h.hospital_id = d.hospital_id AND h.status = 'ACTIVE' LIMIT 1;
    END IF;
    IF v_doctor IS NOT NULL THEN
        PERFORM doctor_live_views(v_doctor, '{}', false, NULL);
        PERFORM doctor_live_views(v_doctor, '{}', false, '{}');
    END IF;
END $$;

SELECT ensure_token_partitions(2);

-- Queue engine leadership (sql/migrations/003_engine_lease.sql) -------------------------------
-- Real time throughout (clock_timestamp): a lease is about processes, not the hospital's day.

-- Takes the lease when it is free or has lapsed: returns the new term, or NULL (held elsewhere).
CREATE OR REPLACE FUNCTION engine_lease_acquire(p_key BIGINT, p_holder TEXT, p_ttl_ms INT)
RETURNS BIGINT
LANGUAGE sql AS $$
    INSERT INTO engine_lease AS l (lease_key, holder, term, expires_at)
    VALUES (p_key, p_holder, 1, clock_timestamp() + make_interval(secs => p_ttl_ms / 1000.0))
    ON CONFLICT (lease_key) DO UPDATE
        SET holder = EXCLUDED.holder, term = l.term + 1, expires_at = EXCLUDED.expires_at
        -- lapsed, or this very process again (its previous term's engine has stopped: a lost
        -- connection need not wait for its own lease to lapse)
        WHERE l.expires_at < clock_timestamp() OR l.holder = EXCLUDED.holder
    RETURNING term
$$;

-- The holder's heartbeat: true while it still holds the lease of that term.
CREATE OR REPLACE FUNCTION engine_lease_renew(p_key BIGINT, p_holder TEXT, p_term BIGINT, p_ttl_ms INT)
RETURNS BOOLEAN
LANGUAGE sql AS $$
    WITH renewed AS (
        UPDATE engine_lease SET expires_at = clock_timestamp() + make_interval(secs => p_ttl_ms / 1000.0)
        WHERE lease_key = p_key AND holder = p_holder AND term = p_term AND expires_at >= clock_timestamp()
        RETURNING 1)
    SELECT EXISTS (SELECT 1 FROM renewed)
$$;

-- A leader stopping cleanly hands over at once instead of letting the lease lapse.
CREATE OR REPLACE FUNCTION engine_lease_release(p_key BIGINT, p_holder TEXT, p_term BIGINT)
RETURNS VOID
LANGUAGE sql AS $$
    UPDATE engine_lease SET expires_at = clock_timestamp() - interval '1 millisecond'
    WHERE lease_key = p_key AND holder = p_holder AND term = p_term
$$;

-- Queue engine shards (sql/migrations/010_engine_members.sql) -------------------------------
-- With OPD_ENGINE_SHARDS = n > 1 each hospital belongs to one of n shards, and each shard has a
-- lease of its own (key OPD_LEADER_LOCK_KEY + shard). The hash is the first 32 bits of the md5
-- of the hospital's id as text: app/live/shards.py computes the same in Python (a test holds
-- the two equal), so the engine can route a NOTIFY without asking the database.
CREATE OR REPLACE FUNCTION engine_shard(p_hospital_id UUID, p_count INT)
RETURNS INT
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN p_count <= 1 THEN 0
                ELSE (('x' || left(md5(p_hospital_id::text), 8))::bit(32)::bigint % p_count)::int END
$$;

-- An engine process's heartbeat: records it as a live member of the group and answers how many
-- live members share its shard count, how many do not (a misconfiguration: two shard counts
-- would compute some hospitals twice, so a process takes no shard while it lasts), and the
-- fewest shards any live member leads (who should take a free shard, who should hand one
-- over). Members unseen for 30 × p_ttl_ms are forgotten.
CREATE OR REPLACE FUNCTION engine_member_beat(p_key BIGINT, p_holder TEXT, p_shard_count INT, p_ttl_ms INT,
                                              OUT members INT, OUT disagreeing INT, OUT fewest_held INT)
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO engine_members AS m (lease_key, holder, shard_count, seen_at)
    VALUES (p_key, p_holder, p_shard_count, clock_timestamp())
    ON CONFLICT (lease_key, holder) DO UPDATE
        SET shard_count = EXCLUDED.shard_count, seen_at = EXCLUDED.seen_at;
    DELETE FROM engine_members
    WHERE lease_key = p_key AND seen_at < clock_timestamp() - make_interval(secs => 30 * p_ttl_ms / 1000.0);
    SELECT count(*) FILTER (WHERE m.shard_count = p_shard_count),
           count(*) FILTER (WHERE m.shard_count <> p_shard_count),
           COALESCE(min(held.n) FILTER (WHERE m.shard_count = p_shard_count), 0)
    INTO members, disagreeing, fewest_held
    FROM engine_members m
    CROSS JOIN LATERAL (
        SELECT count(*)::int AS n FROM engine_lease l
        WHERE l.holder = m.holder AND l.lease_key >= p_key AND l.lease_key < p_key + p_shard_count
          AND l.expires_at >= clock_timestamp()) held
    WHERE m.lease_key = p_key AND m.seen_at >= clock_timestamp() - make_interval(secs => p_ttl_ms / 1000.0);
END $$;

-- A process stopping cleanly leaves at once, so the others take its share without waiting.
CREATE OR REPLACE FUNCTION engine_member_leave(p_key BIGINT, p_holder TEXT)
RETURNS VOID
LANGUAGE sql AS $$
    DELETE FROM engine_members WHERE lease_key = p_key AND holder = p_holder
$$;

-- Roster -------------------------------------------------------------------------------------
-- The roster of one week copied onto another (the admin page, issue 13): every shift of the 7
-- days from p_from that was not cancelled, moved by (p_to - p_from) days, as SCHEDULED. A shift
-- is skipped when its doctor or its cabin already has a shift overlapping it that day, so a
-- copy never double-books and copying twice adds nothing. Returns (copied, skipped).
CREATE OR REPLACE FUNCTION copy_roster_week(p_hospital_id UUID, p_from DATE, p_to DATE)
RETURNS TABLE (copied INT, skipped INT)
LANGUAGE plpgsql AS $$
DECLARE
    v_offset INT := p_to - p_from;
    v_total INT;
    v_copied INT;
BEGIN
    IF v_offset = 0 THEN
        RAISE EXCEPTION 'copy the week onto another week, not onto itself' USING ERRCODE = 'OPD16';
    END IF;
    SELECT count(*) INTO v_total
    FROM cabin_doctors a JOIN doctors d USING (doctor_id)
    WHERE d.hospital_id = p_hospital_id AND a.shift_date BETWEEN p_from AND p_from + 6 AND a.status <> 'CANCELLED';
    WITH source AS (
        SELECT a.cabin_id, a.doctor_id, a.shift_date + v_offset AS shift_date, a.shift_start_time,
               a.shift_end_time, a.planned_tokens
        FROM cabin_doctors a JOIN doctors d USING (doctor_id)
        WHERE d.hospital_id = p_hospital_id AND a.shift_date BETWEEN p_from AND p_from + 6
          AND a.status <> 'CANCELLED' AND d.status = 'ACTIVE'
    ), inserted AS (
        INSERT INTO cabin_doctors (cabin_id, doctor_id, shift_date, shift_start_time, shift_end_time,
                                   planned_tokens, status)
        SELECT s.cabin_id, s.doctor_id, s.shift_date, s.shift_start_time, s.shift_end_time, s.planned_tokens,
               'SCHEDULED'
        FROM source s
        WHERE NOT EXISTS (
            SELECT 1 FROM cabin_doctors x
            WHERE x.shift_date = s.shift_date AND x.status <> 'CANCELLED'
              AND (x.doctor_id = s.doctor_id OR x.cabin_id = s.cabin_id)
              AND x.shift_start_time < s.shift_end_time AND s.shift_start_time < x.shift_end_time)
        ON CONFLICT DO NOTHING
        RETURNING 1
    )
    SELECT count(*) INTO v_copied FROM inserted;
    RETURN QUERY SELECT v_copied, v_total - v_copied;
END $$;

-- Patient search -----------------------------------------------------------------------------
-- Reception's search by any part of a phone number (4+ digits, as typed: "43210", "98765 432"),
-- shared by the patient search and the desk's list of today's tokens.
CREATE OR REPLACE FUNCTION phone_contains(p_phone TEXT, p_digits TEXT) RETURNS BOOLEAN
LANGUAGE sql IMMUTABLE AS $$
    SELECT length(p_digits) >= 4 AND regexp_replace(p_phone, '[^0-9]', '', 'g') LIKE '%' || p_digits || '%'
$$;

-- ABDM Scan & Share (sql/migrations/011_abdm_scan_share.sql) ----------------------------------
-- A profile shared by the ABDM gateway (app/api/abdm.py has checked the gateway's signature and
-- read the body): issue a WALK_IN token in the counter's department through issue_token, the
-- reception's own path (same numbering, queue, audit, messages), and build the on-share reply
-- in the same transaction. Concurrent shares of one patient at one counter are serialized by an
-- advisory lock and the same token is handed back within p_repeat_minutes of its first share
-- (while it is still open); a redelivered REQUEST-ID returns the share already recorded. What
-- cannot be done (unknown HIP id, counter not set up, department closed, day full, no doctor
-- on shift) is recorded as FAILED with its reason and answered so; nothing of the attempt
-- stays (it ran in a subtransaction).
CREATE OR REPLACE FUNCTION abdm_receive_share(
    p_request_id TEXT, p_hip_id TEXT, p_context TEXT, p_abha_number TEXT, p_abha_address TEXT,
    p_name TEXT, p_gender TEXT, p_birth_year INT, p_birth_date DATE, p_phone TEXT, p_address TEXT,
    p_expiry_s INT, p_repeat_minutes INT)
RETURNS abdm_shares
LANGUAGE plpgsql AS $$
DECLARE
    v_share abdm_shares;
    v_previous abdm_shares;
    v_hospital hospitals;
    v_counter abdm_counters;
    v_dept departments;
    v_key TEXT := COALESCE(p_abha_number, lower(p_abha_address));
    v_patient UUID;
    v_token tokens;
    v_code TEXT;
    v_reason TEXT;
BEGIN
    IF v_key IS NULL THEN
        RAISE EXCEPTION 'a share needs an ABHA number or address' USING ERRCODE = 'OPD16';
    END IF;
    -- A redelivery of the same request (the gateway retries): the answer already recorded.
    PERFORM pg_advisory_xact_lock(hashtextextended('abdm-request:' || p_request_id, 0));
    SELECT * INTO v_share FROM abdm_shares WHERE request_id = p_request_id;
    IF FOUND THEN
        RETURN v_share;
    END IF;
    SELECT * INTO v_hospital FROM hospitals WHERE abdm_hip_id = p_hip_id AND status = 'ACTIVE';
    IF NOT FOUND THEN
        RETURN abdm_record_share(p_request_id, p_hip_id, p_context, NULL, NULL, v_key, p_abha_address, NULL, NULL,
                                 'OPD-UNKNOWN-HIP', format('HIP id %s is not a hospital served here', p_hip_id), NULL);
    END IF;
    SELECT * INTO v_counter FROM abdm_counters
    WHERE hospital_id = v_hospital.hospital_id AND context = p_context AND active;
    IF NOT FOUND THEN
        RETURN abdm_record_share(p_request_id, p_hip_id, p_context, v_hospital.hospital_id, NULL, v_key,
                                 p_abha_address, NULL, NULL, 'OPD-UNKNOWN-COUNTER',
                                 format('counter %s is not set up at %s', p_context, v_hospital.name), NULL);
    END IF;
    -- One patient at one counter at a time: a double scan waits here and finds the first token.
    PERFORM pg_advisory_xact_lock(hashtextextended(
        'abdm-share:' || v_counter.counter_id || ':' || v_key, 0));
    SELECT s.* INTO v_previous FROM abdm_shares s JOIN tokens t ON t.token_id = s.token_id
    WHERE s.hospital_id = v_hospital.hospital_id AND s.counter_id = v_counter.counter_id
      AND s.abha_key = v_key AND s.status = 'SUCCESS' AND s.repeat_of IS NULL
      AND s.share_day = hospital_today(v_hospital.hospital_id)
      AND s.received_at > opd_now() - make_interval(mins => p_repeat_minutes)
      AND t.status IN ('BOOKED', 'CHECKED_IN', 'WAITING', 'IN_CONSULTATION')
    ORDER BY s.received_at DESC LIMIT 1;
    IF FOUND THEN
        RETURN abdm_record_share(p_request_id, p_hip_id, p_context, v_hospital.hospital_id, v_counter.counter_id,
                                 v_key, p_abha_address, v_previous.patient_id,
                                 (SELECT t FROM tokens t WHERE t.token_id = v_previous.token_id),
                                 NULL, NULL, p_expiry_s, v_previous.share_id);
    END IF;
    SELECT * INTO v_dept FROM departments WHERE dept_id = v_counter.dept_id;
    IF v_dept.status <> 'ACTIVE' THEN
        RETURN abdm_record_share(p_request_id, p_hip_id, p_context, v_hospital.hospital_id, v_counter.counter_id,
                                 v_key, p_abha_address, NULL, NULL, 'OPD-DEPARTMENT-CLOSED',
                                 format('%s is closed', v_dept.name), NULL);
    END IF;
    IF p_phone IS NULL THEN
        RETURN abdm_record_share(p_request_id, p_hip_id, p_context, v_hospital.hospital_id, v_counter.counter_id,
                                 v_key, p_abha_address, NULL, NULL, 'OPD-NO-PHONE',
                                 'the profile has no mobile number; please register at the counter', NULL);
    END IF;
    BEGIN
        v_patient := abdm_find_or_register_patient(v_hospital.hospital_id, p_abha_number, p_abha_address,
                                                   p_name, p_gender, p_birth_year, p_birth_date, p_phone, p_address);
        PERFORM opd_request_actor(NULL, p_request_id);
        PERFORM opd_set_via('ABDM Scan & Share');
        v_token := issue_token(v_hospital.hospital_id, v_patient, v_counter.doctor_id, v_counter.dept_id,
                               'WALK_IN', 1, NULL, 'ABDM Scan & Share', NULL);
        RETURN abdm_record_share(p_request_id, p_hip_id, p_context, v_hospital.hospital_id, v_counter.counter_id,
                                 v_key, p_abha_address, v_patient, v_token, NULL, NULL, p_expiry_s, NULL);
    EXCEPTION WHEN SQLSTATE 'OPD10' OR SQLSTATE 'OPD11' OR SQLSTATE 'OPD14' OR SQLSTATE 'OPD15'
                   OR SQLSTATE 'OPD16' OR check_violation THEN
        -- Rolled back to the BEGIN above: no patient, no token, no message, no NOTIFY.
        v_code := CASE SQLSTATE WHEN 'OPD11' THEN 'OPD-DAY-FULL' WHEN 'OPD14' THEN 'OPD-NO-DOCTOR'
                                ELSE 'OPD-REFUSED' END;
        v_reason := SQLERRM;
    END;
    PERFORM opd_set_via(NULL);
    RETURN abdm_record_share(p_request_id, p_hip_id, p_context, v_hospital.hospital_id, v_counter.counter_id,
                             v_key, p_abha_address, NULL, NULL, v_code, v_reason, NULL);
END $$;

-- The patient of a share: by ABHA number, else ABHA address, else the same mobile, name and
-- year of birth (a patient registered at the desk before); else a new record. The ABHA
-- identifiers are kept on the record for the next share.
CREATE OR REPLACE FUNCTION abdm_find_or_register_patient(
    p_hospital_id UUID, p_abha_number TEXT, p_abha_address TEXT, p_name TEXT, p_gender TEXT,
    p_birth_year INT, p_birth_date DATE, p_phone TEXT, p_address TEXT)
RETURNS UUID
LANGUAGE plpgsql AS $$
DECLARE
    v_patient UUID;
BEGIN
    SELECT patient_id INTO v_patient FROM patients
    WHERE hospital_id = p_hospital_id AND p_abha_number IS NOT NULL AND abha_number = p_abha_number;
    IF v_patient IS NULL AND p_abha_address IS NOT NULL THEN
        SELECT patient_id INTO v_patient FROM patients
        WHERE hospital_id = p_hospital_id AND lower(abha_address) = lower(p_abha_address)
        ORDER BY created_at LIMIT 1;
    END IF;
    IF v_patient IS NULL THEN
        SELECT patient_id INTO v_patient FROM patients
        WHERE hospital_id = p_hospital_id AND phone IN (p_phone, right(p_phone, 10))
          AND lower(btrim(name)) = lower(btrim(p_name))
          AND (date_of_birth IS NULL OR p_birth_year IS NULL OR extract(year FROM date_of_birth) = p_birth_year)
          AND (abha_number IS NULL OR p_abha_number IS NULL OR abha_number = p_abha_number)
        ORDER BY created_at LIMIT 1;
    END IF;
    IF v_patient IS NULL THEN
        -- A new patient asked for this token by sharing their profile with its mobile number:
        -- the SMS about it (with the tracking link) is what they asked for, so SMS is on; not
        -- WhatsApp, which needs an opt-in of its own (docs/abdm.md). A known patient's recorded
        -- choice stands.
        INSERT INTO patients (hospital_id, uhid, name, phone, gender, date_of_birth, address,
                              abha_number, abha_address, sms_opt_in, whatsapp_opt_in)
        VALUES (p_hospital_id, 'P' || upper(left(md5(gen_random_uuid()::text), 10)), btrim(p_name), p_phone,
                p_gender, p_birth_date, p_address, p_abha_number, p_abha_address, TRUE, FALSE)
        RETURNING patient_id INTO v_patient;
    ELSE
        UPDATE patients SET abha_number = COALESCE(abha_number, p_abha_number),
                            abha_address = COALESCE(abha_address, p_abha_address),
                            updated_at = now()
        WHERE patient_id = v_patient AND (abha_number IS NULL OR abha_address IS NULL);
    END IF;
    RETURN v_patient;
END $$;

-- One share recorded with its on-share reply (the body the gateway expects, ABDM v3).
CREATE OR REPLACE FUNCTION abdm_record_share(
    p_request_id TEXT, p_hip_id TEXT, p_context TEXT, p_hospital_id UUID, p_counter_id UUID,
    p_key TEXT, p_abha_address TEXT, p_patient_id UUID, p_token tokens, p_error_code TEXT,
    p_reason TEXT, p_expiry_s INT, p_repeat_of UUID DEFAULT NULL)
RETURNS abdm_shares
LANGUAGE plpgsql AS $$
DECLARE
    v_share abdm_shares;
    v_ok BOOLEAN := p_token.token_id IS NOT NULL;
    v_ack JSONB;
BEGIN
    v_ack := jsonb_build_object(
        'status', CASE WHEN v_ok THEN 'SUCCESS' ELSE 'FAILED' END,
        'abhaAddress', p_abha_address,
        'profile', CASE WHEN v_ok
                        THEN jsonb_build_object('context', p_context, 'tokenNumber', p_token.token_number,
                                                'expiry', p_expiry_s::text)
                        ELSE jsonb_build_object('context', p_context) END);
    INSERT INTO abdm_shares (request_id, hip_id, context, hospital_id, counter_id, abha_key, abha_address,
                             patient_id, token_id, token_number, share_day, status, reason, repeat_of,
                             received_at, on_share)
    VALUES (p_request_id, p_hip_id, p_context, p_hospital_id, p_counter_id, p_key, p_abha_address,
            p_patient_id, p_token.token_id, p_token.token_number,
            CASE WHEN p_hospital_id IS NOT NULL THEN hospital_today(p_hospital_id) END,
            CASE WHEN v_ok THEN 'SUCCESS' ELSE 'FAILED' END, p_reason, p_repeat_of, opd_now(),
            jsonb_build_object('acknowledgement', v_ack, 'response', jsonb_build_object('requestId', p_request_id))
            || CASE WHEN v_ok THEN '{}'::jsonb
                    ELSE jsonb_build_object('error', jsonb_build_object('code', p_error_code, 'message', p_reason)) END)
    RETURNING * INTO v_share;
    RETURN v_share;
END $$;

-- The on-share outbox (app/abdm/on_share.py), on real time like the message outbox: due replies
-- are claimed for p_claim_s (SKIP LOCKED: two senders never hold the same one) and counted as
-- an attempt; a reply is marked sent once the gateway took it, or put back with a later time.
CREATE OR REPLACE FUNCTION abdm_claim_on_shares(p_limit INT, p_claim_s INT)
RETURNS SETOF abdm_shares
LANGUAGE sql AS $$
    UPDATE abdm_shares s
    SET claimed_until = clock_timestamp() + make_interval(secs => p_claim_s), attempts = s.attempts + 1
    WHERE s.share_id IN (
        SELECT share_id FROM abdm_shares
        WHERE sent_at IS NULL AND gave_up_at IS NULL AND next_attempt_at <= clock_timestamp()
          AND (claimed_until IS NULL OR claimed_until < clock_timestamp())
        ORDER BY next_attempt_at
        LIMIT p_limit
        FOR UPDATE SKIP LOCKED)
    RETURNING s.*
$$;

CREATE OR REPLACE FUNCTION abdm_on_share_done(p_share_id UUID, p_sent BOOLEAN, p_error TEXT,
                                              p_retry_in_s DOUBLE PRECISION, p_give_up BOOLEAN)
RETURNS VOID
LANGUAGE sql AS $$
    UPDATE abdm_shares
    SET sent_at = CASE WHEN p_sent THEN clock_timestamp() END,
        gave_up_at = CASE WHEN NOT p_sent AND p_give_up THEN clock_timestamp() END,
        last_error = CASE WHEN p_sent THEN last_error ELSE left(p_error, 500) END,
        next_attempt_at = CASE WHEN p_sent THEN next_attempt_at
                               ELSE clock_timestamp() + make_interval(secs => p_retry_in_s) END,
        claimed_until = NULL
    WHERE share_id = p_share_id
$$;
