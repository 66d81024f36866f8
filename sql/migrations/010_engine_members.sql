-- Engine processes that share the queue engine's shards (OPD_ENGINE_SHARDS > 1; issue 19).
-- Hospitals are hashed to a fixed number of shards, each with its own lease (engine_lease, key
-- OPD_LEADER_LOCK_KEY + shard). Each engine process beats here twice a second, so every process
-- knows how many take part and leads at most its fair share (ceil(shards / members)): a process
-- that joins is handed shards, and the shards of one that is lost are taken by the others.
CREATE TABLE IF NOT EXISTS engine_members (
    lease_key BIGINT NOT NULL,               -- the group: OPD_LEADER_LOCK_KEY (shard 0's lease key)
    holder TEXT NOT NULL,                    -- the process (host:pid:random), as in engine_lease
    shard_count INT NOT NULL,                -- its OPD_ENGINE_SHARDS: every member must agree
    seen_at TIMESTAMPTZ NOT NULL,            -- real time (clock_timestamp), never the fake clock
    PRIMARY KEY (lease_key, holder)
);
