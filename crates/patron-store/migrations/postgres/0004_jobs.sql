-- Scheduled jobs (docs/JOBS.md): a transactional outbox of time-driven work.
--
-- One row per (tenant, natural key): the key names the kind and the period it covers
-- (`expiry:2026-11-22`, `activation:2026-11-22T1405`), so scheduling the same job twice is a
-- no-op (INSERT ... ON CONFLICT DO NOTHING). A worker claims a due job by marking it running
-- with a lease (locked_by, locked_until); a job whose lease expired is claimable again, so the
-- work of every kind is idempotent. A failed attempt goes back to pending with a later run_at
-- (backoff) until max_attempts, then stays failed with last_error.
CREATE TABLE jobs (
    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id       BIGINT NOT NULL REFERENCES tenants(id),
    kind            TEXT NOT NULL,
    job_key         TEXT NOT NULL,
    run_at          BIGINT NOT NULL,
    -- pending | running | done | failed
    state           TEXT NOT NULL,
    attempts        BIGINT NOT NULL DEFAULT 0,
    max_attempts    BIGINT NOT NULL,
    locked_by       TEXT,
    locked_until    BIGINT,
    last_error      TEXT,
    -- What the last successful run did (a one-line summary).
    result          TEXT,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL,
    finished_at     BIGINT,
    UNIQUE (tenant_id, job_key)
);
CREATE INDEX jobs_due ON jobs (state, run_at);
CREATE INDEX jobs_tenant ON jobs (tenant_id, run_at);

-- Every attempt at a job: who ran it and how it ended (done, failed, or NULL while running
-- or when its process died). The audit trail that shows a job ran once.
CREATE TABLE job_runs (
    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    job_id          BIGINT NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
    worker          TEXT NOT NULL,
    started_at      BIGINT NOT NULL,
    finished_at     BIGINT,
    outcome         TEXT,
    error           TEXT
);
CREATE INDEX job_runs_job ON job_runs (job_id);
