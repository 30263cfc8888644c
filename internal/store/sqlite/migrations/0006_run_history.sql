-- 0006: the append-only history of runs (store.HistoryEntry).
--
-- Every action on a run, human or system, is one row: when, who (actor,
-- and whether the store could verify that name: 1 for the OS user of a
-- local command and for the system, 0 for a name a client declared), what
-- (action), why (reason) and the action's details (payload, JSON). seq
-- orders the rows (AUTOINCREMENT: never reused, even after deletions) and
-- is the cursor of history pages.
--
-- Nothing rewrites an entry: the triggers refuse every UPDATE, a REPLACE, and a
-- DELETE while the run exists. Retention deletes a run's row first and
-- then its history.
CREATE TABLE run_history (
    seq      INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id   TEXT NOT NULL,
    at       INTEGER NOT NULL,
    actor    TEXT NOT NULL,
    verified INTEGER NOT NULL DEFAULT 0,
    action   TEXT NOT NULL,
    reason   TEXT NOT NULL DEFAULT '',
    payload  TEXT
);
CREATE INDEX run_history_run ON run_history (run_id, seq);

CREATE TRIGGER run_history_no_update BEFORE UPDATE ON run_history
BEGIN
    SELECT RAISE(ABORT, 'run history is append-only: entries cannot be updated');
END;

CREATE TRIGGER run_history_no_delete BEFORE DELETE ON run_history
WHEN EXISTS (SELECT 1 FROM runs WHERE id = OLD.run_id)
BEGIN
    SELECT RAISE(ABORT, 'run history is append-only: entries are deleted only with their run');
END;

-- INSERT OR REPLACE deletes the row it replaces without firing the DELETE
-- trigger: refuse an insert of an existing seq before it gets there.
CREATE TRIGGER run_history_no_replace BEFORE INSERT ON run_history
WHEN NEW.seq IS NOT NULL AND EXISTS (SELECT 1 FROM run_history WHERE seq = NEW.seq)
BEGIN
    SELECT RAISE(ABORT, 'run history is append-only: entries cannot be replaced');
END;
