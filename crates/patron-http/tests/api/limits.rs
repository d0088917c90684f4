//! Limits: the body size (413), the rate per key and per client address (429 with
//! Retry-After). No timing is asserted: a bucket of one token per second empties on the
//! second of two back-to-back requests, and the loops stop at the first refusal.

use patron_http::ServerConfig;
use serde_json::json;

use crate::support::{Body, clubs_with, config};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_over_the_limit_is_413() {
    let config = ServerConfig {
        body_limit_bytes: 1024,
        ..config()
    };
    for club in clubs_with(config).await {
        let big = json!({ "channel": "pos", "name": "x".repeat(4096) });
        let answer = club.api.post("/v1/members", &club.admin, big).await;
        answer.assert_problem(413, "body_too_large");
        let toml = club
            .api
            .put_program(&club.admin, &"# comment\n".repeat(500))
            .await;
        toml.assert_problem(413, "body_too_large");
        // Under the limit, all is well.
        club.api
            .post("/v1/members", &club.admin, json!({ "channel": "pos" }))
            .await
            .assert_status(201);
        club.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_over_its_rate_gets_429_with_retry_after() {
    let config = ServerConfig {
        rate_limit_per_key_per_second: 1,
        rate_limit_per_ip_per_second: 0,
        ..config()
    };
    for club in clubs_with(config).await {
        let mut refused = None;
        for _ in 0..50 {
            let answer = club.api.get("/v1/members?limit=1", &club.read).await;
            if answer.status == 429 {
                refused = Some(answer);
                break;
            }
            answer.assert_status(200);
        }
        let refused = refused.expect("a key at 1 request per second was never limited");
        refused.assert_problem(429, "rate_limited");
        assert!(refused.header("retry-after").is_some());
        // Another key has its own bucket.
        club.api
            .get("/v1/members?limit=1", &club.admin)
            .await
            .assert_status(200);
        club.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_address_over_its_rate_gets_429_whatever_the_key() {
    let config = ServerConfig {
        rate_limit_per_key_per_second: 0,
        rate_limit_per_ip_per_second: 1,
        ..config()
    };
    for club in clubs_with(config).await {
        let mut refused = None;
        for attempt in 0..50 {
            // Alternate keys, and even send none: the address is what is limited.
            let key = if attempt % 2 == 0 {
                Some(club.read.as_str())
            } else {
                None
            };
            let answer = club
                .api
                .send("GET", "/v1/members", key, None, Body::None)
                .await;
            if answer.status == 429 {
                refused = Some(answer);
                break;
            }
        }
        refused
            .expect("an address at 1 request per second was never limited")
            .assert_problem(429, "rate_limited");
        // Probes are never limited.
        for _ in 0..5 {
            club.api
                .send("GET", "/healthz", None, None, Body::None)
                .await
                .assert_status(200);
        }
        club.stop().await;
    }
}
