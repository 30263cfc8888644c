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
ALTER TABLE task_runs ADD COLUMN deps TEXT NOT NULL DEFAULT '';
ALTER TABLE task_runs ADD COLUMN map_key TEXT NOT NULL DEFAULT '';
