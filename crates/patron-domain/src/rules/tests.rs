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

// ----- Evaluation: kinds -----------------------------------------------------------------------

#[test]
fn without_rules_a_purchase_earns_the_base_rate_times_the_tier_multiplier() {
    let program = program("");
    let regular = run(&program, &member("regular"), Trigger::Purchase(&purchase()));
    // $30 eligible (the gift card is excluded) at 1 point per dollar.
    assert_eq!(regular.base_points, 30);
    assert_eq!(regular.total_points, 30);
    assert!(regular.awards.is_empty());
    let gold = run(&program, &member("gold"), Trigger::Purchase(&purchase()));
    assert_eq!(gold.total_points, 45);
    assert_eq!(
        run(&program, &member("regular"), Trigger::Enrollment).total_points,
        0
    );
}

#[test]
fn a_spend_rule_adds_its_rate_over_the_matching_eligible_lines() {
    let program = program(
        "[[rules]]\nid = \"coffee_bonus\"\nname = \"Coffee bonus\"\nkind = \"spend\"\npoints_per_unit = \"0.5\"\ncategories = [\"coffee\", \"gift_cards\"]\n",
    );
    let evaluation = run(&program, &member("regular"), Trigger::Purchase(&purchase()));
    // $20 of coffee × 0.5; the excluded gift card never counts.
    assert_eq!(points_by_rule(&evaluation), [("coffee_bonus", 10)]);
    assert_eq!(evaluation.total_points, 40);
    assert_eq!(
        evaluation.awards[0].names.get(Locale::En),
        Some("Coffee bonus")
    );
    assert_eq!(evaluation.fired_rule_ids(), ["coffee_bonus"]);
}

#[test]
fn the_minimum_order_ignores_excluded_lines() {
    let rules = |minimum: &str| {
        program(&format!(
            "[[rules]]\nid = \"big\"\nname = \"Big basket\"\nkind = \"spend\"\npoints_per_unit = 1\nminimum_purchase = \"{minimum}\"\n"
        ))
    };
    // $80 in the basket, but only $30 eligible.
    let fired = run(
        &rules("30"),
        &member("regular"),
        Trigger::Purchase(&purchase()),
    );
    assert_eq!(points_by_rule(&fired), [("big", 30)]);
    let not = run(
        &rules("30.01"),
        &member("regular"),
        Trigger::Purchase(&purchase()),
    );
    assert!(not.awards.is_empty());
}

#[test]
fn a_multiplier_gives_the_extra_base_points_of_the_matching_lines() {
    let program = program(
        "[[rules]]\nid = \"triple_coffee\"\nname = \"Triple coffee\"\nkind = \"multiplier\"\nmultiplier = 3\ncategories = [\"coffee\"]\n",
    );
    let evaluation = run(&program, &member("gold"), Trigger::Purchase(&purchase()));
    // Coffee's base is $20 × 1 = 20 points; triple means 40 more. The tier multiplier (1.5)
    // applies to the base only: 30 × 1.5 = 45.
    assert_eq!(points_by_rule(&evaluation), [("triple_coffee", 40)]);
    assert_eq!(evaluation.total_points, 85);
}

#[test]
fn a_multiplier_condition_is_checked_per_line() {
    let program = program(
        "[[rules]]\nid = \"big_lines\"\nname = \"Big lines\"\nkind = \"multiplier\"\nmultiplier = 2\nwhen = \"item.quantity >= 3.0\"\n",
    );
    let evaluation = run(&program, &member("regular"), Trigger::Purchase(&purchase()));
    assert_eq!(
        points_by_rule(&evaluation),
        [("big_lines", 20)],
        "only the 4 lattes"
    );
}

#[test]
fn a_product_rule_gives_points_per_unit_or_per_line_expression() {
    let fixed = program(
        "[[rules]]\nid = \"croissant\"\nname = \"Croissant\"\nkind = \"product\"\nskus = [\"CROISSANT\"]\npoints = 7\n",
    );
    let evaluation = run(&fixed, &member("regular"), Trigger::Purchase(&purchase()));
    assert_eq!(points_by_rule(&evaluation), [("croissant", 14)]);

    let expression = program(
        "[[rules]]\nid = \"pastry\"\nname = \"Pastry\"\nkind = \"product\"\ncategories = [\"pastry\", \"coffee\"]\namount = \"item.line_total / 4.0\"\n",
    );
    let evaluation = run(
        &expression,
        &member("regular"),
        Trigger::Purchase(&purchase()),
    );
    assert_eq!(
        points_by_rule(&evaluation),
        [("pastry", 7)],
        "$30 / 4 = 7.5, rounded down"
    );
}

#[test]
fn an_event_rule_reads_the_event_and_its_properties() {
    let program = program(
        "[[rules]]\nid = \"review\"\nname = \"Review written\"\nkind = \"event\"\nevent = \"review_written\"\namount = \"event.properties.stars >= 4 ? 20 : 10\"\n",
    );
    let event = |event_type: &str, stars: i64| EventFacts {
        event_type: event_type.into(),
        time: at("2025-03-11T10:00"),
        properties: BTreeMap::from([("stars".into(), FactValue::Int(stars))]),
    };
    let good = event("review_written", 5);
    assert_eq!(
        points_by_rule(&run(&program, &member("regular"), Trigger::Event(&good))),
        [("review", 20)]
    );
    let poor = event("review_written", 2);
    assert_eq!(
        run(&program, &member("regular"), Trigger::Event(&poor)).total_points,
        10
    );
    let other = event("survey_answered", 5);
    assert!(
        run(&program, &member("regular"), Trigger::Event(&other))
            .awards
            .is_empty()
    );
}

#[test]
fn birthday_anniversary_and_join_rules_fire_on_their_occasion_only() {
    let program = program(
        r#"
[[rules]]
id = "birthday"
name = "Happy birthday"
kind = "birthday"
points = 100

[[rules]]
id = "anniversary"
name = "Thanks for staying"
kind = "anniversary"
amount = "member.days_since_enrollment >= 365 ? 50 : 0"

[[rules]]
id = "welcome"
name = "Welcome"
kind = "join"
points = 25
"#,
    );
    let regular = member("regular");
    assert_eq!(
        points_by_rule(&run(&program, &regular, Trigger::Birthday)),
        [("birthday", 100)]
    );
    // Enrolled 2024-06-01, now 2025-03-11: not a year yet, so the amount is 0: no award.
    assert!(
        run(&program, &regular, Trigger::Anniversary)
            .awards
            .is_empty()
    );
    let veteran = MemberFacts {
        enrolled_at: at("2023-03-11T08:00"),
        ..member("regular")
    };
    assert_eq!(
        points_by_rule(&run(&program, &veteran, Trigger::Anniversary)),
        [("anniversary", 50)]
    );
    assert_eq!(
        points_by_rule(&run(&program, &regular, Trigger::Enrollment)),
        [("welcome", 25)]
    );
    assert!(
        run(&program, &regular, Trigger::Purchase(&purchase()))
            .awards
            .is_empty()
    );
}

#[test]
fn a_referral_rewards_both_sides_on_a_qualifying_purchase() {
    let program = program(
        "[[rules]]\nid = \"referral\"\nname = \"Referral\"\nkind = \"referral\"\nreferrer_points = 200\nnewcomer_points = 50\nminimum_purchase = 25\n",
    );
    let plain = purchase();
    assert!(
        run(&program, &member("regular"), Trigger::Purchase(&plain))
            .awards
            .is_empty(),
        "no referral, no reward"
    );
    let referred = PurchaseFacts {
        referral: Some(ReferralFacts {
            referrer_id: "mem_friend".into(),
        }),
        ..purchase()
    };
    let evaluation = run(&program, &member("regular"), Trigger::Purchase(&referred));
    assert_eq!(evaluation.awards.len(), 2);
    assert_eq!(evaluation.awards[0].beneficiary, Beneficiary::Member);
    assert_eq!(evaluation.awards[0].points, 50);
    assert_eq!(
        evaluation.awards[1].beneficiary,
        Beneficiary::Referrer {
            member_id: "mem_friend".into()
        }
    );
    assert_eq!(evaluation.awards[1].points, 200);
    assert_eq!(
        evaluation.total_points,
        30 + 50,
        "the referrer's points are not the member's"
    );
    assert_eq!(evaluation.fired_rule_ids(), ["referral"]);

    let small = PurchaseFacts {
        lines: vec![line("LATTE", "coffee", 1, 500)],
        ..referred
    };
    assert!(
        run(&program, &member("regular"), Trigger::Purchase(&small))
            .awards
            .is_empty(),
        "below the minimum the purchase does not qualify"
    );
}

// ----- Evaluation: filters, order, limits, failures --------------------------------------------

#[test]
fn channels_stores_tiers_and_windows_filter_rules() {
    let rule = |extra: &str| {
        program(&format!(
            "[[rules]]\nid = \"r\"\nname = \"R\"\nkind = \"spend\"\npoints_per_unit = 1\n{extra}\n"
        ))
    };
    let fires = |program: &Program, tier: &str| {
        !run(program, &member(tier), Trigger::Purchase(&purchase()))
            .awards
            .is_empty()
    };
    assert!(fires(&rule("channels = [\"pos\"]"), "regular"));
    assert!(!fires(&rule("channels = [\"web\"]"), "regular"));
    assert!(fires(&rule("stores = [\"s2\", \"s1\"]"), "regular"));
    assert!(!fires(&rule("stores = [\"s2\"]"), "regular"));
    assert!(fires(&rule("tiers = [\"gold\"]"), "gold"));
    assert!(!fires(&rule("tiers = [\"gold\"]"), "regular"));
    // The purchase is at 09:30 on 11 March, New York time.
    assert!(fires(
        &rule("from = 2025-03-11\nuntil = 2025-03-11"),
        "regular"
    ));
    assert!(fires(&rule("from = 2025-03-11T09:30:00"), "regular"));
    assert!(!fires(&rule("from = 2025-03-11T09:30:01"), "regular"));
    assert!(!fires(&rule("until = 2025-03-11T09:30:00"), "regular"));
    assert!(!fires(&rule("until = 2025-03-10"), "regular"));
    // 13:30 UTC is 09:30 in New York (daylight time since 9 March).
    assert!(!fires(&rule("from = 2025-03-11T13:30:01Z"), "regular"));
    assert!(fires(&rule("from = 2025-03-11T13:30:00Z"), "regular"));
}

#[test]
fn timestamps_read_the_clubs_clock() {
    let program = program(
        "[[rules]]\nid = \"morning\"\nname = \"Morning\"\nkind = \"spend\"\npoints_per_unit = 1\nwhen = \"purchase.time.getHours() < 10 && purchase.time.getDayOfWeek() == 2 && now > purchase.time\"\n",
    );
    assert_eq!(
        points_by_rule(&run(
            &program,
            &member("regular"),
            Trigger::Purchase(&purchase())
        )),
        [("morning", 30)]
    );
}

#[test]
fn member_facts_are_visible_to_conditions() {
    let program = program(
        "[[rules]]\nid = \"r\"\nname = \"R\"\nkind = \"spend\"\npoints_per_unit = 1\nwhen = \"member.attributes.city == 'Boston' && 'coffee_lovers' in member.segments && member.statistics.purchases_count == 3 && member.birth_date.getMonth() == 5 && member.id == 'mem_1' && purchase.item_count == 3 && purchase.total == 80.0 && purchase.eligible_total == 30.0 && purchase.channel == 'pos' && purchase.store == 's1'\"\n",
    );
    let evaluation = run(&program, &member("regular"), Trigger::Purchase(&purchase()));
    assert_eq!(evaluation.failures, []);
    assert_eq!(points_by_rule(&evaluation), [("r", 30)]);
}

#[test]
fn higher_priority_runs_first_and_stop_ends_the_evaluation() {
    let rules = |stop: bool| {
        program(&format!(
            r#"
[[rules]]
id = "a_low"
name = "Low"
kind = "spend"
points_per_unit = 1

[[rules]]
id = "b_high"
name = "High"
kind = "spend"
points_per_unit = 2
priority = 5
stop = {stop}

[[rules]]
id = "c_never_fires"
name = "Never"
kind = "spend"
points_per_unit = 3
priority = 9
when = "purchase.total > 1000.0"
stop = true
"#
        ))
    };
    let without_stop = run(
        &rules(false),
        &member("regular"),
        Trigger::Purchase(&purchase()),
    );
    assert_eq!(
        points_by_rule(&without_stop),
        [("b_high", 60), ("a_low", 30)]
    );
    let with_stop = run(
        &rules(true),
        &member("regular"),
        Trigger::Purchase(&purchase()),
    );
    assert_eq!(points_by_rule(&with_stop), [("b_high", 60)]);
    assert_eq!(with_stop.total_points, 90, "stop never removes the base");
}

#[test]
fn a_used_up_limit_skips_the_rule() {
    let program = program(
        "[[rules]]\nid = \"daily\"\nname = \"Daily\"\nkind = \"spend\"\npoints_per_unit = 1\nlimit = { count = 2, per = \"day\" }\n",
    );
    let used = |count: u32| RuleUsage::from([("daily".to_owned(), count)]);
    let fires = |usage: &RuleUsage| {
        !run_with(
            &program,
            &member("regular"),
            Trigger::Purchase(&purchase()),
            usage,
        )
        .awards
        .is_empty()
    };
    assert!(fires(&RuleUsage::new()));
    assert!(fires(&used(1)));
    assert!(!fires(&used(2)));
    assert!(!fires(&used(7)));
}

#[test]
fn a_rule_that_fails_at_run_time_is_skipped_and_reported() {
    let program = program(
        r#"
[[rules]]
id = "needs_city"
name = "Locals"
kind = "spend"
points_per_unit = 1
priority = 2
when = "member.attributes.postcode == '02139'"

[[rules]]
id = "negative"
name = "Broken amount"
kind = "product"
skus = ["LATTE"]
priority = 1
amount = "0.0 - item.quantity"

[[rules]]
id = "fine"
name = "Fine"
kind = "join"
points = 1
"#,
    );
    let evaluation = run(&program, &member("regular"), Trigger::Purchase(&purchase()));
    assert_eq!(evaluation.total_points, 30);
    let failures: Vec<(&str, RulePart)> = evaluation
        .failures
        .iter()
        .map(|failure| (failure.rule_id.as_str(), failure.part))
        .collect();
    assert_eq!(
        failures,
        [
            ("needs_city", RulePart::When),
            ("negative", RulePart::Amount)
        ]
    );
    assert_eq!(
        evaluation.failures[0].error,
        ExprError::MissingKey("postcode".into())
    );
    assert!(
        evaluation.failures[1]
            .error
            .to_string()
            .contains("negative")
    );
}

#[test]
fn a_rule_can_test_for_a_missing_key_first() {
    let program = program(
        "[[rules]]\nid = \"r\"\nname = \"R\"\nkind = \"spend\"\npoints_per_unit = 1\nwhen = \"has(member.attributes.postcode) && member.attributes.postcode == '02139'\"\n",
    );
    let evaluation = run(&program, &member("regular"), Trigger::Purchase(&purchase()));
    assert!(evaluation.failures.is_empty());
    assert!(evaluation.awards.is_empty());
}

// ----- Periods ----------------------------------------------------------------------------------

#[test]
fn limit_periods_follow_the_clubs_calendar() {
    let tz = ny_calendar();
    let limit = |per, week_start| RuleLimit {
        count: 1,
        per,
        week_start,
    };
    let monday = jiff::civil::Weekday::Monday;
    // Tuesday 11 March 2025, 23:30 in New York (already 12 March in UTC).
    let instant = at("2025-03-11T23:30");
    let day = limit_period(&limit(LimitPer::Day, monday), instant, &tz);
    assert_eq!(day.key, "2025-03-11");
    assert_eq!(day.start, Some(at("2025-03-11T00:00")));
    assert_eq!(day.end, Some(at("2025-03-12T00:00")));
    let week = limit_period(&limit(LimitPer::Week, monday), instant, &tz);
    assert_eq!(
        (week.key.as_str(), week.start),
        ("2025-03-10", Some(at("2025-03-10T00:00")))
    );
    let saturday_week = limit_period(
        &limit(LimitPer::Week, jiff::civil::Weekday::Saturday),
        instant,
        &tz,
    );
    assert_eq!(saturday_week.key, "2025-03-08");
    assert_eq!(saturday_week.end, Some(at("2025-03-15T00:00")));
    let month = limit_period(&limit(LimitPer::Month, monday), instant, &tz);
    assert_eq!(
        (month.key.as_str(), month.end),
        ("2025-03", Some(at("2025-04-01T00:00")))
    );
    let year = limit_period(&limit(LimitPer::Year, monday), instant, &tz);
    assert_eq!(
        (year.key.as_str(), year.start),
        ("2025", Some(at("2025-01-01T00:00")))
    );
    // A Persian club counts Persian months and years: 11 March 2025 is 21 Esfand 1403.
    let persian = Calendar::new(ny(), CalendarSystem::Persian);
    let month = limit_period(&limit(LimitPer::Month, monday), instant, &persian);
    assert_eq!(
        (month.key.as_str(), month.start, month.end),
        (
            "1403-12",
            Some(at("2025-02-19T00:00")),
            Some(at("2025-03-21T00:00"))
        )
    );
    let year = limit_period(&limit(LimitPer::Year, monday), instant, &persian);
    assert_eq!(
        (year.key.as_str(), year.start),
        ("1403", Some(at("2024-03-20T00:00")))
    );
    let lifetime = limit_period(&limit(LimitPer::Lifetime, monday), instant, &tz);
    assert_eq!(
        lifetime,
        LimitPeriod {
            key: "lifetime".into(),
            start: None,
            end: None
        }
    );
}

#[test]
fn birthdays_and_anniversaries_handle_29_february() {
    let leap_born = Date::new(2000, 2, 29).unwrap();
    let gregorian = CalendarSystem::Gregorian;
    assert!(is_birthday(
        leap_born,
        Date::new(2024, 2, 29).unwrap(),
        gregorian
    ));
    assert!(!is_birthday(
        leap_born,
        Date::new(2024, 2, 28).unwrap(),
        gregorian
    ));
    assert!(is_birthday(
        leap_born,
        Date::new(2025, 2, 28).unwrap(),
        gregorian
    ));
    assert!(is_birthday(
        Date::new(1990, 6, 15).unwrap(),
        Date::new(2025, 6, 15).unwrap(),
        gregorian
    ));
    let tz = ny_calendar();
    let enrolled = at("2022-03-11T20:00");
    assert_eq!(
        anniversary_years(enrolled, Date::new(2025, 3, 11).unwrap(), &tz),
        Some(3)
    );
    assert_eq!(
        anniversary_years(enrolled, Date::new(2022, 3, 11).unwrap(), &tz),
        None
    );
    assert_eq!(
        anniversary_years(enrolled, Date::new(2025, 3, 12).unwrap(), &tz),
        None
    );
    // In the Persian calendar: born 1 Farvardin 1370 (21 March 1991), the birthday in 1404
    // is 21 March 2025, and in 1403 it was 20 March 2024.
    let persian = CalendarSystem::Persian;
    let born = Date::new(1991, 3, 21).unwrap();
    assert!(is_birthday(born, Date::new(2025, 3, 21).unwrap(), persian));
    assert!(is_birthday(born, Date::new(2024, 3, 20).unwrap(), persian));
    assert!(!is_birthday(born, Date::new(2024, 3, 21).unwrap(), persian));
}

#[test]
fn the_birthday_job_looks_up_every_stored_day_that_can_be_today() {
    let gregorian = CalendarSystem::Gregorian;
    let day = |m, d| Date::new(2025, m, d).unwrap();
    assert_eq!(birthday_candidates(day(6, 15), gregorian), ["06-15"]);
    // 28 February of a common year also looks up 29 February.
    assert_eq!(
        birthday_candidates(day(2, 28), gregorian),
        ["02-28", "02-29"]
    );
    // A Persian date moves by a day or two against the Gregorian one.
    assert_eq!(
        birthday_candidates(day(6, 15), CalendarSystem::Persian),
        [
            "06-12", "06-13", "06-14", "06-15", "06-16", "06-17", "06-18"
        ]
    );
    assert!(birthday_candidates(day(3, 2), CalendarSystem::Persian).contains(&"02-29".to_owned()));
    // Every Persian birthday of a century falls in the candidates of its day.
    let persian = CalendarSystem::Persian;
    let mut born = Date::new(1960, 1, 1).unwrap();
    while born.year() < 1964 {
        for year in [2025, 2026, 2027, 2028] {
            let ymd = persian.ymd(born).unwrap();
            let years_on = ymd.year + (year - 1960);
            let today = persian.date_clamped(years_on, ymd.month, ymd.day).unwrap();
            assert!(is_birthday(born, today, persian), "{born} on {today}");
            let stored = born.strftime("%m-%d").to_string();
            assert!(
                birthday_candidates(today, persian).contains(&stored),
                "{born} on {today}"
            );
        }
        born = born.tomorrow().unwrap();
    }
}

// ----- Properties and cost ----------------------------------------------------------------------

/// Twenty rules of every purchase kind, most with conditions: the benchmark's shape.
fn twenty_rules() -> Program {
    let mut rules = String::new();
    for index in 0..20 {
        let body = match index % 5 {
            0 => "kind = \"spend\"\npoints_per_unit = \"0.5\"\nwhen = \"purchase.total >= 10.0 && member.tier != 'banned'\"".to_owned(),
            1 => "kind = \"multiplier\"\nmultiplier = 2\ncategories = [\"coffee\"]\nwhen = \"item.quantity >= 1.0\"".to_owned(),
            2 => "kind = \"product\"\nskus = [\"CROISSANT\"]\namount = \"item.quantity * 3.0\"".to_owned(),
            3 => "kind = \"spend\"\npoints_per_unit = 1\nwhen = \"'coffee_lovers' in member.segments && purchase.time.getHours() < 12\"\nlimit = { count = 3, per = \"week\" }".to_owned(),
            _ => "kind = \"product\"\ncategories = [\"pastry\"]\npoints = 2\nchannels = [\"pos\"]".to_owned(),
        };
        rules.push_str(&format!(
            "[[rules]]\nid = \"rule_{index:02}\"\nname = \"Rule {index}\"\npriority = {index}\n{body}\n\n"
        ));
    }
    program(&rules)
}

fn arbitrary_fact() -> impl Strategy<Value = FactValue> {
    prop_oneof![
        Just(FactValue::Null),
        any::<bool>().prop_map(FactValue::Bool),
        any::<i64>().prop_map(FactValue::Int),
        any::<f64>().prop_map(FactValue::Double),
        "[a-z]{0,6}".prop_map(FactValue::Text),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn evaluation_never_panics_or_gives_negative_points(
        lines in proptest::collection::vec(
            (prop_oneof![Just("LATTE"), Just("CROISSANT"), Just("X")],
             prop_oneof![Just("coffee"), Just("pastry"), Just("gift_cards")],
             -5_i64..50, -100_i64..1_000_000, any::<i64>()),
            0..6),
        tier in prop_oneof![Just("regular"), Just("gold"), Just("unknown")],
        city in arbitrary_fact(),
        seconds in -5_000_000_000_i64..5_000_000_000,
        used in 0_u32..5,
    ) {
        let program = twenty_rules();
        let facts = PurchaseFacts {
            channel: "pos".into(),
            store: "s1".into(),
            time: Timestamp::from_second(seconds).unwrap(),
            lines: lines.into_iter().map(|(sku, category, quantity, price, total)| LineFacts {
                sku: sku.into(),
                category: category.into(),
                quantity: Decimal::from(quantity),
                unit_price_minor: price,
                total_minor: total,
            }).collect(),
            referral: None,
        };
        let mut member = member(tier);
        member.attributes.insert("city".into(), city);
        let usage: RuleUsage = program.rules.iter().map(|rule| (rule.id.clone(), used)).collect();
        let evaluation = run_with(&program, &member, Trigger::Purchase(&facts), &usage);
        prop_assert!(evaluation.total_points >= 0);
        prop_assert!(evaluation.base_points >= 0);
        for award in &evaluation.awards {
            prop_assert!(award.points >= 1);
        }
    }
}

#[test]
fn earning_rules_keep_limits_per_day_in_civil_time() {
    // A sanity check that the window helper and the evaluation agree on "a day".
    let tz = ny_calendar();
    let limit = RuleLimit {
        count: 1,
        per: LimitPer::Day,
        week_start: jiff::civil::Weekday::Monday,
    };
    let late = at("2025-11-02T23:59");
    let period = limit_period(&limit, late, &tz);
    // 2 November 2025 is 25 hours long in New York (clocks go back).
    assert_eq!(
        period.end.unwrap().duration_since(period.start.unwrap()),
        jiff::SignedDuration::from_hours(25)
    );
    let _ = 1.day();
}

#[test]
fn the_coffee_chain_example_rules_work() {
    let program = match parse_program(include_str!(
        "../../../../examples/programs/coffee-chain.toml"
    )) {
        Ok(program) => program,
        Err(diagnostics) => panic!("{}", render(&diagnostics)),
    };
    let ids: Vec<&str> = program.rules.iter().map(|rule| rule.id.as_str()).collect();
    assert_eq!(
        ids,
        [
            "double_coffee_tuesday",
            "app_review",
            "birthday_drink",
            "bring_a_friend",
            "pastry_pairing",
            "welcome"
        ]
    );
    // Tuesday 09:30 in New York: $30 eligible at 2 beans per dollar, +40 for double coffee,
    // +6 for two pastries with a coffee.
    let evaluation = run(&program, &member("regular"), Trigger::Purchase(&purchase()));
    assert_eq!(
        points_by_rule(&evaluation),
        [("double_coffee_tuesday", 40), ("pastry_pairing", 6)]
    );
    assert_eq!(evaluation.total_points, 60 + 46);
    let birthday = run(&program, &member("reserve"), Trigger::Birthday);
    assert_eq!(points_by_rule(&birthday), [("birthday_drink", 200)]);
}
