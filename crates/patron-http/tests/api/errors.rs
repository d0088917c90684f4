//! Input errors as problem details: malformed JSON, unknown and missing fields, wrong types,
//! wrong content types.

use serde_json::json;

use crate::support::{Body, clubs};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_bodies_are_problems_naming_the_field() {
    for club in clubs().await {
        let api = &club.api;
        let raw = |bytes: &'static [u8], content_type: Option<&'static str>| Body::Raw {
            content_type,
            bytes: bytes.to_vec(),
        };
        let broken = api
            .send(
                "POST",
                "/v1/members",
                Some(&club.admin),
                None,
                raw(b"{\"channel\": ", Some("application/json")),
            )
            .await;
        broken.assert_problem(400, "malformed_body");
        let trailing = api
            .send(
                "POST",
                "/v1/members",
                Some(&club.admin),
                None,
                raw(b"{\"channel\": \"pos\"} {}", Some("application/json")),
            )
            .await;
        trailing.assert_problem(400, "malformed_body");

        let unknown = api
            .post(
                "/v1/members",
                &club.admin,
                json!({ "channel": "pos", "nickname": "D" }),
            )
            .await;
        unknown.assert_problem(400, "unknown_field");
        assert_eq!(unknown.body["field"], "nickname");

        let nested = api
            .post(
                "/v1/purchases",
                &club.admin,
                json!({
                    "document_id": "d", "store_id": "s", "channel": "pos", "currency": "USD",
                    "lines": [{ "sku": "a", "category": "b", "quantity": "1", "unit_price_minor": 1, "colour": "red" }]
                }),
            )
            .await;
        nested.assert_problem(400, "unknown_field");
        assert_eq!(nested.body["field"], "lines[0].colour");

        let missing = api.post("/v1/members", &club.admin, json!({})).await;
        missing.assert_problem(400, "missing_field");
        assert_eq!(missing.body["field"], "channel");

        let wrong_type = api
            .post("/v1/members", &club.admin, json!({ "channel": 7 }))
            .await;
        wrong_type.assert_problem(400, "invalid_type");
        assert_eq!(wrong_type.body["field"], "channel");

        let not_json = api
            .send(
                "POST",
                "/v1/members",
                Some(&club.admin),
                None,
                raw(b"channel=pos", Some("application/x-www-form-urlencoded")),
            )
            .await;
        not_json.assert_problem(415, "unsupported_media_type");

        // No content type at all is read as JSON.
        let bare = api
            .send(
                "POST",
                "/v1/members",
                Some(&club.admin),
                None,
                raw(b"{\"channel\": \"web\"}", None),
            )
            .await;
        bare.assert_status(201);

        let bad_key = api
            .send(
                "POST",
                "/v1/members",
                Some(&club.admin),
                Some(&"k".repeat(300)),
                Body::Json(json!({ "channel": "pos" })),
            )
            .await;
        bad_key.assert_problem(400, "invalid_idempotency_key");
        club.stop().await;
    }
}
