//! Member statistics (docs/ANALYTICS.md, "Member statistics"): kept in the unit of work of
//! every purchase, refund and attach, equal to a rebuild from history, and readable by rules.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use jiff::SignedDuration;
use patron_engine::{
    Engine, EnrollRequest, ManualClock, ProfileFields, PurchaseLineRequest, PurchaseRequest,
    RefundLineRequest, RefundRequest,
};
use patron_store::stats::CategorySpend;
use patron_store::tenants::Tenant;
use patron_store::testing;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};

use crate::support::{clubs, label, ny, program, purchase_request, refund_request, start};

fn plain_program() -> String {
    program(0, "policy = \"never\"", "within_balance", "forfeit")
}

#[tokio::test]
async fn purchases_on_two_days_and_refunds_give_the_hand_computed_statistics() {
    for club in clubs(&plain_program()).await {
        let l = club.label();
        let member = club.enroll("m1").await;
        let day1 = ny("2026-03-02T12:00");
        let day1_later = ny("2026-03-02T15:00");
        let day2 = ny("2026-03-05T10:00");
        club.clock.set(day1);
        let p1 = club.buy("d1", &member, "1", 1000).await.purchase_id;
        club.clock.set(day1_later);
        let p2 = club.buy("d2", &member, "3", 200).await.purchase_id;
        club.clock.set(day2);
        let p3 = club.buy("d3", &member, "4", 250).await.purchase_id;
        assert_ne!(p1, p2);

        let s = club
            .engine
            .member_stats(&club.tenant, &member)
            .await
            .unwrap()
            .unwrap();
        assert_eq!((s.purchases, s.purchase_days), (3, 2), "[{l}]");
        assert_eq!(s.spend_minor, 1000 + 600 + 1000, "[{l}]");
        assert_eq!(s.first_day_spend_minor, 1600, "[{l}]");
        assert_eq!(s.repeat_spend_minor, 1000, "[{l}]");

        // A partial refund of the second day's purchase: 1 of 4 items.
        club.refund(&p3, "r1", Some("1")).await.unwrap();
        // A full refund of the same-day purchase: it no longer counts.
        club.refund(&p2, "r2", None).await.unwrap();

        let s = club
            .engine
            .member_stats(&club.tenant, &member)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(s.purchases, 2, "[{l}]");
        assert_eq!(s.purchase_days, 2, "[{l}]");
        assert_eq!(s.spend_minor, 1750, "[{l}]");
        assert_eq!(s.first_day_spend_minor, 1000, "[{l}]");
        assert_eq!(s.repeat_spend_minor, 750, "[{l}]");
        assert_eq!(s.first_purchase_at, day1, "[{l}]");
        assert_eq!(s.last_purchase_at, day2, "[{l}]");
        assert_eq!(s.repeat_purchases(), 1, "[{l}]");
        assert_eq!(s.t_x_days(), 3, "[{l}]");
        assert_eq!(
            s.t_days(
                ny("2026-03-12T09:00"),
                &jiff::tz::TimeZone::get("America/New_York").unwrap()
            ),
            10,
            "[{l}]"
        );
        assert_eq!(s.average_repeat_spend_minor(), Some(750.0), "[{l}]");
        assert_eq!(s.average_spend_minor(), Some(875.0), "[{l}]");
        assert_eq!(
            s.categories,
            vec![CategorySpend {
                category: "general".into(),
                spend_minor: 1750,
                purchases: 2
            }],
            "[{l}]"
        );

        // Refunding the first day entirely moves the first purchase day.
        club.refund(&p1, "r3", None).await.unwrap();
        let s = club
            .engine
            .member_stats(&club.tenant, &member)
            .await
            .unwrap()
            .unwrap();
        assert_eq!((s.purchases, s.purchase_days), (1, 1), "[{l}]");
        assert_eq!(
            (s.spend_minor, s.first_day_spend_minor, s.repeat_spend_minor),
            (750, 750, 0),
            "[{l}]"
        );
        assert_eq!(s.first_purchase_at, day2, "[{l}]");

        let report = club
            .engine
            .rebuild_member_stats(&club.tenant, false)
            .await
            .unwrap();
        assert_eq!(report.differences, vec![], "[{l}]");
        assert_eq!(report.members, 1, "[{l}]");
        // An anonymous purchase has no member statistics.
        let anonymous = club.purchase("d4", None, 500, "USD");
        club.engine
            .post_purchase(&club.tenant, &anonymous, None)
            .await
            .unwrap();
        let report = club
            .engine
            .rebuild_member_stats(&club.tenant, false)
            .await
            .unwrap();
        assert_eq!((report.members, report.differences.len()), (1, 0), "[{l}]");
        club.db.cleanup().await;
    }
}

#[tokio::test]
async fn the_rebuild_reports_and_fixes_a_tampered_row() {
    for club in clubs(&plain_program()).await {
        let l = club.label();
        let member = club.enroll("m1").await;
        club.buy("d1", &member, "1", 1000).await;
        sqlx::query("UPDATE member_stats SET purchases = 5 WHERE tenant_id = $1")
            .bind(club.tenant.id.0)
            .execute(club.db.store.pool())
            .await
            .unwrap();
        let report = club
            .engine
            .rebuild_member_stats(&club.tenant, true)
            .await
            .unwrap();
        assert_eq!(
            report.differences.len(),
            1,
            "[{l}] {:?}",
            report.differences
        );
        let difference = &report.differences[0];
        assert_eq!(
            (
                difference.field.as_str(),
                difference.stored.as_deref(),
                difference.recomputed.as_deref()
            ),
            ("purchases", Some("5"), Some("1")),
            "[{l}]"
        );
        let again = club
            .engine
            .rebuild_member_stats(&club.tenant, false)
            .await
            .unwrap();
        assert_eq!(again.differences, vec![], "[{l}]");
        club.db.cleanup().await;
    }
}

#[tokio::test]
async fn a_rule_reads_member_statistics_purchases() {
    let source = format!(
        "{}\n[[rules]]\nid = \"regular\"\nname = \"Regular\"\nkind = \"product\"\ncategories = [\"general\"]\n\
         points = 7\nwhen = \"member.statistics.purchases >= 2 && member.statistics.spend >= 20.0\"\n",
        plain_program()
    );
    for club in clubs(&source).await {
        let l = club.label();
        let member = club.enroll("m1").await;
        let fired = |receipt: &patron_store::purchases::PurchaseReceipt| {
            receipt.rules.iter().any(|rule| rule.rule_id == "regular")
        };
        // The statistics a purchase's rules read are those before it.
        let first = club.buy("d1", &member, "1", 1000).await;
        let second = club.buy("d2", &member, "1", 1000).await;
        let third = club.buy("d3", &member, "1", 1000).await;
        assert!(!fired(&first), "[{l}] {first:?}");
        assert!(!fired(&second), "[{l}] {second:?}");
        assert!(fired(&third), "[{l}] {third:?}");
        assert_eq!(third.points, 10 + 7, "[{l}]");
        club.db.cleanup().await;
    }
}

/// A `review_written` event for `member`, with no properties.
fn review(member: &str) -> patron_engine::EventRequest {
    patron_engine::EventRequest {
        member_id: member.into(),
        event_type: "review_written".into(),
        occurred_at: None,
        properties: serde_json::Map::new(),
    }
}

/// The plain program with a 100-point bonus on a member's third purchase.
fn third_visit_program() -> String {
    format!(
        "{}\n[[rules]]\nid = \"third\"\nname = \"Third visit\"\nkind = \"product\"\ncategories = [\"general\"]\n\
         points = 100\nwhen = \"member.statistics.purchases == 2\"\n",
        plain_program()
    )
}

/// A rule on the member's statistics fires on exactly one of purchases that race: the
/// statistics are read with the member under the wallet lock, so each purchase sees every one
/// that committed before it (read before the lock, several would see the same count).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_third_purchase_bonus_fires_once_however_many_purchases_race() {
    for club in clubs(&third_visit_program()).await {
        let l = club.label();
        let member = club.enroll("m1").await;
        club.buy("d1", &member, "1", 1000).await;
        club.buy("d2", &member, "1", 1000).await;
        let tasks: Vec<_> = (0..8)
            .map(|n| {
                let (engine, tenant) = (club.engine.clone(), club.tenant.clone());
                let request =
                    purchase_request(&format!("race-{n}"), Some(&member), "1", 1000, "USD");
                tokio::spawn(async move { engine.post_purchase(&tenant, &request, None).await })
            })
            .collect();
        let mut bonuses = 0;
        for task in tasks {
            let receipt = task.await.unwrap().unwrap().value;
            bonuses += receipt
                .rules
                .iter()
                .filter(|r| r.rule_id == "third")
                .count();
        }
        assert_eq!(bonuses, 1, "[{l}] the third purchase's bonus, once");
        let stats = club
            .engine
            .member_stats(&club.tenant, &member)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(stats.purchases, 10, "[{l}]");
        club.verify().await;
        club.db.cleanup().await;
    }
}

/// An anonymous purchase attached to a member earns as it would have when posted for them:
/// the rules see the member's statistics (without it).
#[tokio::test]
async fn an_attached_purchase_sees_the_members_statistics() {
    for club in clubs(&third_visit_program()).await {
        let l = club.label();
        let member = club.enroll("m1").await;
        club.buy("d1", &member, "1", 1000).await;
        club.buy("d2", &member, "1", 1000).await;
        let anonymous = club
            .engine
            .post_purchase(
                &club.tenant,
                &purchase_request("anon", None, "1", 1000, "USD"),
                None,
            )
            .await
            .unwrap()
            .value;
        let attached = club
            .engine
            .attach_purchase(&club.tenant, &anonymous.purchase_id, &member, None)
            .await
            .unwrap()
            .value;
        assert!(
            attached.rules.iter().any(|r| r.rule_id == "third"),
            "[{l}] {attached:?}"
        );
        club.verify().await;
        club.db.cleanup().await;
    }
}

/// Rules see the member's segments as `member.segments` (the RFV segment and the rule
/// segments of the last `segments` run): a purchase rule, an event rule and the receipt of
/// a preview all fire for a member in the segment, and not before the job put them there.
#[tokio::test]
async fn rules_for_a_segment_fire_for_its_members_only() {
    let source = format!(
        "{}\n[[segments]]\nid = \"regulars\"\nname = \"Regulars\"\ncondition = \"member.statistics.purchases >= 2\"\n\
         \n[[rules]]\nid = \"regular_bonus\"\nname = \"Regulars' bonus\"\nkind = \"product\"\ncategories = [\"general\"]\n\
         points = 30\nwhen = \"'regulars' in member.segments\"\n\
         \n[[rules]]\nid = \"regular_review\"\nname = \"Regulars' review\"\nkind = \"event\"\nevent = \"review_written\"\n\
         points = 5\nwhen = \"'regulars' in member.segments\"\n",
        plain_program()
    );
    for club in clubs(&source).await {
        let l = club.label();
        let member = club.enroll("m1").await;
        let other = club.enroll("m2").await;
        let fired = |rules: &[patron_store::rules::RuleAward], id: &str| {
            rules.iter().any(|rule| rule.rule_id == id)
        };
        club.buy("d1", &member, "1", 1000).await;
        let second = club.buy("d2", &member, "1", 1000).await;
        assert!(
            !fired(&second.rules, "regular_bonus"),
            "[{l}] not yet in the segment"
        );
        let event = club
            .engine
            .post_event(&club.tenant, &review(&member), None)
            .await
            .unwrap()
            .value;
        assert!(!fired(&event.rules, "regular_review"), "[{l}] {event:?}");

        club.engine.run_segments(&club.tenant, None).await.unwrap();
        assert!(
            club.engine
                .member_segments(&club.tenant, &member)
                .await
                .unwrap()
                .contains(&"regulars".to_owned()),
            "[{l}]"
        );
        let preview = club
            .engine
            .preview_purchase(
                &club.tenant,
                &purchase_request("d3", Some(&member), "1", 1000, "USD"),
            )
            .await
            .unwrap();
        assert!(fired(&preview.rules, "regular_bonus"), "[{l}] {preview:?}");
        let third = club.buy("d3", &member, "1", 1000).await;
        assert!(fired(&third.rules, "regular_bonus"), "[{l}] {third:?}");
        assert_eq!(third.points, 10 + 30, "[{l}]");
        let event = club
            .engine
            .post_event(&club.tenant, &review(&member), None)
            .await
            .unwrap()
            .value;
        assert!(fired(&event.rules, "regular_review"), "[{l}] {event:?}");
        // Someone outside the segment gets neither.
        let outsider = club.buy("o1", &other, "1", 1000).await;
        assert!(!fired(&outsider.rules, "regular_bonus"), "[{l}]");
        club.verify().await;
        club.db.cleanup().await;
    }
}

/// Event rules see `member.statistics` too (they used to see a member with no purchases).
#[tokio::test]
async fn an_event_rule_reads_the_members_statistics() {
    let source = format!(
        "{}\n[[rules]]\nid = \"loyal_review\"\nname = \"Loyal reviewer\"\nkind = \"event\"\nevent = \"review_written\"\n\
         points = 5\nwhen = \"member.statistics.purchases >= 2 && member.statistics.spend >= 20.0\"\n",
        plain_program()
    );
    for club in clubs(&source).await {
        let l = club.label();
        let member = club.enroll("m1").await;
        club.buy("d1", &member, "1", 1000).await;
        let early = club
            .engine
            .post_event(&club.tenant, &review(&member), None)
            .await
            .unwrap()
            .value;
        assert_eq!(early.points, 0, "[{l}] one purchase: not yet");
        club.buy("d2", &member, "1", 1000).await;
        let later = club
            .engine
            .post_event(&club.tenant, &review(&member), None)
            .await
            .unwrap()
            .value;
        assert_eq!(later.points, 5, "[{l}] {later:?}");
        club.verify().await;
        club.db.cleanup().await;
    }
}

// ---- The property: incremental statistics = a rebuild from history. ----

const CASES: u32 = 16;
static TENANTS: AtomicUsize = AtomicUsize::new(0);
const CATEGORIES: [&str; 3] = ["coffee", "food", "merch"];

#[derive(Debug, Clone)]
enum Op {
    Purchase {
        /// None: anonymous.
        member: Option<usize>,
        /// How far before now it happened (back-dated purchases).
        back_hours: i64,
        lines: Vec<(usize, i64, i64)>,
    },
    /// Quantity of line 1 (None: everything that remains).
    Refund {
        purchase: usize,
        quantity: Option<i64>,
    },
    Attach {
        purchase: usize,
        member: usize,
    },
    Advance {
        hours: i64,
    },
}

fn op() -> impl Strategy<Value = Op> {
    let line = (0usize..3, 1i64..=3, 1i64..=2000);
    prop_oneof![
        5 => (
            prop::option::weighted(0.85, 0usize..2),
            // Mostly now; often back-dated by whole days (into days the member may already
            // have bought on, between their first and last purchase day).
            prop_oneof![2 => Just(0i64), 3 => (0i64..=6, 0i64..=2).prop_map(|(d, h)| d * 24 + h)],
            prop::collection::vec(line, 1..=3)
        )
            .prop_map(|(member, back_hours, lines)| Op::Purchase {
                member,
                back_hours,
                lines
            }),
        2 => (0usize..40, prop::option::of(1i64..=2))
            .prop_map(|(purchase, quantity)| Op::Refund { purchase, quantity }),
        1 => (0usize..40, 0usize..3).prop_map(|(purchase, member)| Op::Attach { purchase, member }),
        2 => prop_oneof![Just(2i64), Just(24), Just(48)]
            .prop_map(|hours| Op::Advance { hours }),
    ]
}

struct Harness {
    engine: Engine,
    clock: ManualClock,
    label: &'static str,
}

async fn run_case(harness: &Harness, ops: &[Op]) -> Result<(), TestCaseError> {
    let name = format!("stats{}", TENANTS.fetch_add(1, Ordering::Relaxed));
    harness.clock.set(start());
    let (tenant, _, _): (Tenant, _, _) = harness
        .engine
        .apply_program(&name, &plain_program(), "test")
        .await
        .unwrap();
    let mut members = Vec::new();
    for i in 0..3 {
        let request = EnrollRequest {
            profile: ProfileFields {
                external_id: Some(format!("m{i}")),
                ..ProfileFields::default()
            },
            channel: "pos".into(),
            card_number: None,
            consents: vec![],
        };
        members.push(
            harness
                .engine
                .enroll(&tenant, &request, None)
                .await
                .unwrap()
                .value
                .id,
        );
    }
    let mut purchases: Vec<String> = Vec::new();
    for (step, op) in ops.iter().enumerate() {
        let engine = &harness.engine;
        match op {
            Op::Purchase {
                member,
                back_hours,
                lines,
            } => {
                let mut request = purchase_request(
                    &format!("doc{step}"),
                    member.map(|m| members[m].as_str()),
                    "1",
                    1,
                    "USD",
                );
                request.occurred_at =
                    Some(harness.engine.now() - SignedDuration::from_hours(*back_hours));
                request.lines = lines
                    .iter()
                    .map(|(category, quantity, unit)| PurchaseLineRequest {
                        sku: format!("SKU-{category}"),
                        category: CATEGORIES[*category].into(),
                        quantity: quantity.to_string(),
                        unit_price_minor: *unit,
                        discount_minor: 0,
                    })
                    .collect();
                let request: PurchaseRequest = request;
                let receipt = engine
                    .post_purchase(&tenant, &request, None)
                    .await
                    .map_err(|e| TestCaseError::fail(format!("step {step} {op:?}: {e}")))?;
                purchases.push(receipt.value.purchase_id);
            }
            Op::Refund { purchase, quantity } => {
                if purchases.is_empty() {
                    continue;
                }
                let id = &purchases[purchase % purchases.len()];
                let request = match quantity {
                    None => refund_request(&format!("ref{step}"), None),
                    Some(q) => RefundRequest {
                        document_id: format!("ref{step}"),
                        lines: Some(vec![RefundLineRequest {
                            line_no: 1,
                            quantity: q.to_string(),
                        }]),
                        occurred_at: None,
                    },
                };
                // Refusals (nothing left, too much) are part of the history too.
                let _ = engine.refund(&tenant, id, &request, None).await;
            }
            Op::Attach { purchase, member } => {
                if purchases.is_empty() {
                    continue;
                }
                let id = &purchases[purchase % purchases.len()];
                let _ = engine
                    .attach_purchase(&tenant, id, &members[*member], None)
                    .await;
            }
            Op::Advance { hours } => harness.clock.advance(SignedDuration::from_hours(*hours)),
        }
    }
    let report = harness
        .engine
        .rebuild_member_stats(&tenant, false)
        .await
        .map_err(|e| TestCaseError::fail(e.to_string()))?;
    prop_assert!(
        report.differences.is_empty(),
        "[{}] incremental != rebuilt: {:#?}",
        harness.label,
        report.differences
    );
    Ok(())
}

#[test]
fn incremental_statistics_equal_a_rebuild_from_history() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let databases = runtime.block_on(testing::all());
    for db in databases {
        let clock = ManualClock::new(start());
        let harness = Harness {
            engine: Engine::new(db.store.clone(), Arc::new(clock.clone())),
            clock,
            label: label(&db),
        };
        let config = Config {
            cases: CASES,
            failure_persistence: None,
            max_shrink_time: 60_000,
            ..Config::default()
        };
        let mut runner = TestRunner::new(config);
        let result = runner.run(&prop::collection::vec(op(), 1..60), |ops| {
            runtime.block_on(run_case(&harness, &ops))
        });
        runtime.block_on(db.cleanup());
        if let Err(failure) = result {
            panic!("[{}] {failure}", harness.label);
        }
    }
}
