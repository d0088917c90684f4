//! Points over HTTP: redemptions (immediate and held), capture and release, adjustments,
//! transfers, and card replacement.

use serde_json::json;

use crate::support::clubs;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redeem_hold_capture_and_release() {
    for club in clubs().await {
        let api = &club.api;
        let member = club.enroll("spender").await;
        club.grant(&member, 500).await;

        let spent = api
            .post(
                &format!("/v1/members/{member}/redemptions"),
                &club.pos,
                json!({ "points": 100, "description": "a latte" }),
            )
            .await;
        let redemption = spent.assert_status(201).clone();
        let id = redemption["id"].as_str().unwrap();
        assert_eq!(
            spent.header("location"),
            Some(format!("/v1/redemptions/{id}"))
        );
        assert_eq!(redemption["status"], "completed", "[{}]", club.label());
        assert_eq!(redemption["balance"]["available"], 400);

        let held = api
            .post(
                &format!("/v1/members/{member}/redemptions"),
                &club.pos,
                json!({ "points": 150, "hold": true, "hold_minutes": 15 }),
            )
            .await;
        let hold = held.assert_status(201).clone();
        let hold_id = hold["id"].as_str().unwrap().to_string();
        assert_eq!(hold["status"], "held");
        assert_eq!(hold["balance"]["held"], 150);
        assert_eq!(hold["balance"]["available"], 250);
        let read_back = api
            .get(&format!("/v1/redemptions/{hold_id}"), &club.pos)
            .await;
        assert_eq!(read_back.assert_status(200)["status"], "held");

        api.post(
            &format!("/v1/redemptions/{hold_id}/capture"),
            &club.pos,
            json!({ "points": 500 }),
        )
        .await
        .assert_problem(422, "capture_too_large");
        let captured = api
            .post(
                &format!("/v1/redemptions/{hold_id}/capture"),
                &club.pos,
                json!({ "points": 100 }),
            )
            .await;
        let captured = captured.assert_status(200);
        assert_eq!(captured["captured_points"], 100);
        assert_eq!(captured["balance"]["available"], 300);
        api.post(
            &format!("/v1/redemptions/{hold_id}/release"),
            &club.pos,
            json!({}),
        )
        .await
        .assert_problem(409, "redemption_resolved");

        // A hold released gives everything back; capture with no body takes all of a hold.
        let second = api
            .post(
                &format!("/v1/members/{member}/redemptions"),
                &club.pos,
                json!({ "points": 50, "hold": true }),
            )
            .await;
        let second_id = second.assert_status(201)["id"]
            .as_str()
            .unwrap()
            .to_string();
        let released = api
            .send(
                "POST",
                &format!("/v1/redemptions/{second_id}/release"),
                Some(&club.pos),
                None,
                crate::support::Body::None,
            )
            .await;
        assert_eq!(released.assert_status(200)["status"], "released");
        assert_eq!(club.available(&member).await, 300);
        let third = api
            .post(
                &format!("/v1/members/{member}/redemptions"),
                &club.pos,
                json!({ "points": 30, "hold": true }),
            )
            .await;
        let third_id = third.assert_status(201)["id"].as_str().unwrap().to_string();
        let all = api
            .send(
                "POST",
                &format!("/v1/redemptions/{third_id}/capture"),
                Some(&club.pos),
                None,
                crate::support::Body::None,
            )
            .await;
        assert_eq!(all.assert_status(200)["captured_points"], 30);
        assert_eq!(club.available(&member).await, 270);

        let too_much = api
            .post(
                &format!("/v1/members/{member}/redemptions"),
                &club.pos,
                json!({ "points": 10_000 }),
            )
            .await;
        too_much.assert_problem(422, "insufficient_points");
        assert_eq!(too_much.body["field"], "points");
        api.post(
            &format!("/v1/members/{member}/redemptions"),
            &club.pos,
            json!({ "points": 0 }),
        )
        .await
        .assert_problem(422, "invalid_value");
        api.post(
            &format!("/v1/members/{member}/redemptions"),
            &club.pos,
            json!({ "points": 5, "hold": true, "hold_minutes": 0 }),
        )
        .await
        .assert_problem(422, "invalid_value");
        api.post(
            "/v1/members/mem_nope/redemptions",
            &club.pos,
            json!({ "points": 5 }),
        )
        .await
        .assert_problem(404, "member_not_found");
        api.get("/v1/redemptions/red_nope", &club.pos)
            .await
            .assert_problem(404, "redemption_not_found");
        api.post("/v1/redemptions/red_nope/capture", &club.pos, json!({}))
            .await
            .assert_problem(404, "redemption_not_found");
        api.post("/v1/redemptions/red_nope/release", &club.pos, json!({}))
            .await
            .assert_problem(404, "redemption_not_found");
        club.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn adjustments_need_a_reason_and_transfers_move_points() {
    for club in clubs().await {
        let api = &club.api;
        let from = club.enroll("giver").await;
        let to = club.enroll("taker").await;
        let adjusted = api
            .post(
                &format!("/v1/members/{from}/adjustments"),
                &club.admin,
                json!({ "points": 120, "reason": "coffee machine broke" }),
            )
            .await;
        let adjusted = adjusted.assert_status(201);
        assert_eq!(adjusted["points"], 120);
        assert_eq!(adjusted["reason"], "coffee machine broke");
        assert_eq!(adjusted["balance"]["available"], 120);

        let no_reason = api
            .post(
                &format!("/v1/members/{from}/adjustments"),
                &club.admin,
                json!({ "points": 5, "reason": "  " }),
            )
            .await;
        no_reason.assert_problem(422, "invalid_value");
        assert_eq!(no_reason.body["field"], "reason");
        let missing = api
            .post(
                &format!("/v1/members/{from}/adjustments"),
                &club.admin,
                json!({ "points": 5 }),
            )
            .await;
        missing.assert_problem(400, "missing_field");
        assert_eq!(missing.body["field"], "reason");
        api.post(
            &format!("/v1/members/{from}/adjustments"),
            &club.admin,
            json!({ "points": -1000, "reason": "too much" }),
        )
        .await
        .assert_problem(422, "insufficient_points");
        api.post(
            "/v1/members/mem_nope/adjustments",
            &club.admin,
            json!({ "points": 5, "reason": "x" }),
        )
        .await
        .assert_problem(404, "member_not_found");

        let moved = api
            .post(
                &format!("/v1/members/{from}/transfers"),
                &club.admin,
                json!({ "to_member_id": to, "points": 70 }),
            )
            .await;
        let moved = moved.assert_status(201);
        assert_eq!(moved["points"], 70);
        assert_eq!(moved["balance"]["available"], 50);
        assert_eq!(club.available(&to).await, 70);
        let to_self = api
            .post(
                &format!("/v1/members/{from}/transfers"),
                &club.admin,
                json!({ "to_member_id": from, "points": 1 }),
            )
            .await;
        to_self.assert_problem(422, "transfer_to_self");
        api.post(
            &format!("/v1/members/{from}/transfers"),
            &club.admin,
            json!({ "to_member_id": to, "points": 51 }),
        )
        .await
        .assert_problem(422, "insufficient_points");
        api.post(
            &format!("/v1/members/{from}/transfers"),
            &club.admin,
            json!({ "to_member_id": "mem_nope", "points": 1 }),
        )
        .await
        .assert_problem(404, "member_not_found");
        club.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_card_is_replaced() {
    for club in clubs().await {
        let api = &club.api;
        let enrolled = api
            .post("/v1/members", &club.admin, json!({ "channel": "pos" }))
            .await;
        let member = enrolled.assert_status(201).clone();
        let old = member["card_number"].as_str().unwrap().to_string();
        let replaced = api
            .post(&format!("/v1/cards/{old}/replace"), &club.admin, json!({}))
            .await;
        let replaced = replaced.assert_status(200).clone();
        assert_eq!(replaced["old_number"], old.as_str());
        assert_eq!(replaced["member_id"], member["id"]);
        let new = replaced["new_number"].as_str().unwrap();
        assert_ne!(new, old);
        let by_new = api.get(&format!("/v1/members?card={new}"), &club.pos).await;
        assert_eq!(by_new.assert_status(200)["data"][0]["id"], member["id"]);
        let by_old = api.get(&format!("/v1/members?card={old}"), &club.pos).await;
        assert_eq!(by_old.assert_status(200)["data"], json!([]));

        api.post(&format!("/v1/cards/{old}/replace"), &club.admin, json!({}))
            .await
            .assert_problem(409, "card_unavailable");
        api.post("/v1/cards/7000000000000005/replace", &club.admin, json!({}))
            .await
            .assert_problem(404, "card_not_found");
        let bad = api
            .post(
                &format!("/v1/cards/{new}/replace"),
                &club.admin,
                json!({ "replacement": "7000000000000001" }),
            )
            .await;
        bad.assert_problem(422, "invalid_value");
        assert_eq!(bad.body["field"], "replacement");
        club.stop().await;
    }
}
