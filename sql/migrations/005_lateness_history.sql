-- How late each doctor started on their last days (minutes, newest last, at most 20), so the
-- ETA of a hall waiting for a doctor who is already overdue uses how long this doctor's late
-- starts really last (docs/eta.md). A doctor is on time most days and sometimes very late: a
-- normal curve fitted to such days expects a few more minutes where the doctor's own late days
-- say twenty.
ALTER TABLE doctor_pace ADD COLUMN IF NOT EXISTS late_recent DOUBLE PRECISION[] NOT NULL DEFAULT '{}';
