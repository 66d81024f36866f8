-- Notices on the waiting-hall boards and door displays ("Dr. Mehta's OPD starts at 11:00
-- today"), posted by reception or an admin from the pages (issue 13). Public text: whatever is
-- typed is shown to the whole hall, so it is short and never a patient's data (docs/security.md).
-- dept_id NULL: every board of the hospital. Removing one keeps the row (who posted what, when).
CREATE TABLE IF NOT EXISTS board_notices (
    notice_id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    hospital_id UUID NOT NULL REFERENCES hospitals(hospital_id),
    dept_id UUID REFERENCES departments(dept_id),
    text_en VARCHAR(200) NOT NULL CHECK (length(btrim(text_en)) > 0),
    text_hi VARCHAR(200) CHECK (text_hi IS NULL OR length(btrim(text_hi)) > 0),
    starts_at TIMESTAMPTZ NOT NULL,
    ends_at TIMESTAMPTZ NOT NULL,
    posted_by UUID,                  -- staff_users.user_id or api_keys.key_id
    removed_at TIMESTAMPTZ,
    removed_by UUID,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    CHECK (ends_at > starts_at)
);
CREATE INDEX IF NOT EXISTS idx_board_notices_live ON board_notices (hospital_id, ends_at)
    WHERE removed_at IS NULL;
