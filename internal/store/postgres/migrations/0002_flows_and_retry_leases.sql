-- 0002: flow registrations, and runs of workers awaiting a flow-level retry
-- are leased (the same change as SQLite's migration of the same number).
--
-- flows holds, per flow name, what the latest worker registration said about
-- it (any server's): its parameter JSON Schema and defaults (JSON TEXT, NULL
-- when none), so that every server sharing the store validates the
-- parameters of runs created through it.
CREATE TABLE flows (
    name          TEXT COLLATE "C" PRIMARY KEY,
    parameters    TEXT,
    defaults      TEXT,
    registered_at BIGINT NOT NULL DEFAULT 0
);

-- A run on a worker that waits out its flow's retry delay (AWAITING_RETRY)
-- stays leased to that worker: heartbeats extend it, expiry and release take
-- it back. The partial indexes on leased states include it.
DROP INDEX runs_leased;
DROP INDEX runs_lease_until;
CREATE INDEX runs_leased ON runs (worker_id, lease_until)
    WHERE state IN ('PENDING', 'RUNNING', 'CANCELLING', 'AWAITING_RETRY');
CREATE INDEX runs_lease_until ON runs (lease_until)
    WHERE lease_until <> 0 AND state IN ('PENDING', 'RUNNING', 'CANCELLING', 'AWAITING_RETRY');
