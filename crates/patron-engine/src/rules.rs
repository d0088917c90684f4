//! Earning by the program's rules: the facts an evaluation reads, built from the store's
//! records, and the plans the store executes.
//!
//! The engine never decides before the unit of work: it hands the store a function
//! ([`patron_store::rules::Decide`]) that the store calls under the member's wallet lock with
//! the member as read there and the usage counts of the occasion's limited rules. The
//! function evaluates the rules ([`patron_domain::rules::evaluate`]): a purchase earns the
//! base (eligible amount × rate × tier multiplier) plus every rule that fires.

use std::collections::BTreeMap;
use std::sync::Mutex;

use jiff::Timestamp;
use patron_domain::expiry;
use patron_domain::program::{Locale, Program};
use patron_domain::rules::{
    self, Beneficiary, EvalInput, Evaluation, EventFacts, FactValue, LineFacts, MemberFacts,
    PurchaseFacts, ReferralFacts, RuleFailure, RuleKind, RuleUsage, Trigger, TriggerKind,
};
use patron_domain::rust_decimal::Decimal;
use patron_store::members::Member;
use patron_store::purchases::{EarnDecision, EarnPlan, MemberReads, NewPurchase};
use patron_store::rules::{ReferralPayout, RuleAward, RuleGrant};
use patron_store::stats::{self, MemberStats};

use crate::EngineError;

/// Told about every rule skipped because its expression failed at run time (the HTTP layer
/// counts them in `/metrics`). The engine logs each one with `tracing::warn!` as well.
pub trait RuleFailureObserver: Send + Sync + std::fmt::Debug {
    fn rule_failed(&self, rule_id: &str, error: &str);
}

/// A JSON value as a fact expressions can read.
pub(crate) fn fact_from_json(value: &serde_json::Value) -> FactValue {
    match value {
        serde_json::Value::Null => FactValue::Null,
        serde_json::Value::Bool(b) => FactValue::Bool(*b),
        serde_json::Value::Number(n) => match n.as_i64() {
            Some(i) => FactValue::Int(i),
            None => FactValue::Double(n.as_f64().unwrap_or(0.0)),
        },
        serde_json::Value::String(s) => FactValue::Text(s.clone()),
        serde_json::Value::Array(items) => {
            FactValue::List(items.iter().map(fact_from_json).collect())
        }
        serde_json::Value::Object(map) => FactValue::Map(facts_from_object(map)),
    }
}

pub(crate) fn facts_from_object(
    map: &serde_json::Map<String, serde_json::Value>,
) -> BTreeMap<String, FactValue> {
    map.iter()
        .map(|(key, value)| (key.clone(), fact_from_json(value)))
        .collect()
}

/// `member.statistics` (docs/PROGRAM.md, expressions): the member's statistics as of `now`,
/// amounts in major units. Before the first counted purchase: zero counts and spends, and
/// no timestamps or `days_since_last_purchase` (null).
pub(crate) fn statistics_facts(
    stats: Option<&MemberStats>,
    program: &Program,
    now: Timestamp,
) -> BTreeMap<String, FactValue> {
    let scale = 10f64.powi(i32::try_from(program.currency.minor_unit).unwrap_or(0));
    let mut facts = BTreeMap::new();
    let (purchases, days, spend, average) = match stats {
        Some(s) => (
            s.purchases,
            s.purchase_days,
            s.spend_minor as f64 / scale,
            s.average_spend_minor().unwrap_or(0.0) / scale,
        ),
        None => (0, 0, 0.0, 0.0),
    };
    facts.insert("purchases".into(), FactValue::Int(purchases));
    facts.insert("purchase_days".into(), FactValue::Int(days));
    facts.insert("spend".into(), FactValue::Double(spend));
    facts.insert("average_spend".into(), FactValue::Double(average));
    let (first, last, since) = match stats {
        Some(s) => (
            FactValue::Timestamp(s.first_purchase_at),
            FactValue::Timestamp(s.last_purchase_at),
            FactValue::Int(stats::day_number(now, &program.tz()) - s.last_purchase_day),
        ),
        None => (FactValue::Null, FactValue::Null, FactValue::Null),
    };
    facts.insert("first_purchase_at".into(), first);
    facts.insert("last_purchase_at".into(), last);
    facts.insert("days_since_last_purchase".into(), since);
    facts
}

/// What rules know about a member.
pub(crate) fn member_facts(member: &Member) -> MemberFacts {
    let attributes = serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(
        &member.profile.attributes,
    )
    .map(|map| facts_from_object(&map))
    .unwrap_or_default();
    MemberFacts {
        id: member.id.clone(),
        tier: member.tier.clone(),
        segments: Vec::new(),
        attributes,
        statistics: BTreeMap::new(),
        birth_date: member
            .profile
            .birthday
            .as_deref()
            .and_then(|birthday| birthday.parse().ok()),
        enrolled_at: member.enrolled_at,
    }
}

/// The referral a member's purchase can still reward: they were referred and the referral
/// has not paid yet (read under the wallet lock, so two racing purchases cannot both see it
/// open).
pub(crate) fn open_referral(member: &Member) -> Option<ReferralFacts> {
    match (&member.referral.referred_by, member.referral.rewarded_at) {
        (Some(referrer_id), None) => Some(ReferralFacts {
            referrer_id: referrer_id.clone(),
        }),
        _ => None,
    }
}

/// What rules know about a purchase.
pub(crate) fn purchase_facts(purchase: &NewPurchase) -> PurchaseFacts {
    PurchaseFacts {
        channel: purchase.channel.clone(),
        store: purchase.store_id.clone(),
        time: purchase.occurred_at,
        lines: purchase
            .lines
            .iter()
            .map(|line| LineFacts {
                sku: line.sku.clone(),
                category: line.category.clone(),
                quantity: line.quantity.parse().unwrap_or(Decimal::ZERO),
                unit_price_minor: line.unit_price_minor,
                total_minor: line.total_minor,
            })
            .collect(),
        referral: None,
    }
}

/// A custom event as rules see it.
pub(crate) fn event_facts(
    event_type: &str,
    time: Timestamp,
    properties: &serde_json::Map<String, serde_json::Value>,
) -> EventFacts {
    EventFacts {
        event_type: event_type.to_string(),
        time,
        properties: facts_from_object(properties),
    }
}

/// The language a member reads receipts in: theirs, else the club's default.
fn locale_of(member: &Member, program: &Program) -> Locale {
    member
        .profile
        .locale
        .as_deref()
        .and_then(Locale::from_code)
        .unwrap_or(program.default_locale)
}

/// The member's awards of an evaluation, named in their language. Awards for someone else
/// (the referrer of a referral) are not the member's receipt lines.
fn member_awards(evaluation: &Evaluation, member: &Member, program: &Program) -> Vec<RuleAward> {
    let locale = locale_of(member, program);
    evaluation
        .awards
        .iter()
        .filter(|award| award.beneficiary == Beneficiary::Member)
        .map(|award| RuleAward {
            rule_id: award.rule_id.clone(),
            name: award
                .names
                .resolve(locale, program.default_locale)
                .to_string(),
            points: award.points,
        })
        .collect()
}

/// The referral the evaluation paid, if a referral rule fired (for the newcomer, the
/// referrer or both): the store pays the referrer and marks the referral used.
fn referral_payout(
    program: &Program,
    evaluation: &Evaluation,
    referral: Option<&ReferralFacts>,
) -> Option<ReferralPayout> {
    let referral = referral?;
    let rule = program.rules.iter().find(|rule| {
        matches!(rule.kind, RuleKind::Referral { .. })
            && evaluation
                .awards
                .iter()
                .any(|award| award.rule_id == rule.id)
    })?;
    let referrer_points = evaluation
        .awards
        .iter()
        .filter(|award| {
            award.rule_id == rule.id
                && matches!(&award.beneficiary, Beneficiary::Referrer { member_id } if *member_id == referral.referrer_id)
        })
        .map(|award| award.points)
        .sum();
    Some(ReferralPayout {
        referrer_id: referral.referrer_id.clone(),
        rule_id: rule.id.clone(),
        names: rule.names.clone(),
        referrer_points,
    })
}

/// Evaluates `trigger` for a member.
fn evaluate(
    program: &Program,
    member: &Member,
    trigger: Trigger<'_>,
    now: Timestamp,
    usage: &RuleUsage,
    stats: Option<&MemberStats>,
    segments: &[String],
) -> Evaluation {
    let mut facts = member_facts(member);
    facts.statistics = statistics_facts(stats, program, now);
    facts.segments = segments.to_vec();
    rules::evaluate(
        program,
        &EvalInput {
            member: &facts,
            trigger,
            now,
            usage,
        },
    )
}

/// What a purchase earns for `member`: the base and the purchase rules, and when the points
/// post. Also answers the rules that failed. `stats` are the member's statistics
/// (`member.statistics`) as read under the wallet lock: they do not include the purchase
/// being decided; `segments` the member's segments (`member.segments`).
pub(crate) fn earn_plan_with(
    program: &Program,
    member: &Member,
    stats: Option<&MemberStats>,
    segments: &[String],
    purchase: &NewPurchase,
    now: Timestamp,
    usage: &RuleUsage,
) -> Result<(EarnPlan, Vec<RuleFailure>), EngineError> {
    let mut facts = purchase_facts(purchase);
    facts.referral = open_referral(member);
    let evaluation = evaluate(
        program,
        member,
        Trigger::Purchase(&facts),
        now,
        usage,
        stats,
        segments,
    );
    if evaluation.over_limit {
        return Err(points_over_limit(program));
    }
    let plan = EarnPlan {
        points: evaluation.total_points,
        base_points: evaluation.base_points,
        awards: member_awards(&evaluation, member, program),
        pending_until: expiry::pending_until(
            &program.pending,
            purchase.occurred_at,
            &program.calendar(),
        ),
        referral: referral_payout(program, &evaluation, facts.referral.as_ref()),
    };
    Ok((plan, evaluation.failures))
}

/// A purchase whose base earning alone is more than one operation may move: refused as
/// invalid (nothing written, nothing stored under its keys), naming the limit.
fn points_over_limit(program: &Program) -> EngineError {
    EngineError::invalid(
        "lines",
        format!(
            "the purchase would earn more than {} points, the program's limit for one operation (`[limits] points_max`)",
            program.limits.points_max
        ),
    )
}

/// What an event, an enrollment or another occasion without a purchase grants.
pub(crate) fn grant(
    program: &Program,
    member: &Member,
    reads: &MemberReads,
    trigger: Trigger<'_>,
    now: Timestamp,
    usage: &RuleUsage,
) -> (RuleGrant, Vec<RuleFailure>) {
    let evaluation = evaluate(
        program,
        member,
        trigger,
        now,
        usage,
        reads.statistics.as_ref(),
        &reads.segments,
    );
    let grant = RuleGrant {
        points: evaluation.total_points,
        awards: member_awards(&evaluation, member, program),
    };
    (grant, evaluation.failures)
}

/// The failures of the last evaluation a unit of work ran (it may run more than once when
/// the unit is retried; only the one that committed counts).
#[derive(Debug, Default)]
pub(crate) struct Failures(Mutex<Vec<RuleFailure>>);

impl Failures {
    pub(crate) fn set(&self, failures: Vec<RuleFailure>) {
        match self.0.lock() {
            Ok(mut slot) => *slot = failures,
            Err(poisoned) => *poisoned.into_inner() = failures,
        }
    }

    pub(crate) fn take(&self) -> Vec<RuleFailure> {
        match self.0.lock() {
            Ok(mut slot) => std::mem::take(&mut *slot),
            Err(poisoned) => std::mem::take(&mut *poisoned.into_inner()),
        }
    }
}

/// Whether any purchase rule of the program reads `member.statistics` (or `member` as a
/// whole): only then does a purchase read the member's statistics (under the wallet lock).
pub(crate) fn purchase_rules_read_statistics(program: &Program) -> bool {
    rules_read_member(program, TriggerKind::Purchase, "statistics")
}

/// A purchase's decision for the store: `decide`, and which of the member's statistics and
/// segments the program's purchase rules read (the store reads them with the member, under
/// the wallet lock, only then).
pub(crate) fn earn_decision<'a>(
    program: &Program,
    decide: &'a (
            dyn Fn(&Member, &RuleUsage, &MemberReads) -> Result<EarnPlan, patron_store::StoreError>
                + Send
                + Sync
        ),
) -> EarnDecision<'a> {
    EarnDecision {
        decide,
        reads_statistics: purchase_rules_read_statistics(program),
        reads_segments: rules_read_member(program, TriggerKind::Purchase, "segments"),
    }
}

/// Whether any rule of `kind` reads `member.<field>` (or `member` as a whole).
pub(crate) fn rules_read_member(program: &Program, kind: TriggerKind, field: &str) -> bool {
    program.rules_for(kind).any(|rule| {
        rule.reads()
            .uses(patron_domain::rules::expr::Variable::Member, field)
    })
}

/// What the rules of `kind` read about a member besides the member row
/// (`member.statistics`, `member.segments`), read only when such a rule reads it. For events,
/// birthdays, anniversaries and previews, read before their unit of work: segments change only
/// when the `segments` job runs and statistics only with purchases, not with what is being
/// decided (a purchase reads both with the member instead, in its one read under the lock).
pub(crate) async fn read_member(
    store: &patron_store::Store,
    tenant: patron_store::tenants::TenantId,
    program: &Program,
    kind: TriggerKind,
    member_id: &str,
) -> Result<MemberReads, patron_store::StoreError> {
    Ok(MemberReads {
        statistics: if rules_read_member(program, kind, "statistics") {
            store.member_stats(tenant, member_id).await?
        } else {
            None
        },
        segments: if rules_read_member(program, kind, "segments") {
            store.member_segments(tenant, member_id).await?
        } else {
            Vec::new()
        },
    })
}
