-- 0009: reserved for the deployments migration of branch feat/deploy.
--
-- This branch (feat/limits) holds this stand-in only so that its migration
-- 0010 is numbered consecutively; the merge takes feat/deploy's file.
SELECT 1;
