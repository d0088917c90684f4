//! Tests for the program model and its parser: the shipped examples, defaults, and every
//! validation rule with its message and position.

use rust_decimal::Decimal;

use super::*;
use crate::calendar::CalendarSystem;

const PERSIAN_RETAIL: &str = include_str!("../../../../../examples/programs/persian-retail.toml");
const ISRAELI_PHARMACY: &str =
    include_str!("../../../../../examples/programs/israeli-pharmacy.toml");
const COFFEE_CHAIN: &str = include_str!("../../../../../examples/programs/coffee-chain.toml");

/// The smallest valid program; tests edit or extend it.
const MINIMAL: &str = r#"[club]
name = "Test Club"
default_locale = "en"
currency = "USD"
time_zone = "UTC"

[earning]
points_per_unit = "1"

[expiry]
policy = "never"

[returns]
policy = "within_balance"

[exit]
policy = "forfeit"
"#;

fn parse_ok(source: &str) -> Program {
    match parse_program(source) {
        Ok(program) => program,
        Err(diagnostics) => panic!("expected a valid program, got:\n{}", render(&diagnostics)),
    }
}

fn parse_errors(source: &str) -> Vec<Diagnostic> {
    match parse_program(source) {
        Ok(program) => panic!("expected errors, got a program: {program:#?}"),
        Err(diagnostics) => diagnostics,
    }
}

fn render(diagnostics: &[Diagnostic]) -> String {
    diagnostics
        .iter()
        .map(|d| format!("{d}   [{}]\n", d.path))
        .collect()
}

/// Line and character column of the first occurrence of `needle`, counted independently of the
/// parser's own helper.
fn position(source: &str, needle: &str) -> (usize, usize) {
    let Some(index) = source.find(needle) else {
        panic!("{needle:?} is not in the source")
    };
    position_at(source, index)
}

fn position_at(source: &str, index: usize) -> (usize, usize) {
    let before = &source[..index];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().unwrap_or("").chars().count() + 1;
    (line, column)
}

/// Asserts that `source` has exactly one problem, at the first occurrence of `at`, with this
/// path and message; returns it for further checks on the hint.
#[track_caller]
fn single_error(source: &str, at: &str, path: &str, message: &str) -> Diagnostic {
    let diagnostics = parse_errors(source);
    assert_eq!(
        diagnostics.len(),
        1,
        "expected one problem, got:\n{}",
        render(&diagnostics)
    );
    let diagnostic = diagnostics.into_iter().next().unwrap();
    assert_eq!(diagnostic.message, message);
    assert_eq!(diagnostic.path, path);
    assert_eq!(
        (diagnostic.line, diagnostic.column),
        position(source, at),
        "{diagnostic}"
    );
    diagnostic
}

fn minimal_with(find: &str, replace: &str) -> String {
    assert!(MINIMAL.contains(find), "{find:?} is not in MINIMAL");
    MINIMAL.replacen(find, replace, 1)
}

fn minimal_plus(extra: &str) -> String {
    format!("{MINIMAL}\n{extra}")
}

// ----- Examples and defaults -------------------------------------------------------------------

#[test]
fn persian_retail_example_parses() {
    let program = parse_ok(PERSIAN_RETAIL);
    assert_eq!(program.default_locale, Locale::Fa);
    assert_eq!(program.locales, vec![Locale::Fa, Locale::En]);
    assert_eq!(
        program.currency,
        Currency {
            code: "IRR".into(),
            minor_unit: 0
        }
    );
    assert_eq!(program.time_zone, "Asia/Tehran");
    assert_eq!(program.earning.points_per_unit, Decimal::new(1, 5));
    assert_eq!(program.earning.minimum_purchase_minor, 500_000);
    assert_eq!(program.pending, Pending { days: 7 });
    assert_eq!(
        program.expiry,
        ExpiryPolicy::AfterEarning {
            amount: 12,
            unit: ExpiryUnit::Months,
            round_to: ExpiryRounding::EndOfMonth
        }
    );
    assert_eq!(program.returns, ReturnPolicy::WithinBalance);
    assert_eq!(program.tiers.basis, TierBasis::Spend);
    assert_eq!(program.tiers.window, TierWindow::Rolling { months: 12 });
    let codes: Vec<&str> = program
        .tiers
        .levels
        .iter()
        .map(|tier| tier.code.as_str())
        .collect();
    assert_eq!(codes, ["bronze", "silver", "gold", "diamond"]);
    let silver = program.tier("silver").unwrap();
    assert_eq!(silver.names.get(Locale::Fa), Some("نقره‌ای"));
    assert_eq!(silver.threshold, 200_000_000, "rials, minor unit 0");
    assert_eq!(silver.multiplier, Decimal::new(125, 2));
    assert_eq!(program.cost_per_point, Decimal::new(1000, 0));
    assert_eq!(program.cards.prefix, "98");
    assert_eq!(program.tz().iana_name(), Some("Asia/Tehran"));
}

#[test]
fn israeli_pharmacy_example_parses() {
    let program = parse_ok(ISRAELI_PHARMACY);
    assert_eq!(program.default_locale, Locale::He);
    assert_eq!(
        program.currency,
        Currency {
            code: "ILS".into(),
            minor_unit: 2
        }
    );
    assert_eq!(
        program.expiry,
        ExpiryPolicy::FixedYearlyDate { month: 1, day: 1 }
    );
    assert_eq!(program.pending, Pending { days: 14 });
    assert_eq!(program.returns, ReturnPolicy::OnlyPending);
    assert_eq!(program.exit, ExitPolicy::KeepUntilExpiry);
    assert_eq!(program.tiers.window, TierWindow::CalendarYear);
    assert_eq!(
        program.tiers.downgrade,
        DowngradePolicy::EndOfPeriod { grace_days: 59 }
    );
    assert_eq!(
        program.tier("gold").unwrap().names.get(Locale::He),
        Some("זהב")
    );
    assert_eq!(program.cost_per_point, Decimal::new(3, 2));
}

#[test]
fn coffee_chain_example_parses() {
    let program = parse_ok(COFFEE_CHAIN);
    assert_eq!(
        program.names.get(Locale::En),
        Some("Northside Coffee Rewards")
    );
    assert_eq!(program.locales, vec![Locale::En]);
    assert_eq!(program.points_name.get(Locale::En), Some("beans"));
    assert_eq!(
        program.currency,
        Currency {
            code: "USD".into(),
            minor_unit: 2
        }
    );
    assert_eq!(program.pending, Pending { days: 0 });
    assert_eq!(program.expiry, ExpiryPolicy::Inactivity { months: 12 });
    assert_eq!(program.returns, ReturnPolicy::Unlimited);
    assert_eq!(program.tiers.basis, TierBasis::Visits);
    assert_eq!(program.tier("reserve").unwrap().threshold, 100);
    assert_eq!(program.tier("regular").unwrap().multiplier, Decimal::ONE);
}

#[test]
fn optional_settings_take_their_defaults() {
    let program = parse_ok(MINIMAL);
    assert_eq!(program.locales, vec![Locale::En]);
    assert_eq!(program.points_name.get(Locale::En), Some("points"));
    assert_eq!(program.points_name.get(Locale::Fa), Some("امتیاز"));
    assert_eq!(program.cost_per_point, Decimal::ZERO);
    assert_eq!(program.earning.rounding, Rounding::Down);
    assert_eq!(program.earning.minimum_purchase_minor, 0);
    assert!(program.earning.excluded_categories.is_empty());
    assert!(program.earning.excluded_skus.is_empty());
    assert_eq!(program.pending, Pending { days: 0 });
    assert_eq!(program.cards.prefix, "9");
    assert_eq!(program.tiers.levels.len(), 1);
    assert_eq!(program.tiers.levels[0].code, "member");
    assert_eq!(program.tiers.levels[0].threshold, 0);
    assert_eq!(program.tiers.window, TierWindow::Lifetime);
    assert_eq!(program.tiers.downgrade, DowngradePolicy::Never);
}

// ----- Model helpers ---------------------------------------------------------------------------

#[test]
fn locales_know_their_code_and_direction() {
    assert_eq!(Locale::Fa.code(), "fa");
    assert!(Locale::Fa.is_rtl() && Locale::He.is_rtl() && !Locale::En.is_rtl());
    assert_eq!(Locale::from_code("he"), Some(Locale::He));
    assert_eq!(Locale::from_code("EN"), None);
}

#[test]
fn localized_resolves_requested_then_fallback_then_any() {
    let names = Localized {
        fa: Some("طلایی".into()),
        he: Some(String::new()),
        en: None,
    };
    assert_eq!(names.resolve(Locale::Fa, Locale::En), "طلایی");
    assert_eq!(names.resolve(Locale::En, Locale::Fa), "طلایی");
    // Empty text counts as missing; with neither requested nor fallback, any text will do.
    assert_eq!(names.resolve(Locale::He, Locale::En), "طلایی");
    let english = Localized {
        en: Some("Gold".into()),
        ..Localized::default()
    };
    assert_eq!(english.resolve(Locale::Fa, Locale::He), "Gold");
    assert_eq!(Localized::default().resolve(Locale::Fa, Locale::En), "");
    assert_eq!(names.get(Locale::En), None);
}

#[test]
fn program_tz_falls_back_to_utc_for_a_hand_built_bad_name() {
    let mut program = parse_ok(MINIMAL);
    program.time_zone = "Nowhere/Special".into();
    assert_eq!(program.tz(), jiff::tz::TimeZone::UTC);
    assert_eq!(program.tier("member").map(|tier| tier.threshold), Some(0));
    assert_eq!(program.tier("gold"), None);
}

// ----- Syntax and structure --------------------------------------------------------------------

#[test]
fn a_toml_syntax_error_is_reported_alone_with_its_position() {
    let source = "[club]\nname = \"unterminated\ndefault_locale = \"en\"\n";
    let diagnostics = parse_errors(source);
    assert_eq!(diagnostics.len(), 1, "{}", render(&diagnostics));
    let diagnostic = &diagnostics[0];
    assert_eq!(diagnostic.line, 2);
    assert!(
        diagnostic.message.starts_with("TOML syntax error: "),
        "{}",
        diagnostic.message
    );
    assert_eq!(diagnostic.path, "");
}

#[test]
fn an_oversized_file_is_refused_before_parsing() {
    let source = format!("{MINIMAL}{}", "#".repeat(1024 * 1024));
    let diagnostics = parse_errors(&source);
    assert_eq!(diagnostics.len(), 1);
    assert!(
        diagnostics[0].message.starts_with("the file is "),
        "{}",
        diagnostics[0].message
    );
}

#[test]
fn a_duplicate_key_is_a_syntax_error() {
    let source = minimal_with(
        "currency = \"USD\"",
        "currency = \"USD\"\ncurrency = \"EUR\"",
    );
    let diagnostics = parse_errors(&source);
    assert_eq!(diagnostics.len(), 1);
    assert_eq!(diagnostics[0].line, 5);
}

#[test]
fn an_unknown_section_suggests_the_closest() {
    let source = minimal_plus("[pendng]\ndays = 3\n");
    let diagnostic = single_error(&source, "pendng", "pendng", "unknown section [pendng]");
    assert_eq!(diagnostic.hint.as_deref(), Some("did you mean [pending]?"));
}

#[test]
fn an_unknown_key_suggests_the_closest_or_lists_the_known_ones() {
    let source = minimal_with("time_zone", "timezone = \"UTC\"\ntime_zone");
    let diagnostic = single_error(
        &source,
        "timezone",
        "club.timezone",
        "unknown key `timezone` in [club]",
    );
    assert_eq!(
        diagnostic.hint.as_deref(),
        Some("did you mean `time_zone`?")
    );

    let source = minimal_with(
        "policy = \"forfeit\"",
        "policy = \"forfeit\"\ncolour = \"red\"",
    );
    let diagnostic = single_error(
        &source,
        "colour",
        "exit.colour",
        "unknown key `colour` in [exit]",
    );
    assert_eq!(
        diagnostic.hint.as_deref(),
        Some("known keys here: `policy`")
    );
}

#[test]
fn a_missing_section_points_at_the_start_with_an_example() {
    let source = MINIMAL.replacen("[returns]\npolicy = \"within_balance\"\n", "", 1);
    let diagnostic = single_error(
        &source,
        "[club]",
        "returns",
        "missing required section [returns]",
    );
    assert_eq!(
        diagnostic.hint.as_deref(),
        Some("add a section such as:\n    [returns]\n    policy = \"within_balance\"")
    );
}

#[test]
fn a_missing_key_points_at_its_section_header() {
    let source = minimal_with("points_per_unit = \"1\"", "rounding = \"up\"");
    single_error(
        &source,
        "[earning]",
        "earning.points_per_unit",
        "missing required key `points_per_unit` in [earning]",
    );
}

#[test]
fn a_section_written_as_a_value_is_a_type_error() {
    let source = format!("cards = \"98\"\n{MINIMAL}");
    single_error(
        &source,
        "\"98\"",
        "cards",
        "`cards` must be a section ([cards]), found a string",
    );
}

#[test]
fn dotted_keys_are_the_same_as_tables() {
    let without_exit = MINIMAL.replacen("[exit]\npolicy = \"forfeit\"\n", "", 1);
    let source = format!("exit.policy = \"keep_until_expiry\"\n{without_exit}");
    assert_eq!(parse_ok(&source).exit, ExitPolicy::KeepUntilExpiry);
}

#[test]
fn every_problem_is_reported_in_file_order() {
    let source = MINIMAL
        .replacen("time_zone = \"UTC\"", "time_zone = \"Mars/Olympus\"", 1)
        .replacen(
            "points_per_unit = \"1\"",
            "points_per_unit = \"-1\"\nrounding = \"sideways\"",
            1,
        )
        .replacen("policy = \"never\"", "policy = \"sometimes\"", 1)
        .replacen("policy = \"forfeit\"", "policy = 3", 1);
    let diagnostics = parse_errors(&source);
    let paths: Vec<&str> = diagnostics.iter().map(|d| d.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "club.time_zone",
            "earning.points_per_unit",
            "earning.rounding",
            "expiry.policy",
            "exit.policy"
        ],
        "{}",
        render(&diagnostics)
    );
    let lines: Vec<usize> = diagnostics.iter().map(|d| d.line).collect();
    assert!(lines.windows(2).all(|pair| pair[0] <= pair[1]));
}

// ----- Values ------------------------------------------------------------------------------------

#[test]
fn a_wrong_type_names_what_was_expected_and_found() {
    let source = minimal_with("time_zone = \"UTC\"", "time_zone = 3");
    single_error(
        &source,
        "3",
        "club.time_zone",
        "`club.time_zone` must be a string, found a whole number",
    );
}

#[test]
fn a_quoted_whole_number_gets_a_hint_to_remove_the_quotes() {
    let source = minimal_plus("[pending]\ndays = \"14\"\n");
    let diagnostic = single_error(
        &source,
        "\"14\"",
        "pending.days",
        "`pending.days` must be a whole number, found a string",
    );
    assert_eq!(diagnostic.hint.as_deref(), Some("remove the quotes: 14"));
}

#[test]
fn whole_numbers_out_of_range_are_reported_with_the_range() {
    let source = minimal_plus("[pending]\ndays = 400\n");
    single_error(
        &source,
        "400",
        "pending.days",
        "`pending.days` must be between 0 and 365, found 400",
    );
}

#[test]
fn an_unknown_word_suggests_the_closest_or_lists_the_choices() {
    let source = minimal_with(
        "points_per_unit = \"1\"",
        "points_per_unit = \"1\"\nrounding = \"hlaf_up\"",
    );
    let diagnostic = single_error(
        &source,
        "\"hlaf_up\"",
        "earning.rounding",
        "`earning.rounding`: unknown value \"hlaf_up\"",
    );
    assert_eq!(
        diagnostic.hint.as_deref(),
        Some("did you mean \"half_up\"?")
    );

    let source = minimal_with(
        "policy = \"within_balance\"",
        "policy = \"refund_everything\"",
    );
    let diagnostic = single_error(
        &source,
        "\"refund_everything\"",
        "returns.policy",
        "`returns.policy`: unknown value \"refund_everything\"",
    );
    assert_eq!(
        diagnostic.hint.as_deref(),
        Some("expected one of \"only_pending\", \"within_balance\", \"unlimited\"")
    );
}

#[test]
fn decimals_are_read_exactly_from_strings_integers_and_floats() {
    for (written, expected) in [
        ("\"0.0001\"", Decimal::new(1, 4)),
        ("0.0001", Decimal::new(1, 4)),
        ("1e-4", Decimal::new(1, 4)),
        ("0.1", Decimal::new(1, 1)),
        ("2", Decimal::new(2, 0)),
        ("1_000.5", Decimal::new(10_005, 1)),
        ("+3.25", Decimal::new(325, 2)),
    ] {
        let source = minimal_with(
            "points_per_unit = \"1\"",
            &format!("points_per_unit = {written}"),
        );
        assert_eq!(
            parse_ok(&source).earning.points_per_unit,
            expected,
            "{written}"
        );
    }
}

#[test]
fn a_decimal_that_is_not_a_number_is_reported() {
    let source = minimal_with("points_per_unit = \"1\"", "points_per_unit = \"one\"");
    single_error(
        &source,
        "\"one\"",
        "earning.points_per_unit",
        "`earning.points_per_unit` is not a decimal number: \"one\"",
    );
    let source = minimal_with("points_per_unit = \"1\"", "points_per_unit = inf");
    single_error(
        &source,
        "inf",
        "earning.points_per_unit",
        "`earning.points_per_unit` is not a decimal number: inf",
    );
    let source = minimal_with("points_per_unit = \"1\"", "points_per_unit = true");
    single_error(
        &source,
        "true",
        "earning.points_per_unit",
        "`earning.points_per_unit` must be a number (for example \"0.0001\" or 1), found true/false",
    );
}

#[test]
fn decimal_bounds_are_enforced() {
    let source = minimal_with("points_per_unit = \"1\"", "points_per_unit = \"0\"");
    single_error(
        &source,
        "\"0\"",
        "earning.points_per_unit",
        "`earning.points_per_unit` must be greater than 0",
    );
    let source = minimal_with("points_per_unit = \"1\"", "points_per_unit = \"-0.5\"");
    single_error(
        &source,
        "\"-0.5\"",
        "earning.points_per_unit",
        "`earning.points_per_unit` must not be negative, found -0.5",
    );
    let source = minimal_with("points_per_unit = \"1\"", "points_per_unit = 2000000");
    single_error(
        &source,
        "2000000",
        "earning.points_per_unit",
        "`earning.points_per_unit` must be at most 1000000, found 2000000",
    );
    let source = minimal_with(
        "time_zone = \"UTC\"",
        "time_zone = \"UTC\"\ncost_per_point = -2",
    );
    single_error(
        &source,
        "-2",
        "club.cost_per_point",
        "`club.cost_per_point` must not be negative, found -2",
    );
}

#[test]
fn text_must_not_be_empty_or_too_long() {
    let source = minimal_with("name = \"Test Club\"", "name = \"  \"");
    single_error(&source, "\"  \"", "club.name", "`club.name` is empty");
    let long = "x".repeat(201);
    let source = minimal_with("name = \"Test Club\"", &format!("name = \"{long}\""));
    single_error(
        &source,
        "\"xxx",
        "club.name",
        "`club.name` is 201 characters long; at most 200 are allowed",
    );
}

#[test]
fn lists_must_be_lists_of_text() {
    let source = minimal_with(
        "points_per_unit = \"1\"",
        "points_per_unit = \"1\"\nexcluded_skus = \"A1\"",
    );
    single_error(
        &source,
        "\"A1\"",
        "earning.excluded_skus",
        "`earning.excluded_skus` must be a list such as [\"a\", \"b\"], found a string",
    );
    let source = minimal_with(
        "points_per_unit = \"1\"",
        "points_per_unit = \"1\"\nexcluded_categories = [\"ok\", 7]",
    );
    single_error(
        &source,
        "7]",
        "earning.excluded_categories[1]",
        "`earning.excluded_categories[1]` must be a string, found a whole number",
    );
    let source = minimal_with(
        "points_per_unit = \"1\"",
        "points_per_unit = \"1\"\nexcluded_skus = [\"A1\", \"B2\"]",
    );
    assert_eq!(parse_ok(&source).earning.excluded_skus, ["A1", "B2"]);
}

// ----- [club] ----------------------------------------------------------------------------------

#[test]
fn the_name_needs_a_text_in_the_default_language() {
    let source = minimal_with("name = \"Test Club\"", "name = { fa = \"باشگاه\" }");
    let diagnostic = single_error(
        &source,
        "{ fa",
        "club.name",
        "`club.name` has no text in the default language \"en\"",
    );
    assert_eq!(diagnostic.hint.as_deref(), Some("add en = \"...\""));
}

#[test]
fn a_localized_text_accepts_only_known_languages() {
    let source = minimal_with(
        "name = \"Test Club\"",
        "name = { en = \"Club\", fr = \"Club\" }",
    );
    let diagnostic = single_error(
        &source,
        "fr",
        "club.name.fr",
        "unknown key `fr` in `club.name`",
    );
    assert_eq!(diagnostic.hint.as_deref(), Some("did you mean `fa`?"));
    let source = minimal_with("name = \"Test Club\"", "name = 5");
    single_error(
        &source,
        "5",
        "club.name",
        "`club.name` must be a string, or a table of languages such as { fa = \"...\", en = \"...\" }, found a whole number",
    );
}

#[test]
fn a_plain_name_is_the_default_language_text() {
    let program = parse_ok(&minimal_with(
        "default_locale = \"en\"",
        "default_locale = \"he\"",
    ));
    assert_eq!(program.names.get(Locale::He), Some("Test Club"));
    assert_eq!(program.names.get(Locale::En), None);
}

#[test]
fn the_default_locale_must_be_supported() {
    let source = minimal_with("default_locale = \"en\"", "default_locale = \"ru\"");
    let diagnostic = single_error(
        &source,
        "\"ru\"",
        "club.default_locale",
        "`club.default_locale`: unknown value \"ru\"",
    );
    assert_eq!(
        diagnostic.hint.as_deref(),
        Some("expected one of \"fa\", \"he\", \"en\"")
    );
}

#[test]
fn locales_must_include_the_default_without_repeats() {
    let source = minimal_with("time_zone", "locales = [\"fa\"]\ntime_zone");
    let diagnostic = single_error(
        &source,
        "[\"fa\"]",
        "club.locales",
        "`club.locales` does not include the default language \"en\"",
    );
    assert_eq!(diagnostic.hint.as_deref(), Some("add \"en\" to the list"));
    let source = minimal_with("time_zone", "locales = [\"en\", \"en\"]\ntime_zone");
    single_error(
        &source,
        "\"en\"]",
        "club.locales[1]",
        "`club.locales` lists \"en\" twice",
    );
    let source = minimal_with("time_zone", "locales = []\ntime_zone");
    single_error(&source, "[]", "club.locales", "`club.locales` is empty");
    let source = minimal_with("time_zone", "locales = [\"en\", \"ar\"]\ntime_zone");
    single_error(
        &source,
        "\"ar\"",
        "club.locales[1]",
        "`club.locales[1]`: unknown value \"ar\"",
    );
}

#[test]
fn the_currency_is_an_iso_code_with_an_optional_minor_unit_override() {
    let currency = |written: &str| parse_ok(&minimal_with("currency = \"USD\"", written)).currency;
    assert_eq!(
        currency("currency = \"IRR\""),
        Currency {
            code: "IRR".into(),
            minor_unit: 2
        }
    );
    assert_eq!(
        currency("currency = { code = \"IRR\", minor_unit = 0 }"),
        Currency {
            code: "IRR".into(),
            minor_unit: 0
        }
    );
    assert_eq!(
        currency("currency = \"JPY\""),
        Currency {
            code: "JPY".into(),
            minor_unit: 0
        }
    );
    assert_eq!(
        currency("currency = \"KWD\""),
        Currency {
            code: "KWD".into(),
            minor_unit: 3
        }
    );
}

#[test]
fn currency_problems_are_explained() {
    let source = minimal_with("currency = \"USD\"", "currency = \"usd\"");
    let diagnostic = single_error(
        &source,
        "\"usd\"",
        "club.currency",
        "`club.currency`: unknown currency code \"usd\"",
    );
    assert_eq!(
        diagnostic.hint.as_deref(),
        Some("currency codes are upper case: \"USD\"")
    );

    let source = minimal_with("currency = \"USD\"", "currency = \"ABC\"");
    let diagnostic = single_error(
        &source,
        "\"ABC\"",
        "club.currency",
        "`club.currency`: unknown currency code \"ABC\"",
    );
    assert!(diagnostic.hint.unwrap().starts_with("use an ISO 4217 code"));

    let source = minimal_with("currency = \"USD\"", "currency = \"XAU\"");
    single_error(
        &source,
        "\"XAU\"",
        "club.currency",
        "`club.currency`: \"XAU\" has no minor unit in ISO 4217: it is not money Patron can count",
    );
    let source = minimal_with(
        "currency = \"USD\"",
        "currency = { code = \"IRR\", minor_unit = 9 }",
    );
    single_error(
        &source,
        "9 }",
        "club.currency.minor_unit",
        "`club.currency.minor_unit` must be between 0 and 4, found 9",
    );
    let source = minimal_with("currency = \"USD\"", "currency = { minor_unit = 0 }");
    single_error(
        &source,
        "{ minor",
        "club.currency.code",
        "missing required key `code` in `club.currency`",
    );
    let source = minimal_with(
        "currency = \"USD\"",
        "currency = { code = \"IRR\", exponent = 0 }",
    );
    single_error(
        &source,
        "exponent",
        "club.currency.exponent",
        "unknown key `exponent` in `club.currency`",
    );
    let source = minimal_with("currency = \"USD\"", "currency = 840");
    single_error(
        &source,
        "840",
        "club.currency",
        "`club.currency` must be a currency code such as \"IRR\", or a table { code = ..., minor_unit = ... }, found a whole number",
    );
}

#[test]
fn time_zones_are_iana_names_stored_canonically() {
    let program = parse_ok(&minimal_with(
        "time_zone = \"UTC\"",
        "time_zone = \"asia/tehran\"",
    ));
    assert_eq!(program.time_zone, "Asia/Tehran");

    let source = minimal_with("time_zone = \"UTC\"", "time_zone = \"Asia/Tehrn\"");
    let diagnostic = single_error(
        &source,
        "\"Asia/Tehrn\"",
        "club.time_zone",
        "`club.time_zone`: unknown time zone \"Asia/Tehrn\"",
    );
    assert_eq!(
        diagnostic.hint.as_deref(),
        Some("did you mean \"Asia/Tehran\"?")
    );

    let source = minimal_with("time_zone = \"UTC\"", "time_zone = \"Middle Earth\"");
    let diagnostic = single_error(
        &source,
        "\"Middle Earth\"",
        "club.time_zone",
        "`club.time_zone`: unknown time zone \"Middle Earth\"",
    );
    assert!(
        diagnostic
            .hint
            .unwrap()
            .starts_with("use an IANA time zone name")
    );
}

// ----- [earning] -------------------------------------------------------------------------------

#[test]
fn the_minimum_purchase_is_written_in_major_units() {
    let source = minimal_with(
        "points_per_unit = \"1\"",
        "points_per_unit = \"1\"\nminimum_purchase = \"5.25\"",
    );
    assert_eq!(parse_ok(&source).earning.minimum_purchase_minor, 525);

    let source = minimal_with(
        "points_per_unit = \"1\"",
        "points_per_unit = \"1\"\nminimum_purchase = \"5.255\"",
    );
    single_error(
        &source,
        "\"5.255\"",
        "earning.minimum_purchase",
        "`earning.minimum_purchase` is 5.255, which is not a whole amount of USD (at most 2 decimal places)",
    );
}

#[test]
fn every_rounding_word_is_accepted() {
    for (word, rounding) in [
        ("down", Rounding::Down),
        ("up", Rounding::Up),
        ("half_up", Rounding::HalfUp),
        ("half_even", Rounding::HalfEven),
    ] {
        let source = minimal_with(
            "points_per_unit = \"1\"",
            &format!("points_per_unit = \"1\"\nrounding = \"{word}\""),
        );
        assert_eq!(parse_ok(&source).earning.rounding, rounding);
    }
}

mod expiry;
mod tiers;
