//! Tests for earning rules: parsing and compiling `[[rules]]` (with exact positions), and
//! evaluating every kind, filter, limit, priority and failure.

use std::collections::BTreeMap;

use jiff::civil::{Date, DateTime};
use jiff::tz::TimeZone;
use jiff::{Timestamp, ToSpan};
use proptest::prelude::*;
use rust_decimal::Decimal;

use super::*;
use crate::calendar::{Calendar, CalendarSystem};
use crate::program::{Diagnostic, Locale, Program, parse_program};

const BASE: &str = r#"[club]
name = "Test Club"
default_locale = "en"
currency = "USD"
time_zone = "America/New_York"

[earning]
points_per_unit = "1"
excluded_categories = ["gift_cards"]

[expiry]
policy = "never"

[returns]
policy = "within_balance"

[exit]
policy = "forfeit"

[tiers]
basis = "visits"
window = "calendar_year"

[[tiers.levels]]
code = "regular"
name = "Regular"
threshold = 0

[[tiers.levels]]
code = "gold"
name = "Gold"
threshold = 10
multiplier = "1.5"
"#;

fn with_rules(rules: &str) -> String {
    format!("{BASE}\n{rules}")
}

fn program(rules: &str) -> Program {
    match parse_program(&with_rules(rules)) {
        Ok(program) => program,
        Err(diagnostics) => panic!("expected a valid program, got:\n{}", render(&diagnostics)),
    }
}

fn errors(source: &str) -> Vec<Diagnostic> {
    match parse_program(source) {
        Ok(_) => panic!("expected errors"),
        Err(diagnostics) => diagnostics,
    }
}

fn render(diagnostics: &[Diagnostic]) -> String {
    diagnostics
        .iter()
        .map(|d| format!("{d}   [{}]\n", d.path))
        .collect()
}

/// Asserts exactly one problem, at the first occurrence of `at` *after* `after`, with this
/// path and message; returns it.
#[track_caller]
fn single_error(rules: &str, after: &str, at: &str, path: &str, message: &str) -> Diagnostic {
    let source = with_rules(rules);
    let diagnostics = errors(&source);
    assert_eq!(
        diagnostics.len(),
        1,
        "expected one problem, got:\n{}",
        render(&diagnostics)
    );
    let diagnostic = diagnostics.into_iter().next().unwrap();
    assert_eq!(diagnostic.message, message, "{diagnostic}");
    assert_eq!(diagnostic.path, path);
    let start = source.find(after).unwrap();
    let index = start + source[start..].find(at).unwrap();
    let before = &source[..index];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().unwrap_or("").chars().count() + 1;
    assert_eq!(
        (diagnostic.line, diagnostic.column),
        (line, column),
        "{diagnostic}"
    );
    diagnostic
}

fn ny() -> TimeZone {
    TimeZone::get("America/New_York").unwrap()
}

fn ny_calendar() -> Calendar {
    Calendar::gregorian(ny())
}

fn at(local: &str) -> Timestamp {
    local
        .parse::<DateTime>()
        .unwrap()
        .to_zoned(ny())
        .unwrap()
        .timestamp()
}

fn member(tier: &str) -> MemberFacts {
    MemberFacts {
        id: "mem_1".into(),
        tier: tier.into(),
        segments: vec!["coffee_lovers".into()],
        attributes: BTreeMap::from([("city".into(), FactValue::Text("Boston".into()))]),
        statistics: BTreeMap::from([("purchases_count".into(), FactValue::Int(3))]),
        birth_date: Some(Date::new(1990, 6, 15).unwrap()),
        enrolled_at: at("2024-06-01T12:00"),
    }
}

fn line(sku: &str, category: &str, quantity: i64, unit_price_minor: i64) -> LineFacts {
    LineFacts {
        sku: sku.into(),
        category: category.into(),
        quantity: Decimal::from(quantity),
        unit_price_minor,
        total_minor: quantity * unit_price_minor,
    }
}

/// A Tuesday-morning purchase in store "s1" at the till: $20 of coffee, $10 of pastry and a
/// $50 gift card (excluded).
fn purchase() -> PurchaseFacts {
    PurchaseFacts {
        channel: "pos".into(),
        store: "s1".into(),
        time: at("2025-03-11T09:30"),
        lines: vec![
            line("LATTE", "coffee", 4, 500),
            line("CROISSANT", "pastry", 2, 500),
            line("GC-50", "gift_cards", 1, 5_000),
        ],
        referral: None,
    }
}

fn run(program: &Program, member: &MemberFacts, trigger: Trigger<'_>) -> Evaluation {
    run_with(program, member, trigger, &RuleUsage::new())
}

fn run_with(
    program: &Program,
    member: &MemberFacts,
    trigger: Trigger<'_>,
    usage: &RuleUsage,
) -> Evaluation {
    evaluate(
        program,
        &EvalInput {
            member,
            trigger,
            now: at("2025-03-11T10:00"),
            usage,
        },
    )
}

fn points_by_rule(evaluation: &Evaluation) -> Vec<(&str, i64)> {
    evaluation
        .awards
        .iter()
        .map(|award| (award.rule_id.as_str(), award.points))
        .collect()
}

// ----- Parsing ---------------------------------------------------------------------------------

#[test]
fn a_program_without_rules_has_none() {
    assert!(program("").rules.is_empty());
}

#[test]
fn rules_are_stored_in_evaluation_order_with_their_settings() {
    let program = program(
        r#"
[[rules]]
id = "b_second"
name = { en = "Second" }
kind = "join"
points = 50

[[rules]]
id = "z_first"
name = "First"
kind = "spend"
points_per_unit = "0.5"
priority = 10
stop = true
from = 2025-03-01
until = 2025-03-31
channels = ["pos"]
stores = ["s1", "s2"]
tiers = ["gold"]
limit = { count = 2, per = "week", week_starts = "sunday" }
rounding = "half_up"
minimum_purchase = "15.00"
categories = ["coffee"]
when = "member.tier == 'gold'"

[[rules]]
id = "a_second"
name = "Also second"
kind = "birthday"
amount = "100.0"
"#,
    );
    let ids: Vec<&str> = program.rules.iter().map(|rule| rule.id.as_str()).collect();
    assert_eq!(ids, ["z_first", "a_second", "b_second"]);
    let first = &program.rules[0];
    assert_eq!(first.names.get(Locale::En), Some("First"));
    assert_eq!(first.priority, 10);
    assert!(first.stop);
    assert_eq!(first.from, Some(at("2025-03-01T00:00")));
    assert_eq!(
        first.until,
        Some(at("2025-04-01T00:00")),
        "a date runs to its end"
    );
    assert_eq!(first.channels, ["pos"]);
    assert_eq!(first.stores, ["s1", "s2"]);
    assert_eq!(first.tiers, ["gold"]);
    assert_eq!(
        first.limit,
        Some(RuleLimit {
            count: 2,
            per: LimitPer::Week,
            week_start: jiff::civil::Weekday::Sunday
        })
    );
    assert_eq!(first.rounding, Rounding::HalfUp);
    assert_eq!(
        first.kind,
        RuleKind::Spend {
            points_per_unit: Decimal::new(5, 1),
            minimum_purchase_minor: 1_500,
            lines: LineFilter {
                skus: vec![],
                categories: vec!["coffee".into()]
            }
        }
    );
    assert_eq!(
        first.when.as_ref().unwrap().source(),
        "member.tier == 'gold'"
    );
    assert_eq!(
        program.rules[1].rounding,
        Rounding::Down,
        "the program's rounding"
    );
    assert!(matches!(
        &program.rules[1].kind,
        RuleKind::Birthday {
            points: Amount::Expr(_)
        }
    ));
}

#[test]
fn the_program_stays_clone_debug_send_sync_and_comparable() {
    fn assert_traits<T: Clone + std::fmt::Debug + Send + Sync + PartialEq>() {}
    assert_traits::<Program>();
    let rules = "[[rules]]\nid = \"r\"\nname = \"R\"\nkind = \"join\"\namount = \"10\"\n";
    assert_eq!(program(rules), program(rules).clone());
}

#[test]
fn a_syntax_error_points_into_the_expression() {
    let diagnostic = single_error(
        "[[rules]]\nid = \"r\"\nname = \"R\"\nkind = \"spend\"\npoints_per_unit = 1\nwhen = \"purchase.total >= && true\"\n",
        "when = ",
        "&&",
        "rules[0].when",
        "`rules[0].when`: syntax error in the expression: extraneous input '&&'",
    );
    assert!(diagnostic.hint.is_some());
}

#[test]
fn an_unknown_variable_is_reported_at_its_place_with_the_valid_names() {
    let diagnostic = single_error(
        "[[rules]]\nid = \"r\"\nname = \"R\"\nkind = \"spend\"\npoints_per_unit = 1\nwhen = \"purchase.total > 5.0 && membr.tier == 'gold'\"\n",
        "when = ",
        "membr",
        "rules[0].when",
        "`rules[0].when`: unknown variable `membr`",
    );
    assert_eq!(
        diagnostic.hint.as_deref(),
        Some("did you mean `member`? variables here: `member`, `purchase`, `now`")
    );
}

#[test]
fn positions_follow_escapes_and_multi_line_strings() {
    // `\"` takes two characters in the file but one in the expression.
    single_error(
        "[[rules]]\nid = \"r\"\nname = \"R\"\nkind = \"spend\"\npoints_per_unit = 1\nwhen = \"member.tier == \\\"gold\\\" && purchse.total > 1.0\"\n",
        "when = ",
        "purchse",
        "rules[0].when",
        "`rules[0].when`: unknown variable `purchse`",
    );
    single_error(
        "[[rules]]\nid = \"r\"\nname = \"R\"\nkind = \"spend\"\npoints_per_unit = 1\nwhen = '''\nmember.tier == \"gold\"\n  && purchase.totl > 1.0'''\n",
        "when = ",
        ".totl",
        "rules[0].when",
        "`rules[0].when`: `purchase` has no field `totl`",
    );
}

#[test]
fn an_unknown_field_suggests_the_right_one() {
    let diagnostic = single_error(
        "[[rules]]\nid = \"r\"\nname = \"R\"\nkind = \"product\"\nskus = [\"LATTE\"]\namount = \"item.quantity * 2.0 + item.unitprice\"\n",
        "amount = ",
        ".unitprice",
        "rules[0].amount",
        "`rules[0].amount`: `item` has no field `unitprice`",
    );
    assert!(
        diagnostic
            .hint
            .unwrap()
            .starts_with("did you mean `item.unit_price`?")
    );
}

#[test]
fn a_variable_of_another_kind_is_refused() {
    let diagnostic = single_error(
        "[[rules]]\nid = \"r\"\nname = \"R\"\nkind = \"spend\"\npoints_per_unit = 1\nwhen = \"item.sku == 'X'\"\n",
        "when = ",
        "item",
        "rules[0].when",
        "`rules[0].when`: `item` is not available in this rule",
    );
    assert!(diagnostic.hint.unwrap().contains("per-line rules"));
    single_error(
        "[[rules]]\nid = \"r\"\nname = \"R\"\nkind = \"join\"\npoints = 5\nwhen = \"event.type == 'x'\"\n",
        "when = ",
        "event",
        "rules[0].when",
        "`rules[0].when`: `event` is not available in this rule",
    );
}

#[test]
fn mixing_whole_and_decimal_numbers_is_caught_at_compile_time() {
    let diagnostic = single_error(
        "[[rules]]\nid = \"r\"\nname = \"R\"\nkind = \"product\"\nskus = [\"LATTE\"]\namount = \"item.quantity * 5\"\n",
        "amount = ",
        "*",
        "rules[0].amount",
        "`rules[0].amount`: `*` between a decimal number (double) and a whole number (int): CEL does not convert numbers automatically",
    );
    assert!(diagnostic.hint.unwrap().contains("2.0"));
}

#[test]
fn a_condition_must_be_true_or_false_and_an_amount_a_number() {
    single_error(
        "[[rules]]\nid = \"r\"\nname = \"R\"\nkind = \"spend\"\npoints_per_unit = 1\nwhen = \"purchase.total\"\n",
        "when = ",
        "purchase",
        "rules[0].when",
        "`rules[0].when`: a condition must be true or false, but this gives a decimal number (double)",
    );
    single_error(
        "[[rules]]\nid = \"r\"\nname = \"R\"\nkind = \"join\"\namount = \"member.tier\"\n",
        "amount = ",
        "member",
        "rules[0].amount",
        "`rules[0].amount`: an amount must be a number of points, but this gives a string",
    );
}

#[test]
fn comprehension_variables_are_not_unknown() {
    let program = program(
        "[[rules]]\nid = \"r\"\nname = \"R\"\nkind = \"spend\"\npoints_per_unit = 1\nwhen = \"purchase.items.exists(i, i.category == 'pastry') && member.segments.all(s, s != '')\"\n",
    );
    assert_eq!(program.rules.len(), 1);
}

#[test]
fn bad_rule_settings_are_each_reported() {
    single_error(
        "[[rules]]\nid = \"r\"\nname = \"R\"\nkind = \"spnd\"\npoints_per_unit = 1\n",
        "kind = ",
        "\"spnd\"",
        "rules[0].kind",
        "`rules[0].kind`: unknown value \"spnd\"",
    );
    let misplaced = single_error(
        "[[rules]]\nid = \"r\"\nname = \"R\"\nkind = \"spend\"\npoints_per_unit = 1\nmultiplier = 2\n",
        "kind = ",
        "multiplier",
        "rules[0].multiplier",
        "`rules[0].multiplier` does not apply to a rule of kind \"spend\"",
    );
    assert_eq!(
        misplaced.hint.as_deref(),
        Some("remove it; `multiplier` belongs to rules of kind \"multiplier\"")
    );
    single_error(
        "[[rules]]\nid = \"r\"\nname = \"R\"\nkind = \"multiplier\"\nmultiplier = \"0.5\"\n",
        "kind = ",
        "\"0.5\"",
        "rules[0].multiplier",
        "`rules[0].multiplier` must be greater than 1, found 0.5",
    );
    let tier = single_error(
        "[[rules]]\nid = \"r\"\nname = \"R\"\nkind = \"join\"\npoints = 5\ntiers = [\"regular\", \"glod\"]\n",
        "tiers = ",
        "\"glod\"",
        "rules[0].tiers[1]",
        "`rules[0].tiers`: unknown tier \"glod\"",
    );
    assert_eq!(tier.hint.as_deref(), Some("did you mean \"gold\"?"));
    single_error(
        "[[rules]]\nid = \"r\"\nname = \"R\"\nkind = \"join\"\npoints = 5\n\n[[rules]]\nid = \"r\"\nname = \"R2\"\nkind = \"join\"\npoints = 5\n",
        "points = 5\n\n[[rules]]",
        "\"r\"",
        "rules[1].id",
        "rule id \"r\" is used twice (first on line 36)",
    );
}

#[test]
fn more_bad_rule_settings() {
    single_error(
        "[[rules]]\nid = \"r\"\nname = \"R\"\nkind = \"join\"\npoints = 5\nfrom = 2025-03-10\nuntil = 2025-03-01\n",
        "until = ",
        "2025-03-01",
        "rules[0].until",
        "`rules[0].until` must be after `from`",
    );
    single_error(
        "[[rules]]\nid = \"r\"\nname = \"R\"\nkind = \"join\"\npoints = 5\nlimit = { count = 1, per = \"fortnight\" }\n",
        "per = ",
        "\"fortnight\"",
        "rules[0].limit.per",
        "`rules[0].limit.per`: unknown value \"fortnight\"",
    );
    single_error(
        "[[rules]]\nid = \"r\"\nname = \"R\"\nkind = \"join\"\npoints = 5\namount = \"5\"\n",
        "amount = ",
        "\"5\"",
        "rules[0].amount",
        "`rules[0].amount` and `points` cannot both be set",
    );
    single_error(
        "[[rules]]\nid = \"r\"\nname = \"R\"\nkind = \"event\"\nevent = \"review_written\"\n",
        "[[rules]]",
        "[[rules]]",
        "rules[0].points",
        "missing `points` or `amount` in `rules[0]`",
    );
    single_error(
        "[[rules]]\nid = \"Double Points\"\nname = \"R\"\nkind = \"join\"\npoints = 5\n",
        "id = ",
        "\"Double",
        "rules[0].id",
        "`rules[0].id` must be 1 to 64 characters of a-z, 0-9 and _, found \"Double Points\"",
    );
    single_error(
        "[[rules]]\nid = \"r\"\nname = \"R\"\nkind = \"birthday\"\npoints = 5\nchannels = [\"pos\"]\n",
        "kind = ",
        "channels",
        "rules[0].channels",
        "`rules[0].channels` does not apply to a rule of kind \"birthday\": only purchases have a channel and a store",
    );
    single_error(
        "[[rules]]\nid = \"r\"\nname = \"R\"\nkind = \"join\"\npoints = 5\nstop = \"yes\"\n",
        "stop = ",
        "\"yes\"",
        "rules[0].stop",
        "`rules[0].stop` must be true or false, found a string",
    );
    single_error(
        "[[rules]]\nid = \"r\"\nname = \"R\"\nkind = \"join\"\npoints = 5\nfrom = \"2025-03-01\"\n",
        "from = ",
        "\"2025",
        "rules[0].from",
        "`rules[0].from` must be a date (2025-03-01) or a date and time (2025-03-01T09:00:00), found a string",
    );
    single_error(
        "[[rules]]\nid = \"r\"\nname = \"R\"\nkind = \"referral\"\n",
        "[[rules]]",
        "[[rules]]",
        "rules[0]",
        "`rules[0]` gives no points to anyone",
    );
}

mod evaluation;
mod periods;
