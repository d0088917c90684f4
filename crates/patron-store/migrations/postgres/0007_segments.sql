-- Segments (docs/ANALYTICS.md, "Segments"): RFV runs with every scored member's segment, the
-- current members of rule segments, and the member events that segment moves record.

-- One RFV run as of a club-local date. Rows of a run are written in batches; a run is
-- visible once completed_at is set (a crash mid-run leaves an invisible, incomplete run).
CREATE TABLE rfv_runs (
    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id       BIGINT NOT NULL REFERENCES tenants(id),
    -- YYYY-MM-DD in the club's time zone, and its day number (days since 1970-01-01).
    as_of           TEXT NOT NULL,
    as_of_day       BIGINT NOT NULL,
    members         BIGINT NOT NULL,
    created_at      BIGINT NOT NULL,
    completed_at    BIGINT
);
CREATE INDEX rfv_runs_tenant ON rfv_runs (tenant_id, as_of_day, id);

-- One row per scored member of a run.
CREATE TABLE rfv_members (
    tenant_id       BIGINT NOT NULL REFERENCES tenants(id),
    run_id          BIGINT NOT NULL REFERENCES rfv_runs(id),
    member_id       TEXT NOT NULL,
    recency_days    BIGINT NOT NULL,
    frequency       BIGINT NOT NULL,
    monetary_minor  BIGINT NOT NULL,
    r               BIGINT NOT NULL,
    f               BIGINT NOT NULL,
    m               BIGINT NOT NULL,
    segment         TEXT NOT NULL,
    PRIMARY KEY (run_id, member_id)
);
CREATE INDEX rfv_members_segment ON rfv_members (run_id, segment, member_id);
CREATE INDEX rfv_members_member ON rfv_members (tenant_id, member_id);

-- The current members of each rule segment ([[segments]]).
CREATE TABLE segment_members (
    tenant_id       BIGINT NOT NULL REFERENCES tenants(id),
    segment_id      TEXT NOT NULL,
    member_id       TEXT NOT NULL,
    entered_at      BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, segment_id, member_id)
);
CREATE INDEX segment_members_member ON segment_members (tenant_id, member_id);

-- What happened to a member that campaigns trigger on: segment.entered / segment.left.
CREATE TABLE member_events (
    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id       BIGINT NOT NULL REFERENCES tenants(id),
    member_id       TEXT NOT NULL,
    type            TEXT NOT NULL,
    occurred_at     BIGINT NOT NULL,
    -- A JSON object.
    properties      TEXT NOT NULL
);
CREATE INDEX member_events_member ON member_events (tenant_id, member_id, id);
CREATE INDEX member_events_type ON member_events (tenant_id, type, id);
