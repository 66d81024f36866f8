-- Functions of earlier versions whose signatures no longer exist: dropped here once, so that
-- sql/functions.sql holds only what is current (issue 16). CASCADE: the two trigger functions
-- still carry their triggers on a database older than the shared hospital_layout_changed();
-- functions.sql, applied right after any migration, creates the current triggers again.
DROP FUNCTION IF EXISTS set_token_status(UUID, TEXT, UUID, TEXT);
DROP FUNCTION IF EXISTS doctor_live_views(UUID, UUID[]);
DROP FUNCTION IF EXISTS doctor_live_views(UUID, UUID[], BOOLEAN);
DROP FUNCTION IF EXISTS doctor_live_views(UUID, UUID[], BOOLEAN, TEXT, UUID[], INT[], INT[]);
DROP FUNCTION IF EXISTS token_views(UUID[]);
DROP FUNCTION IF EXISTS token_views(UUID[], BOOLEAN);
DROP FUNCTION IF EXISTS board_notices_after_write() CASCADE;
DROP FUNCTION IF EXISTS hospitals_after_update() CASCADE;
