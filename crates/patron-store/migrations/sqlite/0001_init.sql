-- Patron schema, SQLite. Every table is keyed by tenant. Times are microseconds since the
-- Unix epoch (UTC) in BIGINT, points and money are BIGINT (minor units), so both backends share
-- one SQL text for every query. Keep this file and ../postgres/0001_init.sql in step: the
-- contract tests run the same statements against both.

CREATE TABLE tenants (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    name        TEXT NOT NULL UNIQUE,
    created_at  BIGINT NOT NULL
);

CREATE TABLE program_versions (
    tenant_id   BIGINT NOT NULL REFERENCES tenants(id),
    version     BIGINT NOT NULL,
    source      TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    created_by  TEXT NOT NULL,
    PRIMARY KEY (tenant_id, version)
);

CREATE TABLE audit_log (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id   BIGINT NOT NULL REFERENCES tenants(id),
    at          BIGINT NOT NULL,
    actor       TEXT NOT NULL,
    action      TEXT NOT NULL,
    subject     TEXT NOT NULL,
    details     TEXT NOT NULL
);
CREATE INDEX audit_log_subject ON audit_log (tenant_id, subject, id);

CREATE TABLE counters (
    tenant_id   BIGINT NOT NULL REFERENCES tenants(id),
    name        TEXT NOT NULL,
    value       BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, name)
);

CREATE TABLE members (
    tenant_id       BIGINT NOT NULL REFERENCES tenants(id),
    id              TEXT NOT NULL,
    external_id     TEXT,
    status          TEXT NOT NULL,
    name            TEXT,
    phone           TEXT,
    email           TEXT,
    birthday        TEXT,
    locale          TEXT,
    time_zone       TEXT,
    channel         TEXT NOT NULL,
    attributes      TEXT NOT NULL,
    tier            TEXT NOT NULL,
    tier_since      BIGINT NOT NULL,
    enrolled_at     BIGINT NOT NULL,
    exited_at       BIGINT,
    updated_at      BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE UNIQUE INDEX members_external_id ON members (tenant_id, external_id) WHERE external_id IS NOT NULL;
CREATE UNIQUE INDEX members_phone ON members (tenant_id, phone) WHERE phone IS NOT NULL;
CREATE UNIQUE INDEX members_email ON members (tenant_id, email) WHERE email IS NOT NULL;

CREATE TABLE consents (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id   BIGINT NOT NULL REFERENCES tenants(id),
    member_id   TEXT NOT NULL,
    channel     TEXT NOT NULL,
    topic       TEXT NOT NULL,
    granted     BIGINT NOT NULL,
    at          BIGINT NOT NULL,
    method      TEXT NOT NULL,
    text_shown  TEXT NOT NULL
);
CREATE INDEX consents_member ON consents (tenant_id, member_id, id);

CREATE TABLE card_batches (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id   BIGINT NOT NULL REFERENCES tenants(id),
    count       BIGINT NOT NULL,
    created_at  BIGINT NOT NULL,
    created_by  TEXT NOT NULL
);

CREATE TABLE cards (
    tenant_id   BIGINT NOT NULL REFERENCES tenants(id),
    number      TEXT NOT NULL,
    kind        TEXT NOT NULL,
    status      TEXT NOT NULL,
    member_id   TEXT,
    batch_id    BIGINT,
    issued_at   BIGINT NOT NULL,
    bound_at    BIGINT,
    blocked_at  BIGINT,
    replaced_by TEXT,
    PRIMARY KEY (tenant_id, number)
);
CREATE INDEX cards_member ON cards (tenant_id, member_id);

-- The ledger. accounts.kind: wallet (one per member) or a system account (issuance, redemption,
-- expiry, clawback, adjustment, forfeit). Only wallets keep stored totals: system accounts are
-- hot, so their totals are derived from transfers (LEDGER.md: keep hot accounts off the lock
-- path).
CREATE TABLE accounts (
    id                      INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id               BIGINT NOT NULL REFERENCES tenants(id),
    kind                    TEXT NOT NULL,
    member_id               TEXT,
    credits_posted          BIGINT NOT NULL DEFAULT 0,
    debits_posted           BIGINT NOT NULL DEFAULT 0,
    credits_pending         BIGINT NOT NULL DEFAULT 0,
    debits_pending          BIGINT NOT NULL DEFAULT 0,
    last_activity_at        BIGINT,
    inactivity_expires_at   BIGINT
);
CREATE UNIQUE INDEX accounts_wallet ON accounts (tenant_id, member_id) WHERE member_id IS NOT NULL;
CREATE UNIQUE INDEX accounts_system ON accounts (tenant_id, kind) WHERE member_id IS NULL;

-- Append-only. kind: posted | pending | post_pending | void_pending. A resolution row
-- (post_pending / void_pending) names its pending transfer; the unique index makes a second
-- resolution impossible.
CREATE TABLE transfers (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id       BIGINT NOT NULL REFERENCES tenants(id),
    transfer_key    TEXT NOT NULL,
    debit_account   BIGINT NOT NULL REFERENCES accounts(id),
    credit_account  BIGINT NOT NULL REFERENCES accounts(id),
    amount          BIGINT NOT NULL CHECK (amount >= 0),
    code            TEXT NOT NULL,
    kind            TEXT NOT NULL,
    pending_id      BIGINT REFERENCES transfers(id),
    timeout_at      BIGINT,
    member_id       TEXT,
    document_type   TEXT,
    document_id     TEXT,
    note            TEXT,
    created_at      BIGINT NOT NULL,
    CHECK (debit_account <> credit_account)
);
CREATE UNIQUE INDEX transfers_key ON transfers (tenant_id, transfer_key);
CREATE UNIQUE INDEX transfers_resolution ON transfers (tenant_id, pending_id) WHERE pending_id IS NOT NULL;
CREATE INDEX transfers_member ON transfers (tenant_id, member_id, id);
CREATE INDEX transfers_pending_timeout ON transfers (tenant_id, timeout_at) WHERE kind = 'pending';
CREATE INDEX transfers_debit ON transfers (debit_account);
CREATE INDEX transfers_credit ON transfers (credit_account);

-- Expiry lots. remaining is a cache of amount + sum(lot_movements.amount); `patron ledger
-- verify` recomputes it.
CREATE TABLE lots (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id   BIGINT NOT NULL REFERENCES tenants(id),
    account_id  BIGINT NOT NULL REFERENCES accounts(id),
    transfer_id BIGINT NOT NULL REFERENCES transfers(id),
    amount      BIGINT NOT NULL CHECK (amount > 0),
    remaining   BIGINT NOT NULL CHECK (remaining >= 0),
    expires_at  BIGINT,
    created_at  BIGINT NOT NULL,
    CHECK (remaining <= amount)
);
CREATE INDEX lots_open ON lots (account_id, expires_at) WHERE remaining > 0;
CREATE INDEX lots_due ON lots (tenant_id, expires_at) WHERE remaining > 0;

-- Every change of a lot's remainder: negative = consumed (spent, clawed back, expired, moved,
-- used to pay a debt), positive = restored.
CREATE TABLE lot_movements (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id   BIGINT NOT NULL REFERENCES tenants(id),
    lot_id      BIGINT NOT NULL REFERENCES lots(id),
    transfer_id BIGINT NOT NULL REFERENCES transfers(id),
    amount      BIGINT NOT NULL CHECK (amount <> 0)
);
CREATE INDEX lot_movements_lot ON lot_movements (lot_id);
CREATE INDEX lot_movements_transfer ON lot_movements (transfer_id);

CREATE TABLE purchases (
    tenant_id           BIGINT NOT NULL REFERENCES tenants(id),
    id                  TEXT NOT NULL,
    document_id         TEXT NOT NULL,
    store_id            TEXT NOT NULL,
    channel             TEXT NOT NULL,
    member_id           TEXT,
    occurred_at         BIGINT NOT NULL,
    currency            TEXT NOT NULL,
    total_minor         BIGINT NOT NULL,
    eligible_minor      BIGINT NOT NULL,
    points              BIGINT NOT NULL,
    earn_state          TEXT NOT NULL,
    earn_transfer_id    BIGINT REFERENCES transfers(id),
    pending_until       BIGINT,
    refunded_minor      BIGINT NOT NULL DEFAULT 0,
    settled_points      BIGINT NOT NULL DEFAULT 0,
    clawed_back_points  BIGINT NOT NULL DEFAULT 0,
    attached_at         BIGINT,
    request_hash        TEXT NOT NULL,
    created_at          BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE UNIQUE INDEX purchases_document ON purchases (tenant_id, document_id);
CREATE INDEX purchases_member ON purchases (tenant_id, member_id, occurred_at);
CREATE INDEX purchases_time ON purchases (tenant_id, occurred_at);

CREATE TABLE purchase_lines (
    tenant_id           BIGINT NOT NULL REFERENCES tenants(id),
    purchase_id         TEXT NOT NULL,
    line_no             BIGINT NOT NULL,
    sku                 TEXT NOT NULL,
    category            TEXT NOT NULL,
    quantity            TEXT NOT NULL,
    unit_price_minor    BIGINT NOT NULL,
    discount_minor      BIGINT NOT NULL,
    total_minor         BIGINT NOT NULL,
    eligible            BIGINT NOT NULL,
    refunded_quantity   TEXT NOT NULL,
    refunded_minor      BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant_id, purchase_id, line_no)
);

CREATE TABLE refunds (
    tenant_id           BIGINT NOT NULL REFERENCES tenants(id),
    id                  TEXT NOT NULL,
    purchase_id         TEXT NOT NULL,
    document_id         TEXT NOT NULL,
    amount_minor        BIGINT NOT NULL,
    clawed_back_points  BIGINT NOT NULL,
    reduced_pending     BIGINT NOT NULL,
    forgiven_points     BIGINT NOT NULL,
    occurred_at         BIGINT NOT NULL,
    request_hash        TEXT NOT NULL,
    response            TEXT NOT NULL,
    created_at          BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE UNIQUE INDEX refunds_document ON refunds (tenant_id, document_id);
CREATE INDEX refunds_purchase ON refunds (tenant_id, purchase_id);

CREATE TABLE redemptions (
    tenant_id       BIGINT NOT NULL REFERENCES tenants(id),
    id              TEXT NOT NULL,
    member_id       TEXT NOT NULL,
    points          BIGINT NOT NULL,
    captured_points BIGINT NOT NULL DEFAULT 0,
    status          TEXT NOT NULL,
    transfer_id     BIGINT NOT NULL REFERENCES transfers(id),
    hold_expires_at BIGINT,
    description     TEXT,
    created_at      BIGINT NOT NULL,
    resolved_at     BIGINT,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX redemptions_member ON redemptions (tenant_id, member_id);

-- Stored responses of mutating calls (LEDGER.md: idempotency). Kept at least 24 hours.
CREATE TABLE idempotency_keys (
    tenant_id       BIGINT NOT NULL REFERENCES tenants(id),
    key             TEXT NOT NULL,
    operation       TEXT NOT NULL,
    request_hash    TEXT NOT NULL,
    response        TEXT NOT NULL,
    created_at      BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, key)
);
CREATE INDEX idempotency_keys_age ON idempotency_keys (created_at);
