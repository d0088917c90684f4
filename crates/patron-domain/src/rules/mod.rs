//! Earning rules: bonuses a program gives on top of its base earning, with conditions and
//! amounts written in CEL.
//!
//! The rules come from the program file's `[[rules]]` tables (see `docs/PROGRAM.md`); the
//! parser compiles every expression once and stores the rules in [`Program::rules`] in the
//! order they are evaluated (priority, highest first, then id). This module holds the model,
//! the facts an evaluation reads ([`EvalInput`]), and [`evaluate`], the one function the
//! engine calls: it is pure, takes everything it needs as arguments, and never fails: a rule
//! whose expression fails at run time is skipped and reported in [`Evaluation::failures`].
//!
//! How rules compose with the base earning: a purchase earns the program's base points
//! (`[earning]` × the tier multiplier, exactly as [`crate::earning::base_points`] computes them)
//! *plus* the points of every rule that fires. Rules are additive promotions and never reduce
//! the base; a rule's `stop` flag stops the rules after it, not the base.

mod evaluate;
pub mod expr;
pub mod limit;
mod period;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

use jiff::Timestamp;
use jiff::civil::Date;
use rust_decimal::Decimal;

use crate::shared::{Localized, Rounding};
pub use evaluate::evaluate;
pub use expr::{CompiledExpr, ExprError};
pub use limit::{LimitPer, LimitPeriod, RuleLimit, limit_period};
pub use period::{anniversary_years, birthday_candidates, is_birthday};

/// One earning rule, validated and compiled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EarningRule {
    /// Stable identifier (`[a-z0-9_]`, unique in the program): limits are counted by it and
    /// the ledger records it, so renaming a rule starts its limits afresh.
    pub id: String,
    /// What the member sees on the receipt ("Double points on Tuesdays").
    pub names: Localized,
    pub kind: RuleKind,
    /// Optional condition. For per-line kinds ([`RuleKind::is_per_line`]) it is checked for
    /// each line, with `item`; for the others, once.
    pub when: Option<CompiledExpr>,
    /// Higher runs first; ties run in id order.
    pub priority: i64,
    /// When this rule fires, the rules after it are not evaluated.
    pub stop: bool,
    /// The rule applies from this instant (inclusive)...
    pub from: Option<Timestamp>,
    /// ...until this instant (exclusive).
    pub until: Option<Timestamp>,
    /// Purchase channels it applies to; empty: every channel.
    pub channels: Vec<String>,
    /// Stores it applies to; empty: every store.
    pub stores: Vec<String>,
    /// Tier codes it applies to; empty: every tier.
    pub tiers: Vec<String>,
    /// How often one member can get it.
    pub limit: Option<RuleLimit>,
    /// How a fraction of a point becomes a whole point (the program's rounding unless the rule
    /// says otherwise).
    pub rounding: Rounding,
}

/// What a rule gives, and on what occasion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RuleKind {
    /// Points per major currency unit of the matching eligible lines, on top of the base rate.
    Spend {
        points_per_unit: Decimal,
        /// The matching eligible amount must reach this (minor units).
        minimum_purchase_minor: i64,
        lines: LineFilter,
    },
    /// The matching lines earn `multiplier` × their base-rate points: the rule gives the
    /// extra `(multiplier − 1)` × base (the tier multiplier applies to the base only).
    Multiplier {
        multiplier: Decimal,
        lines: LineFilter,
    },
    /// Points for each matching line: a fixed number per unit, or an expression per line.
    Product { points: Amount, lines: LineFilter },
    /// Points for a custom event of this type.
    Event { event_type: String, points: Amount },
    /// Points on the member's birthday (the engine's birthday job triggers it).
    Birthday { points: Amount },
    /// Points on the anniversary of enrollment (the engine's anniversary job triggers it).
    Anniversary { points: Amount },
    /// Points when the member joins.
    Join { points: Amount },
    /// Points for both sides of a referral, on the newcomer's first qualifying purchase.
    Referral {
        referrer_points: i64,
        newcomer_points: i64,
        /// The newcomer's eligible amount must reach this (minor units).
        minimum_purchase_minor: i64,
    },
}

impl EarningRule {
    /// Every variable and field the rule's expressions read (its condition and its amount).
    pub fn reads(&self) -> expr::FieldSet {
        let mut reads = self
            .when
            .as_ref()
            .map(CompiledExpr::reads)
            .unwrap_or_default();
        let amount = match &self.kind {
            RuleKind::Product { points, .. }
            | RuleKind::Event { points, .. }
            | RuleKind::Birthday { points }
            | RuleKind::Anniversary { points }
            | RuleKind::Join { points } => Some(points),
            _ => None,
        };
        if let Some(Amount::Expr(expr)) = amount {
            reads = reads.union(expr.reads());
        }
        reads
    }
}

impl RuleKind {
    /// The occasion on which rules of this kind are evaluated.
    pub fn trigger(&self) -> TriggerKind {
        match self {
            RuleKind::Spend { .. }
            | RuleKind::Multiplier { .. }
            | RuleKind::Product { .. }
            | RuleKind::Referral { .. } => TriggerKind::Purchase,
            RuleKind::Event { .. } => TriggerKind::Event,
            RuleKind::Birthday { .. } => TriggerKind::Birthday,
            RuleKind::Anniversary { .. } => TriggerKind::Anniversary,
            RuleKind::Join { .. } => TriggerKind::Enrollment,
        }
    }

    /// Whether the rule looks at each purchase line (and its `when` sees `item`).
    pub fn is_per_line(&self) -> bool {
        matches!(self, RuleKind::Multiplier { .. } | RuleKind::Product { .. })
    }

    /// The variables this kind's expressions can read.
    pub fn variables(&self) -> &'static [expr::Variable] {
        variables_for(self.trigger(), self.is_per_line())
    }
}

/// The variables expressions can read on an occasion; `item` only in per-line rules.
pub(crate) fn variables_for(trigger: TriggerKind, per_line: bool) -> &'static [expr::Variable] {
    use expr::Variable::{Event, Item, Member, Now, Purchase};
    match trigger {
        TriggerKind::Purchase if per_line => &[Member, Purchase, Item, Now],
        TriggerKind::Purchase => &[Member, Purchase, Now],
        TriggerKind::Event => &[Member, Event, Now],
        TriggerKind::Enrollment | TriggerKind::Birthday | TriggerKind::Anniversary => {
            &[Member, Now]
        }
    }
}

/// A number of points: fixed, or computed by an expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Amount {
    /// Points (for `product`: per unit bought).
    Fixed(Decimal),
    /// An expression giving the points (for `product`: for the whole line).
    Expr(CompiledExpr),
}

/// Which purchase lines a rule looks at. Only eligible lines (not excluded by the program)
/// are ever considered.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LineFilter {
    pub skus: Vec<String>,
    pub categories: Vec<String>,
}

impl LineFilter {
    /// Whether a line matches: with no SKUs and no categories, every line does; otherwise a
    /// line whose SKU *or* category is listed (compared exactly).
    pub fn matches(&self, sku: &str, category: &str) -> bool {
        (self.skus.is_empty() && self.categories.is_empty())
            || self.skus.iter().any(|listed| listed == sku)
            || self.categories.iter().any(|listed| listed == category)
    }
}

/// The occasions rules are evaluated on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TriggerKind {
    Purchase,
    Event,
    Enrollment,
    Birthday,
    Anniversary,
}

// ----- Facts ---------------------------------------------------------------------------------

/// A value of a member attribute, a member statistic or an event property.
#[derive(Debug, Clone, PartialEq)]
pub enum FactValue {
    Null,
    Bool(bool),
    Int(i64),
    Double(f64),
    Text(String),
    Timestamp(Timestamp),
    List(Vec<FactValue>),
    Map(BTreeMap<String, FactValue>),
}

/// What rules know about the member (`member` in expressions).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct MemberFacts {
    pub id: String,
    /// The member's current tier code.
    pub tier: String,
    /// Codes of the segments the member is in.
    pub segments: Vec<String>,
    /// Profile attributes (`member.attributes.city`).
    pub attributes: BTreeMap<String, FactValue>,
    /// Statistics the engine keeps (`member.statistics.purchases_count`).
    pub statistics: BTreeMap<String, FactValue>,
    pub birth_date: Option<Date>,
    pub enrolled_at: Timestamp,
}

/// One purchase line (`item`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineFacts {
    pub sku: String,
    pub category: String,
    pub quantity: Decimal,
    pub unit_price_minor: i64,
    /// After the line's discount, in minor units.
    pub total_minor: i64,
}

/// The purchase being posted (`purchase`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PurchaseFacts {
    pub channel: String,
    pub store: String,
    /// When the purchase happened (windows and limit periods use this instant).
    pub time: Timestamp,
    pub lines: Vec<LineFacts>,
    /// Set when the member was referred and the referral was not rewarded yet; the engine
    /// checks self-referral and loops before setting it.
    pub referral: Option<ReferralFacts>,
}

/// The member who referred the purchasing member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReferralFacts {
    pub referrer_id: String,
}

/// A custom event (`event`).
#[derive(Debug, Clone, PartialEq)]
pub struct EventFacts {
    pub event_type: String,
    pub time: Timestamp,
    pub properties: BTreeMap<String, FactValue>,
}

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Trigger<'a> {
    Purchase(&'a PurchaseFacts),
    Event(&'a EventFacts),
    Enrollment,
    Birthday,
    Anniversary,
}

impl Trigger<'_> {
    /// The kind of occasion.
    pub fn kind(&self) -> TriggerKind {
        match self {
            Trigger::Purchase(_) => TriggerKind::Purchase,
            Trigger::Event(_) => TriggerKind::Event,
            Trigger::Enrollment => TriggerKind::Enrollment,
            Trigger::Birthday => TriggerKind::Birthday,
            Trigger::Anniversary => TriggerKind::Anniversary,
        }
    }
}

/// How many times each rule already fired for the member in the limit period that contains
/// the evaluation instant ([`EvalInput::occurred_at`]), by rule id. Rules without a limit need
/// no entry; a missing entry counts as 0.
pub type RuleUsage = BTreeMap<String, u32>;

/// Everything one evaluation reads.
#[derive(Debug, Clone, Copy)]
pub struct EvalInput<'a> {
    pub member: &'a MemberFacts,
    pub trigger: Trigger<'a>,
    /// The current instant (`now`).
    pub now: Timestamp,
    pub usage: &'a RuleUsage,
}

impl EvalInput<'_> {
    /// The instant windows and limit periods are judged at: the purchase's or the event's
    /// time, else `now`.
    pub fn occurred_at(&self) -> Timestamp {
        match self.trigger {
            Trigger::Purchase(purchase) => purchase.time,
            Trigger::Event(event) => event.time,
            _ => self.now,
        }
    }
}

// ----- Results -------------------------------------------------------------------------------

/// What an evaluation decided.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Evaluation {
    /// The base earning of a purchase (0 for other triggers).
    pub base_points: i64,
    /// Each rule that fired, in evaluation order; a referral gives two awards.
    pub awards: Vec<Award>,
    /// Points for the member: base + the member's awards. Never negative.
    pub total_points: i64,
    /// Rules skipped because an expression failed at run time, or because their points would
    /// have taken the operation past the program's `[limits] points_max`.
    pub failures: Vec<RuleFailure>,
    /// A purchase whose base earning alone is more than `[limits] points_max` (or too large to
    /// count): nothing else was evaluated, and the purchase must be refused.
    pub over_limit: bool,
}

impl Evaluation {
    /// The ids of the rules that fired (each once), for counting limits.
    pub fn fired_rule_ids(&self) -> Vec<&str> {
        let mut ids: Vec<&str> = Vec::new();
        for award in &self.awards {
            if !ids.contains(&award.rule_id.as_str()) {
                ids.push(&award.rule_id);
            }
        }
        ids
    }
}

/// Points one rule gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Award {
    pub rule_id: String,
    /// The rule's name, for the receipt line.
    pub names: Localized,
    /// At least 1.
    pub points: i64,
    pub beneficiary: Beneficiary,
}

/// Who an award is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Beneficiary {
    /// The member the evaluation is for.
    Member,
    /// The member who referred them.
    Referrer { member_id: String },
}

/// A rule skipped because its expression failed at run time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleFailure {
    pub rule_id: String,
    pub part: RulePart,
    pub error: ExprError,
}

/// Which expression of a rule failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RulePart {
    When,
    Amount,
}
