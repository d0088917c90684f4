//! Members over HTTP: enroll, read, look up, list with cursors, change, leave; balance and
//! ledger.

use std::collections::HashSet;

use serde_json::json;

use crate::support::{clubs, purchase};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enroll_get_look_up_and_update_a_member() {
    for club in clubs().await {
        let api = &club.api;
        let enrolled = api
            .post(
                "/v1/members",
                &club.pos,
                json!({
                    "external_id": "cust-1",
                    "name": "Dana Levi",
                    "phone": "+1 (212) 555-0101",
                    "email": "Dana@Example.com",
                    "birthday": "1990-04-12",
                    "locale": "en",
                    "time_zone": "America/New_York",
                    "attributes": { "favourite": "flat white", "visits_before": 3 },
                    "channel": "pos",
                    "consents": [{ "channel": "email", "granted": true, "method": "pos", "text_shown": "Send me offers" }]
                }),
            )
            .await;
        let member = enrolled.assert_status(201).clone();
        let id = member["id"].as_str().unwrap().to_string();
        assert_eq!(
            enrolled.header("location"),
            Some(format!("/v1/members/{id}")),
            "[{}]",
            club.label()
        );
        assert_eq!(member["phone"], "+12125550101");
        // The domain is case-insensitive; the local part is kept as given.
        assert_eq!(member["email"], "Dana@example.com");
        assert_eq!(member["status"], "active");
        assert_eq!(member["tier"], "regular");
        assert_eq!(member["attributes"]["favourite"], "flat white");
        assert!(member["card_number"].as_str().unwrap().starts_with('7'));

        let fetched = api.get(&format!("/v1/members/{id}"), &club.read).await;
        assert_eq!(fetched.assert_status(200), &member);

        let card = member["card_number"].as_str().unwrap();
        for query in [
            "phone=%2B1%20212%20555%200101".to_string(),
            "email=Dana%40EXAMPLE.com".to_string(),
            format!("card={card}"),
            "external_id=cust-1".to_string(),
        ] {
            let found = api.get(&format!("/v1/members?{query}"), &club.pos).await;
            let page = found.assert_status(200);
            assert_eq!(page["data"].as_array().unwrap().len(), 1, "{query}");
            assert_eq!(page["data"][0]["id"], id.as_str(), "{query}");
            assert!(page["next_cursor"].is_null());
        }
        let nobody = api.get("/v1/members?phone=%2B12125559999", &club.pos).await;
        assert_eq!(nobody.assert_status(200)["data"], json!([]));

        // A patch changes what it names, clears what is null, keeps the rest.
        let patched = api
            .patch(
                &format!("/v1/members/{id}"),
                &club.admin,
                json!({ "name": "Dana Cohen", "birthday": null, "attributes": { "visits_before": null } }),
            )
            .await;
        let patched = patched.assert_status(200);
        assert_eq!(patched["name"], "Dana Cohen");
        assert!(patched["birthday"].is_null());
        assert_eq!(patched["email"], "Dana@example.com");
        assert_eq!(patched["attributes"], json!({ "favourite": "flat white" }));

        club.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn member_rejections() {
    for club in clubs().await {
        let api = &club.api;
        club.enroll("taken").await;
        api.post(
            "/v1/members",
            &club.admin,
            json!({ "external_id": "taken", "channel": "pos" }),
        )
        .await
        .assert_problem(409, "duplicate");
        let bad_phone = api
            .post(
                "/v1/members",
                &club.admin,
                json!({ "phone": "call me", "channel": "pos" }),
            )
            .await;
        bad_phone.assert_problem(422, "invalid_value");
        assert_eq!(bad_phone.body["field"], "phone");
        let bad_email = api
            .post(
                "/v1/members",
                &club.admin,
                json!({ "email": "nope", "channel": "pos" }),
            )
            .await;
        bad_email.assert_problem(422, "invalid_value");
        assert_eq!(bad_email.body["field"], "email");
        let bad_channel = api
            .post(
                "/v1/members",
                &club.admin,
                json!({ "channel": "carrier pigeon" }),
            )
            .await;
        assert_eq!(bad_channel.body["field"], "channel");
        let bad_birthday = api
            .post(
                "/v1/members",
                &club.admin,
                json!({ "channel": "web", "birthday": "1990-13-45" }),
            )
            .await;
        bad_birthday.assert_problem(422, "invalid_value");
        assert_eq!(bad_birthday.body["field"], "birthday");
        let bad_card = api
            .post(
                "/v1/members",
                &club.admin,
                json!({ "channel": "pos", "card_number": "7000000000000001" }),
            )
            .await;
        assert_eq!(bad_card.status, 422, "{}", bad_card.text);
        api.get("/v1/members/mem_nope", &club.admin)
            .await
            .assert_problem(404, "member_not_found");
        api.patch("/v1/members/mem_nope", &club.admin, json!({ "name": "X" }))
            .await
            .assert_problem(404, "member_not_found");
        api.get("/v1/members?phone=x&email=y%40z.com", &club.admin)
            .await
            .assert_problem(400, "invalid_parameter");
        api.get("/v1/members?colour=red", &club.admin)
            .await
            .assert_problem(400, "invalid_parameter");
        api.get("/v1/members?limit=lots", &club.admin)
            .await
            .assert_problem(400, "invalid_parameter");
        api.get("/v1/members?cursor=zz", &club.admin)
            .await
            .assert_problem(400, "invalid_cursor");
        api.get("/v1/members?email=a%40b.com&cursor=00", &club.admin)
            .await
            .assert_problem(400, "invalid_parameter");
        club.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn member_list_walks_every_member_once() {
    for club in clubs().await {
        let api = &club.api;
        let mut enrolled = HashSet::new();
        for i in 0..12 {
            enrolled.insert(club.enroll(&format!("walk-{i:02}")).await);
        }
        let mut seen = Vec::new();
        let mut cursor: Option<String> = None;
        let mut pages = 0;
        loop {
            let path = match &cursor {
                Some(cursor) => format!("/v1/members?limit=5&cursor={cursor}"),
                None => "/v1/members?limit=5".to_string(),
            };
            let page = api.get(&path, &club.read).await;
            let page = page.assert_status(200);
            let data = page["data"].as_array().unwrap();
            assert!(data.len() <= 5);
            seen.extend(data.iter().map(|m| m["id"].as_str().unwrap().to_string()));
            pages += 1;
            match page["next_cursor"].as_str() {
                Some(next) => cursor = Some(next.to_string()),
                None => break,
            }
            assert!(pages < 10, "the cursor walk does not end");
        }
        assert_eq!(pages, 3, "[{}] 12 members in pages of 5", club.label());
        let unique: HashSet<String> = seen.iter().cloned().collect();
        assert_eq!(unique.len(), seen.len(), "a member appeared twice");
        assert_eq!(unique, enrolled, "a member was skipped");
        let mut sorted = seen.clone();
        sorted.sort();
        assert_eq!(sorted, seen, "members come in id order");

        // The default page size applies when no limit is given, and the maximum caps it.
        let default_page = api.get("/v1/members", &club.read).await;
        assert_eq!(
            default_page.assert_status(200)["data"]
                .as_array()
                .unwrap()
                .len(),
            3
        );
        let capped = api.get("/v1/members?limit=1000", &club.read).await;
        assert_eq!(
            capped.assert_status(200)["data"].as_array().unwrap().len(),
            5
        );
        club.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn balance_shows_tier_progress_and_ledger_pages_newest_first() {
    for club in clubs().await {
        let api = &club.api;
        let member = club.enroll("ledger-1").await;
        for i in 1..=7 {
            club.grant(&member, i * 10).await;
        }
        api.post(
            "/v1/purchases",
            &club.pos,
            purchase("bal-1", Some(&member), 1000),
        )
        .await
        .assert_status(201);
        let balance = api
            .get(&format!("/v1/members/{member}/balance"), &club.pos)
            .await;
        let balance = balance.assert_status(200);
        // 280 granted + 20 earned ($10 at 2 beans per dollar).
        assert_eq!(balance["available"], 300);
        assert_eq!(balance["pending"], 0);
        assert_eq!(balance["lifetime_earned"], 300);
        assert_eq!(balance["member_id"], member.as_str());
        assert_eq!(balance["tier"]["code"], "regular");
        assert_eq!(balance["tier"]["metric"], 1, "visits this year");
        assert_eq!(balance["tier"]["next"], "gold");
        assert_eq!(balance["tier"]["needed_for_next"], 29);

        let mut entries = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let path = match &cursor {
                Some(cursor) => format!("/v1/members/{member}/ledger?limit=3&cursor={cursor}"),
                None => format!("/v1/members/{member}/ledger?limit=3"),
            };
            let page = api.get(&path, &club.read).await;
            let page = page.assert_status(200).clone();
            entries.extend(page["data"].as_array().unwrap().iter().cloned());
            match page["next_cursor"].as_str() {
                Some(next) => cursor = Some(next.to_string()),
                None => break,
            }
        }
        assert_eq!(entries.len(), 8, "[{}] 7 grants and 1 earn", club.label());
        // Ids are opaque to clients; decoded with the club's key they are the ledger's order.
        let club_ids = patron_http::ids::ClubIds::new(&club.tenant.id_key);
        let ids: Vec<i64> = entries
            .iter()
            .map(|e| {
                let id = e["id"].as_str().unwrap();
                club_ids
                    .decode(patron_http::ids::IdKind::Transfer, id)
                    .unwrap()
            })
            .collect();
        let mut newest_first = ids.clone();
        newest_first.sort_by(|a, b| b.cmp(a));
        assert_eq!(ids, newest_first);
        assert_eq!(entries[0]["code"], "earn");
        assert_eq!(entries[0]["points"], 20);
        let total: i64 = entries.iter().map(|e| e["points"].as_i64().unwrap()).sum();
        assert_eq!(total, 300);

        api.get("/v1/members/mem_nope/balance", &club.pos)
            .await
            .assert_problem(404, "member_not_found");
        api.get("/v1/members/mem_nope/ledger", &club.read)
            .await
            .assert_problem(404, "member_not_found");
        api.get(
            &format!("/v1/members/{member}/ledger?cursor=6d656d6265723a31"),
            &club.read,
        )
        .await
        .assert_problem(400, "invalid_cursor");
        club.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_leaves_the_club() {
    for club in clubs().await {
        let api = &club.api;
        let member = club.enroll("leaver").await;
        club.grant(&member, 150).await;
        // A reward bought before leaving: its coupon is voided with the membership.
        let redemption = api
            .post(
                &format!("/v1/members/{member}/redemptions"),
                &club.pos,
                json!({ "reward_id": "two_dollars_off" }),
            )
            .await
            .assert_status(201)
            .clone();
        let code = redemption["coupon"]["code"].as_str().unwrap().to_owned();
        let exit = api
            .post(
                &format!("/v1/members/{member}/exit"),
                &club.admin,
                json!({}),
            )
            .await;
        let receipt = exit.assert_status(200);
        assert_eq!(receipt["member_id"], member.as_str());
        assert_eq!(receipt["points_forfeited"], 50, "the coffee chain forfeits");
        assert_eq!(receipt["coupons_voided"], 1);
        api.post(
            &format!("/v1/coupons/{code}/redeem"),
            &club.pos,
            json!({ "member_id": member, "order_id": "after-exit" }),
        )
        .await
        .assert_problem(409, "member_exited");
        let after = api.get(&format!("/v1/members/{member}"), &club.admin).await;
        let after = after.assert_status(200);
        assert_eq!(after["status"], "exited");
        assert!(after["external_id"].is_null());
        api.post(
            &format!("/v1/members/{member}/exit"),
            &club.admin,
            json!({}),
        )
        .await
        .assert_problem(409, "member_exited");
        api.post("/v1/members/mem_nope/exit", &club.admin, json!({}))
            .await
            .assert_problem(404, "member_not_found");
        api.patch(
            &format!("/v1/members/{member}"),
            &club.admin,
            json!({ "name": "Back" }),
        )
        .await
        .assert_problem(409, "member_exited");
        club.stop().await;
    }
}

/// An idempotent replay is the answer of the original request, but not a copy of personal data
/// the club was told to erase: after the exit, replaying the enrollment answers the stored 201
/// with the member's id and every personal field null.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replayed_enrollment_after_the_exit_answers_without_the_erased_personal_data() {
    for club in clubs().await {
        let api = &club.api;
        let body = json!({
            "external_id": "crm-erased-1",
            "name": "Dana Levi",
            "phone": "+1 (212) 555-0199",
            "email": "dana.erased@example.com",
            "birthday": "1990-04-12",
            "time_zone": "America/New_York",
            "attributes": { "favourite": "flat white" },
            "channel": "pos"
        });
        let enrolled = api
            .post_with_key("/v1/members", &club.pos, "enroll-erased-1", body.clone())
            .await;
        let id = enrolled.assert_status(201)["id"]
            .as_str()
            .unwrap()
            .to_owned();
        api.post(&format!("/v1/members/{id}/exit"), &club.admin, json!({}))
            .await
            .assert_status(200);
        let replay = api
            .post_with_key("/v1/members", &club.pos, "enroll-erased-1", body)
            .await;
        assert!(replay.replayed(), "[{}]", club.label());
        let replayed = replay.assert_status(201);
        assert_eq!(replayed["id"], id.as_str());
        for field in [
            "external_id",
            "name",
            "phone",
            "email",
            "birthday",
            "time_zone",
        ] {
            assert!(
                replayed[field].is_null(),
                "[{}] {field} replayed: {}",
                club.label(),
                replayed[field]
            );
        }
        assert_eq!(replayed["attributes"], json!({}));
        club.stop().await;
    }
}
