//! The program's `[limits]` on what one request may carry (issue 18): amounts, quantities,
//! points and times beyond them are refused, naming the limit, and write nothing; no input
//! can overflow a stored total or make `ledger verify` abort.

use jiff::{SignedDuration, Timestamp};
use patron_engine::{AdjustRequest, EngineError, PurchaseRequest, RedeemRequest, TransferRequest};

use crate::support::{COFFEE, Club, clubs, purchase_request};

/// The coffee chain (USD, 2 points a dollar) with limits of its own.
fn coffee_with_limits(limits: &str) -> String {
    format!("{}\n[limits]\n{limits}\n", COFFEE.as_str())
}

/// The message of an invalid-request error naming `field`, or a panic naming what came.
fn invalid<T: std::fmt::Debug>(result: Result<T, EngineError>, field: &str) -> String {
    match result {
        Err(EngineError::Invalid {
            field: found,
            message,
        }) if found == field => message,
        other => panic!("expected {field} to be refused as invalid, got {other:?}"),
    }
}

async fn post(club: &Club, request: &PurchaseRequest) -> Result<i64, EngineError> {
    club.engine
        .post_purchase(&club.tenant, request, None)
        .await
        .map(|receipt| receipt.value.points)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_purchase_of_the_largest_price_mints_nothing_and_the_ledger_stays_verifiable() {
    for club in clubs(&COFFEE).await {
        let member = club.enroll("m-1").await;
        let before = club.snapshot(&[&member]).await;
        // Finding 1 of the issue: one line at i64::MAX answered 184 quadrillion points.
        let huge = purchase_request("d-1", Some(&member), "1", i64::MAX, "USD");
        let message = invalid(post(&club, &huge).await, "lines[0]");
        assert!(message.contains("line_amount_max"), "{message}");
        // The same line many times over, each under the line limit, is refused by the
        // purchase's: the sum can never overflow.
        let mut many = purchase_request("d-2", Some(&member), "1", 99_000_000, "USD");
        many.lines = vec![many.lines[0].clone(); 1000];
        let message = invalid(post(&club, &many).await, "lines");
        assert!(message.contains("purchase_amount_max"), "{message}");
        let mut quantity = purchase_request("d-3", Some(&member), "1000000000", 1, "USD");
        let message = invalid(post(&club, &quantity).await, "lines[0].quantity");
        assert!(message.contains("quantity_max"), "{message}");
        quantity.lines[0].quantity = "100000".into();
        assert_eq!(
            post(&club, &quantity).await.unwrap(),
            2_000,
            "the limit itself"
        );
        let after = club.snapshot(&[]).await;
        assert_eq!(after.transfers, before.transfers + 1, "only the valid one");
        club.verify().await;
        club.db.cleanup().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn purchase_times_outside_the_window_are_refused() {
    for club in clubs(&COFFEE).await {
        let member = club.enroll("m-1").await;
        let now = club.engine.now();
        let at = |offset: SignedDuration| now.checked_add(offset).unwrap();
        let dated = |document: &str, when: Timestamp| {
            let mut request = purchase_request(document, Some(&member), "1", 1_000, "USD");
            request.occurred_at = Some(when);
            request
        };
        let year_one: Timestamp = "0001-01-01T00:00:00Z".parse().unwrap();
        let message = invalid(post(&club, &dated("d-1", year_one)).await, "occurred_at");
        assert!(message.contains("backdate_days_max"), "{message}");
        let far_future: Timestamp = "2099-01-01T00:00:00Z".parse().unwrap();
        let message = invalid(post(&club, &dated("d-2", far_future)).await, "occurred_at");
        assert!(message.contains("future_minutes_max"), "{message}");
        let too_late = at(SignedDuration::from_mins(16));
        invalid(post(&club, &dated("d-3", too_late)).await, "occurred_at");
        let too_early = at(SignedDuration::from_hours(-24 * 91));
        invalid(post(&club, &dated("d-4", too_early)).await, "occurred_at");
        // Inside the window: a till whose clock runs ahead, and a purchase synced late.
        let ahead = at(SignedDuration::from_mins(15));
        assert_eq!(post(&club, &dated("d-5", ahead)).await.unwrap(), 20);
        let late = at(SignedDuration::from_hours(-24 * 89));
        assert_eq!(post(&club, &dated("d-6", late)).await.unwrap(), 20);
        // Events and refunds are held to the same window.
        let event = patron_engine::EventRequest {
            member_id: member.clone(),
            event_type: "review_written".into(),
            occurred_at: Some(far_future),
            properties: serde_json::Map::new(),
        };
        invalid(
            club.engine.post_event(&club.tenant, &event, None).await,
            "occurred_at",
        );
        club.verify().await;
        club.db.cleanup().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn points_beyond_one_operations_limit_are_refused_everywhere() {
    let program = coffee_with_limits("points_max = 1000");
    for club in clubs(&program).await {
        let member = club.enroll("m-1").await;
        let other = club.enroll("m-2").await;
        club.grant(&member, 1_000).await;
        let before = club.snapshot(&[&member, &other]).await;
        let adjust = |points| AdjustRequest {
            points,
            reason: "goodwill".into(),
        };
        for points in [1_001, -1_001, i64::MAX, i64::MIN] {
            let result = club
                .engine
                .adjust(&club.tenant, &member, &adjust(points), "tester", None)
                .await;
            let message = invalid(result, "points");
            assert!(message.contains("points_max"), "{message}");
        }
        let redeem = RedeemRequest {
            points: i64::MAX,
            hold: false,
            hold_minutes: None,
            description: None,
        };
        invalid(
            club.engine
                .redeem(&club.tenant, &member, &redeem, None)
                .await,
            "points",
        );
        let transfer = TransferRequest {
            to_member_id: other.clone(),
            points: 1_001,
        };
        invalid(
            club.engine
                .transfer(&club.tenant, &member, &transfer, None)
                .await,
            "points",
        );
        // A purchase whose base earning alone passes the limit ($600 at 2 a dollar).
        let big = purchase_request("d-1", Some(&member), "1", 60_000, "USD");
        let message = invalid(post(&club, &big).await, "lines");
        assert!(message.contains("points_max"), "{message}");
        assert_eq!(club.snapshot(&[&member, &other]).await, before);
        // At the limit, everything goes through.
        let exact = purchase_request("d-2", Some(&member), "1", 50_000, "USD");
        assert_eq!(post(&club, &exact).await.unwrap(), 1_000);
        club.verify().await;
        club.db.cleanup().await;
    }
}

/// A rule whose points would pass the limit is skipped like a rule that failed; the purchase
/// earns its base and the other rules.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rule_that_would_pass_the_points_limit_is_skipped_not_granted() {
    let program = coffee_with_limits("points_max = 1000").replacen(
        "[[rules]]\nid = \"welcome\"",
        "[[rules]]\nid = \"jackpot\"\nname = \"Jackpot\"\nkind = \"spend\"\npoints_per_unit = \"1000000\"\n\n[[rules]]\nid = \"welcome\"",
        1,
    );
    assert!(program.contains("jackpot"));
    for club in clubs(&program).await {
        let member = club.enroll("m-1").await;
        let receipt = club
            .engine
            .post_purchase(
                &club.tenant,
                &purchase_request("d-1", Some(&member), "1", 500, "USD"),
                None,
            )
            .await
            .unwrap()
            .value;
        assert!(
            receipt.rules.iter().all(|rule| rule.rule_id != "jackpot"),
            "{receipt:?}"
        );
        assert_eq!(receipt.base_points, 10);
        assert!(receipt.points <= 1_000);
        club.verify().await;
        club.db.cleanup().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clubs_own_limits_replace_the_defaults() {
    let program = coffee_with_limits(
        "line_amount_max = \"50.00\"\npurchase_amount_max = \"80.00\"\nquantity_max = 3\nbackdate_days_max = 1\nfuture_minutes_max = 0",
    );
    for club in clubs(&program).await {
        let member = club.enroll("m-1").await;
        invalid(
            post(
                &club,
                &purchase_request("d-1", Some(&member), "1", 5_001, "USD"),
            )
            .await,
            "lines[0]",
        );
        invalid(
            post(
                &club,
                &purchase_request("d-2", Some(&member), "4", 100, "USD"),
            )
            .await,
            "lines[0].quantity",
        );
        let mut two = purchase_request("d-3", Some(&member), "1", 4_500, "USD");
        two.lines = vec![two.lines[0].clone(); 2];
        invalid(post(&club, &two).await, "lines");
        let mut yesterday = purchase_request("d-4", Some(&member), "1", 100, "USD");
        yesterday.occurred_at = club
            .engine
            .now()
            .checked_sub(SignedDuration::from_hours(25))
            .ok();
        invalid(post(&club, &yesterday).await, "occurred_at");
        assert_eq!(
            post(
                &club,
                &purchase_request("d-5", Some(&member), "3", 1_500, "USD")
            )
            .await
            .unwrap(),
            90
        );
        club.verify().await;
        club.db.cleanup().await;
    }
}

/// The databases themselves refuse a total that is not a whole number, so a bug can fail a
/// request but never corrupt a stored total (SQLite by triggers, PostgreSQL by its types).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_database_refuses_a_total_that_is_not_a_whole_number() {
    for club in clubs(&COFFEE).await {
        let member = club.enroll("m-1").await;
        club.grant(&member, 100).await;
        let pool = club.engine.store().pool();
        // What an overflowing `credits_posted + x` becomes on SQLite.
        let overflow = sqlx::query(
            "UPDATE accounts SET credits_posted = credits_posted + 9223372036854775807 \
             WHERE tenant_id = $1 AND credits_posted > 0",
        )
        .bind(club.tenant.id.0)
        .execute(pool)
        .await;
        assert!(overflow.is_err(), "[{}] {overflow:?}", club.label());
        // SQLite stores whatever it is given; PostgreSQL's BIGINT holds whole numbers only.
        if club.db.backend() == patron_store::Backend::Sqlite {
            let fraction = sqlx::query(
                "UPDATE lots SET remaining = remaining + 0.5 WHERE tenant_id = $1 AND remaining > 0",
            )
            .bind(club.tenant.id.0)
            .execute(pool)
            .await;
            assert!(fraction.is_err(), "{fraction:?}");
        }
        assert_eq!(club.available(&member).await, 100);
        club.verify().await;
        club.db.cleanup().await;
    }
}
