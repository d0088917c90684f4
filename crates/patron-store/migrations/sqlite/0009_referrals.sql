-- Referrals (docs/PROGRAM.md, "Referrals"): every member's referral code, who referred whom,
-- and the one time a referral was rewarded. Also two receipt gaps of the rules and rewards:
-- firings of a fully returned purchase stop counting against limits (rule_awards.reversed_at),
-- and a reward redemption can be cancelled (reward_redemptions.cancelled_at).
--
-- referral_code is the member's code in canonical form (coupon alphabet, check character,
-- no dashes), unique in the club. Members enrolled before this migration get theirs right
-- after it (random codes are made in Rust: `Store::migrate` fills every NULL code; the
-- partial index below keeps that look-up free once they all have one).
-- referred_by is the referrer's member id, referred_at when the link was made;
-- referral_rewarded_at is set, under the newcomer's wallet lock, by the purchase that fired
-- the referral rule (a referral pays once).
ALTER TABLE members ADD COLUMN referral_code TEXT;
ALTER TABLE members ADD COLUMN referred_by TEXT;
ALTER TABLE members ADD COLUMN referred_at BIGINT;
ALTER TABLE members ADD COLUMN referral_rewarded_at BIGINT;
CREATE UNIQUE INDEX members_referral_code ON members (tenant_id, referral_code) WHERE referral_code IS NOT NULL;
CREATE INDEX members_referral_code_missing ON members (tenant_id) WHERE referral_code IS NULL;
CREATE INDEX members_referred_by ON members (tenant_id, referred_by) WHERE referred_by IS NOT NULL;

-- One row per rewarded referral (the primary key makes a second one impossible): the
-- purchase that fired it, what the referrer got, and how much of that later refunds of the
-- purchase settled (clawed back or forgiven, in proportion, as the newcomer's points are).
CREATE TABLE referral_rewards (
    tenant_id       BIGINT NOT NULL REFERENCES tenants(id),
    member_id       TEXT NOT NULL,
    referrer_id     TEXT NOT NULL,
    purchase_id     TEXT NOT NULL,
    rule_id         TEXT NOT NULL,
    referrer_points BIGINT NOT NULL,
    transfer_id     BIGINT,
    settled_points  BIGINT NOT NULL DEFAULT 0,
    created_at      BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, member_id)
);
CREATE INDEX referral_rewards_purchase ON referral_rewards (tenant_id, purchase_id);

-- A purchase refunded in full whose points the refunds took back entirely (nothing forgiven)
-- no longer counts against the limits of the rules it fired: its firings are marked reversed
-- (the receipt lines stay, for reading the purchase back).
ALTER TABLE rule_awards ADD COLUMN reversed_at BIGINT;

-- A reward redemption cancelled while its coupon was unused (POST /v1/redemptions/{id}/cancel):
-- points and stock given back, the coupon voided; it no longer counts against the reward's
-- per-member limit.
ALTER TABLE reward_redemptions ADD COLUMN cancelled_at BIGINT;
