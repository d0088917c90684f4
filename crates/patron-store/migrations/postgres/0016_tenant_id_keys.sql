-- Opaque, per-club ids (docs/API-DESIGN.md, "Ids"). Transfers, coupon redemptions and the
-- analytics runs keep their integer keys, which come from sequences every club of the
-- deployment shares; the API shows each one encrypted under a key of the club's own, so that
-- one club cannot count another's activity from the ids it sees. The key is 32 random bytes
-- in hex, made here for the clubs that exist (from two v4 UUIDs, PostgreSQL's strong random
-- source, hashed so that every hex digit is uniform) and by `Store::ensure_tenant` for new
-- ones. It never changes: every id the API ever handed out is encrypted under it.
ALTER TABLE tenants ADD COLUMN IF NOT EXISTS id_key TEXT;

UPDATE tenants
SET id_key = encode(sha256(convert_to(gen_random_uuid()::text || gen_random_uuid()::text, 'UTF8')), 'hex')
WHERE id_key IS NULL;

ALTER TABLE tenants ALTER COLUMN id_key SET NOT NULL;
ALTER TABLE tenants ADD CONSTRAINT tenants_id_key_hex CHECK (id_key ~ '^[0-9a-f]{64}$');

CREATE OR REPLACE FUNCTION patron_keep_id_key() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.id_key IS DISTINCT FROM OLD.id_key THEN
        RAISE EXCEPTION 'a club''s id key never changes';
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER tenants_id_key_kept BEFORE UPDATE OF id_key ON tenants
    FOR EACH ROW EXECUTE FUNCTION patron_keep_id_key();
