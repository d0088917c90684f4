//! Rewards, coupons and promotions over HTTP: the catalog with reasons, a reward redemption
//! that issues a coupon, validate/redeem/release at the till, a typo caught by the check
//! character, another club's code answering 404, scopes, and promotions with bulk codes.

use serde_json::json;

use crate::support::clubs;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reward_becomes_a_coupon_that_the_till_redeems_and_releases() {
    for club in clubs().await {
        let api = &club.api;
        let member = club.enroll("rewarded").await;

        let catalog = api
            .get(&format!("/v1/rewards?member_id={member}"), &club.pos)
            .await;
        let catalog = catalog.assert_status(200).clone();
        let drink = catalog["data"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["id"] == "free_drink")
            .unwrap()
            .clone();
        assert_eq!(drink["eligible"], false, "[{}]", club.label());
        assert_eq!(drink["reasons"], json!(["insufficient_points"]));
        assert_eq!(drink["name"], "Any handcrafted drink");
        api.get("/v1/rewards?locale=xx", &club.read)
            .await
            .assert_problem(400, "invalid_parameter");

        let path = format!("/v1/members/{member}/redemptions");
        let refused = api
            .post(&path, &club.pos, json!({ "reward_id": "free_drink" }))
            .await;
        refused.assert_problem(422, "reward_unavailable");
        api.post(
            &path,
            &club.pos,
            json!({ "reward_id": "free_drink", "points": 1 }),
        )
        .await
        .assert_problem(400, "unknown_field");
        api.post(&path, &club.pos, json!({ "reward_id": "caviar" }))
            .await
            .assert_problem(404, "reward_not_found");

        club.grant(&member, 300).await;
        let redeemed = api
            .post_with_key(
                &path,
                &club.pos,
                "reward-key-1",
                json!({ "reward_id": "two_dollars_off" }),
            )
            .await;
        let redemption = redeemed.assert_status(201).clone();
        assert_eq!(redemption["points"], 100);
        assert_eq!(redemption["balance"]["available"], 200);
        let code = redemption["coupon"]["code"].as_str().unwrap().to_string();
        let replay = api
            .post_with_key(
                &path,
                &club.pos,
                "reward-key-1",
                json!({ "reward_id": "two_dollars_off" }),
            )
            .await;
        assert!(replay.replayed());
        assert_eq!(replay.assert_status(201)["coupon"]["code"], code.as_str());
        // Points redemptions still work on the same route.
        api.post(&path, &club.pos, json!({ "points": 50 }))
            .await
            .assert_status(201);

        let coupon_path = |action: &str| format!("/v1/coupons/{code}/{action}");
        let check = api
            .post(
                &coupon_path("validate"),
                &club.pos,
                json!({ "member_id": member, "cart_total_minor": 1500 }),
            )
            .await;
        let check = check.assert_status(200);
        assert_eq!(check["valid"], true);
        assert_eq!(check["discount_minor"], 200);
        let check = api
            .post(&coupon_path("validate"), &club.pos, json!({}))
            .await;
        assert_eq!(check.assert_status(200)["reason"], "not_for_member");

        let use_body =
            json!({ "member_id": member, "order_id": "order-1", "cart_total_minor": 1500 });
        let used = api
            .post(&coupon_path("redeem"), &club.pos, use_body.clone())
            .await;
        assert_eq!(used.assert_status(200)["coupon"]["state"], "redeemed");
        api.post(&coupon_path("redeem"), &club.pos, use_body.clone())
            .await
            .assert_problem(409, "coupon_used");
        let released = api
            .post(
                &coupon_path("release"),
                &club.pos,
                json!({ "order_id": "order-1" }),
            )
            .await;
        assert_eq!(released.assert_status(200)["coupon"]["state"], "released");
        api.post(&coupon_path("release"), &club.pos, json!({}))
            .await
            .assert_problem(409, "coupon_not_redeemed");
        api.post(&coupon_path("redeem"), &club.pos, use_body)
            .await
            .assert_status(200);
        let read_back = api.get(&format!("/v1/coupons/{code}"), &club.read).await;
        assert_eq!(read_back.assert_status(200)["uses"], 1);

        // A typo: the check character catches it.
        let mut typo: Vec<char> = code.chars().collect();
        typo[0] = if typo[0] == 'X' { 'Y' } else { 'X' };
        let typo: String = typo.into_iter().collect();
        let answer = api
            .post(
                &format!("/v1/coupons/{typo}/validate"),
                &club.pos,
                json!({}),
            )
            .await;
        answer.assert_problem(422, "invalid_coupon_code");
        // Another club's key cannot see this club's code.
        api.post(&coupon_path("validate"), &club.other, json!({}))
            .await
            .assert_problem(404, "coupon_not_found");
        api.get(&format!("/v1/coupons/{code}"), &club.other)
            .await
            .assert_problem(404, "coupon_not_found");
        // Scopes: read keys look, pos keys redeem, admins run promotions.
        api.post(&coupon_path("redeem"), &club.read, json!({}))
            .await
            .assert_problem(403, "insufficient_scope");
        api.post(
            "/v1/promotions",
            &club.pos,
            json!({ "name": "x", "benefit": { "kind": "soft_benefit" } }),
        )
        .await
        .assert_problem(403, "insufficient_scope");
        club.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn promotions_generate_codes_in_bulk_within_their_budget() {
    for club in clubs().await {
        let api = &club.api;
        let created = api
            .post(
                "/v1/promotions",
                &club.admin,
                json!({
                    "id": "spring",
                    "name": "Spring sale",
                    "benefit": { "kind": "discount", "amount_minor": 150 },
                    "prefix": "SPRNG",
                    "budget_redemptions": 2,
                    "limit": { "count": 5, "per": "day" },
                    "uses_per_code": 1
                }),
            )
            .await;
        assert_eq!(
            created.header("location"),
            Some("/v1/promotions/spring".to_string())
        );
        created.assert_status(201);
        api.post(
            "/v1/promotions",
            &club.admin,
            json!({ "name": "bad", "benefit": { "kind": "discount" } }),
        )
        .await
        .assert_problem(422, "invalid_value");

        let batch = api
            .post(
                "/v1/promotions/spring/codes",
                &club.admin,
                json!({ "count": 3, "return_codes": true }),
            )
            .await;
        let batch = batch.assert_status(201).clone();
        assert_eq!(batch["created"], 3);
        let codes: Vec<String> = batch["codes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c.as_str().unwrap().to_string())
            .collect();
        let silent = api
            .post(
                "/v1/promotions/spring/codes",
                &club.admin,
                json!({ "count": 4 }),
            )
            .await;
        assert_eq!(silent.assert_status(201)["codes"], json!([]));

        // Cursor listing walks all seven codes once.
        let mut seen = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let path = match &cursor {
                Some(c) => format!("/v1/promotions/spring/codes?limit=3&cursor={c}"),
                None => "/v1/promotions/spring/codes?limit=3".to_string(),
            };
            let page = api.get(&path, &club.admin).await;
            let page = page.assert_status(200).clone();
            for coupon in page["data"].as_array().unwrap() {
                seen.push(coupon["code"].as_str().unwrap().to_string());
            }
            match page["next_cursor"].as_str() {
                Some(next) => cursor = Some(next.to_string()),
                None => break,
            }
        }
        assert_eq!(seen.len(), 7, "[{}]", club.label());

        for code in &codes[..2] {
            api.post(&format!("/v1/coupons/{code}/redeem"), &club.pos, json!({}))
                .await
                .assert_status(200);
        }
        api.post(
            &format!("/v1/coupons/{}/redeem", codes[2]),
            &club.pos,
            json!({}),
        )
        .await
        .assert_problem(409, "promotion_budget_exhausted");
        let spring = api.get("/v1/promotions/spring", &club.admin).await;
        let spring = spring.assert_status(200);
        assert_eq!(
            (spring["codes"].as_i64(), spring["redemptions"].as_i64()),
            (Some(7), Some(2))
        );
        api.get("/v1/promotions/spring", &club.other)
            .await
            .assert_problem(404, "promotion_not_found");

        let pool = api
            .post(
                "/v1/partner-pools/cinema/codes",
                &club.admin,
                json!({ "codes": ["CINE-1", "CINE-2"] }),
            )
            .await;
        assert_eq!(pool.assert_status(201)["added"], 2);
        club.stop().await;
    }
}
