//! Evaluating rules: each kind, then filters, order, limits and failures.

use super::*;

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
