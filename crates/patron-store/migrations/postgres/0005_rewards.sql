-- Rewards and coupons (docs/PROGRAM.md "[[rewards]]", docs/API-DESIGN.md "Rewards and coupons").
--
-- The catalog itself is program configuration; these tables hold what the store counts:
-- stock issued per reward, each redemption of a reward (the per-member limit counts them by
-- period_key, like rule_awards), promotions with their budgets and limits, coupons (personal
-- or public, issued by a reward redemption, generated in bulk for a promotion, or taken from
-- a partner's pool), each use of a coupon (released_at set when an order is cancelled), and
-- an append-only log of every issue, redemption and release (the redemption-rate metric).

CREATE TABLE reward_stock (
    tenant_id       BIGINT NOT NULL REFERENCES tenants(id),
    reward_id       TEXT NOT NULL,
    issued          BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant_id, reward_id)
);

CREATE TABLE reward_redemptions (
    tenant_id       BIGINT NOT NULL REFERENCES tenants(id),
    id              TEXT NOT NULL,
    member_id       TEXT NOT NULL,
    reward_id       TEXT NOT NULL,
    period_key      TEXT NOT NULL,
    points          BIGINT NOT NULL,
    transfer_id     BIGINT REFERENCES transfers(id),
    coupon_code     TEXT NOT NULL,
    created_at      BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX reward_redemptions_usage ON reward_redemptions (tenant_id, member_id, reward_id, period_key);

CREATE TABLE promotions (
    tenant_id           BIGINT NOT NULL REFERENCES tenants(id),
    id                  TEXT NOT NULL,
    name                TEXT NOT NULL,
    -- What a code gives, as JSON (the coupon's benefit).
    benefit             TEXT NOT NULL,
    prefix              TEXT NOT NULL,
    budget_redemptions  BIGINT,
    budget_minor        BIGINT,
    limit_count         BIGINT,
    limit_per           TEXT,
    member_limit_count  BIGINT,
    member_limit_per    TEXT,
    uses_per_code       BIGINT,
    starts_at           BIGINT,
    ends_at             BIGINT,
    created_at          BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, id)
);

CREATE TABLE coupons (
    tenant_id       BIGINT NOT NULL REFERENCES tenants(id),
    -- Canonical form (no dashes); display is what people see.
    code            TEXT NOT NULL,
    display         TEXT NOT NULL,
    -- reward | promotion | partner
    kind            TEXT NOT NULL,
    reward_id       TEXT,
    promotion_id    TEXT,
    -- Set for a personal coupon; NULL for a public code.
    member_id       TEXT,
    -- issued | redeemed | released | expired
    state           TEXT NOT NULL,
    uses            BIGINT NOT NULL DEFAULT 0,
    -- NULL: unlimited uses.
    max_uses        BIGINT,
    benefit         TEXT NOT NULL,
    expires_at      BIGINT,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, code)
);
CREATE INDEX coupons_promotion ON coupons (tenant_id, promotion_id, code);
CREATE INDEX coupons_member ON coupons (tenant_id, member_id);

CREATE TABLE coupon_redemptions (
    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id       BIGINT NOT NULL REFERENCES tenants(id),
    code            TEXT NOT NULL,
    promotion_id    TEXT,
    reward_id       TEXT,
    member_id       TEXT,
    order_id        TEXT,
    amount_minor    BIGINT NOT NULL,
    redeemed_at     BIGINT NOT NULL,
    released_at     BIGINT
);
CREATE INDEX coupon_redemptions_code ON coupon_redemptions (tenant_id, code);
CREATE INDEX coupon_redemptions_promotion ON coupon_redemptions (tenant_id, promotion_id, redeemed_at);

CREATE TABLE coupon_events (
    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id       BIGINT NOT NULL REFERENCES tenants(id),
    code            TEXT NOT NULL,
    -- issued | redeemed | released | expired
    event           TEXT NOT NULL,
    promotion_id    TEXT,
    reward_id       TEXT,
    member_id       TEXT,
    at              BIGINT NOT NULL
);
CREATE INDEX coupon_events_tenant ON coupon_events (tenant_id, event, at);

CREATE TABLE partner_codes (
    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id       BIGINT NOT NULL REFERENCES tenants(id),
    pool            TEXT NOT NULL,
    code            TEXT NOT NULL,
    uploaded_at     BIGINT NOT NULL,
    assigned_at     BIGINT,
    UNIQUE (tenant_id, pool, code)
);
CREATE INDEX partner_codes_free ON partner_codes (tenant_id, pool, assigned_at, id);
