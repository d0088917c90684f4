-- Member statistics (docs/ANALYTICS.md, "Member statistics"), kept in the same unit of work
-- as every purchase, refund and attach of a member's purchase, and recomputable from
-- purchases/purchase_lines (`Store::rebuild_member_stats`, `patron analyze rebuild-stats`).
--
-- A purchase counts while it is not fully refunded (total_minor > refunded_minor, as the
-- tier metric counts visits). A row exists while the member has at least one counted
-- purchase. Days are day numbers (days since 1970-01-01) in the club's time zone.
CREATE TABLE member_stats (
    tenant_id               BIGINT NOT NULL REFERENCES tenants(id),
    member_id               TEXT NOT NULL,
    first_purchase_at       BIGINT NOT NULL,
    last_purchase_at        BIGINT NOT NULL,
    first_purchase_day      BIGINT NOT NULL,
    last_purchase_day       BIGINT NOT NULL,
    -- Counted purchase documents.
    purchases               BIGINT NOT NULL,
    -- Distinct days with a counted purchase; x (BG/NBD) = purchase_days - 1.
    purchase_days           BIGINT NOT NULL,
    -- Σ (total_minor - refunded_minor) of the member's purchases.
    spend_minor             BIGINT NOT NULL,
    -- The part of spend_minor on the first purchase day, and the rest (the repeat spend
    -- the Gamma-Gamma average divides by x).
    first_day_spend_minor   BIGINT NOT NULL,
    repeat_spend_minor      BIGINT NOT NULL,
    updated_at              BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, member_id)
);

-- Per category: Σ (line total - line refunded) and the counted purchases with a line in it.
CREATE TABLE member_category_spend (
    tenant_id       BIGINT NOT NULL REFERENCES tenants(id),
    member_id       TEXT NOT NULL,
    category        TEXT NOT NULL,
    spend_minor     BIGINT NOT NULL,
    purchases       BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, member_id, category)
);
