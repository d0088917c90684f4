-- A member's purchases, with what their tier metric and statistics add up carried in the
-- index, so that counting or summing them (every purchase: `tier_metric_query` in
-- purchases.rs) reads the index alone (see the PostgreSQL migration of the same number).
-- SQLite has no INCLUDE: the carried columns end the key. Its first three columns are the
-- old index's, so every query that used it uses this one.
CREATE INDEX IF NOT EXISTS purchases_member_covering ON purchases
    (tenant_id, member_id, occurred_at, total_minor, refunded_minor, points, settled_points);
DROP INDEX IF EXISTS purchases_member;
