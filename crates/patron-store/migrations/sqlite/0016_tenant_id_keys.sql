-- Opaque, per-club ids (docs/API-DESIGN.md, "Ids"). Transfers, coupon redemptions and the
-- analytics runs keep their integer keys, which come from sequences every club of the
-- deployment shares; the API shows each one encrypted under a key of the club's own, so that
-- one club cannot count another's activity from the ids it sees. The key is 32 random bytes
-- in hex, made here for the clubs that exist and by `Store::ensure_tenant` for new ones.
-- It never changes: every id the API ever handed out is encrypted under it.
--
-- SQLite cannot add a NOT NULL column without a constant default, so the column is nullable
-- and the triggers refuse a club without a key and a key that changes.
ALTER TABLE tenants ADD COLUMN id_key TEXT
    CHECK (id_key IS NULL OR (length(id_key) = 64 AND id_key NOT GLOB '*[^0-9a-f]*'));

UPDATE tenants SET id_key = lower(hex(randomblob(32)));

CREATE TRIGGER tenants_id_key_required BEFORE INSERT ON tenants
    WHEN NEW.id_key IS NULL
BEGIN
    SELECT RAISE(ABORT, 'a club needs an id key');
END;

CREATE TRIGGER tenants_id_key_kept BEFORE UPDATE OF id_key ON tenants
    WHEN NEW.id_key IS NOT OLD.id_key
BEGIN
    SELECT RAISE(ABORT, 'a club''s id key never changes');
END;
