-- 0013: indexes of the web UI's runs list (issue 10).
--
-- GET /runs?state= and ?deployment= (and ?tag=, the deployments with the
-- tag) read the newest runs first: these indexes hold that order (the
-- rowid, RunList's tie-break, is part of every SQLite index), so a page of
-- a rare state or of one deployment among a million runs reads only its
-- rows. RunList repeats the partial index's term (deployment <> '').
CREATE INDEX runs_state_created_at ON runs (state, created_at);
CREATE INDEX runs_deployment_created_at ON runs (deployment, created_at) WHERE deployment <> '';
