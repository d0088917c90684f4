//! Text hygiene over HTTP (issue 18): identifiers refuse invisible and control characters,
//! names refuse bidi controls and need a visible character, every free text and attribute is
//! bounded, and each refusal is 422 naming the field with nothing written.

use serde_json::{Value, json};

use crate::support::{Club, clubs, purchase};

/// How many members the club has, walking every page of the list.
pub async fn member_count(club: &Club) -> usize {
    let mut count = 0;
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(cursor) => format!("/v1/members?limit=5&cursor={cursor}"),
            None => "/v1/members?limit=5".to_string(),
        };
        let page = club.api.get(&path, &club.admin).await;
        let page = page.assert_status(200);
        count += page["data"].as_array().unwrap().len();
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_string()),
            None => return count,
        }
    }
}

/// Panics unless `answer` is 422 `invalid_value` naming `field`.
#[track_caller]
pub fn assert_invalid(answer: &crate::support::Answer, field: &str, context: &str) {
    answer.assert_problem(422, "invalid_value");
    assert_eq!(answer.body["field"], field, "{context}: {}", answer.text);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identifiers_with_invisible_or_control_characters_are_refused_and_nothing_is_written() {
    for club in clubs().await {
        let api = &club.api;
        club.enroll("A1").await;
        let before = member_count(&club).await;
        for (external_id, what) in [
            ("A\u{200B}1", "zero-width space: looks exactly like A1"),
            ("A\u{200D}1", "zero-width joiner"),
            ("A\u{200C}1", "zero-width non-joiner"),
            ("\u{FEFF}A1", "byte order mark"),
            ("A1\u{200E}", "left-to-right mark"),
            ("\u{202E}1A", "right-to-left override"),
            ("\u{2066}A1\u{2069}", "isolate"),
            ("A\u{2028}1", "line separator"),
            ("A\u{7}1", "control character"),
            (" A1", "leading space"),
            ("A1 ", "trailing space"),
            ("A\u{00A0}1", "no-break space"),
        ] {
            let refused = api
                .post(
                    "/v1/members",
                    &club.admin,
                    json!({ "external_id": external_id, "channel": "pos" }),
                )
                .await;
            assert_invalid(&refused, "external_id", what);
        }
        assert_eq!(member_count(&club).await, before, "[{}]", club.label());

        let member = club.enroll("buyer").await;
        for (body, field) in [
            (
                purchase("doc\u{200B}1", Some(&member), 500),
                "document_id".to_string(),
            ),
            (
                {
                    let mut body = purchase("doc-2", Some(&member), 500);
                    body["store_id"] = json!("store\u{202E}1");
                    body
                },
                "store_id".to_string(),
            ),
            (
                {
                    let mut body = purchase("doc-3", Some(&member), 500);
                    body["lines"][0]["sku"] = json!("LATTE\u{FEFF}");
                    body
                },
                "lines[0].sku".to_string(),
            ),
            (
                {
                    let mut body = purchase("doc-4", Some(&member), 500);
                    body["lines"][0]["category"] = json!(" drinks");
                    body
                },
                "lines[0].category".to_string(),
            ),
        ] {
            let refused = api.post("/v1/purchases", &club.pos, body).await;
            assert_invalid(&refused, &field, &field);
        }
        assert_eq!(club.available(&member).await, 0, "[{}]", club.label());
        // The refused document ids were not claimed: the clean purchase posts.
        api.post(
            "/v1/purchases",
            &club.pos,
            purchase("doc-2", Some(&member), 500),
        )
        .await
        .assert_status(201);
        club.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn names_refuse_bidi_controls_and_invisible_text_but_keep_persian_zwnj() {
    for club in clubs().await {
        let api = &club.api;
        let before = member_count(&club).await;
        for (name, what) in [
            ("Sara\u{202E}kcin", "right-to-left override"),
            ("\u{202B}Sara", "right-to-left embedding"),
            ("\u{2067}Sara\u{2069}", "isolate"),
            ("\u{200B}\u{200C}\u{200D}", "only zero-width characters"),
            ("\u{3164}", "a Hangul filler: a letter that shows nothing"),
            ("   ", "only spaces"),
            ("Sara\nKohen", "a line break"),
            ("Sara\u{2029}Kohen", "a paragraph separator"),
        ] {
            let refused = api
                .post(
                    "/v1/members",
                    &club.admin,
                    json!({ "name": name, "channel": "pos" }),
                )
                .await;
            assert_invalid(&refused, "name", what);
        }
        assert_eq!(member_count(&club).await, before, "[{}]", club.label());

        for name in [
            "می\u{200C}خواهم",
            "שרה כהן",
            "Zoë O'Neil",
            "سارا\u{200F} Kohen",
        ] {
            let enrolled = api
                .post(
                    "/v1/members",
                    &club.admin,
                    json!({ "name": name, "channel": "pos" }),
                )
                .await;
            assert_eq!(enrolled.assert_status(201)["name"], name, "{name}");
        }
        let member = club.enroll("patched").await;
        let refused = api
            .patch(
                &format!("/v1/members/{member}"),
                &club.admin,
                json!({ "name": "\u{202D}Mallory" }),
            )
            .await;
        assert_invalid(&refused, "name", "patch");
        assert!(
            api.get(&format!("/v1/members/{member}"), &club.admin)
                .await
                .assert_status(200)["name"]
                .is_null()
        );

        club.grant(&member, 50).await;
        let refused = api
            .post(
                &format!("/v1/members/{member}/adjustments"),
                &club.admin,
                json!({ "points": 10, "reason": "goodwill\u{202E}" }),
            )
            .await;
        assert_invalid(&refused, "reason", "adjustment reason");
        let refused = api
            .post(
                &format!("/v1/members/{member}/redemptions"),
                &club.pos,
                json!({ "points": 10, "description": "\u{200B}" }),
            )
            .await;
        assert_invalid(&refused, "description", "redemption description");
        assert_eq!(club.available(&member).await, 50, "[{}]", club.label());
        club.stop().await;
    }
}

fn consent(text_shown: &str) -> Value {
    json!({ "channel": "email", "granted": true, "method": "web", "text_shown": text_shown })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_free_text_and_attribute_has_a_length_limit() {
    for club in clubs().await {
        let api = &club.api;
        let before = member_count(&club).await;
        let many_attributes: serde_json::Map<String, Value> = (0..20)
            .map(|i| (format!("note_{i}"), json!("x".repeat(900))))
            .collect();
        for (body, field) in [
            (
                json!({ "channel": "pos", "attributes": { "note": "x".repeat(100_000) } }),
                "attributes.note",
            ),
            (
                json!({ "channel": "pos", "attributes": { "note": "x".repeat(1_001) } }),
                "attributes.note",
            ),
            (
                json!({ "channel": "pos", "attributes": { "note": "a\u{202E}b" } }),
                "attributes.note",
            ),
            (
                json!({ "channel": "pos", "attributes": many_attributes }),
                "attributes",
            ),
            (json!({ "channel": "pos", "name": "n".repeat(201) }), "name"),
            (
                json!({ "channel": "pos", "consents": [consent(&"t".repeat(10_001))] }),
                "consents[0].text_shown",
            ),
            (
                json!({ "channel": "pos", "consents": [consent("I agree\u{202E}")] }),
                "consents[0].text_shown",
            ),
        ] {
            let refused = api.post("/v1/members", &club.admin, body).await;
            assert_invalid(&refused, field, field);
        }
        assert_eq!(member_count(&club).await, before, "[{}]", club.label());

        // At the limits, everything is accepted.
        let at_limits = api
            .post(
                "/v1/members",
                &club.admin,
                json!({
                    "channel": "pos",
                    "name": "n".repeat(200),
                    "attributes": { "note": "x".repeat(1_000) },
                    "consents": [consent(&"t".repeat(10_000))],
                }),
            )
            .await;
        let member = at_limits.assert_status(201)["id"]
            .as_str()
            .unwrap()
            .to_string();

        club.grant(&member, 50).await;
        let refused = api
            .post(
                &format!("/v1/members/{member}/adjustments"),
                &club.admin,
                json!({ "points": 10, "reason": "r".repeat(501) }),
            )
            .await;
        assert_invalid(&refused, "reason", "reason");
        let refused = api
            .post(
                &format!("/v1/members/{member}/redemptions"),
                &club.pos,
                json!({ "points": 10, "description": "d".repeat(501) }),
            )
            .await;
        assert_invalid(&refused, "description", "description");
        let refused = api
            .post(
                "/v1/events",
                &club.pos,
                json!({
                    "member_id": member, "type": "review_written",
                    "properties": { "stars": 5, "text": "w".repeat(20_000) }
                }),
            )
            .await;
        assert_invalid(&refused, "properties", "event properties");
        assert_eq!(club.available(&member).await, 50, "[{}]", club.label());
        club.stop().await;
    }
}
