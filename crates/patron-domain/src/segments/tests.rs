use super::*;
use crate::rules::expr::Purpose;
use crate::shared::Locale;

fn compare(statistic: Statistic, op: Comparison, value: Literal) -> Condition {
    Condition::Compare {
        statistic,
        op,
        value,
    }
}

#[test]
fn simple_conditions_have_a_sql_form() {
    let c = sql_subset(
        "member.statistics.purchases >= 5 && (member.statistics.spend > 100.5 || 3 > member.statistics.rfv_r)",
    )
    .unwrap();
    assert_eq!(
        c,
        Condition::And(
            Box::new(compare(
                Statistic::Purchases,
                Comparison::Ge,
                Literal::Int(5)
            )),
            Box::new(Condition::Or(
                Box::new(compare(
                    Statistic::Spend,
                    Comparison::Gt,
                    Literal::Double(100.5)
                )),
                Box::new(compare(Statistic::RfvR, Comparison::Lt, Literal::Int(3))),
            )),
        )
    );
    assert_eq!(
        sql_subset("member.statistics.days_since_last_purchase != -1"),
        Some(compare(
            Statistic::DaysSinceLastPurchase,
            Comparison::Ne,
            Literal::Int(-1)
        ))
    );
}

#[test]
fn other_conditions_have_none() {
    for source in [
        "member.statistics.median_gap_days > 3.0",
        "member.statistics.purchases > member.statistics.purchase_days",
        "!(member.statistics.purchases > 1)",
        "member.statistics.purchases > 1 ? true : false",
        "member.tier == 'gold'",
        "member.statistics.purchases > 1u",
        "member.statistics.purchases > 1e3",
        "member.statistics.purchases > 1 && 'a && b' == 'x'",
        "member.statistics.purchases.size() > 1",
        "(member.statistics.purchases > 1",
    ] {
        assert_eq!(sql_subset(source), None, "{source}");
    }
}

#[test]
fn a_top_level_conjunction_has_a_prefilter() {
    assert_eq!(
        sql_prefilter(
            "member.statistics.days_since_last_purchase > 2.0 * member.statistics.median_gap_days && member.statistics.days_since_last_purchase > 60"
        ),
        Some(compare(
            Statistic::DaysSinceLastPurchase,
            Comparison::Gt,
            Literal::Int(60)
        ))
    );
    assert_eq!(
        sql_prefilter("member.statistics.purchases > 1 || member.tier == 'gold'"),
        None
    );
    assert_eq!(sql_prefilter("member.tier == 'gold'"), None);
}

#[test]
fn statistics_read_are_found() {
    assert_eq!(
        statistics_read(
            "member.statistics.median_gap_days > 1.0 && member.statistics.purchases > 2"
        ),
        ["median_gap_days", "purchases"]
    );
    assert_eq!(
        statistics_read("has(member.statistics.purchases)"),
        ["purchases"]
    );
    assert_eq!(
        statistics_read("member.statistics['purchases'] > 1").len(),
        STATISTICS.len()
    );
}

#[test]
fn median_gaps() {
    assert_eq!(median_gap_days(&[]), None);
    assert_eq!(median_gap_days(&[10]), None);
    assert_eq!(median_gap_days(&[10, 13]), Some(3.0));
    assert_eq!(median_gap_days(&[0, 1, 11, 12]), Some(1.0));
    assert_eq!(median_gap_days(&[0, 2, 12, 13, 23]), Some(6.0));
}

#[test]
fn the_default_grid_matches_the_table() {
    let rfv = RfvSegments::default();
    assert_eq!(rfv.code(5, 5), "champions");
    assert_eq!(rfv.code(5, 1), "new_customers");
    assert_eq!(rfv.code(1, 1), "hibernating");
    assert_eq!(rfv.code(1, 5), "cant_lose_them");
    assert_eq!(rfv.code(3, 3), "need_attention");
    assert_eq!(rfv.codes().len(), 10);
    assert_eq!(rfv.name("at_risk", Locale::Fa, Locale::En), "At Risk");
}

#[test]
fn evaluation_reads_statistics_and_treats_null_like_sql() {
    let tz = TimeZone::UTC;
    let now: Timestamp = "2026-01-10T12:00:00Z".parse().unwrap();
    let segment = |source: &str| {
        RuleSegment::new(
            "s".into(),
            Localized::default(),
            CompiledExpr::compile(
                source,
                Purpose::Condition,
                &[Variable::Member, Variable::Now],
            )
            .unwrap(),
        )
    };
    let mut member = MemberFacts {
        id: "m1".into(),
        enrolled_at: now,
        ..MemberFacts::default()
    };
    member.statistics = SegmentStatistics::default().facts(100, 2);
    let dormant = segment("member.statistics.days_since_last_purchase > 60");
    assert!(evaluate(&dormant, &member, now, &tz).is_err());
    let equal = segment("member.statistics.days_since_last_purchase == 60");
    assert!(!evaluate(&equal, &member, now, &tz).unwrap());
    let unequal = segment("member.statistics.days_since_last_purchase != 60");
    assert!(evaluate(&unequal, &member, now, &tz).unwrap());
    let absorbed = segment(
        "member.statistics.days_since_last_purchase > 60 || member.statistics.purchases == 0",
    );
    assert!(evaluate(&absorbed, &member, now, &tz).unwrap());
    member.statistics = SegmentStatistics {
        purchases: 3,
        spend_minor: 12_345,
        last_purchase_day: Some(30),
        ..SegmentStatistics::default()
    }
    .facts(100, 2);
    assert!(evaluate(&dormant, &member, now, &tz).unwrap());
    let spend = segment("member.statistics.spend >= 123.45 && member.statistics.purchases == 3");
    assert!(evaluate(&spend, &member, now, &tz).unwrap());
    assert!(spend.sql.is_some());
}

const MINIMAL: &str = "[club]\nname = \"T\"\ndefault_locale = \"en\"\ncurrency = \"USD\"\ntime_zone = \"UTC\"\n\n[earning]\npoints_per_unit = \"1\"\n\n[expiry]\npolicy = \"never\"\n\n[returns]\npolicy = \"within_balance\"\n\n[exit]\npolicy = \"forfeit\"\n";

fn errors(extra: &str) -> Vec<String> {
    match crate::program::parse_program(&format!("{MINIMAL}{extra}")) {
        Ok(_) => Vec::new(),
        Err(diagnostics) => diagnostics
            .iter()
            .map(|d| format!("{}:{}: {}", d.line, d.column, d.message))
            .collect(),
    }
}

#[test]
fn the_examples_define_segments() {
    for source in [
        include_str!("../../../../examples/programs/coffee-chain.toml"),
        include_str!("../../../../examples/programs/israeli-pharmacy.toml"),
        include_str!("../../../../examples/programs/persian-retail.toml"),
    ] {
        let program = crate::program::parse_program(source).unwrap();
        let ids: Vec<&str> = program.segments.iter().map(|s| s.id.as_str()).collect();
        assert_eq!(ids, ["dormant", "partial_basket", "best_customers"]);
        assert!(program.segments[2].sql.is_some());
        assert!(program.segments[0].prefilter.is_some());
        assert!(program.segments[1].sql.is_none());
    }
    let coffee = crate::program::parse_program(include_str!(
        "../../../../examples/programs/coffee-chain.toml"
    ))
    .unwrap();
    assert_eq!(
        coffee.rfv.name("champions", Locale::En, Locale::En),
        "Bean Legends"
    );
}

#[test]
fn rfv_and_segments_are_validated_with_positions() {
    let program = crate::program::parse_program(&format!(
        "{MINIMAL}[rfv]\ngrid = [[\"a\",\"a\",\"b\",\"b\",\"b\"],[\"a\",\"a\",\"b\",\"b\",\"b\"],[\"c\",\"c\",\"c\",\"c\",\"c\"],[\"d\",\"d\",\"d\",\"d\",\"d\"],[\"d\",\"d\",\"d\",\"d\",\"e\"]]\nnames = {{ b = \"Bees\" }}\n"
    ))
    .unwrap();
    assert_eq!(program.rfv.code(5, 5), "b");
    assert_eq!(program.rfv.code(1, 5), "e");
    assert_eq!(program.rfv.name("b", Locale::En, Locale::En), "Bees");
    assert_eq!(program.rfv.name("a", Locale::En, Locale::En), "a");
    assert_eq!(
        errors("[rfv.names]\nchampoins = \"X\"\n"),
        ["19:1: `rfv.names.champoins`: the RFV grid has no segment `champoins`"]
    );
    assert_eq!(
        errors("[rfv]\ngrid = [[\"a\"]]\n"),
        ["19:8: `rfv.grid` must be 5 rows (R = 5 first) of 5 segment codes (F = 1 first)"]
    );
    let syntax = errors(
        "[[segments]]\nid = \"x\"\nname = \"X\"\ncondition = \"member.statistics.purchases >\"\n",
    );
    assert_eq!(syntax.len(), 1);
    assert!(syntax[0].starts_with("21:"), "{syntax:?}");
    assert_eq!(
        errors(
            "[[segments]]\nid = \"x\"\nname = \"X\"\ncondition = \"member.statistics.purchase > 1\"\n"
        ),
        ["21:13: `segments[0].condition`: unknown statistic `member.statistics.purchase`"]
    );
    assert_eq!(
        errors("[[segments]]\nid = \"champions\"\nname = \"X\"\ncondition = \"true\"\n"),
        ["19:6: segment id \"champions\" is a segment of the RFV grid"]
    );
    assert_eq!(
        errors("[[segments]]\nid = \"x\"\nname = \"X\"\ncondition = \"purchase.total > 1.0\"\n")
            .len(),
        1
    );
}
