//! Criterion benchmarks of the pure domain functions on the hot path of a purchase.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use criterion::{Criterion, criterion_group, criterion_main};
use jiff::{SignedDuration, Timestamp};
use patron_domain::lots::{LotView, plan_consumption};
use patron_domain::program::parse_program;
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

    let tz = program.tz();
    let now: Timestamp = "2026-06-15T10:00:00Z".parse().unwrap();
    c.bench_function(
        "lot_expires_at (12 months, end of month, Asia/Tehran)",
        |b| b.iter(|| expiry::lot_expires_at(&program.expiry, black_box(now), &tz)),
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

criterion_group!(domain, benches);
criterion_main!(domain);
