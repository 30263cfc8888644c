-- 0010: reserved for the tag concurrency limits change developed on
-- another branch (feat/limits). This placeholder only keeps the numbering
-- consecutive on feat/resources; the merge takes the real 0010 and drops
-- this file.
SELECT 1;
