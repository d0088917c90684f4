-- Earning rules (docs/PROGRAM.md, "[[rules]]"): every firing of a rule, and custom events.
--
-- rule_awards is one row per firing, written in the unit of work that credits the points
-- (purchase, event or enrollment), under the member's wallet lock. It is both the receipt
-- line (shown again on a replay or a read) and the usage count a limit checks: the firings
-- of a rule for a member in a limit period are the rows with that period_key (NULL for a
-- rule without a limit when it fired).
CREATE TABLE rule_awards (
    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id       BIGINT NOT NULL REFERENCES tenants(id),
    member_id       TEXT NOT NULL,
    rule_id         TEXT NOT NULL,
    period_key      TEXT,
    -- purchase | event | enrollment
    source_type     TEXT NOT NULL,
    source_id       TEXT NOT NULL,
    points          BIGINT NOT NULL,
    -- The receipt line as the member was shown it (their language).
    name            TEXT NOT NULL,
    occurred_at     BIGINT NOT NULL,
    created_at      BIGINT NOT NULL
);
CREATE INDEX rule_awards_usage ON rule_awards (tenant_id, member_id, rule_id, period_key);
CREATE INDEX rule_awards_source ON rule_awards (tenant_id, source_type, source_id);

-- Custom events (POST /v1/events): what happened, and what it earned.
CREATE TABLE events (
    tenant_id       BIGINT NOT NULL REFERENCES tenants(id),
    id              TEXT NOT NULL,
    member_id       TEXT NOT NULL,
    type            TEXT NOT NULL,
    occurred_at     BIGINT NOT NULL,
    -- A JSON object.
    properties      TEXT NOT NULL,
    points          BIGINT NOT NULL,
    transfer_id     BIGINT REFERENCES transfers(id),
    request_hash    TEXT NOT NULL,
    created_at      BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX events_member ON events (tenant_id, member_id, occurred_at);
