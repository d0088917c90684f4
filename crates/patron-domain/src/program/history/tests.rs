//! The decision on a new program version: what history forbids, what a tier mapping moves.

use super::*;
use crate::program::parse_program;

/// A program in `currency` (a TOML value), `zone` and `calendar`, with tiers `levels` (codes,
/// thresholds 0, 100, 200...) and `extra` lines in `[tiers]`.
fn program(currency: &str, zone: &str, calendar: &str, levels: &[&str], extra: &str) -> Program {
    let mut source = format!(
        "[club]\nname = \"Test\"\ndefault_locale = \"en\"\ncurrency = {currency}\n\
         time_zone = \"{zone}\"\ncalendar = \"{calendar}\"\n\n\
         [earning]\npoints_per_unit = \"1\"\n\n[expiry]\npolicy = \"never\"\n\n\
         [returns]\npolicy = \"within_balance\"\n\n[exit]\npolicy = \"forfeit\"\n\n\
         [cards]\nprefix = \"42\"\n\n\
         [tiers]\nbasis = \"points_earned\"\nwindow = \"lifetime\"\n{extra}\n"
    );
    for (index, code) in levels.iter().enumerate() {
        source.push_str(&format!(
            "\n[[tiers.levels]]\ncode = \"{code}\"\nname = \"{code}\"\nthreshold = {}\n",
            index * 100
        ));
    }
    parse_program(&source).unwrap_or_else(|e| panic!("{source}\n{e:?}"))
}

fn usd() -> Program {
    program(
        "\"USD\"",
        "America/New_York",
        "gregorian",
        &["base", "silver", "gold"],
        "",
    )
}

fn history(held: &[(&str, i64, i64)]) -> History {
    History {
        has_ledger_history: true,
        held_tiers: held
            .iter()
            .map(|(code, members, floors)| HeldTier {
                code: (*code).to_owned(),
                members: *members,
                floors: *floors,
            })
            .collect(),
    }
}

fn paths(refusals: Vec<Refusal>) -> Vec<String> {
    refusals.into_iter().map(|r| r.path).collect()
}

#[test]
fn a_first_program_is_always_accepted() {
    assert_eq!(check_change(None, &usd(), &history(&[])), Ok(vec![]));
}

#[test]
fn with_history_the_currency_its_minor_unit_the_zone_and_the_calendar_are_refused() {
    let current = usd();
    let irr = program(
        "\"IRR\"",
        "America/New_York",
        "gregorian",
        &["base", "silver", "gold"],
        "",
    );
    let minor = program(
        "{ code = \"USD\", minor_unit = 0 }",
        "America/New_York",
        "gregorian",
        &["base", "silver", "gold"],
        "",
    );
    let zone = program(
        "\"USD\"",
        "Asia/Tehran",
        "persian",
        &["base", "silver", "gold"],
        "",
    );
    let facts = history(&[]);
    assert_eq!(
        check_change(Some(&current), &irr, &facts).map_err(paths),
        Err(vec!["club.currency".to_owned()])
    );
    assert_eq!(
        check_change(Some(&current), &minor, &facts).map_err(paths),
        Err(vec!["club.currency.minor_unit".to_owned()])
    );
    assert_eq!(
        check_change(Some(&current), &zone, &facts).map_err(paths),
        Err(vec![
            "club.time_zone".to_owned(),
            "club.calendar".to_owned()
        ])
    );
}

#[test]
fn without_history_the_currency_and_the_zone_may_still_change() {
    let irr = program(
        "\"IRR\"",
        "Asia/Tehran",
        "persian",
        &["base", "silver", "gold"],
        "",
    );
    let facts = History::default();
    assert_eq!(check_change(Some(&usd()), &irr, &facts), Ok(vec![]));
}

#[test]
fn other_changes_apply_with_history() {
    let renamed = program(
        "\"USD\"",
        "America/New_York",
        "gregorian",
        &["base", "silver", "gold", "platinum"],
        "",
    );
    let facts = history(&[("base", 10, 0), ("gold", 2, 1)]);
    assert_eq!(check_change(Some(&usd()), &renamed, &facts), Ok(vec![]));
}

#[test]
fn removing_a_held_tier_without_a_mapping_names_the_tier_and_its_members() {
    let without_silver = program(
        "\"USD\"",
        "America/New_York",
        "gregorian",
        &["base", "gold"],
        "",
    );
    let facts = history(&[("base", 10, 0), ("silver", 3, 1)]);
    let Err(refusals) = check_change(Some(&usd()), &without_silver, &facts) else {
        panic!("removing a held tier without a mapping was accepted");
    };
    assert_eq!(refusals.len(), 1);
    assert_eq!(refusals[0].path, "tiers.levels");
    assert!(
        refusals[0].message.contains("\"silver\"") && refusals[0].message.contains("3 members"),
        "{}",
        refusals[0].message
    );
    assert!(
        refusals[0]
            .hint
            .as_deref()
            .unwrap()
            .contains("replaced = { silver = ")
    );
}

#[test]
fn removing_a_tier_nobody_holds_needs_no_mapping() {
    let without_silver = program(
        "\"USD\"",
        "America/New_York",
        "gregorian",
        &["base", "gold"],
        "",
    );
    let facts = history(&[("base", 10, 0), ("silver", 0, 0)]);
    assert_eq!(
        check_change(Some(&usd()), &without_silver, &facts),
        Ok(vec![])
    );
}

#[test]
fn a_mapping_moves_the_holders_of_a_removed_tier() {
    let mapped = program(
        "\"USD\"",
        "America/New_York",
        "gregorian",
        &["base", "gold"],
        "replaced = { silver = \"gold\" }",
    );
    let facts = history(&[("base", 10, 0), ("silver", 3, 1)]);
    assert_eq!(
        check_change(Some(&usd()), &mapped, &facts),
        Ok(vec![TierMove {
            from: "silver".into(),
            to: "gold".into(),
            members: 3,
            floors: 1,
        }])
    );
}

#[test]
fn a_refusal_is_located_at_its_key_in_the_new_text() {
    let source = "[club]\nname = \"Test\"\ncurrency = \"IRR\"\n";
    let refusal = Refusal {
        path: "club.currency".into(),
        message: "no".into(),
        hint: None,
    };
    let diagnostic = refusal.locate(source);
    assert_eq!((diagnostic.line, diagnostic.column), (3, 12));
    let nested = Refusal {
        path: "club.currency.minor_unit".into(),
        ..refusal
    };
    let diagnostic = nested.locate("[club]\ncurrency = { code = \"USD\", minor_unit = 0 }\n");
    assert_eq!((diagnostic.line, diagnostic.column), (2, 41));
}
