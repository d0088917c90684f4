//! Referrals over HTTP: the member view carries the member's code, `GET
//! /v1/members?referral_code=` finds them, `POST /v1/members` takes a `referral_code` and
//! refuses unknown codes and self-referral with their problems (writing nothing), and the
//! newcomer's first qualifying purchase pays both sides once, its receipt readable again with
//! `GET /v1/purchases/{id}`.

use serde_json::{Value, json};

use crate::support::{COFFEE_EXAMPLE, Club, clubs};

async fn with_rules(club: &Club) {
    // The coffee chain's rules: join gift 25, `bring_a_friend` 100 to the referrer and 50 to
    // the newcomer from $5.
    club.api
        .put_program(&club.admin, COFFEE_EXAMPLE)
        .await
        .assert_status(200);
}

fn newcomer(email: &str, code: Option<&str>) -> Value {
    let mut body = json!({ "email": email, "channel": "referral" });
    if let Some(code) = code {
        body["referral_code"] = json!(code);
    }
    body
}

fn cart(document_id: &str, member_id: &str, unit_price_minor: i64) -> Value {
    json!({
        "document_id": document_id,
        "member_id": member_id,
        "store_id": "store-1",
        "channel": "pos",
        "currency": "USD",
        "lines": [
            { "sku": "BEANS", "category": "retail", "quantity": "1", "unit_price_minor": unit_price_minor }
        ]
    })
}

async fn available(club: &Club, member: &str) -> i64 {
    club.api
        .get(&format!("/v1/members/{member}/balance"), &club.pos)
        .await
        .assert_status(200)["available"]
        .as_i64()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_has_a_code_and_is_found_by_it() {
    for club in clubs().await {
        with_rules(&club).await;
        let api = &club.api;
        let id = club.enroll("ref-1").await;
        let member = api
            .get(&format!("/v1/members/{id}"), &club.pos)
            .await
            .assert_status(200)
            .clone();
        let code = member["referral_code"].as_str().unwrap().to_string();
        assert_eq!(code.len(), 8, "[{}]", club.label());
        assert_eq!(member["referred_by"], Value::Null);
        // Any case, with a dash.
        let typed = format!("{}-{}", &code[..4], &code[4..]).to_lowercase();
        let page = api
            .get(&format!("/v1/members?referral_code={typed}"), &club.pos)
            .await
            .assert_status(200)
            .clone();
        assert_eq!(page["data"][0]["id"], json!(id), "[{}]", club.label());
        // Another club's key does not find it.
        let other = api
            .get(&format!("/v1/members?referral_code={code}"), &club.other)
            .await
            .assert_status(200)
            .clone();
        assert_eq!(other["data"], json!([]), "[{}]", club.label());
        // One look-up at a time.
        api.get(
            &format!("/v1/members?referral_code={code}&external_id=ref-1"),
            &club.pos,
        )
        .await
        .assert_problem(400, "invalid_parameter");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enrolling_with_a_code_links_and_bad_codes_are_refused() {
    for club in clubs().await {
        with_rules(&club).await;
        let api = &club.api;
        let referrer = api
            .post(
                "/v1/members",
                &club.pos,
                json!({ "email": "ada@example.com", "channel": "pos" }),
            )
            .await
            .assert_status(201)
            .clone();
        let code = referrer["referral_code"].as_str().unwrap().to_string();
        let members_before = club
            .engine
            .store()
            .count_members(club.tenant.id)
            .await
            .unwrap();

        // A typo (the check character catches it) and a code of no member: 422, nothing written.
        let mut typo: Vec<char> = code.chars().collect();
        typo[0] = if typo[0] == 'A' { 'B' } else { 'A' };
        let typo: String = typo.into_iter().collect();
        let refused = api
            .post_with_key(
                "/v1/members",
                &club.pos,
                "enroll-typo",
                newcomer("bob@example.com", Some(&typo)),
            )
            .await;
        refused.assert_problem(422, "unknown_referral_code");
        assert_eq!(refused.body["field"], "referral_code", "[{}]", club.label());
        // The same code as another club's: unknown here.
        let elsewhere = api
            .post(
                "/v1/members",
                &club.other,
                json!({ "email": "eve@example.com", "channel": "pos" }),
            )
            .await;
        if elsewhere.status == 201 {
            let their_code = elsewhere.body["referral_code"]
                .as_str()
                .unwrap()
                .to_string();
            api.post(
                "/v1/members",
                &club.pos,
                newcomer("bob@example.com", Some(&their_code)),
            )
            .await
            .assert_problem(422, "unknown_referral_code");
        }
        // Self-referral: the referrer's email.
        let selfish = api
            .post(
                "/v1/members",
                &club.pos,
                newcomer("ada@example.com", Some(&code)),
            )
            .await;
        selfish.assert_problem(422, "self_referral");
        assert_eq!(selfish.body["field"], "email");
        assert_eq!(
            club.engine
                .store()
                .count_members(club.tenant.id)
                .await
                .unwrap(),
            members_before,
            "[{}]",
            club.label()
        );

        // A good code: linked, and the channel says how they came.
        let created = api
            .post_with_key(
                "/v1/members",
                &club.pos,
                "enroll-bob",
                newcomer("bob@example.com", Some(&code)),
            )
            .await;
        let bob = created.assert_status(201).clone();
        assert_eq!(bob["referred_by"], referrer["id"], "[{}]", club.label());
        assert_eq!(bob["channel"], "referral");
        assert!(bob["referred_at"].is_string());
        assert_eq!(bob["referral_rewarded_at"], Value::Null);
        assert_ne!(bob["referral_code"], referrer["referral_code"]);
        // Replayed, the same answer.
        let again = api
            .post_with_key(
                "/v1/members",
                &club.pos,
                "enroll-bob",
                newcomer("bob@example.com", Some(&code)),
            )
            .await;
        assert!(again.replayed());
        assert_eq!(again.body, bob);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_qualifying_purchase_pays_both_sides_and_is_read_back() {
    for club in clubs().await {
        with_rules(&club).await;
        let api = &club.api;
        let referrer = api
            .post(
                "/v1/members",
                &club.pos,
                json!({ "email": "ada@example.com", "channel": "pos" }),
            )
            .await
            .assert_status(201)
            .clone();
        let referrer_id = referrer["id"].as_str().unwrap().to_string();
        let code = referrer["referral_code"].as_str().unwrap().to_string();
        let bob = api
            .post(
                "/v1/members",
                &club.pos,
                newcomer("bob@example.com", Some(&code)),
            )
            .await
            .assert_status(201)
            .clone();
        let bob_id = bob["id"].as_str().unwrap().to_string();
        // Both start with the join gift.
        assert_eq!(available(&club, &referrer_id).await, 25);
        assert_eq!(available(&club, &bob_id).await, 25);

        // $3: below the $5 minimum.
        let small = api
            .post("/v1/purchases", &club.pos, cart("b-1", &bob_id, 300))
            .await
            .assert_status(201)
            .clone();
        assert!(
            small["rules"]
                .as_array()
                .unwrap()
                .iter()
                .all(|rule| rule["rule_id"] != "bring_a_friend"),
            "[{}] {small}",
            club.label()
        );
        assert_eq!(available(&club, &referrer_id).await, 25);

        // $10: the referral pays 50 to Bob and 100 to Ada.
        let first = api
            .post("/v1/purchases", &club.pos, cart("b-2", &bob_id, 1000))
            .await
            .assert_status(201)
            .clone();
        let line = first["rules"]
            .as_array()
            .unwrap()
            .iter()
            .find(|rule| rule["rule_id"] == "bring_a_friend")
            .cloned()
            .unwrap();
        assert_eq!(line["points"], 50, "[{}]", club.label());
        assert_eq!(line["name"], "Bring a friend");
        assert_eq!(
            available(&club, &referrer_id).await,
            25 + 100,
            "[{}]",
            club.label()
        );

        // The purchase read back lists the same rules as its receipt.
        let purchase_id = first["purchase_id"].as_str().unwrap();
        let read = api
            .get(&format!("/v1/purchases/{purchase_id}"), &club.pos)
            .await
            .assert_status(200)
            .clone();
        assert_eq!(read["rules"], first["rules"], "[{}]", club.label());
        let small_id = small["purchase_id"].as_str().unwrap();
        let read_small = api
            .get(&format!("/v1/purchases/{small_id}"), &club.pos)
            .await
            .assert_status(200)
            .clone();
        assert_eq!(read_small["rules"], small["rules"]);

        // Bob's view says the referral was rewarded; a second purchase pays nothing more.
        let bob = api
            .get(&format!("/v1/members/{bob_id}"), &club.pos)
            .await
            .assert_status(200)
            .clone();
        assert!(
            bob["referral_rewarded_at"].is_string(),
            "[{}]",
            club.label()
        );
        let second = api
            .post("/v1/purchases", &club.pos, cart("b-3", &bob_id, 1000))
            .await
            .assert_status(201)
            .clone();
        assert!(
            second["rules"]
                .as_array()
                .unwrap()
                .iter()
                .all(|rule| rule["rule_id"] != "bring_a_friend")
        );
        assert_eq!(available(&club, &referrer_id).await, 125);

        // The referrer leaves: their code stops working.
        api.post(
            &format!("/v1/members/{referrer_id}/exit"),
            &club.admin,
            json!({}),
        )
        .await
        .assert_status(200);
        api.post(
            "/v1/members",
            &club.pos,
            newcomer("cy@example.com", Some(&code)),
        )
        .await
        .assert_problem(422, "unknown_referral_code");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_referrer_can_be_added_later_but_never_as_a_loop() {
    for club in clubs().await {
        with_rules(&club).await;
        let api = &club.api;
        let ada = api
            .post(
                "/v1/members",
                &club.pos,
                json!({ "email": "ada@example.com", "channel": "pos" }),
            )
            .await
            .assert_status(201)
            .clone();
        let ada_id = ada["id"].as_str().unwrap().to_string();
        let bob = api
            .post(
                "/v1/members",
                &club.pos,
                json!({ "email": "bob@example.com", "channel": "pos" }),
            )
            .await
            .assert_status(201)
            .clone();
        let bob_id = bob["id"].as_str().unwrap().to_string();
        // Bob gives Ada's code after enrolling.
        let linked = api
            .post_with_key(
                &format!("/v1/members/{bob_id}/referrer"),
                &club.pos,
                "link-bob",
                json!({ "referral_code": ada["referral_code"] }),
            )
            .await;
        let linked = linked.assert_status(200).clone();
        assert_eq!(linked["referred_by"], json!(ada_id), "[{}]", club.label());
        let again = api
            .post_with_key(
                &format!("/v1/members/{bob_id}/referrer"),
                &club.pos,
                "link-bob",
                json!({ "referral_code": ada["referral_code"] }),
            )
            .await;
        assert!(again.replayed());
        // Once only.
        api.post(
            &format!("/v1/members/{bob_id}/referrer"),
            &club.pos,
            json!({ "referral_code": ada["referral_code"] }),
        )
        .await
        .assert_problem(409, "referral_not_allowed");
        // Ada under Bob would be a loop.
        let looped = api
            .post(
                &format!("/v1/members/{ada_id}/referrer"),
                &club.pos,
                json!({ "referral_code": bob["referral_code"] }),
            )
            .await;
        looped.assert_problem(422, "referral_loop");
        assert_eq!(looped.body["field"], "referral_code");
        // Unknown code, unknown field, a read key.
        api.post(
            &format!("/v1/members/{ada_id}/referrer"),
            &club.pos,
            json!({ "referral_code": "2222-2222" }),
        )
        .await
        .assert_problem(422, "unknown_referral_code");
        api.post(
            &format!("/v1/members/{ada_id}/referrer"),
            &club.pos,
            json!({ "referral_code": bob["referral_code"], "extra": 1 }),
        )
        .await
        .assert_problem(400, "unknown_field");
        api.post(
            &format!("/v1/members/{ada_id}/referrer"),
            &club.read,
            json!({ "referral_code": bob["referral_code"] }),
        )
        .await
        .assert_problem(403, "insufficient_scope");
        api.post(
            "/v1/members/mem_nope/referrer",
            &club.pos,
            json!({ "referral_code": bob["referral_code"] }),
        )
        .await
        .assert_problem(404, "member_not_found");
        // Bob's first qualifying purchase pays Ada (100 on top of her join gift).
        api.post("/v1/purchases", &club.pos, cart("b-1", &bob_id, 1000))
            .await
            .assert_status(201);
        assert_eq!(available(&club, &ada_id).await, 125, "[{}]", club.label());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reward_redemption_is_cancelled_while_its_coupon_is_unused() {
    for club in clubs().await {
        let api = &club.api;
        let member = club.enroll("cancel-1").await;
        club.grant(&member, 300).await;
        let path = format!("/v1/members/{member}/redemptions");
        let redemption = api
            .post(&path, &club.pos, json!({ "reward_id": "two_dollars_off" }))
            .await
            .assert_status(201)
            .clone();
        let id = redemption["id"].as_str().unwrap().to_string();
        let code = redemption["coupon"]["code"].as_str().unwrap().to_string();
        let cancel = format!("/v1/redemptions/{id}/cancel");
        let cancelled = api
            .post_with_key(&cancel, &club.pos, "cancel-key", json!({}))
            .await;
        let body = cancelled.assert_status(200).clone();
        assert_eq!(body["points"], 100, "[{}]", club.label());
        assert_eq!(body["balance"]["available"], 300);
        assert_eq!(body["coupon_code"], code.as_str());
        let replay = api
            .post_with_key(&cancel, &club.pos, "cancel-key", json!({}))
            .await;
        assert!(replay.replayed());
        api.post(&cancel, &club.pos, json!({}))
            .await
            .assert_problem(409, "redemption_resolved");
        // The coupon no longer works.
        api.post(
            &format!("/v1/coupons/{code}/redeem"),
            &club.pos,
            json!({ "member_id": member, "order_id": "order-1" }),
        )
        .await
        .assert_problem(409, "coupon_expired");
        // A used coupon: the cancellation is refused.
        let second = api
            .post(&path, &club.pos, json!({ "reward_id": "two_dollars_off" }))
            .await
            .assert_status(201)
            .clone();
        let second_code = second["coupon"]["code"].as_str().unwrap();
        api.post(
            &format!("/v1/coupons/{second_code}/redeem"),
            &club.pos,
            json!({ "member_id": member, "order_id": "order-2" }),
        )
        .await
        .assert_status(200);
        api.post(
            &format!("/v1/redemptions/{}/cancel", second["id"].as_str().unwrap()),
            &club.pos,
            json!({}),
        )
        .await
        .assert_problem(409, "coupon_used");
        api.post("/v1/redemptions/rrd_nope/cancel", &club.pos, json!({}))
            .await
            .assert_problem(404, "redemption_not_found");
        api.post(&cancel, &club.read, json!({}))
            .await
            .assert_problem(403, "insufficient_scope");
        assert_eq!(available(&club, &member).await, 200, "[{}]", club.label());
    }
}
