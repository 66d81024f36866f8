-- The write-back decides what waiting patients are told (eta_told, T_MINUS_3, DELAYED) in the
-- same UPDATE that writes their positions (write_back_queue in sql/functions.sql): the two
-- functions that each rewrote the doctor's token rows again after it are gone.
DROP FUNCTION IF EXISTS record_eta_told(UUID, DATE);
DROP FUNCTION IF EXISTS notify_queue_progress(UUID, DATE);
