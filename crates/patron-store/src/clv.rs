//! Stored lifetime-value fits (docs/ANALYTICS.md, "The CLV job"): a run per fit of the BG/NBD
//! and Gamma-Gamma models with their parameters, standard errors and log-likelihoods, and
//! each member's predictions from it. A run is the answer once it is completed; completing
//! a run deletes the member rows of older runs (the runs themselves stay, as the history of
//! the parameters).

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::tenants::TenantId;
use crate::{Store, StoreError, time, unit_of_work};

/// Member rows written per unit of work.
pub const CLV_BATCH_MAX: usize = 500;

/// What the models need of one member: `member_stats` for a member still in the club.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClvInput {
    pub member_id: String,
    pub purchase_days: i64,
    pub first_purchase_day: i64,
    pub last_purchase_day: i64,
    pub repeat_spend_minor: i64,
}

/// Four BG/NBD parameters (also used for their standard errors).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct BgNbdValues {
    pub r: f64,
    pub alpha: f64,
    pub a: f64,
    pub b: f64,
}

/// Three Gamma-Gamma parameters (also used for their standard errors).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct GammaGammaValues {
    pub p: f64,
    pub q: f64,
    pub v: f64,
}

/// The Gamma-Gamma part of a run.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct GammaGammaRun {
    pub customers: i64,
    pub params: GammaGammaValues,
    pub standard_errors: Option<GammaGammaValues>,
    pub log_likelihood: f64,
}

/// One fit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClvRun {
    pub id: i64,
    pub fitted_at: Timestamp,
    pub completed_at: Option<Timestamp>,
    /// Club-local day number (days since 1970-01-01) the summaries are as of.
    pub as_of_day: i64,
    pub horizon_weeks: i64,
    pub monthly_discount_pct: String,
    pub margin_pct: String,
    pub customers: i64,
    pub distinct_tuples: i64,
    pub bgnbd: BgNbdValues,
    pub bgnbd_standard_errors: Option<BgNbdValues>,
    pub bgnbd_log_likelihood: f64,
    pub gamma_gamma: Option<GammaGammaRun>,
    /// Members with predictions.
    pub members: i64,
}

/// A run to record (before its members' rows).
#[derive(Debug, Clone, PartialEq)]
pub struct NewClvRun {
    pub fitted_at: Timestamp,
    pub as_of_day: i64,
    pub horizon_weeks: i64,
    pub monthly_discount_pct: String,
    pub margin_pct: String,
    pub customers: i64,
    pub distinct_tuples: i64,
    pub bgnbd: BgNbdValues,
    pub bgnbd_standard_errors: Option<BgNbdValues>,
    pub bgnbd_log_likelihood: f64,
    pub gamma_gamma: Option<GammaGammaRun>,
}

/// One member's predictions (weeks; money in major units).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClvMember {
    pub member_id: String,
    pub x: i64,
    pub t_x: f64,
    pub t_cal: f64,
    pub p_alive: f64,
    pub expected_purchases: Option<f64>,
    pub expected_spend: Option<f64>,
    pub clv: Option<f64>,
}

const RUN_COLUMNS: &str = "id, fitted_at, completed_at, as_of_day, horizon_weeks, monthly_discount_pct, margin_pct, \
    customers, distinct_tuples, bgnbd_r, bgnbd_alpha, bgnbd_a, bgnbd_b, bgnbd_se_r, bgnbd_se_alpha, bgnbd_se_a, \
    bgnbd_se_b, bgnbd_log_likelihood, gg_customers, gg_p, gg_q, gg_v, gg_se_p, gg_se_q, gg_se_v, \
    gg_log_likelihood, members";

fn run_from(row: &AnyRow) -> Result<ClvRun, StoreError> {
    let se = |name: &str| row.try_get::<Option<f64>, _>(name);
    let bgnbd_standard_errors = match (
        se("bgnbd_se_r")?,
        se("bgnbd_se_alpha")?,
        se("bgnbd_se_a")?,
        se("bgnbd_se_b")?,
    ) {
        (Some(r), Some(alpha), Some(a), Some(b)) => Some(BgNbdValues { r, alpha, a, b }),
        _ => None,
    };
    let gamma_gamma = match (
        row.try_get::<Option<i64>, _>("gg_customers")?,
        se("gg_p")?,
        se("gg_q")?,
        se("gg_v")?,
        se("gg_log_likelihood")?,
    ) {
        (Some(customers), Some(p), Some(q), Some(v), Some(log_likelihood)) => {
            let standard_errors = match (se("gg_se_p")?, se("gg_se_q")?, se("gg_se_v")?) {
                (Some(p), Some(q), Some(v)) => Some(GammaGammaValues { p, q, v }),
                _ => None,
            };
            Some(GammaGammaRun {
                customers,
                params: GammaGammaValues { p, q, v },
                standard_errors,
                log_likelihood,
            })
        }
        _ => None,
    };
    Ok(ClvRun {
        id: row.try_get("id")?,
        fitted_at: time::from_db(row.try_get("fitted_at")?)?,
        completed_at: time::opt_from_db(row.try_get("completed_at")?)?,
        as_of_day: row.try_get("as_of_day")?,
        horizon_weeks: row.try_get("horizon_weeks")?,
        monthly_discount_pct: row.try_get("monthly_discount_pct")?,
        margin_pct: row.try_get("margin_pct")?,
        customers: row.try_get("customers")?,
        distinct_tuples: row.try_get("distinct_tuples")?,
        bgnbd: BgNbdValues {
            r: row.try_get("bgnbd_r")?,
            alpha: row.try_get("bgnbd_alpha")?,
            a: row.try_get("bgnbd_a")?,
            b: row.try_get("bgnbd_b")?,
        },
        bgnbd_standard_errors,
        bgnbd_log_likelihood: row.try_get("bgnbd_log_likelihood")?,
        gamma_gamma,
        members: row.try_get("members")?,
    })
}

fn member_from(row: &AnyRow) -> Result<ClvMember, StoreError> {
    Ok(ClvMember {
        member_id: row.try_get("member_id")?,
        x: row.try_get("x")?,
        t_x: row.try_get("t_x")?,
        t_cal: row.try_get("t_cal")?,
        p_alive: row.try_get("p_alive")?,
        expected_purchases: row.try_get("expected_purchases")?,
        expected_spend: row.try_get("expected_spend")?,
        clv: row.try_get("clv")?,
    })
}

/// A finite value, or NULL (the models answer NaN/∞ only for degenerate inputs).
fn finite(value: Option<f64>) -> Option<f64> {
    value.filter(|v| v.is_finite())
}

impl Store {
    /// The statistics of the tenant's members still in the club who have bought, a page at a
    /// time in member-id order (after `after`).
    pub async fn clv_inputs(
        &self,
        tenant: TenantId,
        after: &str,
        limit: i64,
    ) -> Result<Vec<ClvInput>, StoreError> {
        let rows = sqlx::query(
            "SELECT s.member_id, s.purchase_days, s.first_purchase_day, s.last_purchase_day, s.repeat_spend_minor \
             FROM member_stats s JOIN members m ON m.tenant_id = s.tenant_id AND m.id = s.member_id \
             WHERE s.tenant_id = $1 AND m.status = 'active' AND s.member_id > $2 \
             ORDER BY s.member_id LIMIT $3",
        )
        .bind(tenant.0)
        .bind(after)
        .bind(limit.clamp(1, 100_000))
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|row| {
                Ok(ClvInput {
                    member_id: row.try_get("member_id")?,
                    purchase_days: row.try_get("purchase_days")?,
                    first_purchase_day: row.try_get("first_purchase_day")?,
                    last_purchase_day: row.try_get("last_purchase_day")?,
                    repeat_spend_minor: row.try_get("repeat_spend_minor")?,
                })
            })
            .collect()
    }

    /// Records a fit (not yet completed). Answers its id.
    pub async fn start_clv_run(
        &self,
        tenant: TenantId,
        run: &NewClvRun,
    ) -> Result<i64, StoreError> {
        let se = run.bgnbd_standard_errors;
        let gg = run.gamma_gamma;
        let gg_se = gg.and_then(|g| g.standard_errors);
        unit_of_work!(self, |tx| {
            async {
                let row = sqlx::query(
                    "INSERT INTO clv_runs (tenant_id, fitted_at, as_of_day, horizon_weeks, monthly_discount_pct, \
                     margin_pct, customers, distinct_tuples, bgnbd_r, bgnbd_alpha, bgnbd_a, bgnbd_b, bgnbd_se_r, \
                     bgnbd_se_alpha, bgnbd_se_a, bgnbd_se_b, bgnbd_log_likelihood, gg_customers, gg_p, gg_q, gg_v, \
                     gg_se_p, gg_se_q, gg_se_v, gg_log_likelihood, members) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, \
                     $20, $21, $22, $23, $24, $25, 0) RETURNING id",
                )
                .bind(tenant.0)
                .bind(time::to_db(run.fitted_at))
                .bind(run.as_of_day)
                .bind(run.horizon_weeks)
                .bind(&run.monthly_discount_pct)
                .bind(&run.margin_pct)
                .bind(run.customers)
                .bind(run.distinct_tuples)
                .bind(run.bgnbd.r)
                .bind(run.bgnbd.alpha)
                .bind(run.bgnbd.a)
                .bind(run.bgnbd.b)
                .bind(finite(se.map(|s| s.r)))
                .bind(finite(se.map(|s| s.alpha)))
                .bind(finite(se.map(|s| s.a)))
                .bind(finite(se.map(|s| s.b)))
                .bind(run.bgnbd_log_likelihood)
                .bind(gg.map(|g| g.customers))
                .bind(gg.map(|g| g.params.p))
                .bind(gg.map(|g| g.params.q))
                .bind(gg.map(|g| g.params.v))
                .bind(finite(gg_se.map(|s| s.p)))
                .bind(finite(gg_se.map(|s| s.q)))
                .bind(finite(gg_se.map(|s| s.v)))
                .bind(gg.map(|g| g.log_likelihood))
                .fetch_one(&mut *tx)
                .await?;
                Ok::<i64, StoreError>(row.try_get("id")?)
            }
            .await
        })
    }

    /// Writes members' predictions of a run, at most [`CLV_BATCH_MAX`] per unit of work.
    pub async fn store_clv_members(
        &self,
        tenant: TenantId,
        run_id: i64,
        members: &[ClvMember],
    ) -> Result<(), StoreError> {
        for batch in members.chunks(CLV_BATCH_MAX) {
            let mut sql = String::from(
                "INSERT INTO clv_members (tenant_id, run_id, member_id, x, t_x, t_cal, p_alive, \
                 expected_purchases, expected_spend, clv) VALUES ",
            );
            for i in 0..batch.len() {
                let p = 3 + i * 8;
                if i > 0 {
                    sql.push_str(", ");
                }
                sql.push_str(&format!(
                    "($1, $2, ${}, ${}, ${}, ${}, ${}, ${}, ${}, ${})",
                    p,
                    p + 1,
                    p + 2,
                    p + 3,
                    p + 4,
                    p + 5,
                    p + 6,
                    p + 7
                ));
            }
            sql.push_str(" ON CONFLICT (tenant_id, run_id, member_id) DO NOTHING");
            unit_of_work!(self, |tx| {
                async {
                    let mut query = sqlx::query(&sql).bind(tenant.0).bind(run_id);
                    for member in batch {
                        query = query
                            .bind(&member.member_id)
                            .bind(member.x)
                            .bind(member.t_x)
                            .bind(member.t_cal)
                            .bind(member.p_alive)
                            .bind(finite(member.expected_purchases))
                            .bind(finite(member.expected_spend))
                            .bind(finite(member.clv));
                    }
                    query.execute(&mut *tx).await?;
                    Ok::<(), StoreError>(())
                }
                .await
            })?;
        }
        Ok(())
    }

    /// Marks a run completed (it becomes the latest fit) and deletes older runs' member rows.
    pub async fn complete_clv_run(
        &self,
        tenant: TenantId,
        run_id: i64,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        unit_of_work!(self, |tx| {
            async {
                sqlx::query(
                    "UPDATE clv_runs SET completed_at = $3, members = \
                     (SELECT CAST(COUNT(*) AS BIGINT) FROM clv_members WHERE tenant_id = $1 AND run_id = $2) \
                     WHERE tenant_id = $1 AND id = $2",
                )
                .bind(tenant.0)
                .bind(run_id)
                .bind(time::to_db(now))
                .execute(&mut *tx)
                .await?;
                sqlx::query("DELETE FROM clv_members WHERE tenant_id = $1 AND run_id < $2")
                    .bind(tenant.0)
                    .bind(run_id)
                    .execute(&mut *tx)
                    .await?;
                Ok::<(), StoreError>(())
            }
            .await
        })
    }

    /// The latest completed fit, if any.
    pub async fn latest_clv_run(&self, tenant: TenantId) -> Result<Option<ClvRun>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {RUN_COLUMNS} FROM clv_runs WHERE tenant_id = $1 AND completed_at IS NOT NULL \
             ORDER BY id DESC LIMIT 1"
        ))
        .bind(tenant.0)
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(run_from).transpose()
    }

    /// A member's predictions from the given run.
    pub async fn clv_member(
        &self,
        tenant: TenantId,
        run_id: i64,
        member_id: &str,
    ) -> Result<Option<ClvMember>, StoreError> {
        let row = sqlx::query(
            "SELECT member_id, x, t_x, t_cal, p_alive, expected_purchases, expected_spend, clv \
             FROM clv_members WHERE tenant_id = $1 AND run_id = $2 AND member_id = $3",
        )
        .bind(tenant.0)
        .bind(run_id)
        .bind(member_id)
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(member_from).transpose()
    }

    /// Every member's predictions of a run, in member-id order (after `after`).
    pub async fn clv_members(
        &self,
        tenant: TenantId,
        run_id: i64,
        after: &str,
        limit: i64,
    ) -> Result<Vec<ClvMember>, StoreError> {
        let rows = sqlx::query(
            "SELECT member_id, x, t_x, t_cal, p_alive, expected_purchases, expected_spend, clv \
             FROM clv_members WHERE tenant_id = $1 AND run_id = $2 AND member_id > $3 \
             ORDER BY member_id LIMIT $4",
        )
        .bind(tenant.0)
        .bind(run_id)
        .bind(after)
        .bind(limit.clamp(1, 100_000))
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(member_from).collect()
    }
}
