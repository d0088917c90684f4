//! JSON bodies and query strings as the client wrote them: an object wherever the operation
//! reads one (never an array read field by field), and details that speak JSON's words and
//! name the field, never a Rust type.

use serde_json::{Value, json};

use crate::support::{Answer, Body, Club, clubs, purchase};

/// Words of the server's implementation that a client must never read in a `detail`.
const RUST_WORDS: &[&str] = &[
    "i8",
    "i16",
    "i32",
    "i64",
    "u8",
    "u16",
    "u32",
    "u64",
    "f64",
    "usize",
    "bool",
    "struct",
    "String",
    "Vec",
    "Option",
    "Timestamp",
    "sequence",
    "unit value",
    "floating point",
    "variant",
    "Body",
    "Query",
];

#[track_caller]
fn assert_json_words(answer: &Answer, field: Option<&str>, words: &str) {
    let detail = answer.body["detail"].as_str().unwrap_or_default();
    for word in RUST_WORDS {
        assert!(
            !detail.contains(word),
            "the detail names {word:?}: {}",
            answer.text
        );
    }
    assert!(
        detail.contains(words),
        "the detail should say {words:?}: {}",
        answer.text
    );
    assert_eq!(
        answer.body["field"].as_str(),
        field,
        "field of {}",
        answer.text
    );
    if let Some(field) = field {
        assert!(
            detail.contains(field),
            "the detail should name {field}: {}",
            answer.text
        );
    }
}

/// Everything a purchase or an enrollment could have written, as the API shows it.
async fn footprint(club: &Club, member: &str) -> (i64, Value, Value) {
    let api = &club.api;
    let ledger = api
        .get(&format!("/v1/members/{member}/ledger"), &club.admin)
        .await
        .assert_status(200)["data"]
        .clone();
    let members = api
        .get("/v1/members?limit=5", &club.admin)
        .await
        .assert_status(200)["data"]
        .clone();
    (club.available(member).await, ledger, members)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_array_where_an_object_belongs_is_refused_at_any_depth_and_changes_nothing() {
    for club in clubs().await {
        let l = club.label();
        let api = &club.api;
        let member = club.enroll("array-1").await;
        club.grant(&member, 200).await;

        // A body that may be left out is an object when it is there: `[20]` is not a
        // capture of 20 points.
        let held = api
            .post(
                &format!("/v1/members/{member}/redemptions"),
                &club.pos,
                json!({ "points": 50, "hold": true }),
            )
            .await;
        let hold = held.assert_status(201)["id"].as_str().unwrap().to_string();
        let answer = api
            .post(
                &format!("/v1/redemptions/{hold}/capture"),
                &club.pos,
                json!([20]),
            )
            .await;
        answer.assert_problem(400, "invalid_type");
        let read_back = api.get(&format!("/v1/redemptions/{hold}"), &club.pos).await;
        assert_eq!(read_back.assert_status(200)["status"], "held", "[{l}]");
        api.post(
            &format!("/v1/redemptions/{hold}/release"),
            &club.pos,
            json!({}),
        )
        .await
        .assert_status(200);

        let before = footprint(&club, &member).await;

        // The whole purchase, field by field in declaration order.
        let positional = json!([
            "d-array-1", member, "store-1", "pos", null, "USD",
            [{ "sku": "LATTE", "category": "drinks", "quantity": "1", "unit_price_minor": 500 }]
        ]);
        let answer = api.post("/v1/purchases", &club.pos, positional).await;
        answer.assert_problem(400, "invalid_type");
        assert_json_words(&answer, None, "must be an object, not an array");

        // One line of it, positional: the unknown-field check never saw it.
        let mut nested = purchase("d-array-2", Some(&member), 500);
        nested["lines"] = json!([["LATTE", "drinks", "1", 500, 0, "extra"]]);
        let answer = api.post("/v1/purchases", &club.pos, nested).await;
        answer.assert_problem(400, "invalid_type");
        assert_json_words(&answer, Some("lines[0]"), "must be an object, not an array");

        // An enrollment, and an object inside it (a consent).
        let answer = api
            .post("/v1/members", &club.pos, json!(["ext-array", null, null]))
            .await;
        answer.assert_problem(400, "invalid_type");
        let answer = api
            .post(
                "/v1/members",
                &club.pos,
                json!({ "channel": "pos", "consents": [["email", null, true, "pos", "I agree"]] }),
            )
            .await;
        answer.assert_problem(400, "invalid_type");
        assert_eq!(answer.body["field"], "consents[0]", "[{l}]");

        // A points redemption read from an array is refused like any other body.
        let answer = api
            .post(
                &format!("/v1/members/{member}/redemptions"),
                &club.pos,
                json!([30, false, null, null]),
            )
            .await;
        answer.assert_problem(400, "invalid_type");

        assert_eq!(footprint(&club, &member).await, before, "[{l}]");
        club.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_type_is_told_in_json_words_naming_the_field() {
    for club in clubs().await {
        let api = &club.api;
        let member = club.enroll("words-1").await;
        let with_line = |key: &str, value: Value| {
            let mut body = purchase("d-words", Some(&member), 500);
            body["lines"][0][key] = value;
            body
        };
        let with = |key: &str, value: Value| {
            let mut body = purchase("d-words", Some(&member), 500);
            body[key] = value;
            body
        };
        let cases: Vec<(&str, Value, Option<&str>, &str)> = vec![
            // An enum-like string given as a number, and as an array.
            (
                "/v1/members",
                json!({ "channel": 7 }),
                Some("channel"),
                "must be a string, not the number 7",
            ),
            (
                "/v1/members",
                json!({ "channel": ["pos"] }),
                Some("channel"),
                "must be a string, not an array",
            ),
            (
                "/v1/members",
                json!({ "channel": "pos", "consents": [{ "channel": "email", "granted": "yes", "method": "pos", "text_shown": "t" }] }),
                Some("consents[0].granted"),
                "must be true or false, not a string",
            ),
            (
                "/v1/purchases",
                with_line("unit_price_minor", json!("500")),
                Some("lines[0].unit_price_minor"),
                "must be an integer, not a string",
            ),
            (
                "/v1/purchases",
                with_line("unit_price_minor", json!(5.5)),
                Some("lines[0].unit_price_minor"),
                "must be an integer, not the number 5.5",
            ),
            (
                "/v1/purchases",
                with_line("unit_price_minor", json!(18_446_744_073_709_551_615_u64)),
                Some("lines[0].unit_price_minor"),
                "must be an integer from -9223372036854775808 to 9223372036854775807",
            ),
            (
                "/v1/purchases",
                with_line("quantity", json!(1)),
                Some("lines[0].quantity"),
                "must be a string, not the number 1",
            ),
            (
                "/v1/purchases",
                with("lines", json!({ "sku": "LATTE" })),
                Some("lines"),
                "must be an array, not an object",
            ),
            (
                "/v1/purchases",
                with("lines", json!([7])),
                Some("lines[0]"),
                "must be an object, not the number 7",
            ),
            (
                "/v1/purchases",
                with("occurred_at", json!(1_772_470_800)),
                Some("occurred_at"),
                "must be a string or null, not the number 1772470800",
            ),
            (
                "/v1/purchases",
                with("member_id", json!({})),
                Some("member_id"),
                "must be a string or null, not an object",
            ),
            (
                "/v1/members",
                json!("pos"),
                None,
                "must be an object, not a string",
            ),
            (
                "/v1/promotions",
                json!({ "name": "Spring", "benefit": "discount" }),
                Some("benefit"),
                "must be an object, not a string",
            ),
        ];
        for (path, body, field, words) in cases {
            let answer = api.post(path, &club.admin, body.clone()).await;
            answer.assert_problem(400, "invalid_type");
            assert_json_words(&answer, field, words);
        }

        // A date that does not parse names the field too.
        let answer = api
            .post(
                "/v1/purchases",
                &club.admin,
                with("occurred_at", json!("yesterday")),
            )
            .await;
        answer.assert_problem(400, "invalid_type");
        assert_json_words(&answer, Some("occurred_at"), "occurred_at");

        // Unknown and missing fields name the JSON field, never the type that lacks it.
        let answer = api
            .post(
                "/v1/purchases",
                &club.admin,
                with_line("colour", json!("red")),
            )
            .await;
        answer.assert_problem(400, "unknown_field");
        assert_json_words(&answer, Some("lines[0].colour"), "unit_price_minor");
        let mut missing = purchase("d-words", Some(&member), 500);
        missing["lines"][0]
            .as_object_mut()
            .unwrap()
            .remove("quantity");
        let answer = api.post("/v1/purchases", &club.admin, missing).await;
        answer.assert_problem(400, "missing_field");
        assert_json_words(&answer, Some("lines[0].quantity"), "required");
        // (Written by hand: a JSON value cannot hold a member twice.)
        let answer = api
            .send(
                "POST",
                "/v1/members",
                Some(&club.admin),
                None,
                Body::Raw {
                    content_type: Some("application/json"),
                    bytes: br#"{"channel": "pos", "channel": "web"}"#.to_vec(),
                },
            )
            .await;
        answer.assert_problem(400, "invalid_type");
        assert_json_words(&answer, Some("channel"), "more than once");

        // Query parameters speak the same words.
        let answer = api.get("/v1/members?limit=abc", &club.admin).await;
        answer.assert_problem(400, "invalid_parameter");
        assert_json_words(&answer, Some("limit"), "must be an integer");
        let answer = api.get("/v1/members?limit=-1", &club.admin).await;
        answer.assert_problem(400, "invalid_parameter");
        assert_json_words(
            &answer,
            Some("limit"),
            "must be an integer from 0 to 4294967295",
        );
        let answer = api
            .get("/v1/analytics/baskets?min_support=most", &club.admin)
            .await;
        answer.assert_problem(400, "invalid_parameter");
        assert_json_words(&answer, Some("min_support"), "must be a number");
        let answer = api.get("/v1/members?colour=red", &club.admin).await;
        answer.assert_problem(400, "invalid_parameter");
        assert_json_words(&answer, Some("colour"), "limit");
        let answer = api
            .send(
                "POST",
                "/v1/members",
                Some(&club.admin),
                None,
                Body::Raw {
                    content_type: Some("application/json"),
                    bytes: b"{\"channel\": ".to_vec(),
                },
            )
            .await;
        answer.assert_problem(400, "malformed_body");
        assert_json_words(&answer, None, "not JSON");
        club.stop().await;
    }
}
