//! [`evaluate`]: which rules fire for one purchase, event or occasion, and how many points
//! each gives.
//!
//! Cost: the variables (`member`, `purchase`, each line's `item`) are built once per
//! evaluation, and only when some rule of this occasion has an expression; each rule then
//! runs its already compiled expressions against them.

use jiff::Timestamp;
use jiff::tz::TimeZone;
use rust_decimal::prelude::ToPrimitive;
use rust_decimal::{Decimal, RoundingStrategy};

use super::expr::{ExprError, ExprValue, FieldSet, Scope, Variable};
use super::{
    Amount, Award, Beneficiary, EarningRule, EvalInput, Evaluation, EventFacts, FactValue,
    LineFacts, MemberFacts, PurchaseFacts, RuleFailure, RuleKind, RulePart, Trigger,
};
use crate::calendar::start_of_day;
use crate::earning::{base_points, is_eligible};
use crate::program::Program;
use crate::shared::Rounding;

/// Evaluates the program's rules for one occasion. Pure and total: it never panics and never
/// fails; a rule whose expression fails is skipped and listed in [`Evaluation::failures`].
///
/// For a purchase, the base earning is computed first (eligible amount × rate × tier
/// multiplier; excluded lines neither earn nor count toward the minimum). Then each rule of
/// this occasion, highest priority first, fires when: the occasion is inside its window; the
/// channel, store and tier are listed (or the lists are empty); its limit is not used up
/// according to [`EvalInput::usage`]; its `when` holds; and it gives at least one point. A
/// rule that fires with `stop` ends the evaluation.
pub fn evaluate(program: &Program, input: &EvalInput<'_>) -> Evaluation {
    let tz = program.tz();
    let trigger = input.trigger.kind();
    let at = input.occurred_at();
    let purchase = match input.trigger {
        Trigger::Purchase(purchase) => Some(purchase),
        _ => None,
    };
    let lines = purchase.map_or_else(Vec::new, |purchase| eligible_lines(program, purchase));

    let mut evaluation = Evaluation::default();
    if purchase.is_some() {
        match purchase_base_points(program, input, &lines) {
            Some(points) => evaluation.base_points = points,
            // The base alone is beyond what one operation may move: the purchase is refused
            // (the rules are not worth evaluating).
            None => {
                evaluation.over_limit = true;
                return evaluation;
            }
        }
    }

    // Build the variables only if an applicable rule has an expression.
    let rules: Vec<&EarningRule> = program
        .rules
        .iter()
        .filter(|rule| rule.kind.trigger() == trigger)
        .collect();
    // Only the variables and fields the rules read are built.
    let reads = rules.iter().fold(FieldSet::default(), |reads, rule| {
        reads.union(rule_reads(rule))
    });
    let needs_scope = rules.iter().any(|rule| uses_expressions(rule));
    let scope = if needs_scope {
        Some(root_scope(input, &lines, &tz, program, reads))
    } else {
        None
    };
    let needs_items = rules
        .iter()
        .any(|rule| rule.kind.is_per_line() && uses_expressions(rule));
    let item_scopes: Vec<Result<Scope<'_>, ExprError>> = match (&scope, needs_items) {
        (Some(Ok(root)), true) => lines
            .iter()
            .map(|line| root.child(Variable::Item, line_value(line, program, true, reads)))
            .collect(),
        _ => Vec::new(),
    };

    for rule in rules {
        if !applies_before_conditions(rule, input, at) {
            continue;
        }
        let context = Context {
            program,
            rule,
            input,
            lines: &lines,
            scope: scope.as_ref(),
            item_scopes: &item_scopes,
        };
        match context.points() {
            Ok(awards) if awards.iter().any(|(_, points)| *points > 0) => {
                record_awards(&mut evaluation, program, rule, awards);
                if rule.stop {
                    break;
                }
            }
            Ok(_) => {}
            Err((part, error)) => evaluation.failures.push(RuleFailure {
                rule_id: rule.id.clone(),
                part,
                error,
            }),
        }
    }
    // Checked above: base + the member's awards is at most the program's `points_max`.
    evaluation.total_points = (evaluation.total_points + evaluation.base_points).max(0);
    evaluation
}

/// The base earning of a purchase: the eligible amount × the rate × the tier multiplier (the
/// minimum is compared with the eligible amount: excluded products do not count toward it).
/// `None` when it is beyond what one operation may move, or too large to count.
fn purchase_base_points(
    program: &Program,
    input: &EvalInput<'_>,
    lines: &[Line<'_>],
) -> Option<i64> {
    let eligible_minor = eligible_total_minor(lines)?;
    let multiplier = program
        .tier(&input.member.tier)
        .map_or(Decimal::ONE, |tier| tier.multiplier);
    let points = base_points(
        &program.earning,
        &program.currency,
        eligible_minor,
        eligible_minor,
        multiplier,
    )
    .ok()?;
    program
        .limits
        .check_points(points)
        .is_ok()
        .then_some(points)
}

/// Adds a fired rule's awards to the evaluation. A rule may not take the member's earning
/// (base and rules) past what one operation may move, nor give a referrer more: such an award
/// is skipped, like a rule whose expression failed, and reported.
fn record_awards(
    evaluation: &mut Evaluation,
    program: &Program,
    rule: &EarningRule,
    awards: Vec<(Beneficiary, i64)>,
) {
    for (beneficiary, points) in awards {
        if points <= 0 {
            continue;
        }
        let total = match beneficiary {
            Beneficiary::Member => evaluation
                .total_points
                .checked_add(evaluation.base_points)
                .and_then(|total| total.checked_add(points)),
            _ => Some(points),
        };
        if let Err(error) = total
            .ok_or(crate::earning::PointsOverflow)
            .map_err(|overflow| overflow.to_string())
            .and_then(|total| {
                program
                    .limits
                    .check_points(total)
                    .map_err(|limit| format!("the points {limit}"))
            })
        {
            evaluation.failures.push(RuleFailure {
                rule_id: rule.id.clone(),
                part: RulePart::Amount,
                error: ExprError::Invalid(error),
            });
            continue;
        }
        if beneficiary == Beneficiary::Member {
            evaluation.total_points += points;
        }
        evaluation.awards.push(Award {
            rule_id: rule.id.clone(),
            names: rule.names.clone(),
            points,
            beneficiary,
        });
    }
}

/// A line the program does not exclude, with its amounts.
struct Line<'a> {
    facts: &'a LineFacts,
}

fn eligible_lines<'a>(program: &Program, purchase: &'a PurchaseFacts) -> Vec<Line<'a>> {
    purchase
        .lines
        .iter()
        .filter(|line| is_eligible(&program.earning, &line.sku, &line.category))
        .map(|facts| Line { facts })
        .collect()
}

/// `None` if the sum does not fit an `i64` (a validated purchase is far below that).
fn eligible_total_minor(lines: &[Line<'_>]) -> Option<i64> {
    lines.iter().try_fold(0_i64, |total, line| {
        total.checked_add(line.facts.total_minor.max(0))
    })
}

/// What a rule's expressions read.
fn rule_reads(rule: &EarningRule) -> FieldSet {
    let when = rule
        .when
        .as_ref()
        .map_or(FieldSet::default(), |when| when.reads());
    let amount = match &rule.kind {
        RuleKind::Product {
            points: Amount::Expr(expression),
            ..
        }
        | RuleKind::Event {
            points: Amount::Expr(expression),
            ..
        }
        | RuleKind::Birthday {
            points: Amount::Expr(expression),
        }
        | RuleKind::Anniversary {
            points: Amount::Expr(expression),
        }
        | RuleKind::Join {
            points: Amount::Expr(expression),
        } => expression.reads(),
        _ => FieldSet::default(),
    };
    when.union(amount)
}

fn uses_expressions(rule: &EarningRule) -> bool {
    rule.when.is_some()
        || matches!(
            &rule.kind,
            RuleKind::Product {
                points: Amount::Expr(_),
                ..
            } | RuleKind::Event {
                points: Amount::Expr(_),
                ..
            } | RuleKind::Birthday {
                points: Amount::Expr(_)
            } | RuleKind::Anniversary {
                points: Amount::Expr(_)
            } | RuleKind::Join {
                points: Amount::Expr(_)
            }
        )
}

/// The checks that need no expression: event type, window, channel, store, tier, limit,
/// referral.
fn applies_before_conditions(rule: &EarningRule, input: &EvalInput<'_>, at: Timestamp) -> bool {
    if let (RuleKind::Event { event_type, .. }, Trigger::Event(event)) = (&rule.kind, input.trigger)
        && *event_type != event.event_type
    {
        return false;
    }
    if rule.from.is_some_and(|from| at < from) || rule.until.is_some_and(|until| at >= until) {
        return false;
    }
    if let Trigger::Purchase(purchase) = input.trigger {
        if !rule.channels.is_empty() && !rule.channels.contains(&purchase.channel) {
            return false;
        }
        if !rule.stores.is_empty() && !rule.stores.contains(&purchase.store) {
            return false;
        }
        if matches!(rule.kind, RuleKind::Referral { .. }) && purchase.referral.is_none() {
            return false;
        }
    }
    if !rule.tiers.is_empty() && !rule.tiers.contains(&input.member.tier) {
        return false;
    }
    if let Some(limit) = &rule.limit
        && input.usage.get(&rule.id).copied().unwrap_or(0) >= limit.count
    {
        return false;
    }
    true
}

type RuleResult = Result<Vec<(Beneficiary, i64)>, (RulePart, ExprError)>;

/// One rule being evaluated.
struct Context<'e, 's> {
    program: &'e Program,
    rule: &'e EarningRule,
    input: &'e EvalInput<'e>,
    lines: &'e [Line<'e>],
    scope: Option<&'e Result<Scope<'static>, ExprError>>,
    item_scopes: &'e [Result<Scope<'s>, ExprError>],
}

impl Context<'_, '_> {
    fn root(&self) -> Result<&Scope<'static>, ExprError> {
        match self.scope {
            Some(Ok(scope)) => Ok(scope),
            Some(Err(error)) => Err(error.clone()),
            None => Err(ExprError::Invalid(
                "internal error: the variables were not built".to_owned(),
            )),
        }
    }

    fn item_scope(&self, index: usize) -> Result<&Scope<'_>, ExprError> {
        match self.item_scopes.get(index) {
            Some(Ok(scope)) => Ok(scope),
            Some(Err(error)) => Err(error.clone()),
            None => Err(ExprError::Invalid(
                "internal error: the line variables were not built".to_owned(),
            )),
        }
    }

    /// Points for the member (and the referrer), or the failure that skips the rule.
    fn points(&self) -> RuleResult {
        let rule = self.rule;
        if !rule.kind.is_per_line()
            && let Some(when) = &rule.when
        {
            let holds = self
                .root()
                .and_then(|scope| when.condition(scope))
                .map_err(|error| (RulePart::When, error))?;
            if !holds {
                return Ok(Vec::new());
            }
        }
        let member = |points: i64| Ok(vec![(Beneficiary::Member, points)]);
        match &rule.kind {
            RuleKind::Spend {
                points_per_unit,
                minimum_purchase_minor,
                lines,
            } => {
                let amount_minor = self
                    .lines
                    .iter()
                    .filter(|line| lines.matches(&line.facts.sku, &line.facts.category))
                    .fold(0_i64, |total, line| {
                        total.saturating_add(line.facts.total_minor.max(0))
                    });
                if amount_minor == 0 || amount_minor < *minimum_purchase_minor {
                    return Ok(Vec::new());
                }
                let points = self
                    .major(amount_minor)
                    .and_then(|amount| amount.checked_mul(*points_per_unit));
                member(round_points(points, rule.rounding))
            }
            RuleKind::Multiplier { multiplier, lines } => {
                let base = self.base_of_matching_lines(lines)?;
                let bonus = base.and_then(|base| base.checked_mul(*multiplier - Decimal::ONE));
                member(round_points(bonus, rule.rounding))
            }
            RuleKind::Product { points, lines } => {
                let total = self.product_points(points, lines)?;
                member(round_points(total, rule.rounding))
            }
            RuleKind::Event { points, .. }
            | RuleKind::Birthday { points }
            | RuleKind::Anniversary { points }
            | RuleKind::Join { points } => {
                let value = match points {
                    Amount::Fixed(value) => *value,
                    Amount::Expr(expression) => self
                        .root()
                        .and_then(|scope| expression.amount(scope))
                        .map_err(|error| (RulePart::Amount, error))?,
                };
                member(round_points(Some(value), rule.rounding))
            }
            RuleKind::Referral {
                referrer_points,
                newcomer_points,
                minimum_purchase_minor,
            } => Ok(self.referral_awards(
                *referrer_points,
                *newcomer_points,
                *minimum_purchase_minor,
            )),
        }
    }

    /// The base-rate points of the eligible lines that match (a multiplier rule's base).
    fn base_of_matching_lines(
        &self,
        lines: &super::LineFilter,
    ) -> Result<Option<Decimal>, (RulePart, ExprError)> {
        let mut base = Some(Decimal::ZERO);
        for (_, line) in self.matching_lines(lines)? {
            let line_base = self
                .major(line.facts.total_minor.max(0))
                .and_then(|amount| amount.checked_mul(self.program.earning.points_per_unit));
            base = base
                .zip(line_base)
                .and_then(|(sum, add)| sum.checked_add(add));
        }
        Ok(base)
    }

    /// A product rule's points over the matching lines: fixed points per unit, or the
    /// expression per line.
    fn product_points(
        &self,
        points: &Amount,
        lines: &super::LineFilter,
    ) -> Result<Option<Decimal>, (RulePart, ExprError)> {
        let mut total = Some(Decimal::ZERO);
        for (index, line) in self.matching_lines(lines)? {
            let line_points = match points {
                Amount::Fixed(per_unit) => {
                    per_unit.checked_mul(line.facts.quantity.max(Decimal::ZERO))
                }
                Amount::Expr(expression) => Some(
                    self.item_scope(index)
                        .and_then(|scope| expression.amount(scope))
                        .map_err(|error| (RulePart::Amount, error))?,
                ),
            };
            total = total
                .zip(line_points)
                .and_then(|(sum, add)| sum.checked_add(add));
        }
        Ok(total)
    }

    /// The referral's two awards, when the purchase is a referred newcomer's and its eligible
    /// amount reaches the minimum; none otherwise.
    fn referral_awards(
        &self,
        referrer_points: i64,
        newcomer_points: i64,
        minimum_purchase_minor: i64,
    ) -> Vec<(Beneficiary, i64)> {
        let Trigger::Purchase(purchase) = self.input.trigger else {
            return Vec::new();
        };
        let Some(referral) = &purchase.referral else {
            return Vec::new();
        };
        // The base earning refused a purchase whose lines do not sum.
        let eligible_minor = eligible_total_minor(self.lines).unwrap_or(0);
        if eligible_minor == 0 || eligible_minor < minimum_purchase_minor {
            return Vec::new();
        }
        vec![
            (Beneficiary::Member, newcomer_points.max(0)),
            (
                Beneficiary::Referrer {
                    member_id: referral.referrer_id.clone(),
                },
                referrer_points.max(0),
            ),
        ]
    }

    /// The eligible lines that match `filter` and the rule's `when` (checked per line).
    fn matching_lines(
        &self,
        filter: &super::LineFilter,
    ) -> Result<Vec<(usize, &Line<'_>)>, (RulePart, ExprError)> {
        let mut matching = Vec::new();
        for (index, line) in self.lines.iter().enumerate() {
            if !filter.matches(&line.facts.sku, &line.facts.category) {
                continue;
            }
            if let Some(when) = &self.rule.when {
                let holds = self
                    .item_scope(index)
                    .and_then(|scope| when.condition(scope))
                    .map_err(|error| (RulePart::When, error))?;
                if !holds {
                    continue;
                }
            }
            matching.push((index, line));
        }
        Ok(matching)
    }

    /// Minor units to major units, exactly.
    fn major(&self, minor: i64) -> Option<Decimal> {
        Decimal::try_new(minor, self.program.currency.minor_unit).ok()
    }
}

/// Rounds to whole points with `rounding`; an overflow (`None`) saturates, and the result is
/// never negative.
/// `i64::MAX` for points too large to count: beyond every `points_max`, so the award is
/// refused by the limit check in [`evaluate`], never granted.
fn round_points(points: Option<Decimal>, rounding: Rounding) -> i64 {
    let Some(points) = points else {
        return i64::MAX;
    };
    let strategy = match rounding {
        Rounding::Down => RoundingStrategy::ToZero,
        Rounding::Up => RoundingStrategy::AwayFromZero,
        Rounding::HalfUp => RoundingStrategy::MidpointAwayFromZero,
        Rounding::HalfEven => RoundingStrategy::MidpointNearestEven,
    };
    let rounded = points.round_dp_with_strategy(0, strategy);
    if rounded.is_sign_negative() {
        return 0;
    }
    rounded.to_i64().unwrap_or(i64::MAX)
}

// ----- Variables -----------------------------------------------------------------------------

fn root_scope(
    input: &EvalInput<'_>,
    lines: &[Line<'_>],
    tz: &TimeZone,
    program: &Program,
    reads: FieldSet,
) -> Result<Scope<'static>, ExprError> {
    let mut variables = Vec::with_capacity(3);
    if reads.uses_variable(Variable::Member) {
        variables.push((
            Variable::Member,
            member_value(input.member, input.now, tz, reads),
        ));
    }
    if reads.uses_variable(Variable::Now) {
        variables.push((Variable::Now, ExprValue::timestamp(input.now, tz)));
    }
    match input.trigger {
        Trigger::Purchase(purchase) if reads.uses_variable(Variable::Purchase) => {
            variables.push((
                Variable::Purchase,
                purchase_value(purchase, lines, program, tz, reads),
            ));
        }
        Trigger::Event(event) if reads.uses_variable(Variable::Event) => {
            variables.push((Variable::Event, event_value(event, tz, reads)));
        }
        _ => {}
    }
    Scope::new(variables)
}

/// The entries of a map variable whose fields are read: each is built only if it is.
struct Fields {
    variable: Variable,
    reads: FieldSet,
    entries: Vec<(&'static str, ExprValue)>,
}

impl Fields {
    fn new(variable: Variable, reads: FieldSet) -> Fields {
        Fields {
            variable,
            reads,
            entries: Vec::with_capacity(8),
        }
    }

    fn add(&mut self, name: &'static str, value: impl FnOnce() -> ExprValue) {
        if self.reads.uses(self.variable, name) {
            self.entries.push((name, value()));
        }
    }

    fn build(self) -> ExprValue {
        ExprValue::map(self.entries)
    }
}

fn member_value(member: &MemberFacts, now: Timestamp, tz: &TimeZone, reads: FieldSet) -> ExprValue {
    let mut fields = Fields::new(Variable::Member, reads);
    fields.add("id", || ExprValue::text(&member.id));
    fields.add("tier", || ExprValue::text(&member.tier));
    fields.add("segments", || {
        ExprValue::list(member.segments.iter().map(|s| ExprValue::text(s)).collect())
    });
    fields.add("attributes", || facts_map(&member.attributes, tz));
    fields.add("statistics", || facts_map(&member.statistics, tz));
    fields.add("birth_date", || {
        member
            .birth_date
            .and_then(|date| start_of_day(date, tz))
            .map_or_else(ExprValue::null, |instant| ExprValue::timestamp(instant, tz))
    });
    fields.add("enrolled_at", || {
        ExprValue::timestamp(member.enrolled_at, tz)
    });
    fields.add("days_since_enrollment", || {
        let enrolled_on = member.enrolled_at.to_zoned(tz.clone()).date();
        let today = now.to_zoned(tz.clone()).date();
        ExprValue::int(
            today
                .since(enrolled_on)
                .map_or(0, |span| i64::from(span.get_days())),
        )
    });
    fields.build()
}

fn purchase_value(
    purchase: &PurchaseFacts,
    eligible: &[Line<'_>],
    program: &Program,
    tz: &TimeZone,
    reads: FieldSet,
) -> ExprValue {
    let mut fields = Fields::new(Variable::Purchase, reads);
    fields.add("total", || {
        let total_minor = purchase.lines.iter().fold(0_i64, |total, line| {
            total.saturating_add(line.total_minor.max(0))
        });
        money(total_minor, program)
    });
    fields.add("eligible_total", || {
        // A purchase's lines sum far below `i64::MAX` (it was checked against the program's
        // `purchase_amount_max`); were it not so, the base earning refused it already.
        money(eligible_total_minor(eligible).unwrap_or(i64::MAX), program)
    });
    fields.add("channel", || ExprValue::text(&purchase.channel));
    fields.add("store", || ExprValue::text(&purchase.store));
    fields.add("time", || ExprValue::timestamp(purchase.time, tz));
    fields.add("item_count", || {
        ExprValue::int(i64::try_from(purchase.lines.len()).unwrap_or(i64::MAX))
    });
    fields.add("items", || {
        // Inside comprehensions the fields read are not known: build them all.
        let items = purchase
            .lines
            .iter()
            .map(|line| {
                let is_eligible = is_eligible(&program.earning, &line.sku, &line.category);
                line_value(&Line { facts: line }, program, is_eligible, FieldSet::ALL)
            })
            .collect();
        ExprValue::list(items)
    });
    fields.build()
}

fn line_value(line: &Line<'_>, program: &Program, eligible: bool, reads: FieldSet) -> ExprValue {
    let facts = line.facts;
    let mut fields = Fields::new(Variable::Item, reads);
    fields.add("sku", || ExprValue::text(&facts.sku));
    fields.add("category", || ExprValue::text(&facts.category));
    fields.add("quantity", || {
        ExprValue::double(facts.quantity.to_f64().unwrap_or(0.0))
    });
    fields.add("unit_price", || money(facts.unit_price_minor, program));
    fields.add("line_total", || money(facts.total_minor, program));
    fields.add("eligible", || ExprValue::bool(eligible));
    fields.build()
}

fn event_value(event: &EventFacts, tz: &TimeZone, reads: FieldSet) -> ExprValue {
    let mut fields = Fields::new(Variable::Event, reads);
    fields.add("type", || ExprValue::text(&event.event_type));
    fields.add("time", || ExprValue::timestamp(event.time, tz));
    fields.add("properties", || facts_map(&event.properties, tz));
    fields.build()
}

/// Minor units as a decimal number of major units (what expressions compare with `50.0`).
fn money(minor: i64, program: &Program) -> ExprValue {
    let major = Decimal::try_new(minor, program.currency.minor_unit)
        .ok()
        .and_then(|amount| amount.to_f64())
        .unwrap_or(0.0);
    ExprValue::double(major)
}

fn facts_map(facts: &std::collections::BTreeMap<String, FactValue>, tz: &TimeZone) -> ExprValue {
    ExprValue::map(
        facts
            .iter()
            .map(|(key, value)| (key.as_str(), fact_value(value, tz))),
    )
}

fn fact_value(value: &FactValue, tz: &TimeZone) -> ExprValue {
    match value {
        FactValue::Null => ExprValue::null(),
        FactValue::Bool(value) => ExprValue::bool(*value),
        FactValue::Int(value) => ExprValue::int(*value),
        FactValue::Double(value) => ExprValue::double(*value),
        FactValue::Text(value) => ExprValue::text(value),
        FactValue::Timestamp(value) => ExprValue::timestamp(*value, tz),
        FactValue::List(values) => {
            ExprValue::list(values.iter().map(|value| fact_value(value, tz)).collect())
        }
        FactValue::Map(map) => facts_map(map, tz),
    }
}
