-- 0006: the append-only history of runs (store.HistoryEntry), the same
-- change as SQLite's migration of the same number.
--
-- Every action on a run, human or system, is one row: when, who (actor,
-- and whether the store could verify that name: 1 for the OS user of a
-- local command and for the system, 0 for a name a client declared), what
-- (action), why (reason) and the action's details (payload, JSON). seq
-- orders the rows and is the cursor of history pages; writers append a
-- run's entries under the run's row lock, so a run's entries commit in seq
-- order.
--
-- Nothing rewrites an entry: the triggers refuse every UPDATE, every
-- TRUNCATE, and a DELETE while the run exists. Retention deletes a run's
-- row first and then its history.
CREATE TABLE run_history (
    seq      BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    run_id   TEXT COLLATE "C" NOT NULL,
    at       BIGINT NOT NULL,
    actor    TEXT NOT NULL,
    verified SMALLINT NOT NULL DEFAULT 0,
    action   TEXT COLLATE "C" NOT NULL,
    reason   TEXT NOT NULL DEFAULT '',
    payload  TEXT
);
CREATE INDEX run_history_run ON run_history (run_id, seq);

CREATE FUNCTION run_history_refuse() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        IF EXISTS (SELECT 1 FROM runs WHERE id = OLD.run_id) THEN
            RAISE EXCEPTION 'run history is append-only: entries are deleted only with their run';
        END IF;
        RETURN OLD;
    END IF;
    RAISE EXCEPTION 'run history is append-only: entries cannot be %', lower(TG_OP) || 'd';
END;
$$;

CREATE TRIGGER run_history_no_update BEFORE UPDATE ON run_history
    FOR EACH ROW EXECUTE FUNCTION run_history_refuse();
CREATE TRIGGER run_history_no_delete BEFORE DELETE ON run_history
    FOR EACH ROW EXECUTE FUNCTION run_history_refuse();
CREATE TRIGGER run_history_no_truncate BEFORE TRUNCATE ON run_history
    FOR EACH STATEMENT EXECUTE FUNCTION run_history_refuse();
