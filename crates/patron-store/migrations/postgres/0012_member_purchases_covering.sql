-- A member's purchases, with what their tier metric and statistics add up carried in the
-- index: counting or summing them (every purchase: `tier_metric_query` in purchases.rs) is
-- an index-only scan of a few pages instead of one heap page per purchase, which for a member
-- with hundreds of visits in the tier window was the largest read of a purchase
-- (BENCHMARKS.md, sixth session). The key is unchanged, so every query that used the old
-- index uses this one.
--
-- On a large `purchases` table this rebuild blocks writes to it while it runs (a migration
-- is one transaction, and CREATE INDEX CONCURRENTLY cannot run in one): apply it in a quiet
-- hour, or build `purchases_member_covering` CONCURRENTLY by hand first.
CREATE INDEX IF NOT EXISTS purchases_member_covering ON purchases (tenant_id, member_id, occurred_at)
    INCLUDE (total_minor, refunded_minor, points, settled_points);
DROP INDEX IF EXISTS purchases_member;
