-- 0009: deployments and their schedules (PostgreSQL; the same change as
-- SQLite's migration of the same number).
--
-- A deployment is a flow with a unique name, default parameters, a queue,
-- tags, a description, an optional limit of active runs (max_active, 0: no
-- limit, with its collision policy) and schedules. source says who
-- declared it ('code': a program's baton.Deploy, 'api': the API or the
-- command line); hash is the hash of that declaration, so that registering
-- it again writes nothing. paused and pause_note are operational state that
-- a redeploy keeps. gated_until is how far the scheduler applied the
-- overlap and concurrency policies to the deployment's due runs.
CREATE TABLE deployments (
    name        TEXT COLLATE "C" PRIMARY KEY,
    flow        TEXT COLLATE "C" NOT NULL DEFAULT '',
    description TEXT NOT NULL DEFAULT '',
    parameters  TEXT,
    queue       TEXT COLLATE "C" NOT NULL DEFAULT '',
    tags        TEXT,
    max_active  BIGINT NOT NULL DEFAULT 0,
    collision   TEXT COLLATE "C" NOT NULL DEFAULT '',
    paused      BIGINT NOT NULL DEFAULT 0,
    pause_note  TEXT NOT NULL DEFAULT '',
    source      TEXT COLLATE "C" NOT NULL DEFAULT '',
    hash        TEXT NOT NULL DEFAULT '',
    created_at  BIGINT NOT NULL DEFAULT 0,
    updated_at  BIGINT NOT NULL DEFAULT 0,
    gated_until BIGINT NOT NULL DEFAULT 0
);

-- The schedules of a deployment. id is derived from the schedule's spec
-- (cron, interval and anchor, rrule, timezone), so a redeploy of the same
-- spec keeps it. Durations are nanoseconds; catchup -1 is no limit.
-- last_fire is the latest fire time the scheduler created a run for,
-- next_fire the fire time after it (0: none), which the scheduler's scan
-- reads through schedules_due.
CREATE TABLE deployment_schedules (
    deployment TEXT COLLATE "C" NOT NULL,
    id         TEXT COLLATE "C" NOT NULL,
    cron       TEXT NOT NULL DEFAULT '',
    interval_ns BIGINT NOT NULL DEFAULT 0,
    anchor     BIGINT NOT NULL DEFAULT 0,
    rrule      TEXT NOT NULL DEFAULT '',
    timezone   TEXT NOT NULL DEFAULT '',
    overlap    TEXT NOT NULL DEFAULT '',
    catchup    BIGINT NOT NULL DEFAULT 0,
    jitter     BIGINT NOT NULL DEFAULT 0,
    paused     BIGINT NOT NULL DEFAULT 0,
    pause_note TEXT NOT NULL DEFAULT '',
    last_fire  BIGINT NOT NULL DEFAULT 0,
    next_fire  BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (deployment, id)
);
CREATE INDEX deployment_schedules_due ON deployment_schedules (next_fire) WHERE next_fire <> 0 AND paused = 0;

-- The append-only history of deployments: created, updated, paused (with
-- the note), resumed, deleted, and the runs its policies skipped or
-- cancelled. Entries are kept when the deployment is deleted.
CREATE TABLE deployment_history (
    seq        BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    deployment TEXT COLLATE "C" NOT NULL,
    at         BIGINT NOT NULL,
    actor      TEXT NOT NULL,
    verified   BIGINT NOT NULL DEFAULT 0,
    action     TEXT COLLATE "C" NOT NULL,
    reason     TEXT NOT NULL DEFAULT '',
    payload    TEXT
);
CREATE INDEX deployment_history_name ON deployment_history (deployment, seq);
CREATE FUNCTION deployment_history_refuse() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'deployment history is append-only: entries cannot be updated';
END;
$$;
CREATE TRIGGER deployment_history_no_update BEFORE UPDATE ON deployment_history
    FOR EACH ROW EXECUTE FUNCTION deployment_history_refuse();

-- Runs of deployments. scheduled_at is the run's planned start: claims
-- hand out no run before it. Runs made without a schedule have it equal to
-- created_at. The unique index is what keeps a schedule from firing twice
-- for one time, even when two schedulers race or after a redeploy.
ALTER TABLE runs ADD COLUMN deployment TEXT COLLATE "C" NOT NULL DEFAULT '';
ALTER TABLE runs ADD COLUMN schedule_id TEXT COLLATE "C" NOT NULL DEFAULT '';
ALTER TABLE runs ADD COLUMN scheduled_at BIGINT NOT NULL DEFAULT 0;
UPDATE runs SET scheduled_at = created_at;
CREATE UNIQUE INDEX runs_schedule_fire ON runs (deployment, schedule_id, scheduled_at) WHERE schedule_id <> '';
CREATE INDEX runs_deployment ON runs (deployment, scheduled_at) WHERE deployment <> '';
-- The scheduler's scans: the runs of deployments that become due (to apply
-- the overlap and concurrency policies) and those waiting for a slot.
CREATE INDEX runs_deployment_due ON runs (scheduled_at, deployment) WHERE state = 'SCHEDULED' AND deployment <> '';
CREATE INDEX runs_awaiting_slot ON runs (deployment, scheduled_at) WHERE state = 'AWAITING_SLOT';

-- Claims in claim order: due runs of a queue by planned start, then
-- creation; runs planned for later sort after the due ones, so a claim
-- never scans them.
DROP INDEX IF EXISTS runs_claim;
CREATE INDEX runs_claim ON runs (queue, scheduled_at, created_at, id) WHERE state = 'SCHEDULED';
