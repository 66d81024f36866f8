-- Who runs the queue engine: a lease with a heartbeat (docs/architecture.md, "Leadership").
-- The session advisory lock it replaces lived as long as the leader's connection, so a frozen
-- leader (SIGSTOP, a stalled VM, a long GC pause) kept it while every screen froze. A lease
-- lapses unless renewed every few hundred milliseconds; each taking of it starts a new term,
-- and the term fences the bus: frames of an older term are refused (app/live/bus.py).
CREATE TABLE IF NOT EXISTS engine_lease (
    lease_key BIGINT PRIMARY KEY,            -- OPD_LEADER_LOCK_KEY: one engine per key
    holder TEXT NOT NULL,                    -- the holding process (host:pid:random)
    term BIGINT NOT NULL,                    -- grows by one at every new holder
    expires_at TIMESTAMPTZ NOT NULL          -- real time (clock_timestamp), never the fake clock
);
