//! Purchases: posting (earning decided under the member's wallet lock), the preview,
//! refunds, attaching an anonymous purchase, and the member statistics they feed.

use patron_domain::program::Program;
use patron_domain::rules::{RuleUsage, TriggerKind};
use patron_domain::{earning, text};
use patron_store::Rejection;
use patron_store::idempotency::{Claim, DOCUMENT_KEY_PREFIX};
use patron_store::members::Member;
use patron_store::purchases::{
    MemberReads, NewPurchase, NewRefund, PurchaseLine, PurchaseReceipt, RefundReceipt,
};
use patron_store::tenants::Tenant;

use crate::{
    Engine, EngineError, LoadedProgram, Outcome, PurchaseRequest, RefundRequest, check_time,
    claims, new_id, request_hash, rules, unwrap_idempotent, validate_idempotency_key,
};

impl Engine {
    fn new_purchase(
        &self,
        request: &PurchaseRequest,
        program: &Program,
        member_id: Option<String>,
        hash: String,
    ) -> Result<NewPurchase, EngineError> {
        request.validate()?;
        if request.currency != program.currency.code {
            return Err(EngineError::Rejected(Rejection::WrongCurrency {
                expected: program.currency.code.clone(),
                found: request.currency.clone(),
            }));
        }
        let limits = &program.limits;
        let occurred_at = request.occurred_at.unwrap_or_else(|| self.now());
        check_time(program, occurred_at, self.now())?;
        let mut lines = Vec::with_capacity(request.lines.len());
        let (mut total, mut eligible_total) = (0i64, 0i64);
        for (i, line) in request.lines.iter().enumerate() {
            let quantity = text::number::parse_decimal(&line.quantity)
                .map_err(|e| EngineError::invalid(format!("lines[{i}].quantity"), e.to_string()))?;
            limits
                .check_line(quantity, 0)
                .map_err(|e| EngineError::invalid(format!("lines[{i}].quantity"), e.to_string()))?;
            let line_total = patron_domain::purchase::line_total_minor(
                quantity,
                line.unit_price_minor,
                line.discount_minor,
            )
            .map_err(|e| EngineError::invalid(format!("lines[{i}]"), e.to_string()))?;
            limits.check_line(quantity, line_total).map_err(|e| {
                EngineError::invalid(format!("lines[{i}]"), format!("the line's total {e}"))
            })?;
            let eligible = earning::is_eligible(&program.earning, &line.sku, &line.category);
            total = limits
                .add_to_purchase(total, line_total)
                .map_err(|e| EngineError::invalid("lines", format!("the purchase's total {e}")))?;
            if eligible {
                // At most `total`, which the limit bounds.
                eligible_total += line_total;
            }
            lines.push(PurchaseLine {
                line_no: i64::try_from(i).unwrap_or(i64::MAX) + 1,
                sku: line.sku.clone(),
                category: line.category.clone(),
                quantity: quantity.normalize().to_string(),
                unit_price_minor: line.unit_price_minor,
                discount_minor: line.discount_minor,
                total_minor: line_total,
                eligible,
            });
        }
        Ok(NewPurchase {
            id: new_id("pur"),
            document_id: request.document_id.clone(),
            store_id: request.store_id.clone(),
            channel: request.channel.clone(),
            member_id,
            occurred_at,
            currency: request.currency.clone(),
            total_minor: total,
            eligible_minor: eligible_total,
            lines,
            request_hash: hash,
        })
    }

    /// Posts a purchase; idempotent by the shop's document id, and by the key when given.
    /// What it earns (base + rules) is decided inside the unit of work, under the member's
    /// wallet lock, so rule limits hold under concurrency.
    pub async fn post_purchase(
        &self,
        tenant: &Tenant,
        request: &PurchaseRequest,
        idempotency_key: Option<&str>,
    ) -> Outcome<PurchaseReceipt> {
        validate_idempotency_key(idempotency_key)?;
        // A member's purchase checks the program's version in the statement that reads the
        // member, inside its unit of work: so the cached program is used without a read of
        // its own, and if another version was applied meanwhile the unit (which wrote
        // nothing) runs again with it. An anonymous purchase reads nothing else: it asks.
        let mut loaded = match (&request.member_id, self.cached_program(tenant)) {
            (Some(_), Some(loaded)) => loaded,
            _ => self.program(tenant).await?,
        };
        let mut attempt = 0;
        loop {
            attempt += 1;
            match self
                .post_purchase_under(tenant, request, idempotency_key, &loaded)
                .await
            {
                Err(EngineError::Store(patron_store::StoreError::ProgramChanged { .. }))
                    if attempt < 4 =>
                {
                    loaded = self.program(tenant).await?;
                }
                other => return other,
            }
        }
    }

    /// [`Engine::post_purchase`] under one version of the program.
    async fn post_purchase_under(
        &self,
        tenant: &Tenant,
        request: &PurchaseRequest,
        idempotency_key: Option<&str>,
        loaded: &LoadedProgram,
    ) -> Outcome<PurchaseReceipt> {
        let program = &loaded.program;
        let hash = request_hash("purchase.post", request)?;
        // The member is read (and an unknown one refused, nothing stored) under the wallet
        // lock inside the unit of work: no read of its own before it.
        let purchase =
            self.new_purchase(request, program, request.member_id.clone(), hash.clone())?;
        let mut claims = claims(idempotency_key, "purchase.post", &hash);
        claims.push(Claim::new(
            format!("{DOCUMENT_KEY_PREFIX}purchase:{}", request.document_id),
            "purchase.post",
            &hash,
        ));
        let now = self.now();
        // `member.statistics` (without this purchase) and `member.segments` for the rules are
        // read with the member under the wallet lock, and only when a purchase rule reads them.
        let failures = rules::Failures::default();
        let decide = |member: &Member, usage: &RuleUsage, reads: &MemberReads| {
            let (plan, failed) = rules::earn_plan_with(
                program,
                member,
                reads.statistics.as_ref(),
                &reads.segments,
                &purchase,
                now,
                usage,
            )
            .map_err(EngineError::into_store)?;
            failures.set(failed);
            Ok(plan)
        };
        let decide = rules::earn_decision(program, &decide);
        let result = self
            .store
            .post_purchase(
                tenant.id,
                program,
                Some(loaded.version),
                &purchase,
                decide,
                &claims,
                now,
            )
            .await?;
        if !result.replayed {
            self.report_rule_failures(failures.take());
        }
        unwrap_idempotent(result)
    }

    /// What posting this purchase would answer now (points, the rules that would fire, the
    /// state the points would have), without writing anything: no idempotency key is claimed
    /// and nothing is stored. The receipt's `purchase_id` is not stored anywhere, and it has
    /// no balance or tier (nothing changed).
    pub async fn preview_purchase(
        &self,
        tenant: &Tenant,
        request: &PurchaseRequest,
    ) -> Result<PurchaseReceipt, EngineError> {
        let program = self.program(tenant).await?.program;
        let hash = request_hash("purchase.post", request)?;
        let member = match &request.member_id {
            Some(id) => Some(self.member(tenant, id).await?),
            None => None,
        };
        let purchase = self.new_purchase(
            request,
            &program,
            member.as_ref().map(|m| m.id.clone()),
            hash,
        )?;
        let now = self.now();
        let mut receipt = PurchaseReceipt {
            purchase_id: purchase.id.clone(),
            document_id: purchase.document_id.clone(),
            member_id: purchase.member_id.clone(),
            points: 0,
            base_points: 0,
            rules: Vec::new(),
            points_state: "none".into(),
            pending_until: None,
            balance: None,
            tier: None,
        };
        let Some(member) = member else {
            return Ok(receipt);
        };
        if !member.is_active() {
            return Err(Rejection::MemberExited {
                member_id: member.id.clone(),
            }
            .into());
        }
        let usage = self
            .store
            .rule_usage(
                tenant.id,
                &program,
                TriggerKind::Purchase,
                &member.id,
                purchase.occurred_at,
            )
            .await?;
        let reads = rules::read_member(
            &self.store,
            tenant.id,
            &program,
            TriggerKind::Purchase,
            &member.id,
        )
        .await?;
        let (plan, failures) = rules::earn_plan_with(
            &program,
            &member,
            reads.statistics.as_ref(),
            &reads.segments,
            &purchase,
            now,
            &usage,
        )?;
        self.report_rule_failures(failures);
        let points = plan.points.max(0);
        let pending = plan.pending_until.filter(|until| *until > now);
        receipt.points = points;
        receipt.base_points = plan.base_points;
        receipt.rules = plan.awards;
        receipt.points_state = match (points, pending) {
            (0, _) => "none",
            (_, Some(_)) => "pending",
            (_, None) => "posted",
        }
        .into();
        receipt.pending_until = if points > 0 { pending } else { None };
        Ok(receipt)
    }

    /// A member's statistics (docs/ANALYTICS.md, "Member statistics"); `None` before their
    /// first counted purchase.
    pub async fn member_stats(
        &self,
        tenant: &Tenant,
        member_id: &str,
    ) -> Result<Option<patron_store::stats::MemberStats>, EngineError> {
        Ok(self.store.member_stats(tenant.id, member_id).await?)
    }

    /// Recomputes the tenant's member statistics from the purchase history and reports every
    /// difference from the stored ones; `fix` rewrites the members that differ.
    pub async fn rebuild_member_stats(
        &self,
        tenant: &Tenant,
        fix: bool,
    ) -> Result<patron_store::stats::StatsRebuild, EngineError> {
        let program = self.program(tenant).await?.program;
        Ok(self
            .store
            .rebuild_member_stats(tenant.id, &program.tz(), fix, self.now())
            .await?)
    }

    pub async fn purchase(
        &self,
        tenant: &Tenant,
        purchase_id: &str,
    ) -> Result<patron_store::purchases::Purchase, EngineError> {
        self.store
            .purchase(tenant.id, purchase_id)
            .await?
            .ok_or_else(|| {
                Rejection::PurchaseNotFound {
                    purchase_id: purchase_id.to_string(),
                }
                .into()
            })
    }

    /// The rules that fired for a purchase, with their points, named in the member's
    /// language as the receipt showed them (the referrer's line of a referral is theirs, not
    /// the purchase's).
    pub async fn purchase_rules(
        &self,
        tenant: &Tenant,
        purchase_id: &str,
    ) -> Result<Vec<patron_store::rules::RuleAward>, EngineError> {
        Ok(self
            .store
            .rule_awards(tenant.id, "purchase", purchase_id)
            .await?)
    }

    pub async fn refund(
        &self,
        tenant: &Tenant,
        purchase_id: &str,
        request: &RefundRequest,
        idempotency_key: Option<&str>,
    ) -> Outcome<RefundReceipt> {
        validate_idempotency_key(idempotency_key)?;
        request.validate()?;
        let program = self.program(tenant).await?.program;
        if let Some(occurred_at) = request.occurred_at {
            check_time(&program, occurred_at, self.now())?;
        }
        let hash = request_hash("purchase.refund", &(purchase_id, request))?;
        let refund = NewRefund {
            id: new_id("ref"),
            purchase_id: purchase_id.to_string(),
            document_id: request.document_id.clone(),
            lines: request.refund_lines()?,
            occurred_at: request.occurred_at.unwrap_or_else(|| self.now()),
            request_hash: hash.clone(),
        };
        let mut claims = claims(idempotency_key, "purchase.refund", &hash);
        claims.push(Claim::new(
            format!("{DOCUMENT_KEY_PREFIX}refund:{}", request.document_id),
            "purchase.refund",
            &hash,
        ));
        unwrap_idempotent(
            self.store
                .refund_purchase(tenant.id, &program, &refund, &claims, self.now())
                .await?,
        )
    }

    /// Attaches an anonymous purchase to a member, who earns for it then.
    pub async fn attach_purchase(
        &self,
        tenant: &Tenant,
        purchase_id: &str,
        member_id: &str,
        idempotency_key: Option<&str>,
    ) -> Outcome<PurchaseReceipt> {
        validate_idempotency_key(idempotency_key)?;
        let program = self.program(tenant).await?.program;
        let hash = request_hash("purchase.attach", &(purchase_id, member_id))?;
        let claims = claims(idempotency_key, "purchase.attach", &hash);
        let stored = self.purchase(tenant, purchase_id).await?;
        let draft = NewPurchase {
            id: stored.id.clone(),
            document_id: stored.document_id.clone(),
            store_id: stored.store_id.clone(),
            channel: stored.channel.clone(),
            member_id: Some(member_id.to_string()),
            occurred_at: stored.occurred_at,
            currency: stored.currency.clone(),
            total_minor: stored.total_minor,
            eligible_minor: stored.eligible_minor,
            lines: stored.lines.clone(),
            request_hash: hash.clone(),
        };
        let now = self.now();
        let failures = rules::Failures::default();
        // Earns as it would have when posted: the rules see the member's statistics (without
        // this purchase) and segments, read under the wallet lock.
        let decide = |member: &Member, usage: &RuleUsage, reads: &MemberReads| {
            let (plan, failed) = rules::earn_plan_with(
                &program,
                member,
                reads.statistics.as_ref(),
                &reads.segments,
                &draft,
                now,
                usage,
            )
            .map_err(EngineError::into_store)?;
            failures.set(failed);
            Ok(plan)
        };
        let decide = rules::earn_decision(&program, &decide);
        let result = self
            .store
            .attach_purchase(
                tenant.id,
                &program,
                purchase_id,
                member_id,
                decide,
                &claims,
                now,
            )
            .await?;
        if !result.replayed {
            self.report_rule_failures(failures.take());
        }
        unwrap_idempotent(result)
    }
}
