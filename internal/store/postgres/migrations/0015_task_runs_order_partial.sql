-- 0015: task_runs_order serves only the statements that ask for it.
--
-- pgx prepares every statement, and PostgreSQL plans a prepared statement
-- once for all parameters (a generic plan) at its sixth execution, with
-- the statistics of that moment. While task_runs is nearly empty (a new
-- database, the first seconds of a large fan-out, before autovacuum first
-- analyzes it) every index costs the same, and a lookup by primary key
-- (run_id, key, id) was planned through task_runs_order (run_id,
-- created_at, id): run_id and id as index conditions, key as a filter.
-- That plan is kept until the next analyze and read all of a run's
-- entries per row once the run had grown (claims and completions of a
-- 50,000-item map ran 10-25 times slower). As a partial index on a term
-- that every task run meets (created_at is unix nanoseconds, 0 when
-- unset), task_runs_order is a candidate only for a statement that writes
-- the term (TaskRunList, TaskRunCounts: sqlcore's inOrder): a lookup by
-- primary key can only use the primary key, whatever the statistics.
DROP INDEX task_runs_order;
CREATE INDEX task_runs_order ON task_runs (run_id, created_at, id) INCLUDE (task, state, started_at, ended_at)
    WHERE created_at >= 0;
