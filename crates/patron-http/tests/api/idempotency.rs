//! The idempotency tests of the foundation, through HTTP: replays answer the stored response
//! with `Idempotent-Replayed: true`; another payload under the same key is refused; a key
//! still running is refused with 409; identical requests racing have one effect.

use serde_json::json;

use crate::support::{Club, clubs, purchase};

async fn ledger_len(club: &Club, member: &str) -> usize {
    club.api
        .get(
            &format!("/v1/members/{member}/ledger?limit=100"),
            &club.admin,
        )
        .await
        .assert_status(200)["data"]
        .as_array()
        .unwrap()
        .len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retried_request_answers_the_stored_response() {
    for club in clubs().await {
        let api = &club.api;
        // Enrollment.
        let body = json!({ "channel": "web", "email": "retry@example.com" });
        let first = api
            .post_with_key("/v1/members", &club.pos, "enroll-1", body.clone())
            .await;
        first.assert_status(201);
        assert!(!first.replayed());
        let again = api
            .post_with_key("/v1/members", &club.pos, "enroll-1", body)
            .await;
        assert_eq!(
            again.status,
            201,
            "[{}] a replay keeps the status",
            club.label()
        );
        assert!(again.replayed());
        assert_eq!(again.body, first.body);
        assert_eq!(again.header("location"), first.header("location"));
        let member = first.body["id"].as_str().unwrap().to_string();

        // An adjustment and a redemption: one effect each.
        let adjust = json!({ "points": 200, "reason": "welcome" });
        let path = format!("/v1/members/{member}/adjustments");
        let a1 = api
            .post_with_key(&path, &club.admin, "adj-1", adjust.clone())
            .await;
        let a2 = api.post_with_key(&path, &club.admin, "adj-1", adjust).await;
        assert_eq!((a2.status, &a2.body), (201, &a1.body));
        assert!(a2.replayed());
        let redeem_path = format!("/v1/members/{member}/redemptions");
        let r1 = api
            .post_with_key(&redeem_path, &club.pos, "red-1", json!({ "points": 50 }))
            .await;
        let r2 = api
            .post_with_key(&redeem_path, &club.pos, "red-1", json!({ "points": 50 }))
            .await;
        assert_eq!((r2.status, &r2.body), (201, &r1.body));
        assert!(r2.replayed());
        assert_eq!(club.available(&member).await, 150);
        assert_eq!(ledger_len(&club, &member).await, 2);

        // A business rejection is stored and replayed the same.
        let refused = api
            .post_with_key(&redeem_path, &club.pos, "red-2", json!({ "points": 5000 }))
            .await;
        refused.assert_problem(422, "insufficient_points");
        assert!(!refused.replayed());
        club.grant(&member, 10_000).await;
        let replayed = api
            .post_with_key(&redeem_path, &club.pos, "red-2", json!({ "points": 5000 }))
            .await;
        assert_eq!((replayed.status, &replayed.body), (422, &refused.body));
        assert!(
            replayed.replayed(),
            "a replayed rejection is marked like a replayed success"
        );

        // A purchase is idempotent by its document id even without a key.
        let p1 = api
            .post(
                "/v1/purchases",
                &club.pos,
                purchase("doc-9", Some(&member), 500),
            )
            .await;
        let p2 = api
            .post(
                "/v1/purchases",
                &club.pos,
                purchase("doc-9", Some(&member), 500),
            )
            .await;
        assert_eq!((p2.status, &p2.body), (201, &p1.body));
        assert!(p2.replayed());
        club.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_key_with_another_payload_is_422_and_does_nothing() {
    for club in clubs().await {
        let api = &club.api;
        let member = club.enroll("mismatch").await;
        let path = format!("/v1/members/{member}/adjustments");
        api.post_with_key(
            &path,
            &club.admin,
            "k-1",
            json!({ "points": 10, "reason": "a" }),
        )
        .await
        .assert_status(201);
        let other = api
            .post_with_key(
                &path,
                &club.admin,
                "k-1",
                json!({ "points": 99, "reason": "a" }),
            )
            .await;
        other.assert_problem(422, "idempotency_key_reused");
        assert_eq!(other.body["field"], "Idempotency-Key");
        // Another operation under the same key is another request too.
        api.post_with_key(
            "/v1/members",
            &club.admin,
            "k-1",
            json!({ "channel": "pos" }),
        )
        .await
        .assert_problem(422, "idempotency_key_reused");
        assert_eq!(club.available(&member).await, 10);
        assert_eq!(ledger_len(&club, &member).await, 1);
        club.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identical_requests_racing_have_one_effect() {
    for club in clubs().await {
        let member = club.enroll("racer").await;
        let path = format!("/v1/members/{member}/adjustments");
        let body = json!({ "points": 25, "reason": "race" });
        let answers = futures::future::join_all((0..8).map(|_| {
            club.api
                .post_with_key(&path, &club.admin, "race-1", body.clone())
        }))
        .await;
        let created: Vec<_> = answers.iter().filter(|a| a.status == 201).collect();
        assert!(
            !created.is_empty(),
            "[{}] no request succeeded",
            club.label()
        );
        for answer in &answers {
            match answer.status {
                201 => assert_eq!(answer.body, created[0].body),
                _ => answer.assert_problem(409, "idempotency_key_in_flight"),
            }
        }
        assert_eq!(club.available(&member).await, 25);
        assert_eq!(ledger_len(&club, &member).await, 1);

        // Racing purchases of one document, without a key: every answer is the one receipt.
        let receipts = futures::future::join_all((0..6).map(|_| {
            club.api.post(
                "/v1/purchases",
                &club.pos,
                purchase("race-doc", Some(&member), 1000),
            )
        }))
        .await;
        for receipt in &receipts {
            assert_eq!((receipt.status, &receipt.body), (201, &receipts[0].body));
        }
        assert_eq!(club.available(&member).await, 45);
        assert_eq!(ledger_len(&club, &member).await, 2);
        club.stop().await;
    }
}

/// While a request with a key runs, the same key answers 409 at once. The test holds the
/// database's write lock so the first request cannot finish, then releases it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_still_in_flight_is_409() {
    for club in clubs().await {
        let member = club.enroll("in-flight").await;
        let path = format!("/v1/members/{member}/adjustments");
        let body = json!({ "points": 5, "reason": "slow" });
        let mut lock = club.db.store.begin_write().await.unwrap();
        if club.db.backend() == patron_engine::testing::Backend::Postgres {
            sqlx::query("LOCK TABLE idempotency_keys IN EXCLUSIVE MODE")
                .execute(&mut *lock)
                .await
                .unwrap();
        }
        let first = tokio::spawn({
            let api = club.api.clone();
            let (path, key, body) = (path.clone(), club.admin.clone(), body.clone());
            async move { api.post_with_key(&path, &key, "slow-1", body).await }
        });
        let second = tokio::spawn({
            let api = club.api.clone();
            let (path, key, body) = (path.clone(), club.admin.clone(), body.clone());
            async move { api.post_with_key(&path, &key, "slow-1", body).await }
        });
        // Whichever came second is refused at once, while the other waits for the lock.
        let (refused, waiting) = match futures::future::select(first, second).await {
            futures::future::Either::Left((answer, other)) => (answer.unwrap(), other),
            futures::future::Either::Right((answer, other)) => (answer.unwrap(), other),
        };
        refused.assert_problem(409, "idempotency_key_in_flight");
        assert!(refused.header("retry-after").is_some());
        lock.rollback().await.unwrap();
        waiting.await.unwrap().assert_status(201);
        // Once it finished, the key replays.
        let replay = club
            .api
            .post_with_key(&path, &club.admin, "slow-1", body)
            .await;
        assert_eq!(replay.status, 201);
        assert!(replay.replayed());
        assert_eq!(club.available(&member).await, 5);
        club.stop().await;
    }
}

/// Graceful shutdown: a request in flight when the server is asked to stop still finishes
/// and is answered; nothing is half-written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_lets_a_request_in_flight_finish() {
    for mut club in clubs().await {
        let member = club.enroll("last-order").await;
        let path = format!("/v1/members/{member}/adjustments");
        let body = json!({ "points": 7, "reason": "closing time" });
        let mut lock = club.db.store.begin_write().await.unwrap();
        if club.db.backend() == patron_engine::testing::Backend::Postgres {
            sqlx::query("LOCK TABLE idempotency_keys IN EXCLUSIVE MODE")
                .execute(&mut *lock)
                .await
                .unwrap();
        }
        let send = || {
            let api = club.api.clone();
            let (path, key, body) = (path.clone(), club.admin.clone(), body.clone());
            tokio::spawn(async move { api.post_with_key(&path, &key, "last-1", body).await })
        };
        // Two requests with one key: the one refused at once proves the other is inside the
        // server, waiting for the lock, so the shutdown cannot come before it.
        let (refused, in_flight) = match futures::future::select(send(), send()).await {
            futures::future::Either::Left((answer, other)) => (answer.unwrap(), other),
            futures::future::Either::Right((answer, other)) => (answer.unwrap(), other),
        };
        refused.assert_problem(409, "idempotency_key_in_flight");
        club.begin_shutdown();
        lock.rollback().await.unwrap();
        let answer = in_flight.await.unwrap();
        assert_eq!(answer.assert_status(201)["points"], 7);
        club.server_stopped().await;
        let store = club.db.reopen().await.unwrap();
        let balance = store
            .balance(club.tenant.id, &member, club.engine.now())
            .await
            .unwrap();
        assert_eq!(
            balance.available,
            7,
            "[{}] the request in flight committed",
            club.label()
        );
        store.close().await;
        club.stop().await;
    }
}
