-- 0010: work queues, task tags and tag concurrency limits (PostgreSQL; the
-- same change as SQLite's migration of the same number).
--
-- task_runs.tags is the JSON array of the task run's tags (baton.Tags), ''
-- when it has none. A distributed task run with tags waits in state
-- AWAITING_SLOT instead of PENDING: only the slot claim starts it, which
-- locks the concurrency_limits rows of its tags and counts the RUNNING task
-- runs carrying each limited tag (a slot is a RUNNING task run: it is free
-- again in the transaction that moves the task run out of RUNNING, so a
-- slot cannot leak).
ALTER TABLE task_runs ADD COLUMN tags TEXT COLLATE "C" NOT NULL DEFAULT '';
-- The slot claim reads the oldest AWAITING_SLOT task runs of a queue.
CREATE INDEX task_runs_slot_claim ON task_runs (queue, created_at, run_id, key, id) WHERE state = 'AWAITING_SLOT';
-- The slots in use: the RUNNING task runs that carry tags.
CREATE INDEX task_runs_slots ON task_runs (run_id, key, id) WHERE state = 'RUNNING' AND tags <> '';

-- A concurrency limit: at most max_running task runs carrying tag are
-- RUNNING at any instant, across every worker and server.
CREATE TABLE concurrency_limits (
    tag         TEXT COLLATE "C" PRIMARY KEY,
    max_running BIGINT NOT NULL DEFAULT 0,
    updated_by  TEXT NOT NULL DEFAULT '',
    created_at  BIGINT NOT NULL DEFAULT 0,
    updated_at  BIGINT NOT NULL DEFAULT 0
);

-- Declared work queues. A queue that is not declared exists implicitly
-- (priority 0, no limit, not paused) when a worker serves it or work names
-- it. max_running 0 is no limit.
CREATE TABLE work_queues (
    name        TEXT COLLATE "C" PRIMARY KEY,
    priority    BIGINT NOT NULL DEFAULT 0,
    max_running BIGINT NOT NULL DEFAULT 0,
    paused      BIGINT NOT NULL DEFAULT 0,
    pause_note  TEXT NOT NULL DEFAULT '',
    paused_by   TEXT NOT NULL DEFAULT '',
    paused_at   BIGINT NOT NULL DEFAULT 0,
    description TEXT NOT NULL DEFAULT '',
    created_at  BIGINT NOT NULL DEFAULT 0,
    updated_at  BIGINT NOT NULL DEFAULT 0
);
INSERT INTO work_queues (name) VALUES ('default');
