-- 0013: indexes of the web UI's runs list (issue 10).
--
-- GET /runs?deployment= (and ?tag=, the deployments with the tag) reads
-- the newest runs of a deployment first, in RunList's order (created_at,
-- then id). runs_state_created_at (0001) serves ?state= already.
CREATE INDEX runs_deployment_created_at ON runs (deployment, created_at, id) WHERE deployment <> '';
