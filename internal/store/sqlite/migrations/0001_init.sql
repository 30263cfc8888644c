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
    owner_start     INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX runs_created_at ON runs (created_at);
CREATE INDEX runs_flow_created_at ON runs (flow, created_at);
CREATE INDEX runs_parent ON runs (parent_run_id, parent_step_key);

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
    PRIMARY KEY (run_id, key, id)
) WITHOUT ROWID;

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
