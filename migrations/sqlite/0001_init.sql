-- Athanor's tables on SQLite. Ids are hyphenated UUID text, timestamps RFC 3339 text (UTC), JSON as text,
-- so `sqlite3 athanor.db` and pandas read everything without decoding.

CREATE TABLE instances (
    id          TEXT PRIMARY KEY NOT NULL,
    experiment  TEXT NOT NULL,
    name        TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    config      TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL
);

CREATE TABLE runs (
    id                 TEXT PRIMARY KEY NOT NULL,
    instance_id        TEXT NOT NULL REFERENCES instances (id) ON DELETE CASCADE,
    status             TEXT NOT NULL CHECK (status IN ('pending', 'running', 'completed', 'failed', 'cancelled')),
    config             TEXT NOT NULL,
    experiment_version TEXT NOT NULL,
    created_at         TEXT NOT NULL,
    started_at         TEXT,
    completed_at       TEXT,
    error              TEXT
);

-- The instance page lists runs newest first; the dashboard wants each instance's count and latest run.
CREATE INDEX runs_by_instance_created ON runs (instance_id, created_at DESC);
-- Start-up recovery and the queue look runs up by status.
CREATE INDEX runs_by_status_created ON runs (status, created_at);

-- Logs and results share one per-run sequence so a viewer can resume "after seq N" across both.
CREATE TABLE run_logs (
    run_id   TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    seq      INTEGER NOT NULL,
    ts       TEXT NOT NULL,
    level    TEXT NOT NULL CHECK (level IN ('debug', 'info', 'warn', 'error')),
    message  TEXT NOT NULL,
    metadata TEXT,
    PRIMARY KEY (run_id, seq)
) WITHOUT ROWID;

-- Filtering by level: warnings and errors are the rare lines a reader hunts for, so each gets a partial index
-- (a level filter for them never scans the run's other lines); debug and info are most of a run, so filtering
-- them walks the primary key, and inserting them costs no second index write.
CREATE INDEX run_logs_warn ON run_logs (run_id, seq) WHERE level = 'warn';
CREATE INDEX run_logs_error ON run_logs (run_id, seq) WHERE level = 'error';

CREATE TABLE run_results (
    run_id TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    seq    INTEGER NOT NULL,
    ts     TEXT NOT NULL,
    key    TEXT NOT NULL,
    value  TEXT NOT NULL,
    PRIMARY KEY (run_id, seq)
) WITHOUT ROWID;

CREATE INDEX run_results_by_key ON run_results (run_id, key);
