-- Success metrics and lifetime value (docs/ANALYTICS.md, "Success metrics" and "The CLV job").
--
-- The metrics are aggregate queries over purchases, members, coupon_events and transfers by
-- time; these indexes let each period's sums read only the period's rows.
CREATE INDEX transfers_time ON transfers (tenant_id, created_at);
CREATE INDEX members_enrolled ON members (tenant_id, enrolled_at);
CREATE INDEX members_exited ON members (tenant_id, exited_at) WHERE exited_at IS NOT NULL;

-- One row per fit of the BG/NBD and Gamma-Gamma models by the clv job. A run is the latest
-- fit once completed_at is set; its members' predictions are in clv_members. Standard errors
-- are NULL when the Hessian could not be inverted; the Gamma-Gamma columns are NULL when there
-- was no spend model (too few repeat customers with a positive average spend).
CREATE TABLE clv_runs (
    id                      INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id               BIGINT NOT NULL REFERENCES tenants(id),
    fitted_at               BIGINT NOT NULL,
    completed_at            BIGINT,
    -- The club-local day the summaries are as of (days since 1970-01-01).
    as_of_day               BIGINT NOT NULL,
    horizon_weeks           BIGINT NOT NULL,
    monthly_discount_pct    TEXT NOT NULL,
    margin_pct              TEXT NOT NULL,
    customers               BIGINT NOT NULL,
    distinct_tuples         BIGINT NOT NULL,
    bgnbd_r                 REAL NOT NULL,
    bgnbd_alpha             REAL NOT NULL,
    bgnbd_a                 REAL NOT NULL,
    bgnbd_b                 REAL NOT NULL,
    bgnbd_se_r              REAL,
    bgnbd_se_alpha          REAL,
    bgnbd_se_a              REAL,
    bgnbd_se_b              REAL,
    bgnbd_log_likelihood    REAL NOT NULL,
    gg_customers            BIGINT,
    gg_p                    REAL,
    gg_q                    REAL,
    gg_v                    REAL,
    gg_se_p                 REAL,
    gg_se_q                 REAL,
    gg_se_v                 REAL,
    gg_log_likelihood       REAL,
    members                 BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX clv_runs_latest ON clv_runs (tenant_id, completed_at, id);

-- Per member, the predictions of one run (the latest completed run's rows are the answer;
-- older runs' rows are deleted when a newer run completes). Weeks for t_x and T; money in
-- major currency units.
CREATE TABLE clv_members (
    tenant_id               BIGINT NOT NULL REFERENCES tenants(id),
    run_id                  BIGINT NOT NULL REFERENCES clv_runs(id),
    member_id               TEXT NOT NULL,
    x                       BIGINT NOT NULL,
    t_x                     REAL NOT NULL,
    t_cal                   REAL NOT NULL,
    p_alive                 REAL NOT NULL,
    expected_purchases      REAL,
    expected_spend          REAL,
    clv                     REAL,
    PRIMARY KEY (tenant_id, run_id, member_id)
);
CREATE INDEX clv_members_member ON clv_members (tenant_id, member_id, run_id);
