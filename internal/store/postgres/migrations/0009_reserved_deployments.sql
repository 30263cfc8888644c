-- 0009: reserved for the deployments change developed on another branch
-- (feat/deploy). This placeholder only keeps the numbering consecutive on
-- feat/resources; the merge takes the real 0009 and drops this file.
SELECT 1;
