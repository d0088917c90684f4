-- A member's purchase on PostgreSQL first tries an optimistic path of two statements without
-- a transaction around them (crates/patron-store/src/purchases.rs, "optimistic path"): one
-- read of the member and wallet, then one statement with every write, which commits on its
-- own. That write is valid only if no unit of work that holds the wallet's lock committed in
-- between, since such a unit may have changed what the purchase decided on (the tier, the
-- tier metric, the rules' usage, the lots).
--
-- `lock_version` counts those units: taking the wallet's lock is now an UPDATE that adds one
-- to it (`ledger::lock_wallets`, `members::lock_wallet_with_member_and`), and the optimistic
-- write adds one under the condition that it still holds the value its read saw. When it does
-- not, `patron_wallet_unchanged(false)` raises a serialization failure (40001): the whole
-- statement is rolled back and the purchase takes the locked path. (SQLite needs neither: its
-- writers are serialized and it has no optimistic path, so this migration is PostgreSQL's
-- alone.)
ALTER TABLE accounts ADD COLUMN IF NOT EXISTS lock_version BIGINT NOT NULL DEFAULT 0;

CREATE OR REPLACE FUNCTION patron_wallet_unchanged(unchanged BOOLEAN) RETURNS INTEGER
LANGUAGE plpgsql AS $$
BEGIN
    IF NOT unchanged THEN
        RAISE EXCEPTION 'the wallet changed since the purchase read it'
            USING ERRCODE = 'serialization_failure';
    END IF;
    RETURN 1;
END
$$;
