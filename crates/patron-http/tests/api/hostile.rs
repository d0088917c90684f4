//! Hostile input over the API as a property (issue 18): random purchases, refunds,
//! redemptions, adjustments and transfers with amounts, quantities, points and dates drawn
//! from across the whole range (0, 1, the limits and one past them, `i64::MAX`, negatives,
//! decimals, exponents, Persian and Arabic-Indic digits) never answer 5xx, every refused one
//! writes nothing, and the ledger verifies clean after every run, on both backends.
//!
//! The cases come from proptest strategies drawn by a deterministic runner (the HTTP calls are
//! async, so the cases are generated up front rather than shrunk); a failure names the case.

use jiff::{SignedDuration, Timestamp};
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::TestRunner;
use serde_json::{Value, json};

use crate::support::{Club, clubs};

/// Sequences per backend, and operations per sequence.
const SEQUENCES: usize = 4;
const OPERATIONS: usize = 50;

/// Mostly values a till sends, often values an attacker or a broken till sends.
fn quantity() -> impl Strategy<Value = Value> {
    prop_oneof![
        10 => prop::sample::select(vec!["1", "2", "0.5", "3.25", "100000"]).prop_map(Value::from),
        6 => prop::sample::select(vec![
            "0", "-1", "100001", "1e3", "1E2", "۲", "٣", "۱۰",
            "1.0000000000000000000000000001", "9223372036854775807",
            "99999999999999999999999999999", "NaN", "Infinity", "", " 1", "+1", "0x10",
            "1_000", "1,5",
        ])
        .prop_map(Value::from),
        1 => Just(json!(1)),
        1 => Just(json!(null)),
    ]
}

fn amount() -> impl Strategy<Value = Value> {
    prop_oneof![
        10 => prop::sample::select(vec![0_i64, 1, 99, 450, 10_000, 100_000_000]).prop_map(Value::from),
        5 => prop::sample::select(vec![
            100_000_001, 10_000_000_000_000, i64::MAX, -1, i64::MIN,
        ])
        .prop_map(Value::from),
        1 => Just(json!(1.5)),
        1 => Just(json!("100")),
        1 => Just(json!(1e300)),
        1 => Just(json!(18446744073709551615_u64)),
    ]
}

fn discount() -> impl Strategy<Value = Value> {
    prop_oneof![8 => Just(json!(0)), 2 => amount()]
}

fn points() -> impl Strategy<Value = Value> {
    prop_oneof![
        8 => prop::sample::select(vec![1_i64, 5, 40, 300]).prop_map(Value::from),
        6 => prop::sample::select(vec![
            0_i64, 100_000_000, 100_000_001, i64::MAX, -1, -40, i64::MIN,
        ])
        .prop_map(Value::from),
        1 => Just(json!(2.5)),
        1 => Just(json!("10")),
    ]
}

/// When: not sent, or an offset from the club's clock in minutes, or a text.
fn when() -> impl Strategy<Value = Option<When>> {
    prop_oneof![
        8 => Just(None),
        3 => prop::sample::select(vec![0_i64, 14, -60 * 24 * 89])
            .prop_map(|minutes| Some(When::Minutes(minutes))),
        3 => prop_oneof![
            Just(When::Minutes(16)),
            Just(When::Minutes(-60 * 24 * 91)),
            Just(When::Text("0001-01-01T00:00:00Z")),
            Just(When::Text("2099-12-31T23:59:59Z")),
            Just(When::Text("not a time")),
        ]
        .prop_map(Some),
    ]
}

#[derive(Debug, Clone)]
enum When {
    Minutes(i64),
    Text(&'static str),
}

#[derive(Debug, Clone)]
enum Operation {
    Purchase {
        member: usize,
        lines: Vec<(Value, Value, Value)>,
        at: Option<When>,
    },
    Refund {
        purchase: usize,
        quantity: Option<Value>,
        at: Option<When>,
    },
    Redeem {
        member: usize,
        points: Value,
    },
    Adjust {
        member: usize,
        points: Value,
    },
    Transfer {
        member: usize,
        points: Value,
    },
}

fn operation() -> impl Strategy<Value = Operation> {
    prop_oneof![
        4 => (0..3_usize, prop::collection::vec((quantity(), amount(), discount()), 1..3), when())
            .prop_map(|(member, lines, at)| Operation::Purchase { member, lines, at }),
        2 => (0..8_usize, prop::option::of(quantity()), when())
            .prop_map(|(purchase, quantity, at)| Operation::Refund { purchase, quantity, at }),
        1 => (0..2_usize, points()).prop_map(|(member, points)| Operation::Redeem { member, points }),
        1 => (0..2_usize, points()).prop_map(|(member, points)| Operation::Adjust { member, points }),
        1 => (0..2_usize, points()).prop_map(|(member, points)| Operation::Transfer { member, points }),
    ]
}

/// What a refused call must leave as it was: the ledger's counts and the members' balances.
async fn state(club: &Club, members: &[String]) -> (u64, u64, u64, Vec<i64>) {
    let report = club
        .engine
        .store()
        .verify_ledger(club.tenant.id, club.engine.now())
        .await
        .unwrap();
    assert!(
        report.is_clean(),
        "[{}] ledger verify: {:?}",
        club.label(),
        report.discrepancies
    );
    let mut balances = Vec::new();
    for member in members {
        let balance = club.engine.balance(&club.tenant, member).await.unwrap();
        balances.extend([balance.available, balance.pending]);
    }
    (report.accounts, report.transfers, report.lots, balances)
}

fn time(at: &Option<When>, now: Timestamp) -> Value {
    match at {
        None => Value::Null,
        Some(When::Minutes(minutes)) => {
            json!(
                now.checked_add(SignedDuration::from_mins(*minutes))
                    .unwrap()
                    .to_string()
            )
        }
        Some(When::Text(text)) => json!(text),
    }
}

/// Sends one operation; answers the HTTP status and the purchase id it created, if any.
async fn send(
    club: &Club,
    members: &[String],
    purchases: &[String],
    step: usize,
    operation: &Operation,
) -> (u16, Option<String>) {
    let now = club.engine.now();
    let member = |index: usize| members.get(index).cloned();
    let (path, body) = match operation {
        Operation::Purchase {
            member: m,
            lines,
            at,
        } => {
            let lines: Vec<Value> = lines
                .iter()
                .map(|(quantity, price, discount)| {
                    json!({ "sku": "SKU-1", "category": "drinks", "quantity": quantity,
                            "unit_price_minor": price, "discount_minor": discount })
                })
                .collect();
            let mut body = json!({ "document_id": format!("doc-{step}"), "store_id": "store-1",
                "channel": "pos", "currency": "USD", "member_id": member(*m), "lines": lines });
            if at.is_some() {
                body["occurred_at"] = time(at, now);
            }
            ("/v1/purchases".to_string(), body)
        }
        Operation::Refund {
            purchase,
            quantity,
            at,
        } => {
            let id = purchases
                .get(*purchase)
                .cloned()
                .unwrap_or_else(|| "pur_none".into());
            let mut body = json!({ "document_id": format!("ret-{step}") });
            if let Some(quantity) = quantity {
                body["lines"] = json!([{ "line_no": 1, "quantity": quantity }]);
            }
            if at.is_some() {
                body["occurred_at"] = time(at, now);
            }
            (format!("/v1/purchases/{id}/refunds"), body)
        }
        Operation::Redeem { member: m, points } => (
            format!("/v1/members/{}/redemptions", members[*m]),
            json!({ "points": points }),
        ),
        Operation::Adjust { member: m, points } => (
            format!("/v1/members/{}/adjustments", members[*m]),
            json!({ "points": points, "reason": "property" }),
        ),
        Operation::Transfer { member: m, points } => (
            format!("/v1/members/{}/transfers", members[*m]),
            json!({ "to_member_id": members[1 - *m], "points": points }),
        ),
    };
    let answer = club.api.post(&path, &club.admin, body).await;
    let created = matches!(operation, Operation::Purchase { .. })
        .then(|| answer.body["purchase_id"].as_str().map(str::to_string))
        .flatten()
        .filter(|_| answer.status == 201);
    (answer.status, created)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_amounts_quantities_points_and_times_never_fail_the_server_nor_write_when_refused()
{
    // The same cases on every run, so a failure is reproduced by running the test again.
    let mut runner = TestRunner::deterministic();
    let sequences: Vec<Vec<Operation>> = (0..SEQUENCES)
        .map(|_| {
            prop::collection::vec(operation(), OPERATIONS)
                .new_tree(&mut runner)
                .unwrap()
                .current()
        })
        .collect();
    for club in clubs().await {
        let (mut accepted, mut refused) = (0, 0);
        for (run, operations) in sequences.iter().enumerate() {
            let members = vec![
                club.enroll(&format!("p-{run}-a")).await,
                club.enroll(&format!("p-{run}-b")).await,
            ];
            club.grant(&members[0], 500).await;
            let mut purchases = Vec::new();
            for (step, operation) in operations.iter().enumerate() {
                let before = state(&club, &members).await;
                let (status, created) =
                    send(&club, &members, &purchases, run * 1000 + step, operation).await;
                let case = format!("[{}] run {run} step {step}: {operation:?}", club.label());
                assert!(status < 500, "{case} answered {status}");
                if status >= 400 {
                    assert_eq!(state(&club, &members).await, before, "{case} wrote");
                    refused += 1;
                } else {
                    accepted += 1;
                }
                purchases.extend(created);
            }
            state(&club, &members).await;
        }
        // Not vacuous: the cases reach both sides of every check.
        eprintln!("[{}] accepted {accepted}, refused {refused}", club.label());
        assert!(
            accepted >= 10 && refused >= 10,
            "{accepted} accepted, {refused} refused"
        );
        club.stop().await;
    }
}

/// Finding 1 of the issue, as it was reported: one line at `i64::MAX` answered 201 with
/// 184 quadrillion points; a few dozen of them broke the day's metrics, the member's balance
/// and `ledger verify`. Each is now refused, and everything still answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_largest_price_dozens_of_times_breaks_nothing() {
    for club in clubs().await {
        let member = club.enroll("m-max").await;
        for n in 0..36 {
            let mut body = crate::support::purchase(&format!("max-{n}"), Some(&member), i64::MAX);
            if n % 2 == 1 {
                body["member_id"] = Value::Null;
            }
            let answer = club.api.post("/v1/purchases", &club.pos, body).await;
            answer.assert_problem(422, "invalid_value");
            assert_eq!(answer.body["field"], "lines[0]", "{}", answer.text);
            assert!(answer.text.contains("line_amount_max"), "{}", answer.text);
        }
        let small = crate::support::purchase("small", Some(&member), 450);
        club.api
            .post("/v1/purchases", &club.pos, small)
            .await
            .assert_status(201);
        assert_eq!(
            club.available(&member).await,
            9,
            "$4.50 at 2 beans a dollar"
        );
        club.api
            .get(
                "/v1/analytics/metrics?period=day&from=2026-03-02&to=2026-03-02",
                &club.admin,
            )
            .await
            .assert_status(200);
        state(&club, std::slice::from_ref(&member)).await;
        club.stop().await;
    }
}
