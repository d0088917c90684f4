//! The [expiry], [returns], [exit] and [pending] sections, and the calendar.

use super::*;
// ----- [expiry], [returns], [exit], [pending] ---------------------------------------------------

fn with_expiry(body: &str) -> String {
    minimal_with("[expiry]\npolicy = \"never\"", &format!("[expiry]\n{body}"))
}

#[test]
fn every_expiry_policy_parses() {
    let expiry = |body: &str| parse_ok(&with_expiry(body)).expiry;
    assert_eq!(expiry("policy = \"never\""), ExpiryPolicy::Never);
    assert_eq!(
        expiry("policy = \"after_earning\"\namount = 90\nunit = \"days\""),
        ExpiryPolicy::AfterEarning {
            amount: 90,
            unit: ExpiryUnit::Days,
            round_to: ExpiryRounding::None
        }
    );
    for (word, round_to) in [
        ("none", ExpiryRounding::None),
        ("end_of_day", ExpiryRounding::EndOfDay),
        ("end_of_month", ExpiryRounding::EndOfMonth),
        ("end_of_quarter", ExpiryRounding::EndOfQuarter),
        ("end_of_year", ExpiryRounding::EndOfYear),
    ] {
        assert_eq!(
            expiry(&format!(
                "policy = \"after_earning\"\namount = 24\nunit = \"months\"\nround_to = \"{word}\""
            )),
            ExpiryPolicy::AfterEarning {
                amount: 24,
                unit: ExpiryUnit::Months,
                round_to
            }
        );
    }
    assert_eq!(
        expiry("policy = \"fixed_yearly_date\"\nmonth = 2\nday = 29"),
        ExpiryPolicy::FixedYearlyDate { month: 2, day: 29 }
    );
    assert_eq!(
        expiry("policy = \"inactivity\"\nmonths = 18"),
        ExpiryPolicy::Inactivity { months: 18 }
    );
}

#[test]
fn after_earning_needs_amount_and_unit_in_range() {
    let source = with_expiry("policy = \"after_earning\"\nunit = \"months\"");
    single_error(
        &source,
        "[expiry]",
        "expiry.amount",
        "missing required key `amount` in [expiry]",
    );
    let source = with_expiry("policy = \"after_earning\"\namount = 121\nunit = \"months\"");
    single_error(
        &source,
        "121",
        "expiry.amount",
        "`expiry.amount` must be between 1 and 120, found 121",
    );
    // The same number of days is fine.
    let source = with_expiry("policy = \"after_earning\"\namount = 121\nunit = \"days\"");
    parse_ok(&source);
    let source = with_expiry("policy = \"after_earning\"\namount = 0\nunit = \"days\"");
    single_error(
        &source,
        "0\n",
        "expiry.amount",
        "`expiry.amount` must be between 1 and 3650, found 0",
    );
    let source = with_expiry("policy = \"after_earning\"\namount = 3\nunit = \"weeks\"");
    let diagnostic = single_error(
        &source,
        "\"weeks\"",
        "expiry.unit",
        "`expiry.unit`: unknown value \"weeks\"",
    );
    assert_eq!(
        diagnostic.hint.as_deref(),
        Some("expected one of \"days\", \"months\"")
    );
}

#[test]
fn a_key_of_another_expiry_policy_is_reported() {
    let source =
        with_expiry("policy = \"after_earning\"\namount = 12\nunit = \"months\"\nmonth = 1");
    let diagnostic = single_error(
        &source,
        "month =",
        "expiry.month",
        "`expiry.month` does not apply to policy \"after_earning\"",
    );
    assert_eq!(
        diagnostic.hint.as_deref(),
        Some("remove it, or use policy = \"fixed_yearly_date\"")
    );
    let source = with_expiry("policy = \"never\"\nmonths = 12");
    let diagnostic = single_error(
        &source,
        "months",
        "expiry.months",
        "`expiry.months` does not apply to policy \"never\"",
    );
    assert_eq!(
        diagnostic.hint.as_deref(),
        Some("remove it, or use policy = \"inactivity\"")
    );
}

#[test]
fn the_calendar_is_gregorian_unless_the_club_says_persian() {
    assert_eq!(parse_ok(MINIMAL).calendar, CalendarSystem::Gregorian);
    let persian = MINIMAL.replace(
        "time_zone = \"UTC\"",
        "time_zone = \"UTC\"\ncalendar = \"persian\"",
    );
    let program = parse_ok(&persian);
    assert_eq!(program.calendar, CalendarSystem::Persian);
    assert_eq!(program.calendar().system, CalendarSystem::Persian);
    // 30 Esfand exists in leap years, so it is a valid fixed yearly date; 31 Mehr does not.
    let esfand = persian.replace(
        "[expiry]\npolicy = \"never\"",
        "[expiry]\npolicy = \"fixed_yearly_date\"\nmonth = 12\nday = 30",
    );
    assert_eq!(
        parse_ok(&esfand).expiry,
        ExpiryPolicy::FixedYearlyDate { month: 12, day: 30 }
    );
    let mehr = persian.replace(
        "[expiry]\npolicy = \"never\"",
        "[expiry]\npolicy = \"fixed_yearly_date\"\nmonth = 7\nday = 31",
    );
    single_error(
        &mehr,
        "31",
        "expiry.day",
        "`expiry.day` is 31, but month 7 of the Persian calendar has only 30 days",
    );
}

#[test]
fn an_unsupported_calendar_is_refused_with_a_reason() {
    let hebrew = MINIMAL.replace(
        "time_zone = \"UTC\"",
        "time_zone = \"UTC\"\ncalendar = \"hebrew\"",
    );
    let diagnostic = single_error(
        &hebrew,
        "\"hebrew\"",
        "club.calendar",
        "`club.calendar`: the Hebrew calendar is not supported yet",
    );
    assert!(
        diagnostic
            .hint
            .as_deref()
            .unwrap_or_default()
            .contains("13 months")
    );
    let typo = MINIMAL.replace(
        "time_zone = \"UTC\"",
        "time_zone = \"UTC\"\ncalendar = \"persain\"",
    );
    let diagnostic = single_error(
        &typo,
        "\"persain\"",
        "club.calendar",
        "`club.calendar`: unknown value \"persain\"",
    );
    assert_eq!(
        diagnostic.hint.as_deref(),
        Some("did you mean \"persian\"?")
    );
}

#[test]
fn a_fixed_yearly_date_must_exist() {
    let source = with_expiry("policy = \"fixed_yearly_date\"\nmonth = 4\nday = 31");
    single_error(
        &source,
        "31",
        "expiry.day",
        "`expiry.day` is 31, but month 4 has only 30 days",
    );
    let source = with_expiry("policy = \"fixed_yearly_date\"\nmonth = 2\nday = 30");
    single_error(
        &source,
        "30",
        "expiry.day",
        "`expiry.day` is 30, but month 2 has only 29 days",
    );
    let source = with_expiry("policy = \"fixed_yearly_date\"\nmonth = 13\nday = 1");
    single_error(
        &source,
        "13",
        "expiry.month",
        "`expiry.month` must be between 1 and 12, found 13",
    );
    let source = with_expiry("policy = \"fixed_yearly_date\"\nmonth = 12");
    single_error(
        &source,
        "[expiry]",
        "expiry.day",
        "missing required key `day` in [expiry]",
    );
}

#[test]
fn inactivity_months_are_bounded() {
    let source = with_expiry("policy = \"inactivity\"\nmonths = 0");
    single_error(
        &source,
        "0\n",
        "expiry.months",
        "`expiry.months` must be between 1 and 120, found 0",
    );
}

#[test]
fn every_return_and_exit_policy_parses() {
    for (word, policy) in [
        ("only_pending", ReturnPolicy::OnlyPending),
        ("within_balance", ReturnPolicy::WithinBalance),
        ("unlimited", ReturnPolicy::Unlimited),
    ] {
        let source = minimal_with(
            "policy = \"within_balance\"",
            &format!("policy = \"{word}\""),
        );
        assert_eq!(parse_ok(&source).returns, policy);
    }
    for (word, policy) in [
        ("forfeit", ExitPolicy::Forfeit),
        ("keep_until_expiry", ExitPolicy::KeepUntilExpiry),
    ] {
        let source = minimal_with("policy = \"forfeit\"", &format!("policy = \"{word}\""));
        assert_eq!(parse_ok(&source).exit, policy);
    }
}

#[test]
fn pending_days_need_a_value_when_the_section_is_present() {
    let source = minimal_plus("[pending]\n");
    single_error(
        &source,
        "[pending]",
        "pending.days",
        "missing required key `days` in [pending]",
    );
    assert_eq!(
        parse_ok(&minimal_plus("[pending]\ndays = 0\n")).pending,
        Pending { days: 0 }
    );
}
