-- Per-run totals, kept by the writer in the same transaction as the records they count, so a run page reads its
-- exact line counts per level (and the cursor they were taken at) from one row instead of counting a million.
-- A run with no row has no records yet.
CREATE TABLE run_tallies (
    run_id   UUID PRIMARY KEY REFERENCES runs (id) ON DELETE CASCADE,
    -- The highest seq stored across the run's logs and results: the cursor the counts below are exact at.
    last_seq BIGINT NOT NULL,
    debug    BIGINT NOT NULL,
    info     BIGINT NOT NULL,
    warn     BIGINT NOT NULL,
    error    BIGINT NOT NULL,
    results  BIGINT NOT NULL
);

-- Runs recorded before this table existed get their totals counted once, here.
INSERT INTO run_tallies (run_id, last_seq, debug, info, warn, error, results)
SELECT runs.id,
       greatest(coalesce((SELECT max(seq) FROM run_logs WHERE run_id = runs.id), 0),
           coalesce((SELECT max(seq) FROM run_results WHERE run_id = runs.id), 0)),
       (SELECT count(*) FROM run_logs WHERE run_id = runs.id AND level = 'debug'),
       (SELECT count(*) FROM run_logs WHERE run_id = runs.id AND level = 'info'),
       (SELECT count(*) FROM run_logs WHERE run_id = runs.id AND level = 'warn'),
       (SELECT count(*) FROM run_logs WHERE run_id = runs.id AND level = 'error'),
       (SELECT count(*) FROM run_results WHERE run_id = runs.id)
FROM runs
WHERE EXISTS (SELECT 1 FROM run_logs WHERE run_id = runs.id) OR EXISTS (SELECT 1 FROM run_results WHERE run_id = runs.id);
