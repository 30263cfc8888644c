-- 0014: the index of the runs list's text search (issue 10).
--
-- RunList's Search is a case-insensitive substring of a run's id, flow or
-- parameters. runs_search is an FTS5 table with the trigram tokenizer over
-- those three columns, keyed by the rowid of runs (which RunList already
-- uses as its tie-break; Baton never runs VACUUM, which could renumber
-- it): a MATCH of a phrase of 3 or more characters returns the rowids of
-- the runs whose columns hold that substring (folding case, Unicode
-- included), a superset of the runs RunList's exact predicate matches, so
-- RunList reads only those candidates when the newest runs do not fill a
-- page (see Core.RunList). It stores no copy of the text (content='');
-- contentless_delete=1 lets the triggers delete and update by rowid.
CREATE VIRTUAL TABLE runs_search USING fts5(id, flow, parameters,
    tokenize = 'trigram', content = '', contentless_delete = 1);

INSERT INTO runs_search (rowid, id, flow, parameters)
    SELECT rowid, id, flow, parameters FROM runs;

CREATE TRIGGER runs_search_insert AFTER INSERT ON runs BEGIN
    INSERT INTO runs_search (rowid, id, flow, parameters) VALUES (new.rowid, new.id, new.flow, new.parameters);
END;

-- Every write of a run is an upsert of all its columns: the index changes
-- only when a searched column did (runs update of the parameters).
CREATE TRIGGER runs_search_update AFTER UPDATE OF id, flow, parameters ON runs
    WHEN old.id IS NOT new.id OR old.flow IS NOT new.flow OR old.parameters IS NOT new.parameters BEGIN
    DELETE FROM runs_search WHERE rowid = old.rowid;
    INSERT INTO runs_search (rowid, id, flow, parameters) VALUES (new.rowid, new.id, new.flow, new.parameters);
END;

-- Retention deletes runs (and their tests do by hand).
CREATE TRIGGER runs_search_delete AFTER DELETE ON runs BEGIN
    DELETE FROM runs_search WHERE rowid = old.rowid;
END;
