-- Athanor's tables on PostgreSQL: the same shape as on SQLite, with native UUID, TIMESTAMPTZ and JSONB.

CREATE TABLE instances (
    id          UUID PRIMARY KEY,
    experiment  TEXT NOT NULL,
    name        TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    config      JSONB NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL,
    updated_at  TIMESTAMPTZ NOT NULL
);

CREATE TABLE runs (
    id                 UUID PRIMARY KEY,
    instance_id        UUID NOT NULL REFERENCES instances (id) ON DELETE CASCADE,
    status             TEXT NOT NULL CHECK (status IN ('pending', 'running', 'completed', 'failed', 'cancelled')),
    config             JSONB NOT NULL,
    experiment_version TEXT NOT NULL,
    created_at         TIMESTAMPTZ NOT NULL,
    started_at         TIMESTAMPTZ,
    completed_at       TIMESTAMPTZ,
    error              TEXT
);

CREATE INDEX runs_by_instance_created ON runs (instance_id, created_at DESC);
CREATE INDEX runs_by_status_created ON runs (status, created_at);

CREATE TABLE run_logs (
    run_id   UUID NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    seq      BIGINT NOT NULL,
    ts       TIMESTAMPTZ NOT NULL,
    level    TEXT NOT NULL CHECK (level IN ('debug', 'info', 'warn', 'error')),
    message  TEXT NOT NULL,
    metadata JSONB,
    PRIMARY KEY (run_id, seq)
);

-- Filtering by level: warnings and errors are the rare lines a reader hunts for, so each gets a partial index
-- (a level filter for them never scans the run's other lines); debug and info are most of a run, so filtering
-- them walks the primary key, and inserting them costs no second index write.
CREATE INDEX run_logs_warn ON run_logs (run_id, seq) WHERE level = 'warn';
CREATE INDEX run_logs_error ON run_logs (run_id, seq) WHERE level = 'error';

CREATE TABLE run_results (
    run_id UUID NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    seq    BIGINT NOT NULL,
    ts     TIMESTAMPTZ NOT NULL,
    key    TEXT NOT NULL,
    value  JSONB NOT NULL,
    PRIMARY KEY (run_id, seq)
);

CREATE INDEX run_results_by_key ON run_results (run_id, key);
