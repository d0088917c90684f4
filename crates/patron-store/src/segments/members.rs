//! Rule segments: the candidates a condition selects, the stored memberships and their
//! changes, and the reads of member events and baskets behind them.

use super::*;

impl Store {
    /// Active members after `after` (member-id order), at most `limit`, with their statistics
    /// and scores in `ctx.run_id`; with `filter`, only those it holds for.
    pub async fn segment_candidates(
        &self,
        tenant: TenantId,
        after: Option<&str>,
        limit: i64,
        filter: Option<&Condition>,
        ctx: SqlContext,
    ) -> Result<Vec<SegmentCandidate>, StoreError> {
        let mut binds = Vec::new();
        let clause = match filter {
            Some(condition) => format!(" AND {}", render(condition, 7, &mut binds)),
            None => String::new(),
        };
        let sql = format!(
            "SELECT m.id, m.tier, m.attributes, m.birthday, m.enrolled_at, s.purchases, s.purchase_days, \
             s.spend_minor, s.first_purchase_at, s.last_purchase_at, s.last_purchase_day, v.r, v.f, v.m \
             FROM members m \
             LEFT JOIN member_stats s ON s.tenant_id = m.tenant_id AND s.member_id = m.id \
             LEFT JOIN rfv_members v ON v.run_id = $4 AND v.member_id = m.id \
             WHERE m.tenant_id = $1 AND m.status = 'active' AND ($5 = 0 OR m.id > $6){clause} \
             ORDER BY m.id LIMIT {}",
            limit.clamp(1, 100_000)
        );
        let scale = 10f64.powi(i32::try_from(ctx.minor_unit).unwrap_or(0));
        let mut query = sqlx::query(&sql)
            .bind(tenant.0)
            .bind(scale)
            .bind(ctx.today)
            .bind(ctx.run_id.unwrap_or(-1))
            .bind(i64::from(after.is_some()))
            .bind(after.unwrap_or(""));
        for literal in binds {
            query = bind_literal(query, literal);
        }
        let rows = query.fetch_all(self.pool()).await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let first: Option<i64> = row.try_get("first_purchase_at")?;
            let last: Option<i64> = row.try_get("last_purchase_at")?;
            let r: Option<i64> = row.try_get("r")?;
            let f: Option<i64> = row.try_get("f")?;
            let m: Option<i64> = row.try_get("m")?;
            out.push(SegmentCandidate {
                member_id: row.try_get("id")?,
                tier: row.try_get("tier")?,
                attributes: row.try_get("attributes")?,
                birthday: row.try_get("birthday")?,
                enrolled_at: time::from_db(row.try_get("enrolled_at")?)?,
                purchases: row.try_get::<Option<i64>, _>("purchases")?.unwrap_or(0),
                purchase_days: row.try_get::<Option<i64>, _>("purchase_days")?.unwrap_or(0),
                spend_minor: row.try_get::<Option<i64>, _>("spend_minor")?.unwrap_or(0),
                first_purchase_at: first.map(time::from_db).transpose()?,
                last_purchase_at: last.map(time::from_db).transpose()?,
                last_purchase_day: row.try_get("last_purchase_day")?,
                rfv: match (r, f, m) {
                    (Some(r), Some(f), Some(m)) => Some((score(r), score(f), score(m))),
                    _ => None,
                },
            });
        }
        Ok(out)
    }

    /// The active members a SQL-subset condition holds for, in id order.
    pub async fn members_matching(
        &self,
        tenant: TenantId,
        condition: &Condition,
        ctx: SqlContext,
    ) -> Result<Vec<String>, StoreError> {
        let mut binds = Vec::new();
        let clause = render(condition, 5, &mut binds);
        let sql = format!(
            "SELECT m.id FROM members m \
             LEFT JOIN member_stats s ON s.tenant_id = m.tenant_id AND s.member_id = m.id \
             LEFT JOIN rfv_members v ON v.run_id = $4 AND v.member_id = m.id \
             WHERE m.tenant_id = $1 AND m.status = 'active' AND {clause} ORDER BY m.id"
        );
        let scale = 10f64.powi(i32::try_from(ctx.minor_unit).unwrap_or(0));
        let mut query = sqlx::query(&sql)
            .bind(tenant.0)
            .bind(scale)
            .bind(ctx.today)
            .bind(ctx.run_id.unwrap_or(-1));
        for literal in binds {
            query = bind_literal(query, literal);
        }
        let rows = query.fetch_all(self.pool()).await?;
        rows.iter()
            .map(|row| Ok(row.try_get::<String, _>("id")?))
            .collect()
    }

    /// The distinct purchase days (club time zone) of the members with ids in
    /// `first..=last`, each member's sorted (counted purchases only).
    pub async fn purchase_days_between(
        &self,
        tenant: TenantId,
        first: &str,
        last: &str,
        tz: &TimeZone,
    ) -> Result<BTreeMap<String, Vec<i64>>, StoreError> {
        let rows = sqlx::query(
            "SELECT member_id, occurred_at FROM purchases WHERE tenant_id = $1 AND member_id >= $2 \
             AND member_id <= $3 AND total_minor > refunded_minor",
        )
        .bind(tenant.0)
        .bind(first)
        .bind(last)
        .fetch_all(self.pool())
        .await?;
        let mut days: BTreeMap<String, BTreeSet<i64>> = BTreeMap::new();
        for row in rows {
            let at = time::from_db(row.try_get("occurred_at")?)?;
            days.entry(row.try_get("member_id")?)
                .or_default()
                .insert(day_number(at, tz));
        }
        Ok(days
            .into_iter()
            .map(|(member, days)| (member, days.into_iter().collect()))
            .collect())
    }

    /// For the members with ids in `first..=last`: their counted purchases since `since` and
    /// the categories bought in them.
    pub async fn window_categories_between(
        &self,
        tenant: TenantId,
        first: &str,
        last: &str,
        since: Timestamp,
    ) -> Result<BTreeMap<String, (i64, BTreeSet<String>)>, StoreError> {
        let mut out: BTreeMap<String, (i64, BTreeSet<String>)> = BTreeMap::new();
        let rows = sqlx::query(
            "SELECT member_id, COUNT(*) AS n FROM purchases WHERE tenant_id = $1 AND member_id >= $2 \
             AND member_id <= $3 AND occurred_at >= $4 AND total_minor > refunded_minor GROUP BY member_id",
        )
        .bind(tenant.0)
        .bind(first)
        .bind(last)
        .bind(time::to_db(since))
        .fetch_all(self.pool())
        .await?;
        for row in rows {
            out.entry(row.try_get("member_id")?).or_default().0 = row.try_get("n")?;
        }
        let rows = sqlx::query(
            "SELECT DISTINCT p.member_id, l.category FROM purchase_lines l \
             JOIN purchases p ON p.tenant_id = l.tenant_id AND p.id = l.purchase_id \
             WHERE l.tenant_id = $1 AND p.member_id >= $2 AND p.member_id <= $3 AND p.occurred_at >= $4 \
             AND p.total_minor > p.refunded_minor",
        )
        .bind(tenant.0)
        .bind(first)
        .bind(last)
        .bind(time::to_db(since))
        .fetch_all(self.pool())
        .await?;
        for row in rows {
            out.entry(row.try_get("member_id")?)
                .or_default()
                .1
                .insert(row.try_get("category")?);
        }
        Ok(out)
    }

    /// The club's `n` categories in the most counted member purchases since `since` (ties by
    /// name).
    pub async fn top_categories(
        &self,
        tenant: TenantId,
        since: Timestamp,
        n: usize,
    ) -> Result<Vec<String>, StoreError> {
        let rows = sqlx::query(
            "SELECT l.category, COUNT(DISTINCT p.id) AS n FROM purchase_lines l \
             JOIN purchases p ON p.tenant_id = l.tenant_id AND p.id = l.purchase_id \
             WHERE l.tenant_id = $1 AND p.member_id IS NOT NULL AND p.occurred_at >= $2 \
             AND p.total_minor > p.refunded_minor GROUP BY l.category ORDER BY n DESC, l.category LIMIT $3",
        )
        .bind(tenant.0)
        .bind(time::to_db(since))
        .bind(i64::try_from(n).unwrap_or(i64::MAX))
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|row| Ok(row.try_get::<String, _>("category")?))
            .collect()
    }

    /// The current members of a rule segment, in id order.
    pub async fn rule_segment_members(
        &self,
        tenant: TenantId,
        segment: &str,
    ) -> Result<Vec<String>, StoreError> {
        let rows = sqlx::query(
            "SELECT member_id FROM segment_members WHERE tenant_id = $1 AND segment_id = $2 ORDER BY member_id",
        )
        .bind(tenant.0)
        .bind(segment)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|row| Ok(row.try_get::<String, _>("member_id")?))
            .collect()
    }

    /// The rule segments with stored members (to find those the program no longer has).
    pub async fn stored_rule_segments(&self, tenant: TenantId) -> Result<Vec<String>, StoreError> {
        let rows = sqlx::query(
            "SELECT DISTINCT segment_id FROM segment_members WHERE tenant_id = $1 ORDER BY segment_id",
        )
        .bind(tenant.0)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|row| Ok(row.try_get::<String, _>("segment_id")?))
            .collect()
    }

    /// Applies a rule segment's changes: `entered` join, `left` leave, each with its
    /// `segment.entered`/`segment.left` event, in batches (each batch one transaction).
    /// A member already in (or already out) is skipped, so repeating a batch changes nothing.
    pub async fn apply_segment_changes(
        &self,
        tenant: TenantId,
        segment: &str,
        entered: &[String],
        left: &[String],
        now: Timestamp,
    ) -> Result<u64, StoreError> {
        let backend = self.backend();
        let properties = format!("{{\"segment\":\"{segment}\",\"source\":\"rule\"}}");
        let mut events = 0;
        for (members, entering) in [(entered, true), (left, false)] {
            for batch in members.chunks(ROWS_PER_TRANSACTION) {
                events += unit_of_work!(self, |tx| {
                    async {
                        let mut changed = 0u64;
                        for chunk in batch.chunks(ROWS_PER_STATEMENT) {
                            let (sql, event_type) = if entering {
                                (
                                    format!(
                                        "INSERT INTO segment_members (tenant_id, segment_id, member_id, entered_at) \
                                         VALUES {} ON CONFLICT DO NOTHING RETURNING member_id",
                                        placeholders_on(backend, chunk.len(), 4)
                                    ),
                                    "segment.entered",
                                )
                            } else {
                                let list = (0..chunk.len())
                                    .map(|i| format!("${}", i + 3))
                                    .collect::<Vec<_>>()
                                    .join(", ");
                                (
                                    format!(
                                        "DELETE FROM segment_members WHERE tenant_id = $1 AND segment_id = $2 \
                                         AND member_id IN ({list}) RETURNING member_id"
                                    ),
                                    "segment.left",
                                )
                            };
                            let mut query = sqlx::query(&sql);
                            if entering {
                                for member in chunk {
                                    query = query
                                        .bind(tenant.0)
                                        .bind(segment)
                                        .bind(member)
                                        .bind(time::to_db(now));
                                }
                            } else {
                                query = query.bind(tenant.0).bind(segment);
                                for member in chunk {
                                    query = query.bind(member);
                                }
                            }
                            let mut done: Vec<String> = Vec::new();
                            for row in query.fetch_all(&mut *tx).await? {
                                done.push(row.try_get("member_id")?);
                            }
                            done.sort();
                            if done.is_empty() {
                                continue;
                            }
                            let sql = format!(
                                "INSERT INTO member_events (tenant_id, member_id, type, occurred_at, properties) VALUES {}",
                                placeholders_on(backend, done.len(), 5)
                            );
                            let mut query = sqlx::query(&sql);
                            for member in &done {
                                query = query
                                    .bind(tenant.0)
                                    .bind(member)
                                    .bind(event_type)
                                    .bind(time::to_db(now))
                                    .bind(&properties);
                            }
                            query.execute(&mut *tx).await?;
                            changed += done.len() as u64;
                        }
                        Ok(changed)
                    }
                    .await
                })?;
            }
        }
        Ok(events)
    }

    /// Members per rule segment.
    pub async fn rule_segment_counts(
        &self,
        tenant: TenantId,
    ) -> Result<BTreeMap<String, i64>, StoreError> {
        let rows = sqlx::query(
            "SELECT segment_id, COUNT(*) AS n FROM segment_members WHERE tenant_id = $1 GROUP BY segment_id",
        )
        .bind(tenant.0)
        .fetch_all(self.pool())
        .await?;
        let mut counts = BTreeMap::new();
        for row in rows {
            counts.insert(row.try_get("segment_id")?, row.try_get("n")?);
        }
        Ok(counts)
    }

    /// A page of a segment's members after `after`: an RFV segment of run `run` (`Some`), or
    /// a rule segment (`None`).
    pub async fn list_segment_members(
        &self,
        tenant: TenantId,
        segment: &str,
        run: Option<i64>,
        after: Option<&str>,
        limit: i64,
    ) -> Result<Vec<SegmentMember>, StoreError> {
        let limit = limit.clamp(1, 1000);
        let mut out = Vec::new();
        match run {
            Some(run) => {
                let rows = sqlx::query(
                    "SELECT member_id, recency_days, frequency, monetary_minor, r, f, m, segment FROM rfv_members \
                     WHERE tenant_id = $1 AND run_id = $2 AND segment = $3 AND ($4 = 0 OR member_id > $5) \
                     ORDER BY member_id LIMIT $6",
                )
                .bind(tenant.0)
                .bind(run)
                .bind(segment)
                .bind(i64::from(after.is_some()))
                .bind(after.unwrap_or(""))
                .bind(limit)
                .fetch_all(self.pool())
                .await?;
                for row in rows {
                    let scores = rfv_row_from(&row)?;
                    out.push(SegmentMember {
                        member_id: scores.member_id.clone(),
                        scores: Some(scores),
                        entered_at: None,
                    });
                }
            }
            None => {
                let rows = sqlx::query(
                    "SELECT member_id, entered_at FROM segment_members WHERE tenant_id = $1 AND segment_id = $2 \
                     AND ($3 = 0 OR member_id > $4) ORDER BY member_id LIMIT $5",
                )
                .bind(tenant.0)
                .bind(segment)
                .bind(i64::from(after.is_some()))
                .bind(after.unwrap_or(""))
                .bind(limit)
                .fetch_all(self.pool())
                .await?;
                for row in rows {
                    out.push(SegmentMember {
                        member_id: row.try_get("member_id")?,
                        scores: None,
                        entered_at: Some(time::from_db(row.try_get("entered_at")?)?),
                    });
                }
            }
        }
        Ok(out)
    }

    /// A member's current segments: their RFV segment in the latest complete run, then the
    /// rule segments they are in (by id).
    pub async fn member_segments(
        &self,
        tenant: TenantId,
        member_id: &str,
    ) -> Result<Vec<String>, StoreError> {
        let mut c = self.pool().acquire().await?;
        member_segments_in(&mut c, self.backend(), tenant, member_id).await
    }

    /// A member's events, oldest first.
    pub async fn member_events(
        &self,
        tenant: TenantId,
        member_id: &str,
    ) -> Result<Vec<MemberEvent>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, member_id, type, occurred_at, properties FROM member_events \
             WHERE tenant_id = $1 AND member_id = $2 ORDER BY id",
        )
        .bind(tenant.0)
        .bind(member_id)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|row| {
                Ok(MemberEvent {
                    id: row.try_get("id")?,
                    member_id: row.try_get("member_id")?,
                    event_type: row.try_get("type")?,
                    occurred_at: time::from_db(row.try_get("occurred_at")?)?,
                    properties: row.try_get("properties")?,
                })
            })
            .collect()
    }

    /// Every purchase line of the tenant's member purchases since `since`: (member, document,
    /// day number, category, sku), for basket analysis.
    pub async fn basket_lines(
        &self,
        tenant: TenantId,
        since: Timestamp,
        tz: &TimeZone,
    ) -> Result<Vec<(String, String, i64, String, String)>, StoreError> {
        let rows = sqlx::query(
            "SELECT p.member_id, p.id, p.occurred_at, l.category, l.sku FROM purchase_lines l \
             JOIN purchases p ON p.tenant_id = l.tenant_id AND p.id = l.purchase_id \
             WHERE l.tenant_id = $1 AND p.member_id IS NOT NULL AND p.occurred_at >= $2 \
             AND p.total_minor > p.refunded_minor ORDER BY p.member_id, p.id",
        )
        .bind(tenant.0)
        .bind(time::to_db(since))
        .fetch_all(self.pool())
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let at = time::from_db(row.try_get("occurred_at")?)?;
            out.push((
                row.try_get("member_id")?,
                row.try_get("id")?,
                day_number(at, tz),
                row.try_get("category")?,
                row.try_get("sku")?,
            ));
        }
        Ok(out)
    }
}
