//! The [tiers] section, the card prefix, positions in right-to-left lines, and [limits].

use super::*;
// ----- [tiers] ---------------------------------------------------------------------------------

const TIERS: &str = r#"[tiers]
basis = "points_earned"
window = "calendar_year"
downgrade = { policy = "end_of_period", grace_days = 30 }

[[tiers.levels]]
code = "bronze"
name = "Bronze"
threshold = 0

[[tiers.levels]]
code = "silver"
name = "Silver"
threshold = 1000
multiplier = "1.5"
benefits = ["Free shipping"]
"#;

fn with_tiers(find: &str, replace: &str) -> String {
    assert!(TIERS.contains(find), "{find:?} is not in TIERS");
    minimal_plus(&TIERS.replacen(find, replace, 1))
}

#[test]
fn a_tier_ladder_parses() {
    let tiers = parse_ok(&minimal_plus(TIERS)).tiers;
    assert_eq!(tiers.basis, TierBasis::PointsEarned);
    assert_eq!(tiers.window, TierWindow::CalendarYear);
    assert_eq!(
        tiers.downgrade,
        DowngradePolicy::EndOfPeriod { grace_days: 30 }
    );
    assert_eq!(tiers.levels[1].threshold, 1000);
    assert_eq!(tiers.levels[1].multiplier, Decimal::new(15, 1));
    assert_eq!(tiers.levels[1].benefits.len(), 1);
    assert_eq!(
        tiers.levels[1].benefits[0].names.en.as_deref(),
        Some("Free shipping")
    );
    assert_eq!(tiers.levels[0].multiplier, Decimal::ONE);
}

#[test]
fn windows_and_downgrades_have_word_and_table_forms() {
    let tiers = |find: &str, replace: &str| parse_ok(&with_tiers(find, replace)).tiers;
    assert_eq!(
        tiers("window = \"calendar_year\"\ndowngrade = { policy = \"end_of_period\", grace_days = 30 }", "window = \"lifetime\"").window,
        TierWindow::Lifetime
    );
    assert_eq!(
        tiers(
            "window = \"calendar_year\"",
            "window = { rolling_months = 6 }"
        )
        .window,
        TierWindow::Rolling { months: 6 }
    );
    assert_eq!(
        tiers(
            "downgrade = { policy = \"end_of_period\", grace_days = 30 }",
            "downgrade = \"end_of_period\""
        )
        .downgrade,
        DowngradePolicy::EndOfPeriod { grace_days: 0 }
    );
    assert_eq!(
        tiers(
            "downgrade = { policy = \"end_of_period\", grace_days = 30 }",
            "downgrade = \"never\""
        )
        .downgrade,
        DowngradePolicy::Never
    );
    assert_eq!(
        tiers(
            "downgrade = { policy = \"end_of_period\", grace_days = 30 }\n",
            ""
        )
        .downgrade,
        DowngradePolicy::Never
    );
    for (word, basis) in [("spend", TierBasis::Spend), ("visits", TierBasis::Visits)] {
        assert_eq!(
            tiers("basis = \"points_earned\"", &format!("basis = \"{word}\"")).basis,
            basis
        );
    }
}

#[test]
fn window_problems_are_explained() {
    let source = with_tiers("window = \"calendar_year\"", "window = \"rolling\"");
    let diagnostic = single_error(
        &source,
        "\"rolling\"",
        "tiers.window",
        "`tiers.window`: unknown value \"rolling\"",
    );
    assert_eq!(
        diagnostic.hint.as_deref(),
        Some(
            "expected one of \"calendar_year\", \"lifetime\"; or a rolling window: window = { rolling_months = 12 }"
        )
    );
    let source = with_tiers(
        "window = \"calendar_year\"",
        "window = { rolling_months = 0 }",
    );
    single_error(
        &source,
        "0 }",
        "tiers.window.rolling_months",
        "`tiers.window.rolling_months` must be between 1 and 120, found 0",
    );
    let source = with_tiers("window = \"calendar_year\"", "window = { months = 12 }");
    let diagnostics = parse_errors(&source);
    assert_eq!(diagnostics.len(), 2, "{}", render(&diagnostics));
    assert_eq!(
        diagnostics[0].message,
        "missing required key `rolling_months` in `tiers.window`"
    );
    assert_eq!(
        diagnostics[1].message,
        "unknown key `months` in `tiers.window`"
    );
    assert_eq!(
        diagnostics[1].hint.as_deref(),
        Some("did you mean `rolling_months`?")
    );
}

#[test]
fn downgrade_problems_are_explained() {
    let downgrade = "downgrade = { policy = \"end_of_period\", grace_days = 30 }";
    let source = with_tiers(
        downgrade,
        "downgrade = { policy = \"never\", grace_days = 30 }",
    );
    single_error(
        &source,
        "30 }",
        "tiers.downgrade.grace_days",
        "`tiers.downgrade.grace_days` does not apply to policy \"never\"",
    );
    let source = with_tiers(
        downgrade,
        "downgrade = { policy = \"end_of_period\", grace_days = 400 }",
    );
    single_error(
        &source,
        "400",
        "tiers.downgrade.grace_days",
        "`tiers.downgrade.grace_days` must be between 0 and 365, found 400",
    );
    let source =
        minimal_plus(&TIERS.replacen("window = \"calendar_year\"", "window = \"lifetime\"", 1));
    let diagnostic = single_error(
        &source,
        "{ policy",
        "tiers.downgrade",
        "`tiers.downgrade`: a lifetime window has no period to end, so \"end_of_period\" never applies",
    );
    assert!(diagnostic.hint.is_some());
    let source = with_tiers(downgrade, "downgrade = 30");
    single_error(
        &source,
        "30\n",
        "tiers.downgrade",
        "`tiers.downgrade` must be \"never\", \"end_of_period\" or a table { policy = ..., grace_days = N }, found a whole number",
    );
}

#[test]
fn the_first_level_starts_at_zero() {
    let source = with_tiers("threshold = 0", "threshold = 10");
    single_error(
        &source,
        "10\n",
        "tiers.levels[0].threshold",
        "`tiers.levels[0].threshold` must be 0: every member starts in the first level",
    );
}

#[test]
fn thresholds_must_strictly_increase() {
    let source = with_tiers("threshold = 1000", "threshold = 0");
    let diagnostic = single_error(
        &source,
        "0\nmultiplier",
        "tiers.levels[1].threshold",
        "`tiers.levels[1].threshold` is 0, but it must be greater than the previous level's threshold (0)",
    );
    assert_eq!(
        diagnostic.hint.as_deref(),
        Some("list levels from lowest to highest")
    );
    let source = with_tiers("threshold = 1000", "threshold = -5");
    single_error(
        &source,
        "-5",
        "tiers.levels[1].threshold",
        "`tiers.levels[1].threshold` must not be negative, found -5",
    );
}

#[test]
fn tier_codes_are_lowercase_identifiers_used_once() {
    let source = with_tiers("code = \"silver\"", "code = \"bronze\"");
    let line_of_first = position(&source, "\"bronze\"").0;
    let diagnostics = parse_errors(&source);
    assert_eq!(diagnostics.len(), 1, "{}", render(&diagnostics));
    assert_eq!(
        diagnostics[0].message,
        format!("tier code \"bronze\" is used twice (first on line {line_of_first})")
    );
    assert_eq!(diagnostics[0].path, "tiers.levels[1].code");

    let source = with_tiers("code = \"silver\"", "code = \"Silver Plus\"");
    let diagnostic = single_error(
        &source,
        "\"Silver Plus\"",
        "tiers.levels[1].code",
        "`tiers.levels[1].code` must be 1 to 32 characters of a-z, 0-9 and _, found \"Silver Plus\"",
    );
    assert_eq!(
        diagnostic.hint.as_deref(),
        Some("for example \"silver_plus\"; the name shown to members goes in `name`")
    );
}

#[test]
fn a_level_needs_code_name_and_threshold() {
    let source = with_tiers(
        "code = \"silver\"\nname = \"Silver\"\nthreshold = 1000\n",
        "",
    );
    let diagnostics = parse_errors(&source);
    let messages: Vec<&str> = diagnostics.iter().map(|d| d.message.as_str()).collect();
    assert_eq!(
        messages,
        [
            "missing required key `code` in `tiers.levels[1]`",
            "missing required key `name` in `tiers.levels[1]`",
            "missing required key `threshold` in `tiers.levels[1]`",
        ]
    );
    let second_header = source.match_indices("[[tiers.levels]]").nth(1).unwrap().0;
    for diagnostic in &diagnostics {
        assert_eq!(
            (diagnostic.line, diagnostic.column),
            position_at(&source, second_header)
        );
    }
}

#[test]
fn a_level_rejects_bad_multipliers_and_unknown_keys() {
    let source = with_tiers("multiplier = \"1.5\"", "multiplier = \"0\"");
    single_error(
        &source,
        "\"0\"",
        "tiers.levels[1].multiplier",
        "`tiers.levels[1].multiplier` must be greater than 0",
    );
    let source = with_tiers("multiplier = \"1.5\"", "multiplier = \"101\"");
    single_error(
        &source,
        "\"101\"",
        "tiers.levels[1].multiplier",
        "`tiers.levels[1].multiplier` must be at most 100, found 101",
    );
    let source = with_tiers("threshold = 1000", "threshold = 1000\nthreshhold = 2");
    let diagnostic = single_error(
        &source,
        "threshhold",
        "tiers.levels[1].threshhold",
        "unknown key `threshhold` in `tiers.levels[1]`",
    );
    assert_eq!(
        diagnostic.hint.as_deref(),
        Some("did you mean `threshold`?")
    );
}

#[test]
fn spend_thresholds_are_written_in_major_units() {
    let source = with_tiers("basis = \"points_earned\"", "basis = \"spend\"").replacen(
        "threshold = 1000",
        "threshold = \"1000.50\"",
        1,
    );
    assert_eq!(
        parse_ok(&source).tiers.levels[1].threshold,
        100_050,
        "cents"
    );
    let source = with_tiers("threshold = 1000", "threshold = \"1000.5\"");
    single_error(
        &source,
        "\"1000.5\"",
        "tiers.levels[1].threshold",
        "`tiers.levels[1].threshold` must be a whole number, found 1000.5",
    );
}

#[test]
fn levels_may_be_an_inline_list() {
    let source = minimal_plus(
        "[tiers]\nbasis = \"visits\"\nwindow = \"lifetime\"\nlevels = [\n  { code = \"a\", name = \"A\", threshold = 0 },\n  { code = \"b\", name = \"B\", threshold = 5 },\n]\n",
    );
    let tiers = parse_ok(&source).tiers;
    assert_eq!(tiers.levels.len(), 2);
    assert_eq!(tiers.levels[1].threshold, 5);
    let source = minimal_plus("[tiers]\nbasis = \"visits\"\nwindow = \"lifetime\"\nlevels = [1]\n");
    single_error(
        &source,
        "1]",
        "tiers.levels[0]",
        "`tiers.levels[0]` must be a table, found a whole number",
    );
}

#[test]
fn the_ladder_needs_between_one_and_twenty_levels() {
    let source = minimal_plus("[tiers]\nbasis = \"visits\"\nwindow = \"lifetime\"\n");
    let diagnostic = single_error(&source, "[tiers]", "tiers.levels", "[tiers] has no levels");
    assert!(diagnostic.hint.is_some());
    let source = minimal_plus("[tiers]\nbasis = \"visits\"\nwindow = \"lifetime\"\nlevels = []\n");
    single_error(&source, "[]", "tiers.levels", "`tiers.levels` is empty");
    let mut many = String::from("[tiers]\nbasis = \"visits\"\nwindow = \"lifetime\"\n");
    for index in 0..21 {
        many.push_str(&format!(
            "[[tiers.levels]]\ncode = \"l{index}\"\nname = \"L\"\nthreshold = {index}\n"
        ));
    }
    let source = minimal_plus(&many);
    single_error(
        &source,
        "[[tiers.levels]]",
        "tiers.levels",
        "`tiers.levels` has 21 levels; at most 20 are allowed",
    );
}

#[test]
fn tier_names_need_the_default_language() {
    let source = with_tiers("name = \"Silver\"", "name = { fa = \"نقره‌ای\" }");
    single_error(
        &source,
        "{ fa",
        "tiers.levels[1].name",
        "`tiers.levels[1].name` has no text in the default language \"en\"",
    );
}

// ----- [cards] ---------------------------------------------------------------------------------

#[test]
fn the_card_prefix_is_a_quoted_string_of_digits() {
    assert_eq!(
        parse_ok(&minimal_plus("[cards]\nprefix = \"0072\"\n"))
            .cards
            .prefix,
        "0072"
    );
    assert_eq!(parse_ok(&minimal_plus("[cards]\n")).cards.prefix, "9");
    let source = minimal_plus("[cards]\nprefix = 98\n");
    let diagnostic = single_error(
        &source,
        "98",
        "cards.prefix",
        "`cards.prefix` must be a string of digits, found a whole number",
    );
    assert_eq!(
        diagnostic.hint.as_deref(),
        Some("put it in quotes: prefix = \"98\"")
    );
    for bad in ["\"\"", "\"12a\"", "\"1234567\""] {
        let source = minimal_plus(&format!("[cards]\nprefix = {bad}\n"));
        single_error(
            &source,
            bad,
            "cards.prefix",
            &format!("`cards.prefix` must be 1 to 6 digits (0-9), found {bad}"),
        );
    }
}

#[test]
fn positions_count_characters_in_persian_lines() {
    let source = minimal_with(
        "name = \"Test Club\"",
        "name = { en = \"Club\", fa = \"باشگاه\", xx = 1 }",
    );
    let diagnostic = single_error(
        &source,
        "xx",
        "club.name.xx",
        "unknown key `xx` in `club.name`",
    );
    assert_eq!((diagnostic.line, diagnostic.column), (2, 38));
    assert_eq!(
        diagnostic.to_string().lines().next(),
        Some("2:38: unknown key `xx` in `club.name`")
    );
}

#[test]
fn limits_default_to_the_currency_and_take_the_clubs_own() {
    let defaults = parse_ok(MINIMAL).limits;
    assert_eq!(
        defaults,
        crate::limits::Limits::for_currency(&parse_ok(MINIMAL).currency)
    );
    assert_eq!(defaults.purchase_amount_max_minor, 100_000_000);
    let own = parse_ok(&minimal_plus(
        "[limits]\nline_amount_max = \"50.25\"\npurchase_amount_max = 80\nquantity_max = \"2.5\"\npoints_max = 1000\nbackdate_days_max = 0\nfuture_minutes_max = 1440\n",
    ))
    .limits;
    assert_eq!(own.line_amount_max_minor, 5_025);
    assert_eq!(own.purchase_amount_max_minor, 8_000);
    assert_eq!(own.quantity_max, Decimal::new(25, 1));
    assert_eq!(own.points_max, 1_000);
    assert_eq!(own.backdate_days_max, 0);
    assert_eq!(own.future_minutes_max, 1_440);
}

#[test]
fn limits_beyond_their_ceilings_are_reported_where_they_stand() {
    let source = minimal_plus(
        "[limits]\npurchase_amount_max = \"1000000000000\"\npoints_max = 1000000000001\nquantity_max = 0\nbackdate_days_max = 3651\nline_amount_max = \"0.001\"\nfuture_minutes_max = -1\npoints_limit = 3\n",
    );
    let errors = parse_errors(&source);
    let paths: Vec<&str> = errors.iter().map(|d| d.path.as_str()).collect();
    for path in [
        "limits.purchase_amount_max",
        "limits.points_max",
        "limits.quantity_max",
        "limits.backdate_days_max",
        "limits.line_amount_max",
        "limits.future_minutes_max",
        "limits.points_limit",
    ] {
        assert!(paths.contains(&path), "{path} not in:\n{}", render(&errors));
    }
    let ceiling = errors
        .iter()
        .find(|d| d.path == "limits.purchase_amount_max")
        .unwrap();
    assert_eq!(
        (ceiling.line, ceiling.column),
        position(&source, "\"1000000000000\"")
    );
}
