//! Criterion benchmarks of the pure domain functions on the hot path of a purchase.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use criterion::{Criterion, criterion_group, criterion_main};
use jiff::{SignedDuration, Timestamp};
use patron_bench::coffee_programs;
use patron_domain::lots::{LotView, plan_consumption};
use patron_domain::program::parse_program;
use patron_domain::rules::{self, EvalInput, LineFacts, MemberFacts, PurchaseFacts, Trigger};
use patron_domain::rust_decimal::Decimal;
use patron_domain::{earning, expiry};
use std::hint::black_box;

const PERSIAN: &str = include_str!("../../examples/programs/persian-retail.toml");
fn benches(c: &mut Criterion) {
    // Baseline for the next one: the TOML parse alone, without Patron's validation.
    c.bench_function("toml_edit parse persian-retail (baseline)", |b| {
        b.iter(|| {
            black_box(PERSIAN)
                .parse::<toml_edit::DocumentMut>()
                .unwrap()
        })
    });
    c.bench_function("parse_program persian-retail", |b| {
        b.iter(|| parse_program(black_box(PERSIAN)).unwrap())
    });

    let program = parse_program(PERSIAN).unwrap();
    c.bench_function("base_points", |b| {
        b.iter(|| {
            earning::base_points(
                &program.earning,
                &program.currency,
                black_box(12_345_000),
                black_box(12_000_000),
                Decimal::ONE,
            )
        })
    });

    let cal = program.calendar();
    let now: Timestamp = "2026-06-15T10:00:00Z".parse().unwrap();
    c.bench_function(
        "lot_expires_at (12 months, end of the Persian month, Asia/Tehran)",
        |b| b.iter(|| expiry::lot_expires_at(&program.expiry, black_box(now), &cal)),
    );
    // The baseline: the same policy counted in Gregorian months.
    let gregorian = patron_domain::calendar::Calendar::gregorian(program.tz());
    c.bench_function(
        "lot_expires_at (12 months, end of the Gregorian month, Asia/Tehran)",
        |b| b.iter(|| expiry::lot_expires_at(&program.expiry, black_box(now), &gregorian)),
    );

    let lots: Vec<LotView> = (0..200)
        .map(|i| LotView {
            id: i,
            remaining: 100,
            expires_at: Some(now + SignedDuration::from_hours(24 * (200 - i))),
            seq: i,
        })
        .collect();
    c.bench_function("plan_consumption (200 lots, take 5,050 points)", |b| {
        b.iter(|| plan_consumption(black_box(&lots), black_box(5_050), now))
    });
}

fn rule_benches(c: &mut Criterion) {
    let (base, with_rules) = coffee_programs();
    let base = parse_program(&base).unwrap();
    let twenty = parse_program(&with_rules).unwrap();
    assert_eq!(twenty.rules.len(), 20);
    let member = MemberFacts {
        id: "m-1".into(),
        tier: "regular".into(),
        segments: vec!["coffee_lovers".into()],
        enrolled_at: "2025-01-01T00:00:00Z".parse().unwrap(),
        ..MemberFacts::default()
    };
    let line = |sku: &str, category: &str, quantity: i64, price: i64| LineFacts {
        sku: sku.into(),
        category: category.into(),
        quantity: Decimal::from(quantity),
        unit_price_minor: price,
        total_minor: quantity * price,
    };
    let purchase = PurchaseFacts {
        channel: "pos".into(),
        store: "s1".into(),
        time: "2026-06-16T09:30:00Z".parse().unwrap(),
        lines: vec![
            line("latte", "coffee", 2, 475),
            line("croissant", "pastry", 1, 350),
            line("beans-1kg", "beans", 1, 2_400),
        ],
        referral: None,
    };
    let usage = rules::RuleUsage::new();
    let now: Timestamp = "2026-06-16T09:30:00Z".parse().unwrap();
    for (name, program) in [
        ("evaluate purchase, no rules (baseline)", &base),
        ("evaluate purchase, 20 rules", &twenty),
    ] {
        c.bench_function(name, |b| {
            b.iter(|| {
                rules::evaluate(
                    program,
                    &EvalInput {
                        member: black_box(&member),
                        trigger: Trigger::Purchase(black_box(&purchase)),
                        now,
                        usage: &usage,
                    },
                )
            })
        });
    }
}

criterion_group!(domain, benches, rule_benches);
criterion_main!(domain);
