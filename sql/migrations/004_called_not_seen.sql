-- A called patient who never comes (issue 13): the hospital says after how many minutes the
-- console prompts the doctor and an alert opens, and whether such a patient is marked absent
-- by itself (NULL: never; the patient can still be put back in line at reception).
ALTER TABLE hospitals ADD COLUMN IF NOT EXISTS called_not_seen_minutes INT NOT NULL DEFAULT 3
    CHECK (called_not_seen_minutes BETWEEN 1 AND 120);
ALTER TABLE hospitals ADD COLUMN IF NOT EXISTS auto_absent_minutes INT
    CHECK (auto_absent_minutes IS NULL OR auto_absent_minutes BETWEEN 2 AND 240);

ALTER TABLE system_alerts DROP CONSTRAINT IF EXISTS system_alerts_alert_type_check;
ALTER TABLE system_alerts ADD CONSTRAINT system_alerts_alert_type_check
    CHECK (alert_type IN ('BOTTLENECK', 'DOCTOR_IDLE', 'LONG_WAIT', 'DOCTOR_LATE', 'CALLED_NOT_SEEN'));
