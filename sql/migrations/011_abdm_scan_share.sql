-- ABDM Scan & Share (issue 18; docs/abdm.md). A patient scans the hospital's counter QR with an
-- ABHA app; the ABDM gateway posts their profile to us; we issue a real WALK_IN token in the
-- counter's department and answer the gateway with its number (the on-share, sent from an
-- outbox so that it is never lost and, carrying one REQUEST-ID on every attempt, never twice).

-- The hospital as a Health Information Provider: its HIP id (the HFR facility id) on the share.
ALTER TABLE hospitals ADD COLUMN IF NOT EXISTS abdm_hip_id VARCHAR(50)
    CHECK (abdm_hip_id ~ '^[A-Za-z0-9_-]{1,50}$');
CREATE UNIQUE INDEX IF NOT EXISTS uq_hospital_abdm_hip_id ON hospitals(abdm_hip_id) WHERE abdm_hip_id IS NOT NULL;

-- The patient's ABHA identifiers, as the share gave them: found by them at the next share.
ALTER TABLE patients ADD COLUMN IF NOT EXISTS abha_number VARCHAR(17)
    CHECK (abha_number ~ '^[0-9]{14}$');
ALTER TABLE patients ADD COLUMN IF NOT EXISTS abha_address VARCHAR(255);
CREATE UNIQUE INDEX IF NOT EXISTS uq_patient_abha_number ON patients(hospital_id, abha_number)
    WHERE abha_number IS NOT NULL;
CREATE INDEX IF NOT EXISTS idx_patient_abha_address ON patients(hospital_id, lower(abha_address))
    WHERE abha_address IS NOT NULL;

-- A counter of the facility QR: its code (`context` in the share) and where its tokens go.
CREATE TABLE IF NOT EXISTS abdm_counters (
    counter_id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    hospital_id UUID NOT NULL REFERENCES hospitals(hospital_id) ON DELETE CASCADE,
    context VARCHAR(50) NOT NULL CHECK (context ~ '^[A-Za-z0-9_-]{1,50}$'),
    label VARCHAR(100) NOT NULL CHECK (length(btrim(label)) > 0),
    dept_id UUID NOT NULL REFERENCES departments(dept_id),
    doctor_id UUID REFERENCES doctors(doctor_id),          -- NULL: the least busy doctor on shift
    active BOOLEAN NOT NULL DEFAULT TRUE,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE (hospital_id, context)
);

-- Every share received, and its on-share reply (the outbox: sent_at NULL until the gateway took it).
CREATE TABLE IF NOT EXISTS abdm_shares (
    share_id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    request_id VARCHAR(64) NOT NULL UNIQUE,   -- the gateway's REQUEST-ID: a redelivery is answered once
    hip_id VARCHAR(50) NOT NULL,
    context VARCHAR(50) NOT NULL,
    hospital_id UUID REFERENCES hospitals(hospital_id) ON DELETE CASCADE,  -- NULL: unknown HIP id
    counter_id UUID REFERENCES abdm_counters(counter_id) ON DELETE SET NULL,
    abha_key TEXT NOT NULL,                   -- the ABHA number, else the lower-cased ABHA address
    abha_address VARCHAR(255),
    patient_id UUID,
    token_id UUID,                            -- tokens are partitioned: no foreign key
    token_number VARCHAR(20),
    share_day DATE,                           -- the hospital's day of the share
    status VARCHAR(10) NOT NULL CHECK (status IN ('SUCCESS', 'FAILED')),
    reason TEXT,                              -- why FAILED, in words the front desk can act on
    repeat_of UUID REFERENCES abdm_shares(share_id),  -- the share whose token was handed back
    received_at TIMESTAMPTZ NOT NULL,         -- opd_now(): the hospital's clock
    on_share JSONB NOT NULL,                  -- the reply's body, built with the share
    on_share_request_id UUID NOT NULL DEFAULT gen_random_uuid(),  -- its REQUEST-ID, the same on every attempt
    attempts INT NOT NULL DEFAULT 0,
    next_attempt_at TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp(),  -- real time, as the outbox's
    claimed_until TIMESTAMPTZ,
    sent_at TIMESTAMPTZ,
    gave_up_at TIMESTAMPTZ,
    last_error TEXT
);
CREATE INDEX IF NOT EXISTS idx_abdm_shares_due ON abdm_shares(next_attempt_at)
    WHERE sent_at IS NULL AND gave_up_at IS NULL;
CREATE INDEX IF NOT EXISTS idx_abdm_shares_recent ON abdm_shares(hospital_id, counter_id, abha_key, received_at)
    WHERE status = 'SUCCESS';
CREATE INDEX IF NOT EXISTS idx_abdm_shares_token ON abdm_shares(token_id) WHERE token_id IS NOT NULL;
