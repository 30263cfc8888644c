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
ALTER TABLE task_runs ADD COLUMN deps TEXT NOT NULL DEFAULT '';
ALTER TABLE task_runs ADD COLUMN map_key TEXT NOT NULL DEFAULT '';
CREATE INDEX task_runs_map ON task_runs (run_id, map_key, created_at, key, id, state, flow_attempt, started_at, ended_at)
    WHERE map_key <> '';

-- The run page's summary (api.RunPage) of a run of 100,000 task runs reads
-- through these instead of scanning and sorting the run's wide rows.
-- task_runs_order is the creation order of TaskRunList: a page reads its
-- own entries only (the first page 50); the engine appends to it in
-- creation order, so a fan-out's writes pay little for it. It also covers
-- TaskRunCounts and TaskRunList with Slowest, which read it alone (narrow
-- entries, not the rows with their inputs, results and histories), still
-- all of the run's, sorted: indexes in their orders ((run_id, task, state)
-- and (run_id, (ended_at - started_at) DESC, created_at, id)) would bound
-- them but insert each row at a random place, and cost a fan-out's writes
-- a quarter more CPU for the first alone (docs/performance.md, "The run
-- page"). task_runs_failed holds only the failed task runs
-- (api.FailedTaskStates, in that order: TaskRunList writes known states as
-- literals so that the planners match the term): the summary's failed list
-- reads its first 10 entries.
CREATE INDEX task_runs_order ON task_runs (run_id, created_at, id, task, state, started_at, ended_at);
CREATE INDEX task_runs_failed ON task_runs (run_id, created_at, id)
    WHERE state IN ('FAILED', 'TIMED_OUT', 'CANCELLED', 'CRASHED');
