-- 0005: large task-run inputs in the blob store.
--
-- task_runs.input_ref is the reference of the blob holding the large parts
-- of a task run's input (store.TaskRun.InputRef); input then holds the rest
-- (see internal/blob.Split). '' when the input is inline. The index tells
-- retention which input blobs remaining task runs still use, as the
-- result_ref indexes do for results.
ALTER TABLE task_runs ADD COLUMN input_ref TEXT NOT NULL DEFAULT '';
CREATE INDEX task_runs_input_ref ON task_runs (input_ref) WHERE input_ref <> '';
