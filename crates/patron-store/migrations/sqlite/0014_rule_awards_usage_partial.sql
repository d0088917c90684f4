-- The usage index holds only the firings a limit counts. `rules::usage_sql` counts a limited
-- rule's firings in its current period (`period_key = $n`), and only a limited rule's firings
-- have a period key: an unlimited rule's firing (NULL) was an index entry no query read, written
-- on every purchase it fired on. Both backends infer `period_key IS NOT NULL` from the query's
-- `period_key = $n`, so the count reads the new index (BENCHMARKS.md, ninth session). Built
-- under a new name before the old one goes, so that a large club can build it beforehand
-- without blocking writes (docs/CONFIG.md, "Upgrading a PostgreSQL database").
CREATE INDEX IF NOT EXISTS rule_awards_limited ON rule_awards (tenant_id, member_id, rule_id, period_key)
    WHERE period_key IS NOT NULL;
DROP INDEX IF EXISTS rule_awards_usage;
