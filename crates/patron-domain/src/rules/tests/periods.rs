//! Limit periods in the club's calendar, birthdays and anniversaries.

use super::*;

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
        "../../../../../examples/programs/coffee-chain.toml"
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
