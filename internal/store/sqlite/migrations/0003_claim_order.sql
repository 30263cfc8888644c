-- 0003: claim indexes in claim order.
--
-- Claims take the oldest rows of a queue in the order (created_at, then the
-- primary key); the same indexes as the PostgreSQL migration of the same
-- number, which needs the key columns to claim without sorting.
DROP INDEX IF EXISTS runs_claim;
CREATE INDEX runs_claim ON runs (queue, created_at, id) WHERE state = 'SCHEDULED';
DROP INDEX IF EXISTS task_runs_claim;
CREATE INDEX task_runs_claim ON task_runs (queue, created_at, run_id, key, id) WHERE state = 'PENDING' AND queue <> '';
