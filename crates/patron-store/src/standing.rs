//! Read-only views of a member's standing that the API shows next to the balance: where they
//! are on the tier ladder, and which ledger account is their wallet (to tell credits from
//! debits in their ledger). And the tier's full policy: a manual floor (`tier_floors`,
//! migration 0010), the nightly re-evaluation under the downgrade policy, and the "will
//! downgrade on" review (`patron_domain::tier::{target, review}` decide; this counts).

use jiff::Timestamp;
use patron_domain::program::{Program, TierBasis};
use patron_domain::tier::{self, Floor, Holding, MetricSpan, TierReview};
use serde::{Deserialize, Serialize};
use sqlx::Row;

use crate::batch::Batch;
use crate::idempotency::{Claim, Idempotent};
use crate::ledger::{self, LedgerCtx};
use crate::members::{Lookup, Member, lock_wallet_with_member};
use crate::programs::audit;
use crate::purchases::{TierStatus, tier_metric};
use crate::tenants::TenantId;
use crate::{Conn, Rejection, Store, StoreError, conn, idempotent_unit, time, unit_of_work};

/// A manual tier floor as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TierFloor {
    pub tier: String,
    /// The floor holds until this instant (exclusive); for good when `None`.
    pub until: Option<Timestamp>,
    pub reason: String,
    /// Who set it (the API key or the CLI user).
    pub set_by: String,
    pub set_at: Timestamp,
}

impl TierFloor {
    /// The floor as the policy reads it.
    pub fn floor(&self) -> Floor {
        Floor {
            tier: self.tier.clone(),
            until: self.until,
        }
    }

    pub fn active_at(&self, at: Timestamp) -> bool {
        self.until.is_none_or(|until| at < until)
    }
}

/// The answer of setting or ending a floor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TierFloorReceipt {
    pub member_id: String,
    /// The member's tier after the call.
    pub tier: String,
    /// Set when the call raised the member, from this tier.
    pub raised_from: Option<String>,
    /// The floor in force after the call (`None` after ending it).
    pub floor: Option<TierFloor>,
}

/// Everything the API shows about a member's tier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TierView {
    pub status: TierStatus,
    pub since: Timestamp,
    /// The member's language code, if they chose one (to name the tier in it).
    pub locale: Option<String>,
    /// The floor, while it holds.
    pub floor: Option<TierFloor>,
    /// When and to what the member would move down if nothing changes (`None`: safe).
    pub review: Option<TierReview>,
}

impl Store {
    /// The member's tier, qualifying metric and distance to the next tier, as of `now`.
    /// Reads only: tier changes happen in the units of work that post purchases.
    pub async fn tier_progress(
        &self,
        tenant: TenantId,
        program: &Program,
        member_id: &str,
        now: Timestamp,
    ) -> Result<TierStatus, StoreError> {
        let member = self
            .find_member(tenant, Lookup::Id(member_id))
            .await?
            .ok_or_else(|| Rejection::MemberNotFound {
                member_id: member_id.to_string(),
            })?;
        let ctx = LedgerCtx {
            tenant,
            backend: self.backend(),
            now,
        };
        let mut connection = self.pool().acquire().await?;
        let metric = tier_metric(&mut connection, ctx, program, member_id).await?;
        let progress = tier::progress(&program.tiers, &member.tier, metric);
        Ok(TierStatus {
            code: progress.current,
            upgraded_from: None,
            metric,
            next: progress.next,
            needed_for_next: progress.needed_for_next,
        })
    }

    /// The id of the member's wallet account, if the member exists in this tenant.
    pub async fn wallet_account_id(
        &self,
        tenant: TenantId,
        member_id: &str,
    ) -> Result<Option<i64>, StoreError> {
        Ok(ledger::read_wallet(self.pool(), tenant, member_id)
            .await?
            .map(|wallet| wallet.account_id))
    }
}

impl Store {
    /// The member's tier, progress, floor and review, as of `now`. Reads only.
    pub async fn tier_view(
        &self,
        tenant: TenantId,
        program: &Program,
        member_id: &str,
        now: Timestamp,
    ) -> Result<TierView, StoreError> {
        let member = self
            .find_member(tenant, Lookup::Id(member_id))
            .await?
            .ok_or_else(|| Rejection::MemberNotFound {
                member_id: member_id.to_string(),
            })?;
        let mut c = self.pool().acquire().await?;
        let stored = read_floor(&mut c, tenant, member_id).await?;
        let floor = stored.as_ref().map(TierFloor::floor);
        let holding = Holding {
            tier: &member.tier,
            since: member.tier_since,
            floor: floor.as_ref(),
        };
        let cal = program.calendar();
        let spans = tier::spans(&program.tiers, &cal, holding, now);
        let counted = count_spans(&mut c, tenant, program, member_id, &spans).await?;
        let metric = counted.first().map_or(0, |(_, metric)| *metric);
        let progress = tier::progress(&program.tiers, &member.tier, metric);
        let review = if member.is_active() {
            tier::review(&program.tiers, &cal, holding, &counted, now)
        } else {
            None
        };
        Ok(TierView {
            status: TierStatus {
                code: progress.current,
                upgraded_from: None,
                metric,
                next: progress.next,
                needed_for_next: progress.needed_for_next,
            },
            since: member.tier_since,
            locale: member.profile.locale.clone(),
            floor: stored.filter(|floor| floor.active_at(now)),
            review,
        })
    }

    /// Re-evaluates one member's tier under the wallet lock (the nightly pass): upgrades,
    /// the downgrade policy, the floor. Answers `(from, to)` when the tier changed.
    pub async fn reevaluate_tier(
        &self,
        tenant: TenantId,
        program: &Program,
        member_id: &str,
        now: Timestamp,
    ) -> Result<Option<(String, String)>, StoreError> {
        let ctx = LedgerCtx {
            tenant,
            backend: self.backend(),
            now,
        };
        unit_of_work!(self, |tx| {
            async {
                let (_wallet, member) = lock_wallet_with_member(&mut tx, ctx, member_id).await?;
                if !member.is_active() {
                    return Ok(None);
                }
                let floor = read_floor(&mut tx, tenant, member_id)
                    .await?
                    .map(|floor| floor.floor());
                let holding = Holding {
                    tier: &member.tier,
                    since: member.tier_since,
                    floor: floor.as_ref(),
                };
                let cal = program.calendar();
                let spans = tier::spans(&program.tiers, &cal, holding, now);
                let counted = count_spans(&mut tx, tenant, program, member_id, &spans).await?;
                let Some(to) = tier::target(&program.tiers, &cal, holding, &counted, now)
                    .filter(|to| *to != member.tier)
                else {
                    return Ok(None);
                };
                move_tier(&mut tx, tenant, member_id, &to, now).await?;
                Ok(Some((member.tier.clone(), to)))
            }
            .await
        })
    }

    /// Sets (or replaces) the member's manual tier floor, raising the member to it at once if
    /// their tier is lower. Audited as `member.tier_floor.set`. The engine checked the tier.
    #[allow(clippy::too_many_arguments)]
    pub async fn set_tier_floor(
        &self,
        tenant: TenantId,
        program: &Program,
        member_id: &str,
        tier_code: &str,
        until: Option<Timestamp>,
        reason: &str,
        actor: &str,
        claims: &[Claim],
        now: Timestamp,
    ) -> Result<Idempotent<TierFloorReceipt>, StoreError> {
        let backend = self.backend();
        idempotent_unit!(
            self,
            tenant,
            claims,
            now,
            async |c: &mut Conn, _tail: &mut Batch| {
                let ctx = LedgerCtx {
                    tenant,
                    backend,
                    now,
                };
                let member = active_member_locked(c, ctx, member_id).await?;
                sqlx::query(
                        "INSERT INTO tier_floors (tenant_id, member_id, tier, until, reason, set_by, set_at) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (tenant_id, member_id) DO UPDATE \
                         SET tier = excluded.tier, until = excluded.until, reason = excluded.reason, \
                         set_by = excluded.set_by, set_at = excluded.set_at",
                    )
                    .bind(tenant.0)
                    .bind(member_id)
                    .bind(tier_code)
                    .bind(until.map(time::to_db))
                    .bind(reason)
                    .bind(actor)
                    .bind(time::to_db(now))
                    .execute(conn(c))
                    .await?;
                let level = |code: &str| program.tiers.levels.iter().position(|t| t.code == code);
                let raise = match (level(tier_code), level(&member.tier)) {
                    (Some(floor), Some(current)) => floor > current,
                    (Some(_), None) => true,
                    _ => false,
                };
                let raised_from = if raise && until.is_none_or(|until| now < until) {
                    move_tier(c, tenant, member_id, tier_code, now).await?;
                    Some(member.tier.clone())
                } else {
                    None
                };
                let until_text =
                    until.map_or_else(|| "for good".to_string(), |u| format!("until {u}"));
                audit(
                    c,
                    tenant,
                    now,
                    actor,
                    "member.tier_floor.set",
                    &format!("member:{member_id}"),
                    &format!(
                        "floor {tier_code} {until_text}; tier {}{}; reason: {reason}",
                        if raised_from.is_some() {
                            tier_code
                        } else {
                            &member.tier
                        },
                        raised_from
                            .as_ref()
                            .map_or_else(String::new, |from| format!(" (raised from {from})")),
                    ),
                )
                .await?;
                Ok(TierFloorReceipt {
                    member_id: member_id.to_string(),
                    tier: if raised_from.is_some() {
                        tier_code.to_string()
                    } else {
                        member.tier.clone()
                    },
                    raised_from,
                    floor: Some(TierFloor {
                        tier: tier_code.to_string(),
                        until,
                        reason: reason.to_string(),
                        set_by: actor.to_string(),
                        set_at: now,
                    }),
                })
            }
        )
    }

    /// Ends the member's floor now (kept as history, `until` = now), so the downgrade policy
    /// applies from now with its grace. Nothing to end: answers the member as they are and
    /// writes nothing. Audited as `member.tier_floor.end`.
    pub async fn end_tier_floor(
        &self,
        tenant: TenantId,
        member_id: &str,
        reason: Option<&str>,
        actor: &str,
        claims: &[Claim],
        now: Timestamp,
    ) -> Result<Idempotent<TierFloorReceipt>, StoreError> {
        let backend = self.backend();
        idempotent_unit!(
            self,
            tenant,
            claims,
            now,
            async |c: &mut Conn, _tail: &mut Batch| {
                let ctx = LedgerCtx {
                    tenant,
                    backend,
                    now,
                };
                let member = active_member_locked(c, ctx, member_id).await?;
                let floor = read_floor(c, tenant, member_id).await?;
                if let Some(floor) = floor.filter(|floor| floor.active_at(now)) {
                    sqlx::query(
                        "UPDATE tier_floors SET until = $3 WHERE tenant_id = $1 AND member_id = $2",
                    )
                    .bind(tenant.0)
                    .bind(member_id)
                    .bind(time::to_db(now))
                    .execute(conn(c))
                    .await?;
                    audit(
                        c,
                        tenant,
                        now,
                        actor,
                        "member.tier_floor.end",
                        &format!("member:{member_id}"),
                        &format!(
                            "floor {} ended; reason: {}",
                            floor.tier,
                            reason.unwrap_or("(none given)")
                        ),
                    )
                    .await?;
                }
                Ok(TierFloorReceipt {
                    member_id: member_id.to_string(),
                    tier: member.tier.clone(),
                    raised_from: None,
                    floor: None,
                })
            }
        )
    }
}

/// Locks the member's wallet and reads the member; refuses one who left.
async fn active_member_locked(
    c: &mut Conn,
    ctx: LedgerCtx,
    member_id: &str,
) -> Result<Member, StoreError> {
    let (_wallet, member) = lock_wallet_with_member(c, ctx, member_id).await?;
    if !member.is_active() {
        return Err(Rejection::MemberExited {
            member_id: member_id.to_string(),
        }
        .into());
    }
    Ok(member)
}

async fn move_tier(
    c: &mut Conn,
    tenant: TenantId,
    member_id: &str,
    to: &str,
    now: Timestamp,
) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE members SET tier = $3, tier_since = $4, updated_at = $4 WHERE tenant_id = $1 AND id = $2",
    )
    .bind(tenant.0)
    .bind(member_id)
    .bind(to)
    .bind(time::to_db(now))
    .execute(conn(c))
    .await?;
    Ok(())
}

/// The member's floor row, ended or not.
async fn read_floor(
    c: &mut Conn,
    tenant: TenantId,
    member_id: &str,
) -> Result<Option<TierFloor>, StoreError> {
    let row = sqlx::query(
        "SELECT tier, until, reason, set_by, set_at FROM tier_floors WHERE tenant_id = $1 AND member_id = $2",
    )
    .bind(tenant.0)
    .bind(member_id)
    .fetch_optional(conn(c))
    .await?;
    row.map(|row| {
        Ok(TierFloor {
            tier: row.try_get("tier")?,
            until: row
                .try_get::<Option<i64>, _>("until")?
                .map(time::from_db)
                .transpose()?,
            reason: row.try_get("reason")?,
            set_by: row.try_get("set_by")?,
            set_at: time::from_db(row.try_get("set_at")?)?,
        })
    })
    .transpose()
}

/// The member's tier metric over each span, in one statement (the same measure as
/// `purchases::tier_metric`: purchases not fully refunded, by the program's basis).
async fn count_spans(
    c: &mut Conn,
    tenant: TenantId,
    program: &Program,
    member_id: &str,
    spans: &[MetricSpan],
) -> Result<Vec<(MetricSpan, i64)>, StoreError> {
    if spans.is_empty() {
        return Ok(Vec::new());
    }
    let value = match program.tiers.basis {
        TierBasis::Spend => "total_minor - refunded_minor",
        TierBasis::Visits => "1",
        TierBasis::PointsEarned => "points - settled_points",
    };
    let bound = |span: &MetricSpan| {
        (
            span.start.map_or(i64::MIN, time::to_db),
            time::to_db(span.end),
        )
    };
    let columns: Vec<String> = (0..spans.len())
        .map(|index| {
            let (start, end) = (3 + 2 * index, 4 + 2 * index);
            format!(
                "CAST(COALESCE(SUM(CASE WHEN occurred_at >= ${start} AND occurred_at <= ${end} \
                 THEN {value} ELSE 0 END), 0) AS BIGINT) AS m{index}"
            )
        })
        .collect();
    let sql = format!(
        "SELECT {} FROM purchases WHERE tenant_id = $1 AND member_id = $2 \
         AND total_minor > refunded_minor",
        columns.join(", ")
    );
    let mut query = sqlx::query(&sql).bind(tenant.0).bind(member_id);
    for span in spans {
        let (start, end) = bound(span);
        query = query.bind(start).bind(end);
    }
    let row = query.fetch_one(conn(c)).await?;
    spans
        .iter()
        .enumerate()
        .map(|(index, span)| Ok((*span, row.try_get::<i64, _>(format!("m{index}").as_str())?)))
        .collect()
}
