//! `patron ledger verify`: recompute every stored total and lot remainder from the append-only
//! rows and check the invariants of docs/LEDGER.md. Reads only.

use jiff::Timestamp;
use sqlx::Row;

use crate::tenants::TenantId;
use crate::{Store, StoreError, time};

/// One disagreement between what is stored and what the transfers imply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Discrepancy {
    pub subject: String,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct VerifyReport {
    pub accounts: u64,
    pub transfers: u64,
    pub lots: u64,
    /// Open lots past their expiry instant: the expiry job has not reached them yet.
    pub lots_past_due: u64,
    pub discrepancies: Vec<Discrepancy>,
}

impl VerifyReport {
    pub fn is_clean(&self) -> bool {
        self.discrepancies.is_empty()
    }
    fn fail(&mut self, subject: impl Into<String>, message: impl Into<String>) {
        self.discrepancies.push(Discrepancy {
            subject: subject.into(),
            message: message.into(),
        });
    }
}

impl Store {
    /// Checks a tenant's ledger as of `now`. Invariants checked:
    /// stored wallet totals = recomputation from transfers (2); conservation of posted and
    /// pending points across all accounts (1); no negative spendable balance except as debt
    /// created by an allowed clawback (3); every pending transfer resolved at most once and
    /// never posted above what was held (5); clawbacks ≤ earnings per purchase (6); lot
    /// remainders = amount + movements, within [0, amount], and unexpired remainders minus
    /// debt = spendable (7).
    pub async fn verify_ledger(
        &self,
        tenant: TenantId,
        now: Timestamp,
    ) -> Result<VerifyReport, StoreError> {
        let mut report = VerifyReport::default();
        self.verify_accounts(tenant, &mut report).await?;
        self.verify_lots(tenant, now, &mut report).await?;
        self.verify_pending(tenant, &mut report).await?;
        self.verify_clawbacks(tenant, &mut report).await?;
        let transfers =
            sqlx::query("SELECT CAST(COUNT(*) AS BIGINT) AS n FROM transfers WHERE tenant_id = $1")
                .bind(tenant.0)
                .fetch_one(self.pool())
                .await?;
        report.transfers = u64::try_from(transfers.try_get::<i64, _>("n")?).unwrap_or(0);
        Ok(report)
    }

    /// Invariants 1 and 2 over every account, and the per-wallet checks of `verify_wallet`.
    async fn verify_accounts(
        &self,
        tenant: TenantId,
        report: &mut VerifyReport,
    ) -> Result<(), StoreError> {
        // Per-account recomputation: posted rows count fully; a post/void row removes its
        // pending transfer's amount from the pending side and (post) adds its own amount.
        let recomputed = sqlx::query(
            "SELECT a.id, a.kind, a.member_id, a.credits_posted, a.debits_posted, a.credits_pending, a.debits_pending, \
             CAST(COALESCE((SELECT SUM(t.amount) FROM transfers t WHERE t.credit_account = a.id AND t.kind IN ('posted', 'post_pending')), 0) AS BIGINT) AS cp, \
             CAST(COALESCE((SELECT SUM(t.amount) FROM transfers t WHERE t.debit_account = a.id AND t.kind IN ('posted', 'post_pending')), 0) AS BIGINT) AS dp, \
             CAST(COALESCE((SELECT SUM(t.amount) FROM transfers t WHERE t.credit_account = a.id AND t.kind = 'pending'), 0) AS BIGINT) \
               - CAST(COALESCE((SELECT SUM(p.amount) FROM transfers r JOIN transfers p ON p.id = r.pending_id WHERE r.credit_account = a.id AND r.kind IN ('post_pending', 'void_pending')), 0) AS BIGINT) AS cpend, \
             CAST(COALESCE((SELECT SUM(t.amount) FROM transfers t WHERE t.debit_account = a.id AND t.kind = 'pending'), 0) AS BIGINT) \
               - CAST(COALESCE((SELECT SUM(p.amount) FROM transfers r JOIN transfers p ON p.id = r.pending_id WHERE r.debit_account = a.id AND r.kind IN ('post_pending', 'void_pending')), 0) AS BIGINT) AS dpend \
             FROM accounts a WHERE a.tenant_id = $1 ORDER BY a.id",
        )
        .bind(tenant.0)
        .fetch_all(self.pool())
        .await?;
        let (mut sum_posted, mut sum_pending) = (0i64, 0i64);
        for row in &recomputed {
            report.accounts += 1;
            let id: i64 = row.try_get("id")?;
            let kind: String = row.try_get("kind")?;
            let member_id: Option<String> = row.try_get("member_id")?;
            let computed = [
                row.try_get("cp")?,
                row.try_get("dp")?,
                row.try_get("cpend")?,
                row.try_get("dpend")?,
            ];
            let [cp, dp, cpend, dpend] = computed;
            sum_posted += cp - dp;
            sum_pending += cpend - dpend;
            let subject = match &member_id {
                Some(member) => format!("wallet {id} (member {member})"),
                None => format!("{kind} account {id}"),
            };
            if cpend < 0 || dpend < 0 {
                report.fail(
                    &subject,
                    format!("negative pending totals: credits {cpend}, debits {dpend}"),
                );
            }
            if member_id.is_none() {
                continue; // System accounts keep no stored totals.
            }
            let stored: [i64; 4] = [
                row.try_get("credits_posted")?,
                row.try_get("debits_posted")?,
                row.try_get("credits_pending")?,
                row.try_get("debits_pending")?,
            ];
            self.verify_wallet(id, &subject, stored, computed, report)
                .await?;
        }
        if sum_posted != 0 || sum_pending != 0 {
            report.fail(
                "tenant",
                format!("accounts do not sum to zero: posted {sum_posted}, pending {sum_pending}"),
            );
        }
        Ok(())
    }

    /// One wallet: its stored totals against the recomputed ones (credits and debits, posted
    /// then pending), invariant 7 (unexpired remainders − debt = spendable) and invariant 3
    /// (a debt only from a clawback allowed to go negative).
    async fn verify_wallet(
        &self,
        id: i64,
        subject: &str,
        stored: [i64; 4],
        computed: [i64; 4],
        report: &mut VerifyReport,
    ) -> Result<(), StoreError> {
        let names = [
            "credits_posted",
            "debits_posted",
            "credits_pending",
            "debits_pending",
        ];
        for ((name, stored), computed) in names.iter().zip(stored).zip(computed) {
            if stored != computed {
                report.fail(
                    subject,
                    format!("{name} stored {stored}, transfers say {computed}"),
                );
            }
        }
        let [cp, dp, _, dpend] = computed;
        let spendable = cp - dp - dpend;
        let lots = sqlx::query(
            "SELECT CAST(COALESCE(SUM(remaining), 0) AS BIGINT) AS open FROM lots WHERE account_id = $1 AND remaining > 0",
        )
        .bind(id)
        .fetch_one(self.pool())
        .await?;
        let open: i64 = lots.try_get("open")?;
        let debt = (-spendable).max(0);
        if open - debt != spendable {
            report.fail(
                subject,
                format!("lots hold {open}, debt {debt}, but spendable is {spendable}"),
            );
        }
        if spendable < 0 {
            let clawbacks = sqlx::query(
                "SELECT CAST(COUNT(*) AS BIGINT) AS n FROM transfers WHERE debit_account = $1 AND code = 'clawback'",
            )
            .bind(id)
            .fetch_one(self.pool())
            .await?;
            if clawbacks.try_get::<i64, _>("n")? == 0 {
                report.fail(
                    subject,
                    format!("spendable {spendable} below zero without a clawback"),
                );
            }
        }
        Ok(())
    }

    /// Lots: remaining = amount + movements, 0 ≤ remaining ≤ amount; open lots past their
    /// expiry are counted, not failed (the expiry job may not have run yet).
    async fn verify_lots(
        &self,
        tenant: TenantId,
        now: Timestamp,
        report: &mut VerifyReport,
    ) -> Result<(), StoreError> {
        let lots = sqlx::query(
            "SELECT l.id, l.amount, l.remaining, l.expires_at, \
             CAST(COALESCE((SELECT SUM(m.amount) FROM lot_movements m WHERE m.lot_id = l.id), 0) AS BIGINT) AS moved \
             FROM lots l WHERE l.tenant_id = $1 ORDER BY l.id",
        )
        .bind(tenant.0)
        .fetch_all(self.pool())
        .await?;
        for row in &lots {
            report.lots += 1;
            let id: i64 = row.try_get("id")?;
            let amount: i64 = row.try_get("amount")?;
            let remaining: i64 = row.try_get("remaining")?;
            let moved: i64 = row.try_get("moved")?;
            if remaining != amount + moved {
                report.fail(
                    format!("lot {id}"),
                    format!("remaining {remaining}, movements say {}", amount + moved),
                );
            }
            if remaining < 0 || remaining > amount {
                report.fail(
                    format!("lot {id}"),
                    format!("remaining {remaining} outside [0, {amount}]"),
                );
            }
        }
        let due = sqlx::query(
            "SELECT CAST(COUNT(*) AS BIGINT) AS n FROM lots WHERE tenant_id = $1 AND remaining > 0 AND expires_at <= $2",
        )
        .bind(tenant.0)
        .bind(time::to_db(now))
        .fetch_one(self.pool())
        .await?;
        report.lots_past_due = u64::try_from(due.try_get::<i64, _>("n")?).unwrap_or(0);
        Ok(())
    }

    /// Pending transfers: resolved at most once (also a unique index), posted ≤ held.
    async fn verify_pending(
        &self,
        tenant: TenantId,
        report: &mut VerifyReport,
    ) -> Result<(), StoreError> {
        let over = sqlx::query(
            "SELECT r.id, r.amount, p.amount AS held FROM transfers r JOIN transfers p ON p.id = r.pending_id \
             WHERE r.tenant_id = $1 AND r.kind = 'post_pending' AND r.amount > p.amount",
        )
        .bind(tenant.0)
        .fetch_all(self.pool())
        .await?;
        for row in over {
            let id: i64 = row.try_get("id")?;
            report.fail(format!("transfer {id}"), "posted more than was held");
        }
        Ok(())
    }

    /// Clawbacks never exceed earnings.
    async fn verify_clawbacks(
        &self,
        tenant: TenantId,
        report: &mut VerifyReport,
    ) -> Result<(), StoreError> {
        let purchases = sqlx::query(
            "SELECT id, points, settled_points, clawed_back_points FROM purchases WHERE tenant_id = $1 \
             AND (settled_points > points OR clawed_back_points > settled_points)",
        )
        .bind(tenant.0)
        .fetch_all(self.pool())
        .await?;
        for row in purchases {
            let id: String = row.try_get("id")?;
            report.fail(format!("purchase {id}"), "clawed back more than it earned");
        }
        Ok(())
    }
}
