-- The ETA's pace model and its accuracy record (docs/eta.md).

-- What each doctor's queue has taught us, updated in O(1) as tokens are called and closed
-- (pace_observe in sql/functions.sql) and read by doctor_queue at every recompute. Kept in the
-- database so that a new engine leader or a restart loses nothing. Means are exponentially
-- weighted (recent patients count most) and carry on from one day to the next: yesterday's pace
-- is today's prior. A doctor without a row starts from the department's learned pace, else from
-- the department's configured consultation + buffer time.
CREATE TABLE IF NOT EXISTS doctor_pace (
    doctor_id UUID PRIMARY KEY REFERENCES doctors(doctor_id) ON DELETE CASCADE,
    -- Minutes from one call to the next when the called patient came (attended) or did not
    -- (no-show), exponentially weighted; *_var their variances.
    attended_mins DOUBLE PRECISION NOT NULL,
    attended_var DOUBLE PRECISION NOT NULL,
    noshow_mins DOUBLE PRECISION NOT NULL,
    noshow_share DOUBLE PRECISION NOT NULL,      -- of called patients, the share who never came
    leave_share DOUBLE PRECISION NOT NULL,       -- of patients leaving the queue, the share who left uncalled
    jump_share_2 DOUBLE PRECISION NOT NULL,      -- of calls, the share going to priority >= 2 (seniors, emergencies)
    jump_share_3 DOUBLE PRECISION NOT NULL,      -- ... to priority 3 (emergencies)
    late_mins DOUBLE PRECISION NOT NULL,         -- first call of the day after the shift start
    late_var DOUBLE PRECISION NOT NULL,
    break_mins DOUBLE PRECISION NOT NULL,        -- length of a break
    evidence DOUBLE PRECISION NOT NULL,          -- weighted count of cycles seen (how sure the means are)
    source TEXT NOT NULL,                        -- where the first values came from: doctor, department, configured
    day DATE,                                    -- the day of the fields below
    calls_today INT NOT NULL DEFAULT 0,
    last_call_at TIMESTAMPTZ,                    -- the last call (not a recall) of the day
    last_call_token UUID,                        -- ... and its token
    last_outcome TEXT,                           -- what became of that call: ATTENDED, NO_SHOW
    break_since_call DOUBLE PRECISION NOT NULL DEFAULT 0,  -- minutes of breaks since last_call_at
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- What each waiting patient was told, and when: written by the write-back when the expected
-- time moved by more than a minute, at most once a minute per token (and every 5 minutes
-- regardless), so a token has at most one row per minute it waited. eta_accuracy() compares it
-- with the moment the token was first called. Archived with the tokens.
CREATE TABLE IF NOT EXISTS eta_told (
    token_id UUID NOT NULL,
    visit_date DATE NOT NULL,
    hospital_id UUID NOT NULL,
    dept_id UUID NOT NULL,
    doctor_id UUID NOT NULL,
    told_at TIMESTAMPTZ NOT NULL,
    queue_position INT NOT NULL,
    eta_minutes INT NOT NULL,
    eta_low_minutes INT NOT NULL,
    eta_high_minutes INT NOT NULL,
    PRIMARY KEY (token_id, told_at)
);
CREATE INDEX IF NOT EXISTS idx_eta_told_hospital_day ON eta_told(hospital_id, visit_date);

-- The range shown beside the median ETA, and what was last recorded in eta_told.
ALTER TABLE tokens ADD COLUMN IF NOT EXISTS eta_low_minutes INT;
ALTER TABLE tokens ADD COLUMN IF NOT EXISTS eta_high_minutes INT;
ALTER TABLE tokens ADD COLUMN IF NOT EXISTS eta_told_at TIMESTAMPTZ;
ALTER TABLE tokens ADD COLUMN IF NOT EXISTS eta_told_expected_at TIMESTAMPTZ;
-- When the upper estimate first moved materially later than what the patient was told; DELAYED
-- goes out only if it is still later a few minutes on (no message for a passing jitter).
ALTER TABLE tokens ADD COLUMN IF NOT EXISTS delay_pending_since TIMESTAMPTZ;
-- tokens_archive keeps the shape of tokens (archive_old_tokens copies rows whole).
ALTER TABLE tokens_archive ADD COLUMN IF NOT EXISTS eta_low_minutes INT;
ALTER TABLE tokens_archive ADD COLUMN IF NOT EXISTS eta_high_minutes INT;
ALTER TABLE tokens_archive ADD COLUMN IF NOT EXISTS eta_told_at TIMESTAMPTZ;
ALTER TABLE tokens_archive ADD COLUMN IF NOT EXISTS eta_told_expected_at TIMESTAMPTZ;
ALTER TABLE tokens_archive ADD COLUMN IF NOT EXISTS delay_pending_since TIMESTAMPTZ;
CREATE TABLE IF NOT EXISTS eta_told_archive (LIKE eta_told INCLUDING DEFAULTS INCLUDING CONSTRAINTS);
