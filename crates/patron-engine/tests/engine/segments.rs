//! Segments (docs/ANALYTICS.md, "Segments"): RFV runs as of a date with every member's
//! segment, moves between runs as events, rule segments evaluated in SQL and in process with
//! the same answer, entering and leaving recorded, the job, and reward eligibility by segment.

use jiff::civil::date;
use patron_analytics::date::Day;
use patron_analytics::rfm::{self, RfmTotals};
use patron_engine::jobs::{JobKind, Worker};
use patron_engine::segments::SegmentPath;
use patron_engine::{PurchaseLineRequest, PurchaseRequest};
use patron_store::Rejection;

use crate::support::{Club, clubs, ny, program};

const SEGMENTS: &str = r#"
[rfv.names]
champions = { en = "Our best", fa = "قهرمانان" }

[[segments]]
id = "dormant"
name = "Dormant"
condition = "member.statistics.days_since_last_purchase > 2.0 * member.statistics.median_gap_days && member.statistics.days_since_last_purchase > 60"

[[segments]]
id = "partial_basket"
name = "Partial basket"
condition = "member.statistics.purchases_180d >= 1 && member.statistics.top_categories_180d < 2"

[[segments]]
id = "best"
name = "Best customers"
condition = "member.statistics.rfv_m == 5 && member.statistics.rfv_f >= 4"

[[segments]]
id = "regulars"
name = "Regulars"
condition = "member.statistics.purchases >= 3 || member.statistics.spend > 100.0"
"#;

fn segment_program() -> String {
    format!(
        "{}{SEGMENTS}",
        program(0, "policy = \"never\"", "within_balance", "forfeit")
    )
}

async fn buy(club: &Club, document: &str, member: &str, category: &str, amount_minor: i64) {
    let request = PurchaseRequest {
        document_id: document.into(),
        member_id: Some(member.into()),
        store_id: "store-1".into(),
        channel: "pos".into(),
        occurred_at: None,
        currency: "USD".into(),
        lines: vec![PurchaseLineRequest {
            sku: format!("SKU-{category}"),
            category: category.into(),
            quantity: "1".into(),
            unit_price_minor: amount_minor,
            discount_minor: 0,
        }],
    };
    club.engine
        .post_purchase(&club.tenant, &request, None)
        .await
        .unwrap();
}

async fn segments_of(club: &Club, member: &str) -> Vec<String> {
    club.engine
        .member_segments(&club.tenant, member)
        .await
        .unwrap()
}

fn events(club_events: &[patron_store::segments::MemberEvent]) -> Vec<(String, String)> {
    club_events
        .iter()
        .map(|e| {
            let properties: serde_json::Value = serde_json::from_str(&e.properties).unwrap();
            (
                e.event_type.clone(),
                properties["segment"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect()
}

#[tokio::test]
async fn an_rfv_run_scores_with_ntile_and_names_segments_from_the_grid() {
    for club in clubs(&segment_program()).await {
        let l = club.label();
        let mut members = Vec::new();
        for i in 0..7 {
            members.push(club.enroll(&format!("m{i}")).await);
        }
        // Member i buys i + 1 times, on days spread so recency differs.
        for (i, member) in members.iter().enumerate().take(6) {
            for k in 0..=i {
                club.clock
                    .set(ny(&format!("2026-03-{:02}T12:00", 1 + k + 2 * i)));
                buy(
                    &club,
                    &format!("d{i}-{k}"),
                    member,
                    "coffee",
                    500 * (i as i64 + 1),
                )
                .await;
            }
        }
        club.clock.set(ny("2026-04-01T09:00"));
        let saved = club
            .engine
            .run_rfv(&club.tenant, Some(date(2026, 3, 31)))
            .await
            .unwrap();
        // The seventh member never bought: not scored.
        assert_eq!(saved.run.members, 6, "[{l}]");
        assert_eq!(saved.run.as_of, "2026-03-31", "[{l}]");
        let report = club
            .engine
            .rfv_report(&club.tenant, None)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(report.cells.len(), 25, "[{l}]");
        assert_eq!(
            report.cells.iter().map(|c| c.members).sum::<i64>(),
            6,
            "[{l}]"
        );
        // The scores are exactly patron-analytics' NTILE over the member-id order.
        let mut sorted = members[..6].to_vec();
        sorted.sort();
        let program = club.engine.program(&club.tenant).await.unwrap().program;
        let as_of = Day::from_ymd(2026, 3, 31).unwrap();
        let mut totals = Vec::new();
        for member in &sorted {
            let i = members.iter().position(|m| m == member).unwrap();
            let last = Day::from_ymd(2026, 3, (1 + i + 2 * i) as u32).unwrap();
            totals.push(RfmTotals::new(
                last,
                i as u64 + 1,
                i128::from(500 * (i as i64 + 1) * (i as i64 + 1)),
            ));
        }
        let expected = rfm::score(&totals, as_of);
        for (member, score) in sorted.iter().zip(&expected) {
            let rows = club
                .engine
                .store()
                .rfv_member(club.tenant.id, saved.run.id, member)
                .await
                .unwrap()
                .unwrap();
            assert_eq!(
                (rows.r, rows.f, rows.m, rows.recency_days),
                (
                    i64::from(score.r),
                    i64::from(score.f),
                    i64::from(score.m),
                    score.recency_days
                ),
                "[{l}] {member}"
            );
            assert_eq!(rows.segment, program.rfv.code(score.r, score.f), "[{l}]");
        }
        // The most frequent, most recent member is a champion, named by the club.
        let best = club
            .engine
            .member_segments(&club.tenant, &members[5])
            .await
            .unwrap();
        assert_eq!(best.first().map(String::as_str), Some("champions"), "[{l}]");
        assert_eq!(
            program.rfv.name(
                "champions",
                patron_domain::program::Locale::Fa,
                program.default_locale
            ),
            "قهرمانان"
        );
        // First run: every scored member entered their segment.
        let e = club
            .engine
            .member_events(&club.tenant, &members[0])
            .await
            .unwrap();
        assert_eq!(events(&e).len(), 1, "[{l}]");
        assert_eq!(e[0].event_type, "segment.entered", "[{l}]");
        assert!(e[0].properties.contains("\"first_run\":true"), "[{l}]");
    }
}

#[tokio::test]
async fn moves_between_consecutive_runs_become_events_and_back_dated_runs_count_only_earlier_purchases()
 {
    for club in clubs(&segment_program()).await {
        let l = club.label();
        let a = club.enroll("a").await;
        let b = club.enroll("b").await;
        club.clock.set(ny("2026-03-01T12:00"));
        buy(&club, "a1", &a, "coffee", 1000).await;
        club.clock.set(ny("2026-03-02T12:00"));
        buy(&club, "b1", &b, "coffee", 100).await;
        club.clock.set(ny("2026-03-03T12:00"));
        let first = club.engine.run_rfv(&club.tenant, None).await.unwrap();
        assert_eq!(first.events, 2, "[{l}]");
        let a_before = segments_of(&club, &a).await;
        // a buys twice more: a's F and R rise above b's, b falls.
        club.clock.set(ny("2026-03-10T12:00"));
        buy(&club, "a2", &a, "coffee", 1000).await;
        buy(&club, "a3", &a, "coffee", 1000).await;
        club.clock.set(ny("2026-03-11T12:00"));
        let second = club.engine.run_rfv(&club.tenant, None).await.unwrap();
        let a_after = segments_of(&club, &a).await;
        let b_after = segments_of(&club, &b).await;
        let moved = usize::from(a_before != a_after);
        let b_events = club.engine.member_events(&club.tenant, &b).await.unwrap();
        let a_events = club.engine.member_events(&club.tenant, &a).await.unwrap();
        assert_eq!(
            a_events.len(),
            1 + 2 * moved,
            "[{l}] {a_before:?} {a_after:?}"
        );
        if moved == 1 {
            let pairs = events(&a_events);
            assert_eq!(
                pairs[1],
                ("segment.left".into(), a_before[0].clone()),
                "[{l}]"
            );
            assert_eq!(
                pairs[2],
                ("segment.entered".into(), a_after[0].clone()),
                "[{l}]"
            );
        }
        assert_eq!(
            second.events as usize,
            a_events.len() + b_events.len() - 2,
            "[{l}] b now {b_after:?}"
        );
        // A back-dated run counts only the purchases before the end of its day, and records
        // no events.
        let back = club
            .engine
            .run_rfv(&club.tenant, Some(date(2026, 3, 5)))
            .await
            .unwrap();
        assert_eq!(back.events, 0, "[{l}]");
        let row = club
            .engine
            .store()
            .rfv_member(club.tenant.id, back.run.id, &a)
            .await
            .unwrap()
            .unwrap();
        assert_eq!((row.frequency, row.recency_days), (1, 4), "[{l}]");
        // The latest run by as-of date is still the second.
        let latest = club
            .engine
            .rfv_report(&club.tenant, None)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(latest.run.id, second.run.id, "[{l}]");
    }
}

#[tokio::test]
async fn rule_segments_record_entering_and_leaving() {
    for club in clubs(&segment_program()).await {
        let l = club.label();
        let m = club.enroll("m").await;
        // Purchases 10 days apart: median gap 10.
        for (k, day) in ["2026-01-01", "2026-01-11", "2026-01-21"]
            .iter()
            .enumerate()
        {
            club.clock.set(ny(&format!("{day}T12:00")));
            buy(&club, &format!("p{k}"), &m, "coffee", 2000).await;
        }
        club.clock.set(ny("2026-02-01T12:00"));
        let report = club.engine.run_segments(&club.tenant, None).await.unwrap();
        let dormant = report.rules.iter().find(|r| r.id == "dormant").unwrap();
        assert_eq!((dormant.members, dormant.path), (0, "prefiltered"), "[{l}]");
        let regulars = report.rules.iter().find(|r| r.id == "regulars").unwrap();
        assert_eq!((regulars.members, regulars.path), (1, "sql"), "[{l}]");
        // 70 days later: dormant (70 > 2 x 10 and > 60).
        club.clock.set(ny("2026-04-01T12:00"));
        club.engine.run_segments(&club.tenant, None).await.unwrap();
        assert!(
            club.engine
                .member_segments(&club.tenant, &m)
                .await
                .unwrap()
                .contains(&"dormant".to_owned()),
            "[{l}]"
        );
        // Running again changes nothing and records nothing.
        let again = club.engine.run_segments(&club.tenant, None).await.unwrap();
        assert_eq!(
            again
                .rules
                .iter()
                .map(|r| r.entered + r.left)
                .sum::<usize>(),
            0,
            "[{l}]"
        );
        // A purchase wakes the member: they leave the segment.
        buy(&club, "p3", &m, "coffee", 2000).await;
        club.engine.run_segments(&club.tenant, None).await.unwrap();
        let rule_events: Vec<(String, String)> =
            events(&club.engine.member_events(&club.tenant, &m).await.unwrap())
                .into_iter()
                .filter(|(_, s)| s == "dormant")
                .collect();
        assert_eq!(
            rule_events,
            [
                ("segment.entered".to_owned(), "dormant".to_owned()),
                ("segment.left".to_owned(), "dormant".to_owned())
            ],
            "[{l}]"
        );
    }
}

#[tokio::test]
async fn partial_basket_reads_the_clubs_top_categories() {
    for club in clubs(&segment_program()).await {
        let l = club.label();
        let wide = club.enroll("wide").await;
        let narrow = club.enroll("narrow").await;
        let idle = club.enroll("idle").await;
        club.clock.set(ny("2026-03-01T12:00"));
        for (k, category) in ["coffee", "pastry", "beans"].iter().enumerate() {
            buy(&club, &format!("w{k}"), &wide, category, 500).await;
        }
        buy(&club, "n0", &narrow, "coffee", 500).await;
        club.clock.set(ny("2026-03-05T12:00"));
        let members = club
            .engine
            .evaluate_rule_segment(&club.tenant, "partial_basket", SegmentPath::Auto)
            .await
            .unwrap();
        assert_eq!(members, std::slice::from_ref(&narrow), "[{l}] idle {idle}");
    }
}

/// A small deterministic generator (no dependency on the order tests run in).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % n
    }
}

#[tokio::test]
async fn sql_and_in_process_evaluation_give_the_same_members() {
    let conditions = [
        "member.statistics.purchases >= 3",
        "member.statistics.purchases == 0",
        "member.statistics.purchase_days != 2",
        "member.statistics.spend > 25.5 && member.statistics.purchases < 4",
        "member.statistics.spend <= 10.0 || member.statistics.days_since_last_purchase >= 20",
        "member.statistics.days_since_last_purchase == 5",
        "member.statistics.days_since_last_purchase != 5",
        "member.statistics.days_since_last_purchase > 10 || member.statistics.purchases == 0",
        "(member.statistics.days_since_last_purchase < 3 && member.statistics.spend > 5) || 2 >= member.statistics.purchase_days",
        "member.statistics.rfv_r >= 4 || member.statistics.rfv_m == 1",
        "member.statistics.rfv_f != 3 && member.statistics.spend >= 0.0",
        "member.statistics.rfv_r < 2 || member.statistics.days_since_last_purchase > 1000",
    ];
    let mut source = program(0, "policy = \"never\"", "within_balance", "forfeit");
    for (i, condition) in conditions.iter().enumerate() {
        source.push_str(&format!(
            "\n[[segments]]\nid = \"c{i}\"\nname = \"C{i}\"\ncondition = \"{condition}\"\n"
        ));
    }
    for club in clubs(&source).await {
        let l = club.label();
        let mut random = Lcg(7);
        let mut members = Vec::new();
        for i in 0..40 {
            members.push(club.enroll(&format!("m{i:02}")).await);
        }
        let mut document = 0;
        for day in 1..=28 {
            club.clock.set(ny(&format!("2026-02-{day:02}T12:00")));
            for member in &members {
                if random.next(9) == 0 {
                    document += 1;
                    let amount = 100 * (1 + random.next(30) as i64);
                    buy(&club, &format!("d{document}"), member, "coffee", amount).await;
                }
            }
        }
        club.clock.set(ny("2026-03-10T12:00"));
        club.engine.run_rfv(&club.tenant, None).await.unwrap();
        for (i, condition) in conditions.iter().enumerate() {
            let id = format!("c{i}");
            let sql = club
                .engine
                .evaluate_rule_segment(&club.tenant, &id, SegmentPath::Sql)
                .await
                .unwrap();
            let in_process = club
                .engine
                .evaluate_rule_segment(&club.tenant, &id, SegmentPath::InProcess)
                .await
                .unwrap();
            assert_eq!(sql, in_process, "[{l}] {condition}");
        }
    }
}

#[tokio::test]
async fn the_segments_job_runs_now() {
    for club in clubs(&segment_program()).await {
        let l = club.label();
        let m = club.enroll("m").await;
        club.clock.set(ny("2026-03-01T12:00"));
        buy(&club, "p1", &m, "coffee", 20_000).await;
        let worker = Worker::new(jiff::SignedDuration::from_secs(60));
        let report = club
            .engine
            .run_job_now(&club.tenant, JobKind::Segments, &worker)
            .await
            .unwrap();
        let summary = report.outcome.unwrap();
        assert!(summary.contains("1 members"), "[{l}] {summary}");
        assert!(summary.contains("regulars 1 (+1 -0)"), "[{l}] {summary}");
        let overview = club.engine.segments_overview(&club.tenant).await.unwrap();
        assert_eq!(overview.len(), 10 + 4, "[{l}]");
        assert_eq!(
            overview
                .iter()
                .filter(|s| s.kind == "rfv")
                .map(|s| s.members)
                .sum::<i64>(),
            1,
            "[{l}]"
        );
    }
}

#[tokio::test]
async fn a_reward_limited_to_a_segment_needs_the_member_in_it() {
    let source = format!(
        "{}\n[[rewards]]\nid = \"vip_gift\"\nname = \"VIP gift\"\nkind = \"soft_benefit\"\nbenefit = \"other\"\npoints = 0\nsegments = [\"regulars\"]\n",
        segment_program()
    );
    for club in clubs(&source).await {
        let l = club.label();
        let m = club.enroll("m").await;
        club.clock.set(ny("2026-03-01T12:00"));
        let catalog = club
            .engine
            .rewards_catalog(&club.tenant, Some(&m), None)
            .await
            .unwrap();
        assert_eq!(catalog[0].reasons, ["not_in_segment"], "[{l}]");
        let refused = club
            .engine
            .redeem_reward(&club.tenant, &m, "vip_gift", None)
            .await
            .unwrap_err();
        match refused {
            patron_engine::EngineError::Rejected(Rejection::RewardUnavailable {
                reasons, ..
            }) => {
                assert_eq!(reasons, ["not_in_segment"], "[{l}]");
            }
            other => panic!("[{l}] {other:?}"),
        }
        buy(&club, "p1", &m, "coffee", 20_000).await;
        club.engine.run_segments(&club.tenant, None).await.unwrap();
        let catalog = club
            .engine
            .rewards_catalog(&club.tenant, Some(&m), None)
            .await
            .unwrap();
        assert!(
            catalog[0].reasons.is_empty(),
            "[{l}] {:?}",
            catalog[0].reasons
        );
        club.engine
            .redeem_reward(&club.tenant, &m, "vip_gift", None)
            .await
            .unwrap();
    }
}
