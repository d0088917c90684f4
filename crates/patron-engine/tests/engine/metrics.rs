//! Success metrics against targets, on a hand-made club whose every number is computed by
//! hand below; and the CLV job, whose stored predictions must equal what `patron-analytics`
//! computes from the same member statistics.

use jiff::civil::date;
use patron_analytics::bgnbd::{self, BgNbdData, FitOptions};
use patron_analytics::clv;
use patron_analytics::gamma_gamma::{self, GammaGammaData};
use patron_analytics::summary::CustomerSummary;
use patron_domain::metrics::PeriodLength;
use patron_domain::rust_decimal::Decimal;
use patron_engine::jobs::{JobKind, Worker};
use patron_engine::metrics::{MetricsReport, MetricsRequest};
use patron_engine::{EngineError, PurchaseRequest};
use patron_store::coupons::CouponUse;

use crate::support::{Club, clubs, invalid_field, ny, program, purchase_request};

/// 1 point per dollar, points expire 20 days after earning, a point costs $0.01, and targets
/// for every metric.
fn club_program() -> String {
    let base = program(
        0,
        "policy = \"after_earning\"\namount = 20\nunit = \"days\"",
        "within_balance",
        "forfeit",
    );
    let with_cost = base.replace(
        "time_zone = \"America/New_York\"\n",
        "time_zone = \"America/New_York\"\ncost_per_point = \"0.01\"\n",
    );
    assert_ne!(with_cost, base, "the test program's [club] changed");
    format!(
        "{with_cost}\n[targets]\nidentified_revenue_pct = 50\nredemption_pct = 20\nchurn_pct = 30\n\
         active_pct = 60\nenrollments = {{ month = 2 }}\nliability = \"1\"\nbreakage_pct = 20\n"
    )
}

fn at_store(mut request: PurchaseRequest, store: &str) -> PurchaseRequest {
    request.store_id = store.into();
    request
}

async fn post(club: &Club, request: &PurchaseRequest) -> String {
    club.engine
        .post_purchase(&club.tenant, request, None)
        .await
        .unwrap()
        .value
        .purchase_id
}

fn anonymous() -> CouponUse {
    CouponUse {
        member_id: None,
        order_id: None,
        cart_minor: Some(10_000),
    }
}

async fn report(
    club: &Club,
    period: PeriodLength,
    from: (i16, i8, i8),
    to: (i16, i8, i8),
    store: Option<&str>,
) -> MetricsReport {
    club.engine
        .success_metrics(
            &club.tenant,
            &MetricsRequest {
                period,
                from: date(from.0, from.1, from.2),
                to: date(to.0, to.1, to.2),
                store_id: store.map(str::to_string),
            },
        )
        .await
        .unwrap()
}

fn pct(text: &str) -> Option<Decimal> {
    Some(text.parse().unwrap())
}

fn num(n: i64) -> Option<Decimal> {
    Some(Decimal::from(n))
}

/// Builds the club of the module docs (all times New York):
///
/// | when | what |
/// |---|---|
/// | Feb 10 | A, B, C enroll; A buys $100 at store-1 (100 points, expire Mar 2) |
/// | Feb 12 | B buys $50 at store-2 (50 points, expire Mar 4) |
/// | Feb 15 | an anonymous $30 at store-1 |
/// | Mar 2 | D enrolls |
/// | Mar 3 | A buys $20 at store-2: A's 100 expire first, then A earns 20 |
/// | Mar 4 | D buys 2 × $20 at store-1 (40 points) |
/// | Mar 5 | an anonymous $60 at store-2; promotion "spring": 4 codes issued, 2 redeemed, 1 released |
/// | Mar 6 | D returns 1 of the 2 items: $20 refunded, 20 points clawed back |
/// | Mar 8 | C leaves the club (no points) |
/// | Mar 10 | the expiry job expires B's 50 |
async fn hand_made_club(club: &Club) {
    let (engine, tenant) = (&club.engine, &club.tenant);
    club.clock.set(ny("2026-02-10T10:00"));
    let a = club.enroll("A").await;
    let b = club.enroll("B").await;
    let c = club.enroll("C").await;
    post(
        club,
        &at_store(
            purchase_request("a1", Some(&a), "1", 10_000, "USD"),
            "store-1",
        ),
    )
    .await;
    club.clock.set(ny("2026-02-12T10:00"));
    post(
        club,
        &at_store(
            purchase_request("b1", Some(&b), "1", 5_000, "USD"),
            "store-2",
        ),
    )
    .await;
    club.clock.set(ny("2026-02-15T10:00"));
    post(
        club,
        &at_store(purchase_request("n1", None, "1", 3_000, "USD"), "store-1"),
    )
    .await;

    club.clock.set(ny("2026-03-02T10:00"));
    let d = club.enroll("D").await;
    club.clock.set(ny("2026-03-03T10:00"));
    post(
        club,
        &at_store(
            purchase_request("a2", Some(&a), "1", 2_000, "USD"),
            "store-2",
        ),
    )
    .await;
    assert_eq!(
        club.available(&a).await,
        20,
        "A's 100 expired before the purchase"
    );
    club.clock.set(ny("2026-03-04T10:00"));
    let d1 = post(
        club,
        &at_store(
            purchase_request("d1", Some(&d), "2", 2_000, "USD"),
            "store-1",
        ),
    )
    .await;
    club.clock.set(ny("2026-03-05T10:00"));
    post(
        club,
        &at_store(purchase_request("n2", None, "1", 6_000, "USD"), "store-2"),
    )
    .await;
    let promotion = patron_engine::rewards::PromotionRequest {
        id: Some("spring".into()),
        name: "Spring".into(),
        benefit: patron_store::coupons::CouponBenefit {
            kind: "discount".into(),
            amount_minor: Some(500),
            ..Default::default()
        },
        prefix: "SPRNG".into(),
        budget_redemptions: None,
        budget_minor: None,
        limit: None,
        member_limit: None,
        uses_per_code: Some(1),
        starts_at: None,
        ends_at: None,
    };
    engine
        .create_promotion(tenant, &promotion, None)
        .await
        .unwrap();
    let codes = engine
        .generate_promotion_codes(tenant, "spring", 4, true, None)
        .await
        .unwrap()
        .value
        .codes;
    engine
        .redeem_coupon(tenant, &codes[0], &anonymous(), None)
        .await
        .unwrap();
    engine
        .redeem_coupon(tenant, &codes[1], &anonymous(), None)
        .await
        .unwrap();
    engine
        .release_coupon(tenant, &codes[0], None, None)
        .await
        .unwrap();
    club.clock.set(ny("2026-03-06T10:00"));
    let refund = club.refund(&d1, "r1", Some("1")).await.unwrap();
    assert_eq!(refund.clawed_back_points, 20);
    club.clock.set(ny("2026-03-08T10:00"));
    engine.exit_member(tenant, &c, "test", None).await.unwrap();
    club.jump_to(ny("2026-03-10T10:00")).await;
    assert_eq!(club.available(&b).await, 0, "B's 50 expired");
    club.verify().await;
}

#[tokio::test]
async fn the_metrics_of_a_hand_made_club_are_the_hand_computed_ones() {
    for club in clubs(&club_program()).await {
        let l = club.label();
        hand_made_club(&club).await;
        let months = report(
            &club,
            PeriodLength::Month,
            (2026, 2, 1),
            (2026, 3, 31),
            None,
        )
        .await;
        assert_eq!(months.periods.len(), 2, "[{l}]");
        assert_eq!(months.currency, "USD");
        let (feb, mar) = (&months.periods[0], &months.periods[1]);
        assert_eq!(feb.first_day, date(2026, 2, 1));
        assert_eq!(feb.last_day, date(2026, 2, 28));
        assert_eq!(mar.start, ny("2026-03-01T00:00"));
        assert_eq!(mar.end, ny("2026-04-01T00:00"));

        // Identified revenue. Feb: A 100 + B 50 of 100 + 50 + 30 (anonymous) = 150 / 180 =
        // 83.33% (target 50: met). Mar: A 20 + D (40 − 20 refunded) = 40 of 40 + 60 = 100:
        // 40% (missed).
        assert_eq!(
            (feb.revenue_minor, feb.identified_revenue_minor),
            (18_000, 15_000),
            "[{l}]"
        );
        assert_eq!((feb.purchases, feb.identified_purchases), (3, 2), "[{l}]");
        assert_eq!(feb.identified_revenue_pct.value, pct("83.33"), "[{l}]");
        assert_eq!(feb.identified_revenue_pct.target, num(50));
        assert_eq!(feb.identified_revenue_pct.meets, Some(true));
        assert_eq!(
            (mar.revenue_minor, mar.identified_revenue_minor),
            (10_000, 4_000),
            "[{l}]"
        );
        assert_eq!(mar.identified_revenue_pct.value, pct("40"), "[{l}]");
        assert_eq!(mar.identified_revenue_pct.meets, Some(false));

        // Coupons. Feb: none issued, no value. Mar: 4 issued, 2 redeemed − 1 released = 1:
        // 25% (target 20: met), all of it the "spring" promotion.
        assert_eq!(feb.coupons_issued, 0);
        assert_eq!(
            (feb.redemption_pct.value, feb.redemption_pct.meets),
            (None, None)
        );
        assert_eq!((mar.coupons_issued, mar.coupons_redeemed), (4, 1), "[{l}]");
        assert_eq!(mar.redemption_pct.value, pct("25"), "[{l}]");
        assert_eq!(mar.redemption_pct.meets, Some(true));
        assert_eq!(mar.campaigns.len(), 1, "[{l}]");
        assert_eq!(mar.campaigns[0].promotion_id.as_deref(), Some("spring"));
        assert_eq!((mar.campaigns[0].issued, mar.campaigns[0].redeemed), (4, 1));
        assert_eq!(mar.campaigns[0].redemption_pct, pct("25"));

        // Active members (a month of activity, the default). Feb: A and B bought; A, B, C
        // are members at the end: 2/3 = 66.67% (target 60: met). Mar: A and D bought; C left
        // on Mar 8, so A, B, D are members: 2/3 = 66.67%.
        assert_eq!((feb.active_members, feb.members_at_end), (2, 3), "[{l}]");
        assert_eq!(feb.active_pct.value, pct("66.67"));
        assert_eq!(feb.active_pct.meets, Some(true));
        assert_eq!((mar.active_members, mar.members_at_end), (2, 3), "[{l}]");
        assert_eq!(mar.active_pct.value, pct("66.67"));

        // Churn. Feb: nobody was active in January: no value. Mar: A and B were active in
        // February; B did not buy in March: 1/2 = 50% (target 30, lower is better: missed).
        assert_eq!(feb.previous_active_members, 0);
        assert_eq!(feb.churn_pct.value, None);
        assert_eq!(
            (mar.previous_active_members, mar.churned_members),
            (2, 1),
            "[{l}]"
        );
        assert_eq!(mar.churn_pct.value, pct("50"));
        assert_eq!(mar.churn_pct.meets, Some(false));

        // Enrollments: 3 in February (target 2 a month: met), 1 in March (missed).
        assert_eq!(feb.enrollments.value, num(3), "[{l}]");
        assert_eq!(feb.enrollments.meets, Some(true));
        assert_eq!(mar.enrollments.value, num(1), "[{l}]");
        assert_eq!(mar.enrollments.meets, Some(false));

        // Points. Feb: 0 + 150 issued = 150 outstanding; liability 150 × $0.01 = $1.50
        // (target $1, lower is better: missed); nothing expired: breakage 0% (met).
        // Mar: 150 + 60 issued (A 20, D 40) − 150 expired (A 100, B 50) − 20 clawed back
        // = 40 (A 20, D 20); liability $0.40 (met); breakage 150 / 60 = 250% (missed).
        let f = feb.points;
        assert_eq!(
            (f.opening, f.issued, f.expired, f.closing),
            (0, 150, 0, 150),
            "[{l}]"
        );
        assert_eq!(feb.liability.value, pct("1.50"), "[{l}]");
        assert_eq!(feb.liability.meets, Some(false));
        assert_eq!(feb.breakage_pct.value, pct("0"));
        assert_eq!(feb.breakage_pct.meets, Some(true));
        let m = mar.points;
        assert_eq!(
            (
                m.opening,
                m.issued,
                m.redeemed,
                m.expired,
                m.clawed_back,
                m.forfeited,
                m.adjusted,
                m.other,
                m.closing
            ),
            (150, 60, 0, 150, 20, 0, 0, 0, 40),
            "[{l}]"
        );
        assert_eq!(mar.breakage_points, 150);
        assert_eq!(mar.liability.value, pct("0.40"), "[{l}]");
        assert_eq!(mar.liability.meets, Some(true));
        assert_eq!(mar.breakage_pct.value, pct("250"), "[{l}]");
        assert_eq!(mar.breakage_pct.meets, Some(false));
        // The roll-forward ends where the members' balances are.
        assert_eq!(
            club.engine
                .store()
                .outstanding_points(club.tenant.id)
                .await
                .unwrap(),
            40
        );

        // Store-1 in March: D's $20 (net) is all its revenue, identified: 100%. Active there:
        // D, 1 of the 3 members: 33.33%. A bought at store-1 in February, not in March (A's
        // March purchase was at store-2): churn 1/1 = 100%. Club-wide figures stay.
        let one = report(
            &club,
            PeriodLength::Month,
            (2026, 3, 1),
            (2026, 3, 1),
            Some("store-1"),
        )
        .await;
        let s1 = &one.periods[0];
        assert_eq!(
            (s1.revenue_minor, s1.identified_revenue_minor),
            (2_000, 2_000),
            "[{l}]"
        );
        assert_eq!(s1.identified_revenue_pct.value, pct("100"));
        assert_eq!((s1.active_members, s1.members_at_end), (1, 3), "[{l}]");
        assert_eq!(s1.active_pct.value, pct("33.33"));
        assert_eq!(
            (s1.previous_active_members, s1.churned_members),
            (1, 1),
            "[{l}]"
        );
        assert_eq!(s1.churn_pct.value, pct("100"));
        assert_eq!(s1.enrollments.value, num(1));
        assert_eq!(s1.points.closing, 40);
        // Store-2 in March: A's $20 and the anonymous $60: 25% identified.
        let two = report(
            &club,
            PeriodLength::Month,
            (2026, 3, 1),
            (2026, 3, 1),
            Some("store-2"),
        )
        .await;
        let s2 = &two.periods[0];
        assert_eq!(
            (s2.revenue_minor, s2.identified_revenue_minor),
            (8_000, 2_000),
            "[{l}]"
        );
        assert_eq!(s2.identified_revenue_pct.value, pct("25"));
        assert_eq!(
            (s2.previous_active_members, s2.churned_members),
            (1, 1),
            "[{l}]"
        );

        // Days: ten of them, the roll-forward chains, and the events land on their days.
        let days = report(&club, PeriodLength::Day, (2026, 3, 1), (2026, 3, 10), None).await;
        assert_eq!(days.periods.len(), 10);
        for pair in days.periods.windows(2) {
            assert_eq!(pair[0].points.closing, pair[1].points.opening);
            assert_eq!(pair[0].end, pair[1].start);
        }
        let day = |d: i8| &days.periods[usize::try_from(d - 1).unwrap()];
        assert_eq!(day(2).enrollments.value, num(1), "[{l}]");
        assert_eq!(day(3).points.expired, 100, "[{l}] A's lot, on A's purchase");
        assert_eq!(day(3).points.issued, 20);
        assert_eq!(day(6).points.clawed_back, 20);
        assert_eq!(day(10).points.expired, 50, "[{l}] B's lot, by the job");
        assert_eq!(day(10).points.closing, 40);
        // 8 March is 23 hours long in New York.
        assert_eq!(day(8).end.duration_since(day(8).start).as_hours(), 23);
        // A day's activity window is the month before its end (the program's period).
        assert_eq!(day(10).activity_start, ny("2026-02-11T00:00"));

        // Weeks start on Monday: 1 March 2026 is a Sunday.
        let weeks = report(&club, PeriodLength::Week, (2026, 3, 1), (2026, 3, 10), None).await;
        let firsts: Vec<_> = weeks.periods.iter().map(|p| p.first_day).collect();
        assert_eq!(
            firsts,
            vec![date(2026, 2, 23), date(2026, 3, 2), date(2026, 3, 9)]
        );
        // No weekly enrollment target: no target, no verdict.
        assert_eq!(weeks.periods[1].enrollments.target, None);
        assert_eq!(weeks.periods[1].enrollments.value, num(1));
    }
}

#[tokio::test]
async fn bad_ranges_are_refused_with_the_field() {
    for club in clubs(&club_program()).await {
        let request = |from, to, store: Option<&str>| MetricsRequest {
            period: PeriodLength::Day,
            from,
            to,
            store_id: store.map(str::to_string),
        };
        let ask = async |r: MetricsRequest| -> Result<MetricsReport, EngineError> {
            club.engine.success_metrics(&club.tenant, &r).await
        };
        assert_eq!(
            invalid_field(ask(request(date(2026, 3, 2), date(2026, 3, 1), None)).await),
            "to"
        );
        assert_eq!(
            invalid_field(ask(request(date(2025, 1, 1), date(2026, 2, 5), None)).await),
            "to"
        );
        assert_eq!(
            invalid_field(ask(request(date(2026, 3, 1), date(2026, 3, 1), Some(""))).await),
            "store"
        );
        // 400 days is the most.
        let ok = ask(request(date(2025, 1, 1), date(2026, 2, 4), None))
            .await
            .unwrap();
        assert_eq!(ok.periods.len(), 400);
        assert!(
            ok.periods
                .iter()
                .all(|p| p.revenue_minor == 0 && p.points.closing == 0)
        );
    }
}

/// A member's purchase days: member `i` starts on day `i % 14` after 5 January 2026, buys
/// every `3 + 5i % 11` days, `1 + 7i % 6` times in all, for `10 + 1.37i + 0.61k` dollars.
fn history(i: i64) -> Vec<(i64, i64)> {
    let first = i % 14;
    let gap = 3 + (i * 5) % 11;
    let count = 1 + (i * 7) % 6;
    (0..count)
        .map(|k| (first + k * gap, 1_000 + 137 * i + 61 * k))
        .collect()
}

const CLV_MEMBERS: i64 = 30;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_clv_job_stores_what_the_models_predict_from_the_member_statistics() {
    let source = format!(
        "{}\n[analytics]\nclv_horizon_weeks = 26\nclv_margin_pct = 50\n",
        program(0, "policy = \"never\"", "within_balance", "forfeit")
    );
    for club in clubs(&source).await {
        let l = club.label();
        let (engine, tenant) = (&club.engine, &club.tenant);
        let worker = Worker::new(jiff::SignedDuration::from_secs(60));
        // Nothing fitted yet.
        assert!(engine.latest_clv(tenant).await.unwrap().is_none());

        club.clock.set(ny("2026-01-05T09:00"));
        let mut members = Vec::new();
        for i in 0..CLV_MEMBERS {
            members.push(club.enroll(&format!("clv-{i}")).await);
        }
        let nobody = club.enroll("never-bought").await;
        let mut purchases: Vec<(i64, i64, i64)> = (0..CLV_MEMBERS)
            .flat_map(|i| {
                history(i)
                    .into_iter()
                    .map(move |(day, amount)| (day, i, amount))
            })
            .collect();
        purchases.sort();
        for (n, (day, i, amount)) in purchases.iter().enumerate() {
            let at = ny("2026-01-05T12:00")
                .checked_add(jiff::SignedDuration::from_hours(24 * day))
                .unwrap();
            club.clock.set(at);
            let member = &members[usize::try_from(*i).unwrap()];
            post(
                &club,
                &purchase_request(&format!("p{n}"), Some(member), "1", *amount, "USD"),
            )
            .await;
        }
        club.clock.set(ny("2026-03-30T12:00"));
        let report = engine
            .run_job_now(tenant, JobKind::Clv, &worker)
            .await
            .unwrap();
        let summary = report.outcome.unwrap();
        assert!(
            summary.starts_with("30 members predicted from 30 customers"),
            "[{l}] {summary}"
        );

        // The same fit, from the member statistics, with patron-analytics directly.
        let as_of_day = 20_542; // 2026-03-30: days since 1970-01-01
        assert_eq!(
            patron_store::stats::day_number(
                club.engine.now(),
                &jiff::tz::TimeZone::get("America/New_York").unwrap()
            ),
            as_of_day
        );
        let mut summaries = Vec::new();
        for member in &members {
            let s = engine.member_stats(tenant, member).await.unwrap().unwrap();
            let x = u32::try_from(s.purchase_days - 1).unwrap();
            summaries.push(CustomerSummary {
                x,
                t_x: if x == 0 {
                    0.0
                } else {
                    (s.last_purchase_day - s.first_purchase_day) as f64 / 7.0
                },
                t_cal: (as_of_day - s.first_purchase_day) as f64 / 7.0,
                repeat_amount_minor: i128::from(s.repeat_spend_minor),
            });
        }
        let data = BgNbdData::new(summaries.iter().map(|s| (s.x, s.t_x, s.t_cal, 1.0))).unwrap();
        let bg = bgnbd::fit(&data, FitOptions { threads: 1 }).unwrap();
        let spend = GammaGammaData::new(
            summaries
                .iter()
                .map(|s| (s.x, s.average_repeat_spend(2).unwrap_or(0.0), 1.0)),
        )
        .unwrap();
        let gg = gamma_gamma::fit(&spend).unwrap();

        let run = engine.latest_clv(tenant).await.unwrap().unwrap();
        assert_eq!(run.customers, 30, "[{l}]");
        assert_eq!(run.members, 30, "[{l}]");
        assert_eq!(run.as_of_day, as_of_day);
        assert_eq!(run.horizon_weeks, 26);
        assert_eq!(run.margin_pct, "50");
        assert_eq!(
            run.distinct_tuples,
            i64::try_from(bg.distinct_tuples).unwrap()
        );
        assert_eq!(
            (run.bgnbd.r, run.bgnbd.alpha, run.bgnbd.a, run.bgnbd.b),
            (bg.params.r, bg.params.alpha, bg.params.a, bg.params.b),
            "[{l}]"
        );
        assert_eq!(run.bgnbd_log_likelihood, bg.log_likelihood);
        assert_eq!(
            run.bgnbd_standard_errors.map(|s| (s.r, s.alpha, s.a, s.b)),
            bg.standard_errors.map(|s| (s.r, s.alpha, s.a, s.b))
        );
        let stored_gg = run.gamma_gamma.unwrap();
        assert_eq!(
            (stored_gg.params.p, stored_gg.params.q, stored_gg.params.v),
            (gg.params.p, gg.params.q, gg.params.v),
            "[{l}]"
        );
        assert_eq!(stored_gg.customers as f64, gg.customers);

        for (member, s) in members.iter().zip(&summaries) {
            let expected = clv::predict(&bg.params, Some(&gg.params), s, 26.0, 2);
            let got = engine.member_clv(tenant, member).await.unwrap().unwrap();
            assert_eq!(got.run.id, run.id);
            let p = got.prediction;
            assert_eq!(
                (p.x, p.t_x, p.t_cal),
                (i64::from(s.x), s.t_x, s.t_cal),
                "[{l}] {member}"
            );
            assert_eq!(p.p_alive, expected.p_alive, "[{l}] {member}");
            assert_eq!(
                p.expected_purchases, expected.expected_purchases,
                "[{l}] {member}"
            );
            assert_eq!(p.expected_spend, expected.expected_spend, "[{l}] {member}");
            assert_eq!(p.clv, expected.value().map(|v| v * 0.5), "[{l}] {member}");
            assert!(p.p_alive > 0.0 && p.p_alive <= 1.0);
        }
        // A member who never bought has no prediction; an unknown member is not found.
        assert!(engine.member_clv(tenant, &nobody).await.unwrap().is_none());
        assert!(engine.member_clv(tenant, "mem_nobody").await.is_err());

        // A second run replaces the members' rows (the runs stay, as history).
        club.clock.set(ny("2026-04-06T12:00"));
        engine
            .run_job_now(tenant, JobKind::Clv, &worker)
            .await
            .unwrap()
            .outcome
            .unwrap();
        let second = engine.latest_clv(tenant).await.unwrap().unwrap();
        assert!(second.id > run.id);
        assert_eq!(second.as_of_day, as_of_day + 7);
        let rows = engine
            .store()
            .clv_members(tenant.id, run.id, "", 1000)
            .await
            .unwrap();
        assert!(rows.is_empty(), "[{l}] the first run's rows are gone");
        let rows = engine
            .store()
            .clv_members(tenant.id, second.id, "", 1000)
            .await
            .unwrap();
        assert_eq!(rows.len(), 30);
    }
}

#[tokio::test]
async fn a_club_too_small_to_fit_says_so_and_stores_nothing() {
    for club in clubs(&program(
        0,
        "policy = \"never\"",
        "within_balance",
        "forfeit",
    ))
    .await
    {
        let worker = Worker::new(jiff::SignedDuration::from_secs(60));
        let member = club.enroll("only").await;
        club.buy("only-1", &member, "1", 1000).await;
        let report = club
            .engine
            .run_job_now(&club.tenant, JobKind::Clv, &worker)
            .await
            .unwrap();
        assert!(report.outcome.unwrap().starts_with("not fitted:"));
        assert!(
            club.engine
                .latest_clv(&club.tenant)
                .await
                .unwrap()
                .is_none()
        );
    }
}
