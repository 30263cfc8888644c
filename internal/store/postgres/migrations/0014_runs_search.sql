-- 0014: the index of the runs list's text search (issue 10).
--
-- RunList's Search is a case-insensitive substring of a run's id, flow or
-- parameters: `lower(col COLLATE "C") LIKE '%term%'` (LOWER under "C"
-- folds ASCII letters only, as SQLite's LIKE). runs_search is a GIN index
-- of the trigrams (pg_trgm) of those three expressions, which serves that
-- LIKE for a term of 3 or more characters: RunList reads the runs it finds
-- when the newest runs do not fill a page (see Core.RunList).
--
-- pg_trgm ships with PostgreSQL (Debian's postgresql package included) and
-- is a trusted extension: a user with CREATE on the database (its owner)
-- may create it without being superuser. It is created in the schema of
-- the tables unless the database has it already (in any schema: its
-- operator class is named with that schema). The advisory lock keeps two
-- Baton schemas migrating at once from both creating it.
SELECT pg_advisory_xact_lock(1650553967, hashtext('pg_trgm'));
DO $$
DECLARE
    ext_schema text;
BEGIN
    SELECT n.nspname INTO ext_schema FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
        WHERE e.extname = 'pg_trgm';
    IF ext_schema IS NULL THEN
        CREATE EXTENSION pg_trgm;
        ext_schema := current_schema();
    END IF;
    EXECUTE format('CREATE INDEX runs_search ON runs USING gin (lower(id COLLATE "C") %1$I.gin_trgm_ops, '
        'lower(flow COLLATE "C") %1$I.gin_trgm_ops, lower(COALESCE(parameters, '''') COLLATE "C") %1$I.gin_trgm_ops)',
        ext_schema);
END
$$;
