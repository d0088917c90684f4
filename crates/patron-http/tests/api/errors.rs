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

/// Sends raw bytes on a fresh connection and reads the answer until the server closes it.
async fn raw_exchange(base: &str, request: &[u8]) -> (u16, String, serde_json::Value) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let address = base.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    stream.write_all(request).await.unwrap();
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await.unwrap();
    let text = String::from_utf8_lossy(&answer).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let content_type = head
        .lines()
        .find_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.eq_ignore_ascii_case("content-type")
                .then(|| value.trim().to_string())
        })
        .unwrap_or_default();
    (
        status,
        content_type,
        serde_json::from_str(body).unwrap_or(serde_json::Value::Null),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_too_long_or_unreadable_for_the_server_get_problem_documents() {
    for club in clubs().await {
        let api = &club.api;
        // A 100 KB address: hyper refuses it before any route runs (no client library
        // sends one, so the request is written by hand).
        let long = format!(
            "GET /v1/members?external_id={} HTTP/1.1\r\nHost: patron\r\nAuthorization: Bearer {}\r\n\r\n",
            "x".repeat(100_000),
            club.admin
        );
        let (status, content_type, body) = raw_exchange(&api.base, long.as_bytes()).await;
        assert_eq!(
            (status, content_type.as_str()),
            (414, "application/problem+json")
        );
        assert_eq!(body["code"], "uri_too_long");
        assert_eq!(body["status"], 414);

        // More header fields than the server reads.
        let mut crowded = String::from("GET /v1/members HTTP/1.1\r\nHost: patron\r\n");
        for i in 0..150 {
            crowded.push_str(&format!("x-field-{i}: {i}\r\n"));
        }
        crowded.push_str("\r\n");
        let (status, content_type, body) = raw_exchange(&api.base, crowded.as_bytes()).await;
        assert_eq!(
            (status, content_type.as_str()),
            (431, "application/problem+json")
        );
        assert_eq!(body["code"], "headers_too_large");
        assert_eq!(body["type"], "/problems/headers_too_large");

        // A request line or header that is not HTTP.
        let (status, content_type, body) = raw_exchange(
            &api.base,
            b"GET /v1/members HTTP/1.1\r\nHost: patron\r\nnot a header\r\n\r\n",
        )
        .await;
        assert_eq!(
            (status, content_type.as_str()),
            (400, "application/problem+json")
        );
        assert_eq!(body["code"], "malformed_request");
        assert_eq!(body["type"], "/problems/malformed_request");
        assert!(body["detail"].as_str().is_some_and(|d| !d.is_empty()));

        // The server still answers well-formed requests afterwards.
        api.get("/v1/members", &club.admin).await.assert_status(200);
        club.stop().await;
    }
}
