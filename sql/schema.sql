-- OPD Queue Board schema, from shared/seed/opd-schema-design.md.
-- Applied once by `python -m app db upgrade` (recorded with its checksum in schema_migrations);
-- later changes ship as numbered files in sql/migrations/. Every deviation from the design is
-- listed in docs/schema.md with its reason.

CREATE EXTENSION IF NOT EXISTS cube;
CREATE EXTENSION IF NOT EXISTS earthdistance;

-- Lives here rather than in functions.sql because a CHECK constraint below depends on it.
CREATE OR REPLACE FUNCTION is_valid_timezone(p_name TEXT) RETURNS BOOLEAN
LANGUAGE sql STABLE AS $$ SELECT EXISTS (SELECT 1 FROM pg_timezone_names WHERE name = p_name) $$;

-- 1. HOSPITALS -------------------------------------------------------------------------------
CREATE TABLE hospitals (
    hospital_id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    code VARCHAR(20) NOT NULL UNIQUE,            -- short name used in URLs: /board/DEMO
    name VARCHAR(255) NOT NULL,
    address TEXT NOT NULL,
    latitude DECIMAL(10, 8) NOT NULL CHECK (latitude BETWEEN -90 AND 90),
    longitude DECIMAL(11, 8) NOT NULL CHECK (longitude BETWEEN -180 AND 180),
    geofence_radius INT NOT NULL DEFAULT 200 CHECK (geofence_radius > 0),   -- metres
    timezone VARCHAR(50) NOT NULL DEFAULT 'Asia/Kolkata',
    operating_hours JSONB NOT NULL DEFAULT '{
        "monday": {"open": "08:00", "close": "20:00"},
        "tuesday": {"open": "08:00", "close": "20:00"},
        "wednesday": {"open": "08:00", "close": "20:00"},
        "thursday": {"open": "08:00", "close": "20:00"},
        "friday": {"open": "08:00", "close": "20:00"},
        "saturday": {"open": "08:00", "close": "14:00"}
    }',
    -- Privacy: TV boards show token numbers only unless the hospital opts in to "Asha K."
    board_shows_names BOOLEAN NOT NULL DEFAULT FALSE,
    announcement_languages TEXT[] NOT NULL DEFAULT ARRAY['en', 'hi'],
    status VARCHAR(20) NOT NULL DEFAULT 'ACTIVE' CHECK (status IN ('ACTIVE', 'INACTIVE')),
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT chk_hospital_timezone CHECK (is_valid_timezone(timezone))
);

CREATE INDEX idx_hospitals_location ON hospitals USING GIST (ll_to_earth(latitude, longitude));

-- 2. DEPARTMENTS -----------------------------------------------------------------------------
CREATE TABLE departments (
    dept_id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    hospital_id UUID NOT NULL REFERENCES hospitals(hospital_id) ON DELETE CASCADE,
    name VARCHAR(100) NOT NULL,
    code VARCHAR(10) NOT NULL CHECK (code ~ '^[A-Z0-9]{1,10}$'),
    avg_consultation_time INT NOT NULL CHECK (avg_consultation_time BETWEEN 1 AND 240),
    buffer_time INT NOT NULL DEFAULT 5 CHECK (buffer_time BETWEEN 0 AND 120),
    max_tokens_per_day INT NOT NULL DEFAULT 100 CHECK (max_tokens_per_day > 0),
    color_code VARCHAR(7) NOT NULL DEFAULT '#007BFF' CHECK (color_code ~ '^#[0-9A-Fa-f]{6}$'),
    priority_level INT NOT NULL DEFAULT 1,
    status VARCHAR(20) NOT NULL DEFAULT 'ACTIVE' CHECK (status IN ('ACTIVE', 'INACTIVE')),
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE (hospital_id, code),
    UNIQUE (dept_id, hospital_id)          -- target of composite FKs that pin a row's hospital
);

CREATE INDEX idx_dept_status ON departments(status) WHERE status = 'ACTIVE';

-- 3. CABINS ----------------------------------------------------------------------------------
CREATE TABLE cabins (
    cabin_id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    dept_id UUID NOT NULL REFERENCES departments(dept_id) ON DELETE CASCADE,
    cabin_number VARCHAR(20) NOT NULL,
    floor_number INT,
    capacity INT NOT NULL DEFAULT 1 CHECK (capacity > 0),
    equipment JSONB NOT NULL DEFAULT '[]' CHECK (jsonb_typeof(equipment) = 'array'),
    status VARCHAR(20) NOT NULL DEFAULT 'AVAILABLE'
        CHECK (status IN ('AVAILABLE', 'OCCUPIED', 'MAINTENANCE')),
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE (dept_id, cabin_number)
);

CREATE INDEX idx_cabin_status ON cabins(status);

-- 4. STAFF USERS (not in the design: token_history.changed_by needs a table to point at) -----
CREATE TABLE staff_users (
    user_id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    hospital_id UUID NOT NULL REFERENCES hospitals(hospital_id) ON DELETE CASCADE,
    username VARCHAR(64) NOT NULL CHECK (username ~ '^[A-Za-z0-9_.@-]{3,64}$'),
    password_hash TEXT NOT NULL,
    role VARCHAR(20) NOT NULL CHECK (role IN ('admin', 'receptionist', 'doctor')),
    doctor_id UUID,                       -- set for role doctor; FK added after doctors exists
    is_active BOOLEAN NOT NULL DEFAULT TRUE,
    failed_logins INT NOT NULL DEFAULT 0,
    locked_until TIMESTAMPTZ,
    sessions_valid_after TIMESTAMPTZ NOT NULL DEFAULT now(),   -- "log out everywhere"
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE (username),
    CHECK ((role = 'doctor') = (doctor_id IS NOT NULL))
);

-- API keys for integrations and scripts. Only a SHA-256 of the key is stored: keys are 256-bit
-- random, so a slow hash adds nothing (see docs/security.md).
CREATE TABLE api_keys (
    key_id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    hospital_id UUID NOT NULL REFERENCES hospitals(hospital_id) ON DELETE CASCADE,
    role VARCHAR(20) NOT NULL DEFAULT 'admin' CHECK (role IN ('admin', 'receptionist', 'doctor')),
    doctor_id UUID,
    label VARCHAR(100) NOT NULL DEFAULT '',
    key_prefix VARCHAR(12) NOT NULL,      -- shown in listings so a key can be recognised
    key_hash BYTEA NOT NULL UNIQUE,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    last_used_at TIMESTAMPTZ,
    revoked_at TIMESTAMPTZ,
    CHECK ((role = 'doctor') = (doctor_id IS NOT NULL))
);

-- 5. DOCTORS ---------------------------------------------------------------------------------
CREATE TABLE doctors (
    doctor_id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    hospital_id UUID NOT NULL REFERENCES hospitals(hospital_id),
    emp_code VARCHAR(50) NOT NULL,
    name VARCHAR(255) NOT NULL,
    specialization VARCHAR(100) NOT NULL,
    primary_dept_id UUID NOT NULL,
    phone VARCHAR(15) NOT NULL CHECK (phone ~ '^\+?[0-9]{6,14}$'),
    email VARCHAR(255) UNIQUE,
    avg_consultation_time INT CHECK (avg_consultation_time BETWEEN 1 AND 240),
    max_tokens_per_session INT NOT NULL DEFAULT 30 CHECK (max_tokens_per_session > 0),
    profile_image_url TEXT,
    status VARCHAR(20) NOT NULL DEFAULT 'ACTIVE' CHECK (status IN ('ACTIVE', 'ON_LEAVE', 'INACTIVE')),
    -- A doctor on a short break: calls are refused and boards say "on break".
    paused_at TIMESTAMPTZ,
    last_active_at TIMESTAMPTZ,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE (hospital_id, emp_code),
    UNIQUE (doctor_id, hospital_id),
    FOREIGN KEY (primary_dept_id, hospital_id) REFERENCES departments(dept_id, hospital_id)
);

CREATE INDEX idx_doctor_hospital ON doctors(hospital_id);
CREATE INDEX idx_doctor_dept ON doctors(primary_dept_id);
CREATE INDEX idx_doctor_status ON doctors(status);

ALTER TABLE staff_users ADD FOREIGN KEY (doctor_id, hospital_id)
    REFERENCES doctors(doctor_id, hospital_id) ON DELETE CASCADE;
ALTER TABLE api_keys ADD FOREIGN KEY (doctor_id, hospital_id)
    REFERENCES doctors(doctor_id, hospital_id) ON DELETE CASCADE;

-- 6. CABIN_DOCTORS (shifts) ------------------------------------------------------------------
CREATE TABLE cabin_doctors (
    assignment_id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    cabin_id UUID NOT NULL REFERENCES cabins(cabin_id) ON DELETE CASCADE,
    doctor_id UUID NOT NULL REFERENCES doctors(doctor_id) ON DELETE CASCADE,
    shift_date DATE NOT NULL,               -- the hospital's local date
    shift_start_time TIME NOT NULL,         -- hospital-local wall clock
    shift_end_time TIME NOT NULL,
    actual_start_time TIMESTAMPTZ,
    actual_end_time TIMESTAMPTZ,
    planned_tokens INT NOT NULL DEFAULT 30 CHECK (planned_tokens >= 0),
    status VARCHAR(20) NOT NULL DEFAULT 'SCHEDULED'
        CHECK (status IN ('SCHEDULED', 'ACTIVE', 'COMPLETED', 'CANCELLED')),
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE (cabin_id, doctor_id, shift_date, shift_start_time),
    CHECK (shift_end_time > shift_start_time)
);

CREATE INDEX idx_assignment_cabin_date ON cabin_doctors(cabin_id, shift_date);
CREATE INDEX idx_assignment_doctor_date ON cabin_doctors(doctor_id, shift_date);

-- 7. PATIENTS --------------------------------------------------------------------------------
CREATE TABLE patients (
    patient_id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    hospital_id UUID NOT NULL REFERENCES hospitals(hospital_id),
    uhid VARCHAR(50) NOT NULL CHECK (uhid ~ '^[A-Za-z0-9/_-]{1,50}$'),
    name VARCHAR(255) NOT NULL CHECK (length(btrim(name)) > 0),
    phone VARCHAR(15) NOT NULL CHECK (phone ~ '^\+?[0-9]{6,14}$'),
    email VARCHAR(255),
    date_of_birth DATE,
    gender VARCHAR(10) CHECK (gender IN ('MALE', 'FEMALE', 'OTHER')),
    address TEXT,
    emergency_contact VARCHAR(15),
    preferred_language VARCHAR(5) NOT NULL DEFAULT 'en' CHECK (preferred_language IN ('en', 'hi')),
    fcm_token TEXT,
    whatsapp_opt_in BOOLEAN NOT NULL DEFAULT TRUE,
    sms_opt_in BOOLEAN NOT NULL DEFAULT TRUE,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE (hospital_id, uhid),
    UNIQUE (patient_id, hospital_id)
);

CREATE INDEX idx_patient_phone ON patients(hospital_id, phone);

-- Allowed token status changes: the one place the lifecycle is written down. The BEFORE UPDATE
-- trigger on tokens refuses anything else, whatever path the UPDATE takes.
CREATE TABLE token_transitions (
    from_status VARCHAR(20) NOT NULL,
    to_status VARCHAR(20) NOT NULL,
    meaning TEXT NOT NULL,
    PRIMARY KEY (from_status, to_status)
);

-- Per department, per hospital day: the last token number issued. Incremented in the issuing
-- transaction, so a rolled-back issue also rolls back its number: no gaps, no duplicates.
CREATE TABLE token_counters (
    dept_id UUID NOT NULL REFERENCES departments(dept_id) ON DELETE CASCADE,
    visit_date DATE NOT NULL,
    last_number INT NOT NULL,
    PRIMARY KEY (dept_id, visit_date)
);

-- 8. TOKENS (live queue), one partition per month of visit_date -----------------------------
CREATE TABLE tokens (
    token_id UUID NOT NULL DEFAULT gen_random_uuid(),
    visit_date DATE NOT NULL,                -- the hospital's local day of the visit
    token_number VARCHAR(20) NOT NULL,       -- "CARD-045"
    serial INT NOT NULL CHECK (serial > 0),
    tracking_code VARCHAR(32) NOT NULL,      -- 138 random bits, the patient's private link
    patient_id UUID NOT NULL,
    doctor_id UUID NOT NULL,
    cabin_id UUID REFERENCES cabins(cabin_id),
    dept_id UUID NOT NULL,
    hospital_id UUID NOT NULL REFERENCES hospitals(hospital_id),

    booking_type VARCHAR(20) NOT NULL DEFAULT 'WALK_IN'
        CHECK (booking_type IN ('WALK_IN', 'ONLINE', 'EMERGENCY')),
    priority INT NOT NULL DEFAULT 1 CHECK (priority IN (1, 2, 3)),  -- 1 normal, 2 senior, 3 emergency

    status VARCHAR(20) NOT NULL DEFAULT 'BOOKED',

    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    scheduled_time TIMESTAMPTZ NOT NULL,
    check_in_time TIMESTAMPTZ,
    check_in_latitude DECIMAL(10, 8) CHECK (check_in_latitude BETWEEN -90 AND 90),
    check_in_longitude DECIMAL(11, 8) CHECK (check_in_longitude BETWEEN -180 AND 180),
    check_in_override_reason TEXT,
    -- The moment that orders the queue among equal priorities (see docs/schema.md, fairness).
    queue_joined_at TIMESTAMPTZ,
    called_time TIMESTAMPTZ,
    call_count INT NOT NULL DEFAULT 0,
    consultation_start_time TIMESTAMPTZ,
    consultation_end_time TIMESTAMPTZ,
    closed_at TIMESTAMPTZ,                   -- NO_SHOW / CANCELLED / RESCHEDULED time

    queue_position INT,
    estimated_wait_time INT,                 -- minutes
    eta_updated_at TIMESTAMPTZ,

    visit_reason TEXT,
    notes JSONB NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(notes) = 'object'),
    cancellation_reason TEXT,
    rescheduled_from_token_id UUID,          -- the RESCHEDULED token this one replaces
    notified_expected_at TIMESTAMPTZ,        -- the expected time last told to the patient (DELAYED)

    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),

    PRIMARY KEY (token_id, visit_date),
    FOREIGN KEY (patient_id, hospital_id) REFERENCES patients(patient_id, hospital_id),
    FOREIGN KEY (doctor_id, hospital_id) REFERENCES doctors(doctor_id, hospital_id),
    FOREIGN KEY (dept_id, hospital_id) REFERENCES departments(dept_id, hospital_id),
    CONSTRAINT chk_status CHECK (status IN (
        'BOOKED', 'CHECKED_IN', 'WAITING', 'IN_CONSULTATION',
        'COMPLETED', 'NO_SHOW', 'CANCELLED', 'RESCHEDULED'
    )),
    CONSTRAINT chk_emergency_priority CHECK (booking_type <> 'EMERGENCY' OR priority = 3),
    CONSTRAINT chk_consultation_order CHECK (
        consultation_end_time IS NULL OR consultation_start_time IS NULL
        OR consultation_end_time >= consultation_start_time)
) PARTITION BY RANGE (visit_date);

-- No duplicate numbers: one department, one day, one serial.
CREATE UNIQUE INDEX uq_token_number ON tokens(dept_id, visit_date, serial);
-- At most one patient called or in consultation per doctor per day.
CREATE UNIQUE INDEX uq_token_one_active_per_doctor ON tokens(doctor_id, visit_date)
    WHERE status IN ('WAITING', 'IN_CONSULTATION');
CREATE INDEX idx_token_tracking ON tokens(tracking_code);
CREATE INDEX idx_token_patient ON tokens(patient_id);
CREATE INDEX idx_token_cabin ON tokens(cabin_id, visit_date);
CREATE INDEX idx_token_dept_day ON tokens(dept_id, visit_date, status);
CREATE INDEX idx_token_hospital_day ON tokens(hospital_id, visit_date);
CREATE INDEX idx_token_scheduled ON tokens(scheduled_time);
-- The live queue: call-next and every recompute read exactly this.
CREATE INDEX idx_token_live_queue ON tokens(doctor_id, visit_date, priority DESC, queue_joined_at)
    WHERE status IN ('CHECKED_IN', 'WAITING', 'IN_CONSULTATION');
CREATE INDEX idx_token_doctor_day ON tokens(doctor_id, visit_date, status);

-- Tokens older than 90 days move here (python -m app maintenance); same columns, not partitioned.
CREATE TABLE tokens_archive (LIKE tokens INCLUDING DEFAULTS INCLUDING CONSTRAINTS);
ALTER TABLE tokens_archive ADD PRIMARY KEY (token_id, visit_date);
CREATE INDEX idx_tokens_archive_patient ON tokens_archive(patient_id);

-- 9. TOKEN_HISTORY (state change audit) ------------------------------------------------------
-- No foreign key to tokens: history outlives a token's move to tokens_archive and must stay
-- readable there. Rows are only ever written by the tokens trigger (see functions.sql).
CREATE TABLE token_history (
    history_id BIGSERIAL PRIMARY KEY,
    token_id UUID NOT NULL,
    visit_date DATE NOT NULL,
    previous_status VARCHAR(20),
    new_status VARCHAR(20) NOT NULL,
    changed_by UUID REFERENCES staff_users(user_id) ON DELETE SET NULL,   -- a signed-in person
    changed_by_key UUID REFERENCES api_keys(key_id) ON DELETE SET NULL,   -- or an integration's key
    change_reason VARCHAR(255),
    metadata JSONB NOT NULL DEFAULT '{}',
    changed_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE INDEX idx_history_token ON token_history(token_id);
CREATE INDEX idx_history_timestamp ON token_history(changed_at);

-- 10. SCHEDULE_EXCEPTIONS (leave) ------------------------------------------------------------
CREATE TABLE schedule_exceptions (
    exception_id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    doctor_id UUID NOT NULL REFERENCES doctors(doctor_id) ON DELETE CASCADE,
    exception_type VARCHAR(20) NOT NULL,
    start_datetime TIMESTAMPTZ NOT NULL,
    end_datetime TIMESTAMPTZ NOT NULL,
    reason TEXT,
    affected_tokens_count INT NOT NULL DEFAULT 0,
    redistribution_status VARCHAR(20) NOT NULL DEFAULT 'PENDING'
        CHECK (redistribution_status IN ('PENDING', 'REDISTRIBUTED', 'RESCHEDULED', 'CANCELLED')),
    approver_id UUID REFERENCES staff_users(user_id),
    approved_by_key UUID REFERENCES api_keys(key_id),   -- when approved through an API key
    approved_at TIMESTAMPTZ,
    needs_approval BOOLEAN NOT NULL DEFAULT FALSE,
    rescheduled_count INT NOT NULL DEFAULT 0,
    cancelled_count INT NOT NULL DEFAULT 0,
    created_by UUID,                          -- staff user or API key id
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT chk_exception_type CHECK (exception_type IN (
        'PLANNED_LEAVE', 'UNPLANNED_LEAVE', 'EMERGENCY', 'TRAINING', 'SURGERY'
    )),
    CHECK (end_datetime > start_datetime)
);

CREATE INDEX idx_exception_doctor ON schedule_exceptions(doctor_id, start_datetime, end_datetime);

-- A doctor's breaks (Pause/Resume), for break and idle minutes in the daily metrics.
CREATE TABLE doctor_breaks (
    break_id BIGSERIAL PRIMARY KEY,
    doctor_id UUID NOT NULL REFERENCES doctors(doctor_id) ON DELETE CASCADE,
    started_at TIMESTAMPTZ NOT NULL,
    ended_at TIMESTAMPTZ,
    CHECK (ended_at IS NULL OR ended_at >= started_at)
);
CREATE INDEX idx_doctor_breaks ON doctor_breaks(doctor_id, started_at);

-- 11. DOCTOR_PERFORMANCE_METRICS -------------------------------------------------------------
CREATE TABLE doctor_performance_metrics (
    metric_id BIGSERIAL PRIMARY KEY,
    doctor_id UUID NOT NULL REFERENCES doctors(doctor_id) ON DELETE CASCADE,
    metric_date DATE NOT NULL,
    tokens_scheduled INT NOT NULL DEFAULT 0,
    tokens_completed INT NOT NULL DEFAULT 0,
    tokens_no_show INT NOT NULL DEFAULT 0,
    avg_consultation_time_mins NUMERIC(6,2),
    avg_wait_time_mins NUMERIC(6,2),
    first_patient_delay_mins INT,
    last_patient_time TIME,
    idle_time_mins INT NOT NULL DEFAULT 0,
    break_time_mins INT NOT NULL DEFAULT 0,
    utilization_rate NUMERIC(5,2) CHECK (utilization_rate BETWEEN 0 AND 100),
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE (doctor_id, metric_date)
);

CREATE INDEX idx_metrics_date ON doctor_performance_metrics(metric_date);

-- 12. SYSTEM_ALERTS --------------------------------------------------------------------------
CREATE TABLE system_alerts (
    alert_id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    hospital_id UUID NOT NULL REFERENCES hospitals(hospital_id) ON DELETE CASCADE,
    alert_type VARCHAR(50) NOT NULL
        CHECK (alert_type IN ('BOTTLENECK', 'DOCTOR_IDLE', 'LONG_WAIT', 'DOCTOR_LATE')),
    severity VARCHAR(20) NOT NULL DEFAULT 'INFO' CHECK (severity IN ('INFO', 'WARNING', 'CRITICAL')),
    entity_type VARCHAR(50) CHECK (entity_type IN ('DEPARTMENT', 'DOCTOR', 'CABIN', 'TOKEN')),
    entity_id UUID,
    message TEXT NOT NULL,
    metadata JSONB NOT NULL DEFAULT '{}',
    is_resolved BOOLEAN NOT NULL DEFAULT FALSE,
    resolved_at TIMESTAMPTZ,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE INDEX idx_alerts_unresolved ON system_alerts(created_at) WHERE is_resolved = FALSE;
-- An open alert is not raised twice for the same thing.
CREATE UNIQUE INDEX uq_alert_open ON system_alerts(alert_type, entity_type, entity_id)
    WHERE is_resolved = FALSE;

-- 13. NOTIFICATIONS_LOG (outbox) -------------------------------------------------------------
CREATE TABLE notifications_log (
    notification_id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    patient_id UUID NOT NULL REFERENCES patients(patient_id),
    token_id UUID,                            -- no FK: see token_history
    channel VARCHAR(20) NOT NULL CHECK (channel IN ('SMS', 'WHATSAPP', 'PUSH', 'EMAIL')),
    event_type VARCHAR(50) NOT NULL CHECK (event_type IN (
        'TOKEN_CREATED', 'T_MINUS_3', 'CALL_NOW', 'DELAYED', 'RESCHEDULED', 'CANCELLED')),
    language VARCHAR(5) NOT NULL DEFAULT 'en',
    message TEXT NOT NULL,
    phone_number VARCHAR(15),
    delivery_status VARCHAR(20) NOT NULL DEFAULT 'PENDING'
        CHECK (delivery_status IN ('PENDING', 'SENT', 'DELIVERED', 'FAILED')),
    external_id VARCHAR(255),
    sent_at TIMESTAMPTZ,
    delivered_at TIMESTAMPTZ,
    failed_reason TEXT,
    retry_count INT NOT NULL DEFAULT 0,
    next_attempt_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE INDEX idx_notif_patient ON notifications_log(patient_id);
CREATE INDEX idx_notif_token ON notifications_log(token_id);
CREATE INDEX idx_notif_pending ON notifications_log(next_attempt_at) WHERE delivery_status = 'PENDING';
CREATE INDEX idx_notif_external_id ON notifications_log(external_id) WHERE external_id IS NOT NULL;  -- receipts
-- Once-per-token events (T_MINUS_3, CALL_NOW, ...) are written once per token and channel.
CREATE UNIQUE INDEX uq_notif_once ON notifications_log(token_id, event_type, channel)
    WHERE event_type IN ('TOKEN_CREATED', 'T_MINUS_3', 'RESCHEDULED', 'CANCELLED');

-- TV boards and cabin door displays. A screen asks to pair and shows pairing_code; an admin
-- confirms the code; the screen's cookie then holds a credential stored here only as a SHA-256.
CREATE TABLE display_devices (
    device_id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    hospital_id UUID REFERENCES hospitals(hospital_id) ON DELETE CASCADE,  -- set when paired
    label VARCHAR(100) NOT NULL DEFAULT '',
    pairing_code VARCHAR(12),
    pairing_expires_at TIMESTAMPTZ,
    credential_hash BYTEA NOT NULL UNIQUE,
    paired_at TIMESTAMPTZ,
    paired_by UUID REFERENCES staff_users(user_id) ON DELETE SET NULL,
    last_seen_at TIMESTAMPTZ,
    revoked_at TIMESTAMPTZ,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    CHECK ((paired_at IS NULL) = (hospital_id IS NULL))
);
CREATE UNIQUE INDEX uq_display_pairing_code ON display_devices(pairing_code) WHERE paired_at IS NULL;

-- Patient messages per event and language; {placeholders} are filled by enqueue_notification.
CREATE TABLE notification_templates (
    event_type VARCHAR(50) NOT NULL,
    language VARCHAR(5) NOT NULL CHECK (language IN ('en', 'hi')),
    body TEXT NOT NULL,
    PRIMARY KEY (event_type, language)
);

-- Deployment-wide values the database needs (the public base URL for links in messages).
CREATE TABLE app_settings (
    key VARCHAR(50) PRIMARY KEY,
    value TEXT NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Sign-in audit (logins and failed logins are recorded: docs/security.md)
CREATE TABLE login_events (
    event_id BIGSERIAL PRIMARY KEY,
    username VARCHAR(64) NOT NULL,
    user_id UUID REFERENCES staff_users(user_id) ON DELETE SET NULL,
    remote_addr VARCHAR(64),
    succeeded BOOLEAN NOT NULL,
    detail VARCHAR(100),
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
