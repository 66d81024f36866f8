-- What each hospital registered to send patient messages in India (docs/operations.md, "Sending
-- messages in India"): per event, language and channel, the text exactly as registered with its
-- {variables}, and the identifiers the provider needs — for SMS the DLT content template ID and
-- the header (sender ID), plus the gateway's own template ID where it has one (MSG91); for
-- WhatsApp the approved template's name and language. The body parameters of a WhatsApp template
-- are the text's {variables} in order. A message is built from the hospital's registration when
-- there is one, else from the default texts of notification_templates (then an Indian SMS gateway
-- refuses to send it: FAILED, with the reason).
CREATE TABLE IF NOT EXISTS message_registrations (
    hospital_id UUID NOT NULL REFERENCES hospitals(hospital_id) ON DELETE CASCADE,
    event_type VARCHAR(50) NOT NULL,
    language VARCHAR(5) NOT NULL CHECK (language IN ('en', 'hi')),
    channel VARCHAR(20) NOT NULL CHECK (channel IN ('SMS', 'WHATSAPP')),
    body TEXT NOT NULL,
    dlt_template_id VARCHAR(30) CHECK (dlt_template_id ~ '^[0-9]{10,30}$'),
    sms_header VARCHAR(11) CHECK (sms_header ~ '^[A-Za-z0-9]{3,11}$'),
    gateway_template_id VARCHAR(64),
    wa_template_name VARCHAR(512) CHECK (wa_template_name ~ '^[a-z0-9_]+$'),
    wa_language VARCHAR(10) CHECK (wa_language ~ '^[a-z]{2}(_[A-Z]{2})?$'),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_by UUID,
    PRIMARY KEY (hospital_id, event_type, language, channel),
    CHECK (channel <> 'SMS' OR dlt_template_id IS NOT NULL),
    CHECK (channel <> 'WHATSAPP' OR (wa_template_name IS NOT NULL AND wa_language IS NOT NULL))
);

-- The hospital's DLT principal entity ID (PE ID), sent with every SMS; and whether its SMS are
-- "service implicit" (DLT's category for messages about a service the patient asked for: sent
-- without an explicit opt-in and not blocked by DND). Off by default: nothing is sent on a
-- channel the patient did not agree to.
ALTER TABLE hospitals ADD COLUMN IF NOT EXISTS dlt_pe_id VARCHAR(30) CHECK (dlt_pe_id ~ '^[0-9]{10,30}$');
ALTER TABLE hospitals ADD COLUMN IF NOT EXISTS sms_service_implicit BOOLEAN NOT NULL DEFAULT false;

-- A message as registered: its variables' values in the text's order, and the registration's
-- identifiers (null for a message built from the default texts).
ALTER TABLE notifications_log ADD COLUMN IF NOT EXISTS variables JSONB;
ALTER TABLE notifications_log ADD COLUMN IF NOT EXISTS registration JSONB;

-- Consent, recorded: when, how and by whom each channel was agreed to or withdrawn (written by
-- a trigger on patients, so every path records it). The design defaulted both to agreed; nothing
-- is agreed until the patient says so.
ALTER TABLE patients ALTER COLUMN sms_opt_in SET DEFAULT false;
ALTER TABLE patients ALTER COLUMN whatsapp_opt_in SET DEFAULT false;
CREATE TABLE IF NOT EXISTS consent_events (
    event_id BIGSERIAL PRIMARY KEY,
    patient_id UUID NOT NULL REFERENCES patients(patient_id) ON DELETE CASCADE,
    channel VARCHAR(20) NOT NULL CHECK (channel IN ('SMS', 'WHATSAPP', 'PUSH')),
    granted BOOLEAN NOT NULL,
    source TEXT NOT NULL,          -- reception, api, whatsapp STOP, ...
    actor UUID,                    -- the staff user or API key, when there is one
    at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS idx_consent_events_patient ON consent_events(patient_id, at);

-- WhatsApp messages patients sent us: they open the 24-hour window in which free text may be
-- sent, and carry STATUS / STOP.
CREATE TABLE IF NOT EXISTS whatsapp_inbound (
    message_id TEXT PRIMARY KEY,   -- Meta's wamid: a webhook delivered twice is recorded once
    phone VARCHAR(20) NOT NULL,    -- E.164
    body TEXT,
    received_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX IF NOT EXISTS idx_whatsapp_inbound_phone ON whatsapp_inbound(phone, received_at DESC);

-- The reply to a patient's "STATUS" on WhatsApp is a message of its own kind.
ALTER TABLE notifications_log DROP CONSTRAINT IF EXISTS notifications_log_event_type_check;
ALTER TABLE notifications_log ADD CONSTRAINT notifications_log_event_type_check CHECK (event_type IN (
    'TOKEN_CREATED', 'T_MINUS_3', 'CALL_NOW', 'DELAYED', 'RESCHEDULED', 'CANCELLED', 'STATUS_REPLY'));
