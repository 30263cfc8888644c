-- 0004: step identities and attempt records.
--
-- task_runs.identity is what replay matches a step by (its task, version
-- and input hash, and its occurrence among identical calls of its attempt;
-- see store.TaskRun.Identity): keys stay readable and may move between
-- attempts, identities do not. Rows written before are '' and are matched
-- by their key, as before.
--
-- runs.attempts is the JSON array of store.AttemptInfo (the steps each
-- attempt reused and ran, and parameter edits); NULL when nothing is
-- recorded.
ALTER TABLE task_runs ADD COLUMN identity TEXT NOT NULL DEFAULT '';
ALTER TABLE runs ADD COLUMN attempts TEXT;
