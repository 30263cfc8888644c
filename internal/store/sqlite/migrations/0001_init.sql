-- 0001: initial Baton schema.
--
-- Timestamps are INTEGER unix nanoseconds (0 for the zero time). JSON values
-- are TEXT (NULL for a nil json.RawMessage). Error columns hold the JSON of a
-- store.ErrorInfo. String columns that may be empty are NOT NULL DEFAULT ''.

CREATE TABLE IF NOT EXISTS baton_meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE runs (
    id              TEXT PRIMARY KEY,
    flow            TEXT NOT NULL DEFAULT '',
    state           TEXT NOT NULL DEFAULT '',
    attempt         INTEGER NOT NULL DEFAULT 0,
    parent_run_id   TEXT NOT NULL DEFAULT '',
    parent_step_key TEXT NOT NULL DEFAULT '',
    parameters      TEXT,
    result          TEXT,
    result_ref      TEXT NOT NULL DEFAULT '',
    error           TEXT,
    created_at      INTEGER NOT NULL DEFAULT 0,
    updated_at      INTEGER NOT NULL DEFAULT 0,
    started_at      INTEGER NOT NULL DEFAULT 0,
    ended_at        INTEGER NOT NULL DEFAULT 0,
    owner_host      TEXT NOT NULL DEFAULT '',
    owner_pid       INTEGER NOT NULL DEFAULT 0,
    owner_start     INTEGER NOT NULL DEFAULT 0,
    queue           TEXT NOT NULL DEFAULT '',
    idempotency_key TEXT NOT NULL DEFAULT '',
    worker_id       TEXT NOT NULL DEFAULT '',
    lease_until     INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX runs_created_at ON runs (created_at);
CREATE INDEX runs_flow_created_at ON runs (flow, created_at);
CREATE INDEX runs_parent ON runs (parent_run_id, parent_step_key);
CREATE INDEX runs_queue_created_at ON runs (queue, created_at) WHERE queue <> '';
CREATE UNIQUE INDEX runs_idempotency_key ON runs (idempotency_key) WHERE idempotency_key <> '';

-- Distributed mode. The partial indexes below only hold the few rows that
-- are waiting or leased, so they cost nothing to local runs. Queries must
-- repeat an index's WHERE terms literally for SQLite to use it.
--
-- Claims: SCHEDULED runs of a queue, oldest first.
CREATE INDEX runs_claim ON runs (queue, created_at) WHERE state = 'SCHEDULED';
-- Leases held by workers: expiry by time, extension and release by worker.
CREATE INDEX runs_lease ON runs (lease_until)
    WHERE state IN ('PENDING', 'RUNNING', 'CANCELLING') AND lease_until <> 0;
CREATE INDEX runs_worker ON runs (worker_id)
    WHERE state IN ('PENDING', 'RUNNING', 'CANCELLING') AND worker_id <> '';
-- Queue statistics: unfinished runs of the queues.
CREATE INDEX runs_active ON runs (queue, state)
    WHERE queue <> '' AND state NOT IN ('COMPLETED', 'FAILED', 'CANCELLED', 'CRASHED');
-- Retention: finished runs by end time.
CREATE INDEX runs_ended_at ON runs (ended_at) WHERE ended_at <> 0;
-- Blob references, to tell which ones retention leaves unused.
CREATE INDEX runs_result_ref ON runs (result_ref) WHERE result_ref <> '';

-- Task runs are clustered by run and step key (WITHOUT ROWID, primary key
-- (run_id, key, id)): a step's commit touches one b-tree, and the journal
-- and a run's task runs are range scans.
CREATE TABLE task_runs (
    id              TEXT NOT NULL,
    run_id          TEXT NOT NULL DEFAULT '',
    key             TEXT NOT NULL DEFAULT '',
    task            TEXT NOT NULL DEFAULT '',
    child_run_id    TEXT NOT NULL DEFAULT '',
    state           TEXT NOT NULL DEFAULT '',
    attempts        INTEGER NOT NULL DEFAULT 0,
    flow_attempt    INTEGER NOT NULL DEFAULT 0,
    input_hash      TEXT NOT NULL DEFAULT '',
    input           TEXT,
    result          TEXT,
    result_ref      TEXT NOT NULL DEFAULT '',
    error           TEXT,
    cached_from     TEXT NOT NULL DEFAULT '',
    cached_from_run TEXT NOT NULL DEFAULT '',
    created_at      INTEGER NOT NULL DEFAULT 0,
    started_at      INTEGER NOT NULL DEFAULT 0,
    ended_at        INTEGER NOT NULL DEFAULT 0,
    history         TEXT,
    queue           TEXT NOT NULL DEFAULT '',
    worker_id       TEXT NOT NULL DEFAULT '',
    lease_until     INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (run_id, key, id)
) WITHOUT ROWID;
-- Distributed task runs (queue <> ''): claims of PENDING ones, oldest
-- first, and the leases of RUNNING ones by expiry and by worker. Local task
-- runs (queue '') have no entries.
CREATE INDEX task_runs_claim ON task_runs (queue, created_at) WHERE state = 'PENDING' AND queue <> '';
CREATE INDEX task_runs_lease ON task_runs (lease_until) WHERE state = 'RUNNING' AND queue <> '';
CREATE INDEX task_runs_worker ON task_runs (worker_id) WHERE state = 'RUNNING' AND queue <> '';
CREATE INDEX task_runs_result_ref ON task_runs (result_ref) WHERE result_ref <> '';

-- Events are clustered by run (WITHOUT ROWID, primary key (run_id, id)) so
-- that a step's events and a run's history share pages: one b-tree per
-- commit instead of a table plus an index. IDs are assigned by the writer
-- from a monotonic nanosecond clock.
CREATE TABLE events (
    run_id      TEXT NOT NULL DEFAULT '',
    id          INTEGER NOT NULL,
    task_run_id TEXT NOT NULL DEFAULT '',
    task_key    TEXT NOT NULL DEFAULT '',
    from_state  TEXT NOT NULL DEFAULT '',
    to_state    TEXT NOT NULL DEFAULT '',
    cause       TEXT NOT NULL DEFAULT '',
    message     TEXT NOT NULL DEFAULT '',
    at          INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (run_id, id)
) WITHOUT ROWID;

CREATE TABLE logs (
    id          INTEGER PRIMARY KEY,
    run_id      TEXT NOT NULL DEFAULT '',
    task_run_id TEXT NOT NULL DEFAULT '',
    task_key    TEXT NOT NULL DEFAULT '',
    level       TEXT NOT NULL DEFAULT '',
    message     TEXT NOT NULL DEFAULT '',
    attrs       TEXT,
    at          INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX logs_run_id ON logs (run_id, id);

CREATE TABLE cache (
    key         TEXT PRIMARY KEY,
    task        TEXT NOT NULL DEFAULT '',
    result      TEXT,
    result_ref  TEXT NOT NULL DEFAULT '',
    run_id      TEXT NOT NULL DEFAULT '',
    task_run_id TEXT NOT NULL DEFAULT '',
    created_at  INTEGER NOT NULL DEFAULT 0,
    expires_at  INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX cache_run_id ON cache (run_id);
CREATE INDEX cache_result_ref ON cache (result_ref) WHERE result_ref <> '';

-- Registered workers. queues, flows and tasks are JSON arrays, slots a JSON
-- object (queue -> slots); NULL when empty.
CREATE TABLE workers (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL DEFAULT '',
    host       TEXT NOT NULL DEFAULT '',
    pid        INTEGER NOT NULL DEFAULT 0,
    queues     TEXT,
    flows      TEXT,
    tasks      TEXT,
    slots      TEXT,
    capacity   INTEGER NOT NULL DEFAULT 0,
    started_at INTEGER NOT NULL DEFAULT 0,
    last_seen  INTEGER NOT NULL DEFAULT 0
);
