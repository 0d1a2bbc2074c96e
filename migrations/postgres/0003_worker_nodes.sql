-- Worker nodes: several processes execute runs from this database. See athanor-store/src/nodes.rs.

-- Every process that executes runs from the shared queue, as it advertised itself; a restarted process is a new
-- row. Rows stay after a node stops, so a run keeps naming the node it executed on.
CREATE TABLE workers (
    id           UUID PRIMARY KEY,
    name         TEXT NOT NULL,
    host         TEXT NOT NULL,
    pid          BIGINT NOT NULL,
    capacity     INTEGER NOT NULL,
    -- [{"name": …, "version": …}]: what the node can execute.
    experiments  JSONB NOT NULL,
    started_at   TIMESTAMPTZ NOT NULL,
    heartbeat_at TIMESTAMPTZ NOT NULL,
    stopped_at   TIMESTAMPTZ
);

-- Which node claimed the run, under which attempt (the fencing token of its status writes) and until when its
-- lease holds; whether someone asked to cancel it (seen by the owner's heartbeat if the notification was missed).
ALTER TABLE runs ADD COLUMN node_id UUID REFERENCES workers (id);
ALTER TABLE runs ADD COLUMN attempt INTEGER NOT NULL DEFAULT 0;
ALTER TABLE runs ADD COLUMN lease_until TIMESTAMPTZ;
ALTER TABLE runs ADD COLUMN cancel_requested BOOLEAN NOT NULL DEFAULT false;

-- The queue: claimers take the oldest pending run; housekeeping looks for expired leases.
CREATE INDEX runs_pending_by_age ON runs (created_at, id) WHERE status = 'pending';
CREATE INDEX runs_running_by_lease ON runs (lease_until) WHERE status = 'running';
CREATE INDEX runs_by_node ON runs (node_id) WHERE status = 'running';
