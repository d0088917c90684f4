//! Purchases over HTTP: post (a member's and anonymous), read, refund, attach.

use serde_json::json;

use crate::support::{clubs, purchase};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_purchase_earns_and_a_refund_claws_back() {
    for club in clubs().await {
        let api = &club.api;
        let member = club.enroll("buyer").await;
        let posted = api
            .post(
                "/v1/purchases",
                &club.pos,
                purchase("till-1", Some(&member), 475),
            )
            .await;
        let receipt = posted.assert_status(201).clone();
        let purchase_id = receipt["purchase_id"].as_str().unwrap().to_string();
        assert_eq!(
            posted.header("location"),
            Some(format!("/v1/purchases/{purchase_id}"))
        );
        // $4.75 at 2 beans per dollar, rounded down.
        assert_eq!(receipt["points"], 9, "[{}]", club.label());
        assert_eq!(receipt["points_state"], "posted");
        assert!(receipt["pending_until"].is_null());
        assert_eq!(receipt["balance"]["available"], 9);
        assert_eq!(receipt["tier"]["code"], "regular");

        let fetched = api
            .get(&format!("/v1/purchases/{purchase_id}"), &club.read)
            .await;
        let fetched = fetched.assert_status(200);
        assert_eq!(fetched["document_id"], "till-1");
        assert_eq!(fetched["total_minor"], 475);
        assert_eq!(fetched["lines"][0]["sku"], "LATTE");
        assert_eq!(fetched["lines"][0]["refunded_quantity"], "0");

        let refunded = api
            .post(
                &format!("/v1/purchases/{purchase_id}/refunds"),
                &club.pos,
                json!({ "document_id": "return-1" }),
            )
            .await;
        let refund = refunded.assert_status(201);
        assert_eq!(refund["amount_minor"], 475);
        assert_eq!(refund["clawed_back_points"], 9);
        assert_eq!(refund["balance"]["available"], 0);

        api.post(
            &format!("/v1/purchases/{purchase_id}/refunds"),
            &club.pos,
            json!({ "document_id": "return-2", "lines": [{ "line_no": 1, "quantity": "1" }] }),
        )
        .await
        .assert_problem(422, "refund_too_large");
        api.post(
            "/v1/purchases/pur_nope/refunds",
            &club.pos,
            json!({ "document_id": "return-3" }),
        )
        .await
        .assert_problem(404, "purchase_not_found");
        api.get("/v1/purchases/pur_nope", &club.pos)
            .await
            .assert_problem(404, "purchase_not_found");
        club.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_anonymous_purchase_is_attached_later() {
    for club in clubs().await {
        let api = &club.api;
        let member = club.enroll("latecomer").await;
        let posted = api
            .post("/v1/purchases", &club.pos, purchase("anon-1", None, 1000))
            .await;
        let receipt = posted.assert_status(201).clone();
        assert_eq!(receipt["points_state"], "none");
        assert!(receipt["member_id"].is_null());
        assert!(receipt["balance"].is_null());
        let purchase_id = receipt["purchase_id"].as_str().unwrap().to_string();

        let attached = api
            .post(
                &format!("/v1/purchases/{purchase_id}/attach"),
                &club.pos,
                json!({ "member_id": member }),
            )
            .await;
        let attached = attached.assert_status(200);
        assert_eq!(attached["points"], 20);
        assert_eq!(attached["member_id"], member.as_str());
        assert_eq!(club.available(&member).await, 20);

        let other = club.enroll("someone-else").await;
        api.post(
            &format!("/v1/purchases/{purchase_id}/attach"),
            &club.pos,
            json!({ "member_id": other }),
        )
        .await
        .assert_problem(409, "already_attached");
        api.post(
            "/v1/purchases/pur_nope/attach",
            &club.pos,
            json!({ "member_id": other }),
        )
        .await
        .assert_problem(404, "purchase_not_found");
        club.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn purchase_rejections() {
    for club in clubs().await {
        let api = &club.api;
        let member = club.enroll("rejected").await;
        let mut euros = purchase("eur-1", Some(&member), 500);
        euros["currency"] = json!("EUR");
        let wrong = api.post("/v1/purchases", &club.pos, euros).await;
        wrong.assert_problem(422, "wrong_currency");
        assert_eq!(wrong.body["field"], "currency");

        let mut no_lines = purchase("empty-1", Some(&member), 500);
        no_lines["lines"] = json!([]);
        let empty = api.post("/v1/purchases", &club.pos, no_lines).await;
        empty.assert_problem(422, "invalid_value");
        assert_eq!(empty.body["field"], "lines");

        let mut bad_quantity = purchase("qty-1", Some(&member), 500);
        bad_quantity["lines"][0]["quantity"] = json!("two");
        let quantity = api.post("/v1/purchases", &club.pos, bad_quantity).await;
        quantity.assert_problem(422, "invalid_value");
        assert_eq!(quantity.body["field"], "lines[0].quantity");

        let mut bad_date = purchase("date-1", Some(&member), 500);
        bad_date["occurred_at"] = json!("yesterday");
        let date = api.post("/v1/purchases", &club.pos, bad_date).await;
        date.assert_problem(400, "invalid_type");
        assert_eq!(date.body["field"], "occurred_at");

        api.post(
            "/v1/purchases",
            &club.pos,
            purchase("ghost-1", Some("mem_nope"), 500),
        )
        .await
        .assert_problem(404, "member_not_found");

        // The same document with other content is a conflict with that document.
        api.post(
            "/v1/purchases",
            &club.pos,
            purchase("doc-1", Some(&member), 500),
        )
        .await
        .assert_status(201);
        let conflict = api
            .post(
                "/v1/purchases",
                &club.pos,
                purchase("doc-1", Some(&member), 900),
            )
            .await;
        conflict.assert_problem(409, "document_conflict");
        assert_eq!(conflict.body["field"], "document_id");
        club.stop().await;
    }
}
