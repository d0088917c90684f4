//! RFV runs: the inputs, the saved runs, their grid and each member's cell.

use super::*;

impl Store {
    // ----- RFV -------------------------------------------------------------------------------

    /// Each active member's last purchase day, purchase count and net spend over the counted
    /// purchases before `until` (the end of the as-of day), in member-id order. When nothing
    /// happened after `until`, this is `member_stats` (O(members)); otherwise it is aggregated
    /// from the purchases (O(purchases), for back-dated runs).
    pub async fn rfv_inputs(
        &self,
        tenant: TenantId,
        until: Timestamp,
        tz: &TimeZone,
    ) -> Result<Vec<RfvInput>, StoreError> {
        let later = sqlx::query(
            "SELECT id FROM purchases WHERE tenant_id = $1 AND member_id IS NOT NULL \
             AND occurred_at >= $2 LIMIT 1",
        )
        .bind(tenant.0)
        .bind(time::to_db(until))
        .fetch_optional(self.pool())
        .await?;
        let mut inputs = Vec::new();
        if later.is_none() {
            let rows = sqlx::query(
                "SELECT s.member_id, s.last_purchase_day, s.purchases, s.spend_minor \
                 FROM member_stats s JOIN members m ON m.tenant_id = s.tenant_id AND m.id = s.member_id \
                 WHERE s.tenant_id = $1 AND m.status = 'active' AND s.purchases > 0 ORDER BY s.member_id",
            )
            .bind(tenant.0)
            .fetch_all(self.pool())
            .await?;
            for row in rows {
                inputs.push(RfvInput {
                    member_id: row.try_get("member_id")?,
                    last_day: row.try_get("last_purchase_day")?,
                    purchases: row.try_get("purchases")?,
                    monetary_minor: row.try_get("spend_minor")?,
                });
            }
        } else {
            let rows = sqlx::query(
                "SELECT p.member_id, MAX(p.occurred_at) AS last_at, COUNT(*) AS purchases, \
                 CAST(SUM(p.total_minor - p.refunded_minor) AS BIGINT) AS monetary \
                 FROM purchases p JOIN members m ON m.tenant_id = p.tenant_id AND m.id = p.member_id \
                 WHERE p.tenant_id = $1 AND m.status = 'active' AND p.occurred_at < $2 \
                 AND p.total_minor > p.refunded_minor GROUP BY p.member_id ORDER BY p.member_id",
            )
            .bind(tenant.0)
            .bind(time::to_db(until))
            .fetch_all(self.pool())
            .await?;
            for row in rows {
                let last_at: i64 = row.try_get("last_at")?;
                inputs.push(RfvInput {
                    member_id: row.try_get("member_id")?,
                    last_day: day_number(time::from_db(last_at)?, tz),
                    purchases: row.try_get("purchases")?,
                    monetary_minor: row.try_get("monetary")?,
                });
            }
        }
        Ok(inputs)
    }

    /// Stores a run: the header, the rows in batches, then marks it complete and records the
    /// segment moves against the previous complete run (only when this run is the latest by
    /// as-of date: a back-dated run records none).
    pub async fn save_rfv_run(
        &self,
        tenant: TenantId,
        as_of: &str,
        as_of_day: i64,
        rows: &[RfvRow],
        now: Timestamp,
    ) -> Result<RfvSaved, StoreError> {
        let backend = self.backend();
        let members = i64::try_from(rows.len()).unwrap_or(i64::MAX);
        let run_id: i64 = unit_of_work!(self, |tx| {
            async {
                let row = sqlx::query(
                    "INSERT INTO rfv_runs (tenant_id, as_of, as_of_day, members, created_at) \
                     VALUES ($1, $2, $3, $4, $5) RETURNING id",
                )
                .bind(tenant.0)
                .bind(as_of)
                .bind(as_of_day)
                .bind(members)
                .bind(time::to_db(now))
                .fetch_one(&mut *tx)
                .await?;
                Ok(row.try_get::<i64, _>("id")?)
            }
            .await
        })?;
        for batch in rows.chunks(ROWS_PER_TRANSACTION) {
            unit_of_work!(self, |tx| {
                insert_rfv_rows(&mut tx, backend, tenant, run_id, batch).await
            })?;
        }
        let events: u64 = unit_of_work!(self, |tx| {
            complete_rfv_run(&mut tx, tenant, run_id, as_of_day, now).await
        })?;
        Ok(RfvSaved {
            run: RfvRun {
                id: run_id,
                as_of: as_of.to_owned(),
                as_of_day,
                members,
                created_at: now,
            },
            events,
        })
    }

    fn run_from(row: &sqlx::any::AnyRow) -> Result<RfvRun, StoreError> {
        Ok(RfvRun {
            id: row.try_get("id")?,
            as_of: row.try_get("as_of")?,
            as_of_day: row.try_get("as_of_day")?,
            members: row.try_get("members")?,
            created_at: time::from_db(row.try_get("created_at")?)?,
        })
    }

    /// The latest complete run (by as-of date, then id), or the complete run `id`.
    pub async fn rfv_run(
        &self,
        tenant: TenantId,
        id: Option<i64>,
    ) -> Result<Option<RfvRun>, StoreError> {
        let row = sqlx::query(
            "SELECT id, as_of, as_of_day, members, created_at FROM rfv_runs \
             WHERE tenant_id = $1 AND completed_at IS NOT NULL AND ($2 = 0 OR id = $3) \
             ORDER BY as_of_day DESC, id DESC LIMIT 1",
        )
        .bind(tenant.0)
        .bind(i64::from(id.is_some()))
        .bind(id.unwrap_or(0))
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(Self::run_from).transpose()
    }

    /// The latest complete run whose as-of day is `as_of_day` or earlier (by as-of date,
    /// then id): the grid as it stood on that day.
    pub async fn rfv_run_as_of(
        &self,
        tenant: TenantId,
        as_of_day: i64,
    ) -> Result<Option<RfvRun>, StoreError> {
        let row = sqlx::query(
            "SELECT id, as_of, as_of_day, members, created_at FROM rfv_runs \
             WHERE tenant_id = $1 AND completed_at IS NOT NULL AND as_of_day <= $2 \
             ORDER BY as_of_day DESC, id DESC LIMIT 1",
        )
        .bind(tenant.0)
        .bind(as_of_day)
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(Self::run_from).transpose()
    }

    /// The 5 x 5 grid of a run: members and monetary value per (R, F) cell with members.
    pub async fn rfv_grid(&self, tenant: TenantId, run: i64) -> Result<Vec<RfvCell>, StoreError> {
        let rows = sqlx::query(
            "SELECT r, f, COUNT(*) AS members, CAST(SUM(monetary_minor) AS BIGINT) AS monetary \
             FROM rfv_members WHERE tenant_id = $1 AND run_id = $2 GROUP BY r, f ORDER BY r DESC, f",
        )
        .bind(tenant.0)
        .bind(run)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|row| {
                Ok(RfvCell {
                    r: row.try_get("r")?,
                    f: row.try_get("f")?,
                    members: row.try_get("members")?,
                    monetary_minor: row.try_get("monetary")?,
                })
            })
            .collect()
    }

    /// Members per segment of a run, and their monetary value.
    pub async fn rfv_segment_totals(
        &self,
        tenant: TenantId,
        run: i64,
    ) -> Result<BTreeMap<String, (i64, i64)>, StoreError> {
        let rows = sqlx::query(
            "SELECT segment, COUNT(*) AS members, CAST(SUM(monetary_minor) AS BIGINT) AS monetary \
             FROM rfv_members WHERE tenant_id = $1 AND run_id = $2 GROUP BY segment",
        )
        .bind(tenant.0)
        .bind(run)
        .fetch_all(self.pool())
        .await?;
        let mut totals = BTreeMap::new();
        for row in rows {
            totals.insert(
                row.try_get("segment")?,
                (row.try_get("members")?, row.try_get("monetary")?),
            );
        }
        Ok(totals)
    }

    /// A member's row in a run.
    pub async fn rfv_member(
        &self,
        tenant: TenantId,
        run: i64,
        member_id: &str,
    ) -> Result<Option<RfvRow>, StoreError> {
        let row = sqlx::query(
            "SELECT member_id, recency_days, frequency, monetary_minor, r, f, m, segment FROM rfv_members \
             WHERE tenant_id = $1 AND run_id = $2 AND member_id = $3",
        )
        .bind(tenant.0)
        .bind(run)
        .bind(member_id)
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(rfv_row_from).transpose()
    }

    // ----- Rule segments ---------------------------------------------------------------------
}

/// Writes one batch of a run's rows, `ROWS_PER_STATEMENT` to a multi-row `INSERT`.
async fn insert_rfv_rows(
    tx: &mut crate::Conn,
    backend: Backend,
    tenant: TenantId,
    run_id: i64,
    batch: &[RfvRow],
) -> Result<(), StoreError> {
    for chunk in batch.chunks(ROWS_PER_STATEMENT) {
        let sql = format!(
            "INSERT INTO rfv_members (tenant_id, run_id, member_id, recency_days, frequency, \
             monetary_minor, r, f, m, segment) VALUES {}",
            placeholders_on(backend, chunk.len(), 10)
        );
        let mut query = sqlx::query(&sql);
        for row in chunk {
            query = query
                .bind(tenant.0)
                .bind(run_id)
                .bind(&row.member_id)
                .bind(row.recency_days)
                .bind(row.frequency)
                .bind(row.monetary_minor)
                .bind(row.r)
                .bind(row.f)
                .bind(row.m)
                .bind(&row.segment);
        }
        query.execute(&mut *tx).await?;
    }
    Ok(())
}

/// Marks a run complete and, when no later complete run exists, records the segment moves
/// against the previous complete run; returns the number of events written.
async fn complete_rfv_run(
    tx: &mut crate::Conn,
    tenant: TenantId,
    run_id: i64,
    as_of_day: i64,
    now: Timestamp,
) -> Result<u64, StoreError> {
    sqlx::query("UPDATE rfv_runs SET completed_at = $3 WHERE tenant_id = $1 AND id = $2")
        .bind(tenant.0)
        .bind(run_id)
        .bind(time::to_db(now))
        .execute(&mut *tx)
        .await?;
    // The previous complete run by (as_of_day, id); none later than this one.
    let later = sqlx::query(
        "SELECT id FROM rfv_runs WHERE tenant_id = $1 AND completed_at IS NOT NULL AND id <> $2 \
         AND (as_of_day > $3 OR (as_of_day = $3 AND id > $2)) LIMIT 1",
    )
    .bind(tenant.0)
    .bind(run_id)
    .bind(as_of_day)
    .fetch_optional(&mut *tx)
    .await?;
    if later.is_some() {
        return Ok(0);
    }
    let previous = sqlx::query(
        "SELECT id FROM rfv_runs WHERE tenant_id = $1 AND completed_at IS NOT NULL AND id <> $2 \
         ORDER BY as_of_day DESC, id DESC LIMIT 1",
    )
    .bind(tenant.0)
    .bind(run_id)
    .fetch_optional(&mut *tx)
    .await?;
    let previous: Option<i64> = match previous {
        Some(row) => Some(row.try_get("id")?),
        None => None,
    };
    record_rfv_moves(tx, tenant, run_id, previous, now).await
}

/// The `segment.left` and `segment.entered` events between the previous run (if any) and
/// this one, by two set-based statements; returns how many were written.
async fn record_rfv_moves(
    tx: &mut crate::Conn,
    tenant: TenantId,
    run_id: i64,
    previous: Option<i64>,
    now: Timestamp,
) -> Result<u64, StoreError> {
    let run_text = run_id.to_string();
    let first = if previous.is_none() { "true" } else { "false" };
    // Segment codes are [a-z0-9_]: no JSON escaping is needed.
    let left = sqlx::query(
        "INSERT INTO member_events (tenant_id, member_id, type, occurred_at, properties) \
         SELECT $1, p.member_id, 'segment.left', $4, \
         '{\"segment\":\"' || p.segment || '\",\"source\":\"rfv\",\"run_id\":' || $5 || ',\"to\":' || \
         CASE WHEN c.segment IS NULL THEN 'null' ELSE '\"' || c.segment || '\"' END || '}' \
         FROM rfv_members p LEFT JOIN rfv_members c ON c.run_id = $2 AND c.member_id = p.member_id \
         WHERE p.run_id = $3 AND (c.segment IS NULL OR c.segment <> p.segment) ORDER BY p.member_id"
    )
    .bind(tenant.0)
    .bind(run_id)
    .bind(previous.unwrap_or(-1))
    .bind(time::to_db(now))
    .bind(&run_text)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    let entered = sqlx::query(&format!(
        "INSERT INTO member_events (tenant_id, member_id, type, occurred_at, properties) \
         SELECT $1, c.member_id, 'segment.entered', $4, \
         '{{\"segment\":\"' || c.segment || '\",\"source\":\"rfv\",\"run_id\":' || $5 || ',\"from\":' || \
         CASE WHEN p.segment IS NULL THEN 'null' ELSE '\"' || p.segment || '\"' END || ',\"first_run\":{first}}}' \
         FROM rfv_members c LEFT JOIN rfv_members p ON p.run_id = $3 AND p.member_id = c.member_id \
         WHERE c.run_id = $2 AND (p.segment IS NULL OR p.segment <> c.segment) ORDER BY c.member_id"
    ))
    .bind(tenant.0)
    .bind(run_id)
    .bind(previous.unwrap_or(-1))
    .bind(time::to_db(now))
    .bind(&run_text)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    Ok(left + entered)
}
