-- Points and money are whole numbers, always (issue 18). SQLite stores whatever a value is:
-- an integer sum that overflows becomes a REAL (9.41e18), and a stored total that is no longer
-- an integer breaks every later read and `patron ledger verify`. These triggers refuse any
-- write that would store a non-integer in a column of points or minor units, so a bug or an
-- overflow fails its request (nothing written) instead of corrupting a total. PostgreSQL's
-- BIGINT columns refuse such values by their type (an overflow is `bigint out of range`), so
-- this migration is SQLite's alone. `NULL` stays allowed where the column allows it.

CREATE TRIGGER accounts_amounts_integer_insert BEFORE INSERT ON accounts
WHEN (NEW.credits_posted IS NOT NULL AND typeof(NEW.credits_posted) <> 'integer') OR (NEW.debits_posted IS NOT NULL AND typeof(NEW.debits_posted) <> 'integer') OR (NEW.credits_pending IS NOT NULL AND typeof(NEW.credits_pending) <> 'integer') OR (NEW.debits_pending IS NOT NULL AND typeof(NEW.debits_pending) <> 'integer')
BEGIN SELECT RAISE(ABORT, 'accounts: points and amounts must be whole numbers'); END;

CREATE TRIGGER accounts_amounts_integer_update BEFORE UPDATE OF credits_posted, debits_posted, credits_pending, debits_pending ON accounts
WHEN (NEW.credits_posted IS NOT NULL AND typeof(NEW.credits_posted) <> 'integer') OR (NEW.debits_posted IS NOT NULL AND typeof(NEW.debits_posted) <> 'integer') OR (NEW.credits_pending IS NOT NULL AND typeof(NEW.credits_pending) <> 'integer') OR (NEW.debits_pending IS NOT NULL AND typeof(NEW.debits_pending) <> 'integer')
BEGIN SELECT RAISE(ABORT, 'accounts: points and amounts must be whole numbers'); END;

CREATE TRIGGER transfers_amounts_integer_insert BEFORE INSERT ON transfers
WHEN (NEW.amount IS NOT NULL AND typeof(NEW.amount) <> 'integer')
BEGIN SELECT RAISE(ABORT, 'transfers: points and amounts must be whole numbers'); END;

CREATE TRIGGER transfers_amounts_integer_update BEFORE UPDATE OF amount ON transfers
WHEN (NEW.amount IS NOT NULL AND typeof(NEW.amount) <> 'integer')
BEGIN SELECT RAISE(ABORT, 'transfers: points and amounts must be whole numbers'); END;

CREATE TRIGGER lots_amounts_integer_insert BEFORE INSERT ON lots
WHEN (NEW.amount IS NOT NULL AND typeof(NEW.amount) <> 'integer') OR (NEW.remaining IS NOT NULL AND typeof(NEW.remaining) <> 'integer')
BEGIN SELECT RAISE(ABORT, 'lots: points and amounts must be whole numbers'); END;

CREATE TRIGGER lots_amounts_integer_update BEFORE UPDATE OF amount, remaining ON lots
WHEN (NEW.amount IS NOT NULL AND typeof(NEW.amount) <> 'integer') OR (NEW.remaining IS NOT NULL AND typeof(NEW.remaining) <> 'integer')
BEGIN SELECT RAISE(ABORT, 'lots: points and amounts must be whole numbers'); END;

CREATE TRIGGER lot_movements_amounts_integer_insert BEFORE INSERT ON lot_movements
WHEN (NEW.amount IS NOT NULL AND typeof(NEW.amount) <> 'integer')
BEGIN SELECT RAISE(ABORT, 'lot_movements: points and amounts must be whole numbers'); END;

CREATE TRIGGER lot_movements_amounts_integer_update BEFORE UPDATE OF amount ON lot_movements
WHEN (NEW.amount IS NOT NULL AND typeof(NEW.amount) <> 'integer')
BEGIN SELECT RAISE(ABORT, 'lot_movements: points and amounts must be whole numbers'); END;

CREATE TRIGGER purchases_amounts_integer_insert BEFORE INSERT ON purchases
WHEN (NEW.total_minor IS NOT NULL AND typeof(NEW.total_minor) <> 'integer') OR (NEW.eligible_minor IS NOT NULL AND typeof(NEW.eligible_minor) <> 'integer') OR (NEW.points IS NOT NULL AND typeof(NEW.points) <> 'integer') OR (NEW.refunded_minor IS NOT NULL AND typeof(NEW.refunded_minor) <> 'integer') OR (NEW.settled_points IS NOT NULL AND typeof(NEW.settled_points) <> 'integer') OR (NEW.clawed_back_points IS NOT NULL AND typeof(NEW.clawed_back_points) <> 'integer')
BEGIN SELECT RAISE(ABORT, 'purchases: points and amounts must be whole numbers'); END;

CREATE TRIGGER purchases_amounts_integer_update BEFORE UPDATE OF total_minor, eligible_minor, points, refunded_minor, settled_points, clawed_back_points ON purchases
WHEN (NEW.total_minor IS NOT NULL AND typeof(NEW.total_minor) <> 'integer') OR (NEW.eligible_minor IS NOT NULL AND typeof(NEW.eligible_minor) <> 'integer') OR (NEW.points IS NOT NULL AND typeof(NEW.points) <> 'integer') OR (NEW.refunded_minor IS NOT NULL AND typeof(NEW.refunded_minor) <> 'integer') OR (NEW.settled_points IS NOT NULL AND typeof(NEW.settled_points) <> 'integer') OR (NEW.clawed_back_points IS NOT NULL AND typeof(NEW.clawed_back_points) <> 'integer')
BEGIN SELECT RAISE(ABORT, 'purchases: points and amounts must be whole numbers'); END;

CREATE TRIGGER purchase_lines_amounts_integer_insert BEFORE INSERT ON purchase_lines
WHEN (NEW.unit_price_minor IS NOT NULL AND typeof(NEW.unit_price_minor) <> 'integer') OR (NEW.discount_minor IS NOT NULL AND typeof(NEW.discount_minor) <> 'integer') OR (NEW.total_minor IS NOT NULL AND typeof(NEW.total_minor) <> 'integer') OR (NEW.refunded_minor IS NOT NULL AND typeof(NEW.refunded_minor) <> 'integer')
BEGIN SELECT RAISE(ABORT, 'purchase_lines: points and amounts must be whole numbers'); END;

CREATE TRIGGER purchase_lines_amounts_integer_update BEFORE UPDATE OF unit_price_minor, discount_minor, total_minor, refunded_minor ON purchase_lines
WHEN (NEW.unit_price_minor IS NOT NULL AND typeof(NEW.unit_price_minor) <> 'integer') OR (NEW.discount_minor IS NOT NULL AND typeof(NEW.discount_minor) <> 'integer') OR (NEW.total_minor IS NOT NULL AND typeof(NEW.total_minor) <> 'integer') OR (NEW.refunded_minor IS NOT NULL AND typeof(NEW.refunded_minor) <> 'integer')
BEGIN SELECT RAISE(ABORT, 'purchase_lines: points and amounts must be whole numbers'); END;

CREATE TRIGGER refunds_amounts_integer_insert BEFORE INSERT ON refunds
WHEN (NEW.amount_minor IS NOT NULL AND typeof(NEW.amount_minor) <> 'integer') OR (NEW.clawed_back_points IS NOT NULL AND typeof(NEW.clawed_back_points) <> 'integer') OR (NEW.forgiven_points IS NOT NULL AND typeof(NEW.forgiven_points) <> 'integer')
BEGIN SELECT RAISE(ABORT, 'refunds: points and amounts must be whole numbers'); END;

CREATE TRIGGER refunds_amounts_integer_update BEFORE UPDATE OF amount_minor, clawed_back_points, forgiven_points ON refunds
WHEN (NEW.amount_minor IS NOT NULL AND typeof(NEW.amount_minor) <> 'integer') OR (NEW.clawed_back_points IS NOT NULL AND typeof(NEW.clawed_back_points) <> 'integer') OR (NEW.forgiven_points IS NOT NULL AND typeof(NEW.forgiven_points) <> 'integer')
BEGIN SELECT RAISE(ABORT, 'refunds: points and amounts must be whole numbers'); END;

CREATE TRIGGER redemptions_amounts_integer_insert BEFORE INSERT ON redemptions
WHEN (NEW.points IS NOT NULL AND typeof(NEW.points) <> 'integer') OR (NEW.captured_points IS NOT NULL AND typeof(NEW.captured_points) <> 'integer')
BEGIN SELECT RAISE(ABORT, 'redemptions: points and amounts must be whole numbers'); END;

CREATE TRIGGER redemptions_amounts_integer_update BEFORE UPDATE OF points, captured_points ON redemptions
WHEN (NEW.points IS NOT NULL AND typeof(NEW.points) <> 'integer') OR (NEW.captured_points IS NOT NULL AND typeof(NEW.captured_points) <> 'integer')
BEGIN SELECT RAISE(ABORT, 'redemptions: points and amounts must be whole numbers'); END;

CREATE TRIGGER rule_awards_amounts_integer_insert BEFORE INSERT ON rule_awards
WHEN (NEW.points IS NOT NULL AND typeof(NEW.points) <> 'integer')
BEGIN SELECT RAISE(ABORT, 'rule_awards: points and amounts must be whole numbers'); END;

CREATE TRIGGER rule_awards_amounts_integer_update BEFORE UPDATE OF points ON rule_awards
WHEN (NEW.points IS NOT NULL AND typeof(NEW.points) <> 'integer')
BEGIN SELECT RAISE(ABORT, 'rule_awards: points and amounts must be whole numbers'); END;

CREATE TRIGGER events_amounts_integer_insert BEFORE INSERT ON events
WHEN (NEW.points IS NOT NULL AND typeof(NEW.points) <> 'integer')
BEGIN SELECT RAISE(ABORT, 'events: points and amounts must be whole numbers'); END;

CREATE TRIGGER events_amounts_integer_update BEFORE UPDATE OF points ON events
WHEN (NEW.points IS NOT NULL AND typeof(NEW.points) <> 'integer')
BEGIN SELECT RAISE(ABORT, 'events: points and amounts must be whole numbers'); END;

CREATE TRIGGER reward_redemptions_amounts_integer_insert BEFORE INSERT ON reward_redemptions
WHEN (NEW.points IS NOT NULL AND typeof(NEW.points) <> 'integer')
BEGIN SELECT RAISE(ABORT, 'reward_redemptions: points and amounts must be whole numbers'); END;

CREATE TRIGGER reward_redemptions_amounts_integer_update BEFORE UPDATE OF points ON reward_redemptions
WHEN (NEW.points IS NOT NULL AND typeof(NEW.points) <> 'integer')
BEGIN SELECT RAISE(ABORT, 'reward_redemptions: points and amounts must be whole numbers'); END;

CREATE TRIGGER promotions_amounts_integer_insert BEFORE INSERT ON promotions
WHEN (NEW.budget_minor IS NOT NULL AND typeof(NEW.budget_minor) <> 'integer')
BEGIN SELECT RAISE(ABORT, 'promotions: points and amounts must be whole numbers'); END;

CREATE TRIGGER promotions_amounts_integer_update BEFORE UPDATE OF budget_minor ON promotions
WHEN (NEW.budget_minor IS NOT NULL AND typeof(NEW.budget_minor) <> 'integer')
BEGIN SELECT RAISE(ABORT, 'promotions: points and amounts must be whole numbers'); END;

CREATE TRIGGER coupon_redemptions_amounts_integer_insert BEFORE INSERT ON coupon_redemptions
WHEN (NEW.amount_minor IS NOT NULL AND typeof(NEW.amount_minor) <> 'integer')
BEGIN SELECT RAISE(ABORT, 'coupon_redemptions: points and amounts must be whole numbers'); END;

CREATE TRIGGER coupon_redemptions_amounts_integer_update BEFORE UPDATE OF amount_minor ON coupon_redemptions
WHEN (NEW.amount_minor IS NOT NULL AND typeof(NEW.amount_minor) <> 'integer')
BEGIN SELECT RAISE(ABORT, 'coupon_redemptions: points and amounts must be whole numbers'); END;

CREATE TRIGGER member_stats_amounts_integer_insert BEFORE INSERT ON member_stats
WHEN (NEW.spend_minor IS NOT NULL AND typeof(NEW.spend_minor) <> 'integer') OR (NEW.first_day_spend_minor IS NOT NULL AND typeof(NEW.first_day_spend_minor) <> 'integer') OR (NEW.repeat_spend_minor IS NOT NULL AND typeof(NEW.repeat_spend_minor) <> 'integer')
BEGIN SELECT RAISE(ABORT, 'member_stats: points and amounts must be whole numbers'); END;

CREATE TRIGGER member_stats_amounts_integer_update BEFORE UPDATE OF spend_minor, first_day_spend_minor, repeat_spend_minor ON member_stats
WHEN (NEW.spend_minor IS NOT NULL AND typeof(NEW.spend_minor) <> 'integer') OR (NEW.first_day_spend_minor IS NOT NULL AND typeof(NEW.first_day_spend_minor) <> 'integer') OR (NEW.repeat_spend_minor IS NOT NULL AND typeof(NEW.repeat_spend_minor) <> 'integer')
BEGIN SELECT RAISE(ABORT, 'member_stats: points and amounts must be whole numbers'); END;

CREATE TRIGGER member_category_spend_amounts_integer_insert BEFORE INSERT ON member_category_spend
WHEN (NEW.spend_minor IS NOT NULL AND typeof(NEW.spend_minor) <> 'integer')
BEGIN SELECT RAISE(ABORT, 'member_category_spend: points and amounts must be whole numbers'); END;

CREATE TRIGGER member_category_spend_amounts_integer_update BEFORE UPDATE OF spend_minor ON member_category_spend
WHEN (NEW.spend_minor IS NOT NULL AND typeof(NEW.spend_minor) <> 'integer')
BEGIN SELECT RAISE(ABORT, 'member_category_spend: points and amounts must be whole numbers'); END;

CREATE TRIGGER rfv_members_amounts_integer_insert BEFORE INSERT ON rfv_members
WHEN (NEW.monetary_minor IS NOT NULL AND typeof(NEW.monetary_minor) <> 'integer')
BEGIN SELECT RAISE(ABORT, 'rfv_members: points and amounts must be whole numbers'); END;

CREATE TRIGGER rfv_members_amounts_integer_update BEFORE UPDATE OF monetary_minor ON rfv_members
WHEN (NEW.monetary_minor IS NOT NULL AND typeof(NEW.monetary_minor) <> 'integer')
BEGIN SELECT RAISE(ABORT, 'rfv_members: points and amounts must be whole numbers'); END;

CREATE TRIGGER referral_rewards_amounts_integer_insert BEFORE INSERT ON referral_rewards
WHEN (NEW.referrer_points IS NOT NULL AND typeof(NEW.referrer_points) <> 'integer') OR (NEW.settled_points IS NOT NULL AND typeof(NEW.settled_points) <> 'integer')
BEGIN SELECT RAISE(ABORT, 'referral_rewards: points and amounts must be whole numbers'); END;

CREATE TRIGGER referral_rewards_amounts_integer_update BEFORE UPDATE OF referrer_points, settled_points ON referral_rewards
WHEN (NEW.referrer_points IS NOT NULL AND typeof(NEW.referrer_points) <> 'integer') OR (NEW.settled_points IS NOT NULL AND typeof(NEW.settled_points) <> 'integer')
BEGIN SELECT RAISE(ABORT, 'referral_rewards: points and amounts must be whole numbers'); END;
