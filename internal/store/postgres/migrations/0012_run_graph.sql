-- 0012: what the run graph needs (the same change in both dialects).
--
-- task_runs.deps is the JSON array of the graph nodes a step depends on,
-- '' when none: the keys of the steps whose results the flow code had
-- received when it made the call, and of the steps it waited for
-- (baton.WaitFor); a map's items name their map by its key instead of
-- their own. task_runs.map_key is the key of the map (one Map call) the
-- step is an item of, '' for a step of its own: a map of 100,000 items is
-- one node of the graph, aggregated by GraphGet. Rows written before are
-- '' in both, drawn as steps without edges.
--
-- task_runs_map holds the map items only (a step of its own, the hot path
-- of sequential flows, has no entry): GraphGet counts a map's items per
-- state and MapItemList pages them in creation order from it, never
-- reading the wide rows of 100,000 items. Queries repeat its WHERE term.
ALTER TABLE task_runs ADD COLUMN deps TEXT COLLATE "C" NOT NULL DEFAULT '';
ALTER TABLE task_runs ADD COLUMN map_key TEXT COLLATE "C" NOT NULL DEFAULT '';
CREATE INDEX task_runs_map ON task_runs (run_id, map_key, created_at, key, id, state, flow_attempt, started_at, ended_at)
    WHERE map_key <> '';
