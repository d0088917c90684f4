-- Manual tier floors (docs/PROGRAM.md, "A manual tier floor"): a member is at least `tier`
-- until `until` (for good when NULL). One row per member; setting a floor again replaces it,
-- removing it deletes the row. Who set it, when and why is in the row and in audit_log.
CREATE TABLE tier_floors (
    tenant_id       BIGINT NOT NULL REFERENCES tenants(id),
    member_id       TEXT NOT NULL,
    tier            TEXT NOT NULL,
    until           BIGINT,
    reason          TEXT NOT NULL,
    set_by          TEXT NOT NULL,
    set_at          BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, member_id),
    FOREIGN KEY (tenant_id, member_id) REFERENCES members (tenant_id, id)
);
