-- 0007: waits, the input sent to runs, and events (the same change as
-- PostgreSQL's migration of the same number).
--
-- A wait step is a task run (state WAITING, its input the store.WaitSpec);
-- waits indexes what resolves it: the input key or event name, and the
-- deadline. active is 1 while the step waits; event_seq is the event it
-- received, so a later wait of the run for the same name takes a newer one.
CREATE TABLE waits (
    run_id      TEXT NOT NULL,
    key         TEXT NOT NULL,
    task_run_id TEXT NOT NULL,
    kind        TEXT NOT NULL,
    name        TEXT NOT NULL DEFAULT '',
    wake_at     INTEGER NOT NULL DEFAULT 0,
    active      INTEGER NOT NULL DEFAULT 1,
    event_seq   INTEGER NOT NULL DEFAULT 0,
    created_at  INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (run_id, key, task_run_id)
) WITHOUT ROWID;
CREATE INDEX waits_due ON waits (wake_at) WHERE active = 1 AND wake_at <> 0;
CREATE INDEX waits_event ON waits (name) WHERE active = 1 AND kind = 'event';

-- Input sent to a run: delivered to a wait step (task_run_id), or kept
-- ('') for the run's first wait of the key.
CREATE TABLE inputs (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id      TEXT NOT NULL,
    key         TEXT NOT NULL,
    value       TEXT,
    actor       TEXT NOT NULL,
    verified    INTEGER NOT NULL DEFAULT 0,
    created_at  INTEGER NOT NULL,
    task_run_id TEXT NOT NULL DEFAULT ''
);
CREATE INDEX inputs_run ON inputs (run_id, key, seq);

-- Events sent to Baton (POST /api/v1/events, baton events send), kept for
-- waits that begin after them (store.DefaultEventRetention).
CREATE TABLE sent_events (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    name       TEXT NOT NULL,
    payload    TEXT,
    actor      TEXT NOT NULL,
    verified   INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL
);
CREATE INDEX sent_events_name ON sent_events (name, seq);
CREATE INDEX sent_events_created ON sent_events (created_at);
