//! The documents and operations endpoints: the OpenAPI snapshot, the reference page,
//! liveness, readiness and metrics.

use serde_json::Value;

use crate::support::{self, Body, clubs, purchase};

const SNAPSHOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/openapi.snapshot.json");

/// Every API change shows in review: the generated document must equal the committed
/// snapshot. `PATRON_UPDATE_SNAPSHOTS=1 cargo test -p patron-http` rewrites it.
#[test]
fn openapi_document_matches_the_committed_snapshot() {
    let generated = patron_http::openapi_json();
    if std::env::var("PATRON_UPDATE_SNAPSHOTS").is_ok_and(|v| v == "1") {
        std::fs::write(SNAPSHOT, &generated).unwrap();
        return;
    }
    let committed = std::fs::read_to_string(SNAPSHOT).unwrap_or_default();
    let generated_value: Value = serde_json::from_str(&generated).unwrap();
    let committed_value: Value = serde_json::from_str(&committed).unwrap_or(Value::Null);
    assert!(
        generated_value == committed_value,
        "the OpenAPI document changed: review the difference and run \
         `PATRON_UPDATE_SNAPSHOTS=1 cargo test -p patron-http --test api openapi` to accept it"
    );
}

#[test]
fn openapi_document_is_3_1_and_describes_every_v1_route() {
    let contract = support::contract();
    let document = contract.document();
    assert_eq!(document["openapi"], "3.1.0");
    let paths = document["paths"].as_object().unwrap();
    let expected = [
        ("post", "/v1/members"),
        ("get", "/v1/members"),
        ("get", "/v1/members/{id}"),
        ("patch", "/v1/members/{id}"),
        ("post", "/v1/members/{id}/exit"),
        ("post", "/v1/members/{id}/referrer"),
        ("post", "/v1/redemptions/{id}/cancel"),
        ("get", "/v1/members/{id}/balance"),
        ("put", "/v1/members/{id}/tier"),
        ("delete", "/v1/members/{id}/tier"),
        ("get", "/v1/members/{id}/ledger"),
        ("post", "/v1/members/{id}/adjustments"),
        ("post", "/v1/members/{id}/transfers"),
        ("post", "/v1/members/{id}/redemptions"),
        ("get", "/v1/redemptions/{id}"),
        ("post", "/v1/redemptions/{id}/capture"),
        ("post", "/v1/redemptions/{id}/release"),
        ("post", "/v1/purchases"),
        ("get", "/v1/purchases/{id}"),
        ("post", "/v1/purchases/{id}/refunds"),
        ("post", "/v1/purchases/{id}/attach"),
        ("post", "/v1/events"),
        ("get", "/v1/program"),
        ("put", "/v1/program"),
        ("post", "/v1/cards/{number}/replace"),
        ("get", "/v1/rewards"),
        ("get", "/v1/coupons/{code}"),
        ("post", "/v1/coupons/{code}/validate"),
        ("post", "/v1/coupons/{code}/redeem"),
        ("post", "/v1/coupons/{code}/release"),
        ("post", "/v1/promotions"),
        ("get", "/v1/promotions/{id}"),
        ("post", "/v1/promotions/{id}/codes"),
        ("get", "/v1/promotions/{id}/codes"),
        ("post", "/v1/partner-pools/{pool}/codes"),
        ("get", "/v1/analytics/metrics"),
        ("get", "/v1/analytics/clv"),
        ("get", "/v1/members/{id}/clv"),
        ("get", "/v1/analytics/rfv"),
        ("get", "/v1/analytics/baskets"),
        ("get", "/v1/segments"),
        ("get", "/v1/segments/{id}/members"),
        ("get", "/healthz"),
        ("get", "/readyz"),
        ("get", "/metrics"),
    ];
    for (method, path) in expected {
        let operation = &paths[path][method];
        assert!(operation.is_object(), "{method} {path} is not documented");
        if path.starts_with("/v1/") {
            assert_eq!(operation["security"][0]["api_key"], Value::Array(vec![]));
            for status in ["401", "403", "429"] {
                assert!(
                    operation["responses"][status].is_object(),
                    "{method} {path} {status}"
                );
            }
            let description = operation["description"].as_str().unwrap_or_default();
            assert!(description.contains("Scopes:"), "{method} {path}");
        }
        if method == "post" {
            let parameters = operation["parameters"].as_array().unwrap();
            assert!(
                parameters.iter().any(|p| p["name"] == "Idempotency-Key"),
                "{method} {path} lacks Idempotency-Key"
            );
        }
    }
    let documented = paths
        .values()
        .map(|item| item.as_object().unwrap().len())
        .sum::<usize>();
    assert_eq!(
        documented,
        expected.len(),
        "an undocumented or unexpected operation"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn documents_and_probes_answer() {
    for club in clubs().await {
        let api = &club.api;
        let openapi = api
            .send("GET", "/openapi.json", None, None, Body::None)
            .await;
        assert_eq!(openapi.status, 200);
        assert_eq!(openapi.content_type(), "application/json");
        assert_eq!(openapi.body, *support::contract().document());

        let docs = api.send("GET", "/docs", None, None, Body::None).await;
        assert_eq!(docs.status, 200);
        assert_eq!(docs.content_type(), "text/html");
        for needle in [
            "/v1/members/{id}/redemptions",
            "insufficient_points",
            "id=\"problem-idempotency_key_in_flight\"",
            "id=\"schema-MemberOut\"",
            "Idempotency-Key",
            "Scopes: admin",
        ] {
            assert!(docs.text.contains(needle), "/docs lacks {needle}");
        }
        assert!(
            !docs.text.contains("<script"),
            "/docs must not need JavaScript"
        );
        assert!(
            !docs.text.contains("https://"),
            "/docs must not load anything from outside"
        );

        let healthz = api.send("GET", "/healthz", None, None, Body::None).await;
        assert_eq!(healthz.assert_status(200)["status"], "ok");
        let readyz = api.send("GET", "/readyz", None, None, Body::None).await;
        let ready = readyz.assert_status(200);
        assert_eq!(ready["status"], "ready");
        assert_eq!(ready["migrations_current"], true);

        // A problem type's URI leads to its entry in the reference.
        let link = api
            .send(
                "GET",
                "/problems/insufficient_points",
                None,
                None,
                Body::None,
            )
            .await;
        assert_eq!(link.status, 200, "redirects are followed to /docs");

        club.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_fails_when_the_database_is_gone() {
    for club in clubs().await {
        club.db.store.close().await;
        let readyz = club
            .api
            .send("GET", "/readyz", None, None, Body::None)
            .await;
        let body = readyz.assert_status(503);
        assert_eq!(body["status"], "not_ready");
        assert_eq!(body["database"], false);
        let healthz = club
            .api
            .send("GET", "/healthz", None, None, Body::None)
            .await;
        healthz.assert_status(200);
        club.stop().await;
    }
}

fn metric_value(text: &str, prefix: &str) -> Option<f64> {
    text.lines()
        .find(|line| line.starts_with(prefix))
        .and_then(|line| line.rsplit(' ').next())
        .and_then(|value| value.parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_requests_by_route_and_ledger_postings() {
    for club in clubs().await {
        let api = &club.api;
        let member = club.enroll("metrics-1").await;
        api.get(&format!("/v1/members/{member}"), &club.admin)
            .await
            .assert_status(200);
        api.get("/v1/members/mem_missing", &club.admin)
            .await
            .assert_problem(404, "member_not_found");
        api.post(
            "/v1/purchases",
            &club.pos,
            purchase("m-1", Some(&member), 500),
        )
        .await
        .assert_status(201);
        // A replay is not a new posting.
        api.post(
            "/v1/purchases",
            &club.pos,
            purchase("m-1", Some(&member), 500),
        )
        .await
        .assert_status(201);

        let metrics = api.send("GET", "/metrics", None, None, Body::None).await;
        assert_eq!(metrics.status, 200);
        let text = &metrics.text;
        assert_eq!(
            metric_value(
                text,
                "patron_http_requests_total{method=\"GET\",route=\"/v1/members/{id}\",status=\"200\"}"
            ),
            Some(1.0),
            "{text}"
        );
        assert_eq!(
            metric_value(
                text,
                "patron_http_requests_total{method=\"GET\",route=\"/v1/members/{id}\",status=\"404\"}"
            ),
            Some(1.0)
        );
        assert_eq!(
            metric_value(
                text,
                "patron_http_requests_total{method=\"POST\",route=\"/v1/purchases\",status=\"201\"}"
            ),
            Some(2.0)
        );
        assert_eq!(
            metric_value(
                text,
                "patron_http_request_duration_seconds_count{route=\"/v1/purchases\"}"
            ),
            Some(2.0)
        );
        assert_eq!(
            metric_value(text, "patron_ledger_postings_total{operation=\"purchase\"}"),
            Some(1.0)
        );
        assert_eq!(metric_value(text, "patron_job_queue_depth"), Some(0.0));
        assert_eq!(metric_value(text, "patron_jobs_failed"), Some(0.0));
        // PostgreSQL posted the purchase optimistically and gave its replay to the locked path
        // (which answers replays); SQLite has only the locked path.
        let paths = match club.db.backend() {
            patron_engine::testing::Backend::Postgres => (Some(1.0), Some(1.0)),
            patron_engine::testing::Backend::Sqlite => (Some(0.0), Some(0.0)),
        };
        assert_eq!(
            (
                metric_value(text, "patron_purchase_paths_total{path=\"optimistic\"}"),
                metric_value(
                    text,
                    "patron_purchase_paths_total{path=\"locked_fallback\"}"
                ),
            ),
            paths,
            "{text}"
        );

        // The job gauges are read from the jobs table: two jobs due (one then claimed by a
        // worker that fails it for good), one not yet due.
        let store = &club.db.store;
        let now = club.engine.now();
        let job = |key: &str, minutes: i64, max_attempts: i64| patron_engine::testing::NewJob {
            kind: "expiry".into(),
            key: key.into(),
            run_at: now + jiff::SignedDuration::from_mins(minutes),
            max_attempts,
        };
        store
            .schedule_jobs(
                club.tenant.id,
                &[
                    job("expiry:due", -60, 3),
                    job("expiry:doomed", -30, 1),
                    job("expiry:later", 60, 3),
                ],
                now,
            )
            .await
            .unwrap();
        let gauges = |text: &str| {
            (
                metric_value(text, "patron_job_queue_depth"),
                metric_value(text, "patron_jobs_failed"),
            )
        };
        let text = api
            .send("GET", "/metrics", None, None, Body::None)
            .await
            .text;
        assert_eq!(gauges(&text), (Some(2.0), Some(0.0)), "{text}");
        let claimed = store
            .claim_job(
                patron_engine::testing::ClaimScope::Key(club.tenant.id, "expiry:doomed"),
                "test-worker",
                now,
                jiff::SignedDuration::from_mins(5),
            )
            .await
            .unwrap()
            .unwrap();
        let text = api
            .send("GET", "/metrics", None, None, Body::None)
            .await
            .text;
        assert_eq!(
            gauges(&text),
            (Some(1.0), Some(0.0)),
            "running, its lease alive"
        );
        store
            .fail_job(claimed.id, "test-worker", now, "boom", None)
            .await
            .unwrap();
        let text = api
            .send("GET", "/metrics", None, None, Body::None)
            .await
            .text;
        assert_eq!(gauges(&text), (Some(1.0), Some(1.0)), "{text}");
        club.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_routes_and_methods_answer_problems() {
    for club in clubs().await {
        let api = &club.api;
        api.get("/v1/nothing-here", &club.admin)
            .await
            .assert_problem(404, "not_found");
        let delete = api
            .send("DELETE", "/v1/members", Some(&club.admin), None, Body::None)
            .await;
        delete.assert_problem(405, "method_not_allowed");
        let allow = delete.header("allow").unwrap_or_default();
        assert!(
            allow.contains("GET") && allow.contains("POST"),
            "Allow: {allow}"
        );
        club.stop().await;
    }
}

/// The contract check is not vacuous: a body that breaks its schema, or a status the
/// document does not list, fails it.
#[test]
fn the_contract_check_catches_what_breaks_the_document() {
    let contract = support::contract();
    let answer = |status: u16, body: Value| {
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert("content-type", "application/json".parse().unwrap());
        support::Answer {
            status,
            headers,
            text: body.to_string(),
            body,
        }
    };
    let good = answer(200, serde_json::json!({ "status": "ok" }));
    contract.check("GET", "/healthz", &good);
    let cases = [
        (
            "GET",
            "/healthz",
            answer(200, serde_json::json!({ "status": 1 })),
        ),
        (
            "GET",
            "/healthz",
            answer(200, serde_json::json!({ "status": "ok", "extra": true })),
        ),
        (
            "GET",
            "/healthz",
            answer(418, serde_json::json!({ "status": "ok" })),
        ),
        (
            "GET",
            "/v1/members/mem_1",
            answer(200, serde_json::json!({ "id": "mem_1" })),
        ),
    ];
    for (method, path, bad) in cases {
        let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            contract.check(method, path, &bad)
        }));
        assert!(
            caught.is_err(),
            "{method} {path} {} passed the contract",
            bad.text
        );
    }
}

/// docs/API-DESIGN.md lists every error code with its status.
#[test]
fn the_design_document_lists_every_error_code() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/API-DESIGN.md");
    let design = std::fs::read_to_string(path).unwrap();
    for code in patron_http::Code::ALL {
        let row = format!("| `{}` | {} |", code.as_str(), code.status().as_u16());
        assert!(
            design.contains(&row),
            "docs/API-DESIGN.md lacks the row {row}"
        );
    }
}
