//! Earning rules over HTTP: the receipt lists the rules that fired in the member's language,
//! `?dry_run=true` answers it without storing anything, `POST /v1/events` earns by the event
//! rules once per key, and rules that fail at run time are counted in `/metrics`.

use serde_json::{Value, json};

use crate::support::{Body, COFFEE_EXAMPLE, Club, clubs};

/// The coffee chain with its rules, and one more that fails for members without a `city`.
fn program() -> String {
    format!(
        "{COFFEE_EXAMPLE}\n[[rules]]\nid = \"boston\"\nname = \"Boston bonus\"\nkind = \"product\"\n\
         categories = [\"local\"]\npoints = 3\nwhen = \"member.attributes.city == 'Boston'\"\n"
    )
}

async fn with_rules(club: &Club) {
    club.api
        .put_program(&club.admin, &program())
        .await
        .assert_status(200);
}

fn cart(document_id: &str, member_id: &str) -> Value {
    json!({
        "document_id": document_id,
        "member_id": member_id,
        "store_id": "store-1",
        "channel": "pos",
        "currency": "USD",
        "lines": [
            { "sku": "LATTE", "category": "coffee", "quantity": "1", "unit_price_minor": 475 },
            { "sku": "MUFFIN", "category": "pastry", "quantity": "2", "unit_price_minor": 300 },
            { "sku": "TOTE", "category": "local", "quantity": "1", "unit_price_minor": 100 }
        ]
    })
}

async fn available(club: &Club, member: &str) -> i64 {
    club.api
        .get(&format!("/v1/members/{member}/balance"), &club.pos)
        .await
        .assert_status(200)["available"]
        .as_i64()
        .unwrap()
}

fn failures_of(metrics: &str, rule: &str) -> Option<f64> {
    metrics
        .lines()
        .find(|line| line.starts_with(&format!("patron_rule_failures_total{{rule=\"{rule}\"}}")))
        .and_then(|line| line.rsplit(' ').next())
        .and_then(|value| value.parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receipt_lists_the_rules_and_a_dry_run_stores_nothing() {
    for club in clubs().await {
        with_rules(&club).await;
        let api = &club.api;
        let member = club.enroll("rules-1").await;
        // The join gift.
        assert_eq!(available(&club, &member).await, 25, "[{}]", club.label());

        let dry = api
            .post_with_key(
                "/v1/purchases?dry_run=true",
                &club.pos,
                "cart-1",
                cart("h-1", &member),
            )
            .await;
        let dry = dry.assert_status(200).clone();
        // 2 beans per dollar on $11.75, 3 per pastry with a coffee.
        assert_eq!(
            (dry["points"].as_i64(), dry["base_points"].as_i64()),
            (Some(29), Some(23))
        );
        assert_eq!(
            dry["rules"],
            json!([{ "rule_id": "pastry_pairing", "name": "Pastry with your coffee", "points": 6 }])
        );
        assert_eq!(dry["balance"], Value::Null);
        assert_eq!(
            available(&club, &member).await,
            25,
            "a dry run credits nothing"
        );
        let ledger = api
            .get(&format!("/v1/members/{member}/ledger"), &club.admin)
            .await;
        assert_eq!(
            ledger.assert_status(200)["data"].as_array().unwrap().len(),
            1
        );

        // Nothing was claimed: the same key and document post for real now.
        let posted = api
            .post_with_key("/v1/purchases", &club.pos, "cart-1", cart("h-1", &member))
            .await;
        assert!(!posted.replayed());
        let posted = posted.assert_status(201).clone();
        assert_eq!(posted["points"], dry["points"]);
        assert_eq!(posted["base_points"], dry["base_points"]);
        assert_eq!(posted["rules"], dry["rules"]);
        assert_eq!(available(&club, &member).await, 25 + 29);
        let replay = api
            .post_with_key("/v1/purchases", &club.pos, "cart-1", cart("h-1", &member))
            .await;
        assert!(replay.replayed());
        assert_eq!(replay.assert_status(201)["rules"], dry["rules"]);

        // The Boston rule failed twice (the dry run and the purchase; the replay ran nothing).
        let metrics = api.send("GET", "/metrics", None, None, Body::None).await;
        assert_eq!(
            failures_of(&metrics.text, "boston"),
            Some(2.0),
            "[{}] {}",
            club.label(),
            metrics.text
        );

        // A dry run for nobody, and an unknown query parameter.
        let mut anonymous = cart("h-2", &member);
        anonymous.as_object_mut().unwrap().remove("member_id");
        let anonymous = api
            .post("/v1/purchases?dry_run=true", &club.pos, anonymous)
            .await;
        assert_eq!(anonymous.assert_status(200)["points"], 0);
        api.post("/v1/purchases?dry=true", &club.pos, cart("h-3", &member))
            .await
            .assert_problem(400, "invalid_parameter");
        club.stop().await;
    }
}

fn review(member: &str, stars: i64) -> Value {
    json!({ "member_id": member, "type": "review_written", "properties": { "stars": stars } })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_earns_by_its_rules_once_per_key() {
    for club in clubs().await {
        with_rules(&club).await;
        let api = &club.api;
        let member = club.enroll("events-1").await;
        let first = api
            .post_with_key("/v1/events", &club.pos, "ev-1", review(&member, 5))
            .await;
        assert!(!first.replayed());
        let first = first.assert_status(201).clone();
        assert_eq!(first["points"], 20, "[{}]", club.label());
        assert_eq!(first["type"], "review_written");
        assert_eq!(
            first["rules"],
            json!([{ "rule_id": "app_review", "name": "Thanks for your review", "points": 20 }])
        );
        assert_eq!(first["balance"]["available"], 25 + 20);

        let replay = api
            .post_with_key("/v1/events", &club.pos, "ev-1", review(&member, 5))
            .await;
        assert!(replay.replayed());
        assert_eq!(replay.assert_status(201), &first);
        assert_eq!(available(&club, &member).await, 25 + 20, "one effect");
        api.post_with_key("/v1/events", &club.pos, "ev-1", review(&member, 3))
            .await
            .assert_problem(422, "idempotency_key_reused");

        let low = api.post("/v1/events", &club.pos, review(&member, 2)).await;
        assert_eq!(low.assert_status(201)["points"], 10);

        api.post("/v1/events", &club.pos, review("mem_nobody", 5))
            .await
            .assert_problem(404, "member_not_found");
        api.post(
            "/v1/events",
            &club.pos,
            json!({ "member_id": member, "type": "Review Written" }),
        )
        .await
        .assert_problem(422, "invalid_value");
        api.post(
            "/v1/events",
            &club.pos,
            json!({ "member_id": member, "type": "x", "stars": 5 }),
        )
        .await
        .assert_problem(400, "unknown_field");
        api.post("/v1/events", &club.read, review(&member, 5))
            .await
            .assert_problem(403, "insufficient_scope");
        club.stop().await;
    }
}
