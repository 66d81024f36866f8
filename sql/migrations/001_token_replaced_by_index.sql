-- token_views looks up, for every token it shows, the token that replaced it (a reschedule).
-- Without an index that was a scan of the whole month's partition per token: the queue engine
-- shows every open token of a doctor at each change, so the cost grew with the hospital's size.
CREATE INDEX IF NOT EXISTS idx_token_rescheduled_from ON tokens(rescheduled_from_token_id)
    WHERE rescheduled_from_token_id IS NOT NULL;
