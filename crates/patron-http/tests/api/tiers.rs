//! Tiers over HTTP: the balance view's tier (name, multiplier, benefits in the member's
//! language, floor) and `tier_review`; the manual floor (`PUT`/`DELETE /v1/members/{id}/tier`)
//! with its scopes, problems, idempotency, audit and tenant isolation.

use serde_json::json;

use crate::support::{Body, Club, clubs, purchase};

const PERSIAN: &str = include_str!("../../../../examples/programs/persian-retail.toml");

async fn put_tier(
    club: &Club,
    member: &str,
    key: &str,
    idempotency_key: Option<&str>,
    body: serde_json::Value,
) -> crate::support::Answer {
    club.api
        .send(
            "PUT",
            &format!("/v1/members/{member}/tier"),
            Some(key),
            idempotency_key,
            Body::Json(body),
        )
        .await
}

async fn delete_tier(
    club: &Club,
    member: &str,
    key: &str,
    idempotency_key: Option<&str>,
) -> crate::support::Answer {
    club.api
        .send(
            "DELETE",
            &format!("/v1/members/{member}/tier?reason=Review%20done"),
            Some(key),
            idempotency_key,
            Body::None,
        )
        .await
}

#[tokio::test]
async fn the_balance_shows_the_tier_benefits_floor_and_review() {
    for club in clubs().await {
        let api = &club.api;
        let member = club.enroll("tier-1").await;
        let balance = api
            .get(&format!("/v1/members/{member}/balance"), &club.pos)
            .await;
        let balance = balance.assert_status(200);
        assert_eq!(balance["tier"]["code"], "regular");
        assert_eq!(balance["tier"]["name"], "Regular");
        assert_eq!(balance["tier"]["multiplier"], "1");
        assert_eq!(balance["tier"]["benefits"], json!([]));
        assert_eq!(balance["tier"]["floor"], json!(null));
        assert_eq!(
            balance["tier_review"],
            json!(null),
            "the lowest tier has no review"
        );

        // Gold through 30 June 2026, New York time.
        let set = put_tier(
            &club,
            &member,
            &club.admin,
            Some("floor-1"),
            json!({ "tier": "gold", "until": "2026-06-30", "reason": "Barista's mistake" }),
        )
        .await;
        let body = set.assert_status(200).clone();
        assert!(!set.replayed());
        assert_eq!(body["tier"], "gold");
        assert_eq!(body["raised_from"], "regular");
        assert_eq!(body["floor"]["until"], "2026-07-01T04:00:00Z");
        assert_eq!(body["floor"]["reason"], "Barista's mistake");
        assert!(
            body["floor"]["set_by"]
                .as_str()
                .unwrap()
                .starts_with("api_key:")
        );
        let again = put_tier(
            &club,
            &member,
            &club.admin,
            Some("floor-1"),
            json!({ "tier": "gold", "until": "2026-06-30", "reason": "Barista's mistake" }),
        )
        .await;
        again.assert_status(200);
        assert!(again.replayed());
        assert_eq!(again.body, body);

        api.post(
            "/v1/purchases",
            &club.pos,
            purchase("t-1", Some(&member), 1000),
        )
        .await
        .assert_status(201);
        let balance = api
            .get(&format!("/v1/members/{member}/balance"), &club.read)
            .await;
        let balance = balance.assert_status(200);
        let tier = &balance["tier"];
        assert_eq!(tier["code"], "gold", "{balance}");
        assert_eq!(tier["name"], "Gold");
        assert_eq!(tier["multiplier"], "1.25");
        assert_eq!(tier["benefits"][0]["kind"], "free_refills");
        assert_eq!(
            tier["benefits"][1]["name"],
            "A drink of your choice on your birthday"
        );
        assert_eq!(tier["floor"]["tier"], "gold");
        // One visit in 2026 of the 30 gold needs: after 1 January + 90 days, regular.
        let review = &balance["tier_review"];
        assert_eq!(review["at"], "2027-04-01T04:00:00Z", "{balance}");
        assert_eq!(review["date"], "2027-04-01");
        assert_eq!(review["to"], "regular");
        assert_eq!(review["to_name"], "Regular");
        assert_eq!(review["needed"], 29);
        assert_eq!(review["basis"], "visits");

        // Removing the floor, twice: the same answer, no floor.
        let removed = delete_tier(&club, &member, &club.admin, Some("end-1")).await;
        assert_eq!(removed.assert_status(200)["floor"], json!(null));
        delete_tier(&club, &member, &club.admin, None)
            .await
            .assert_status(200);
        let audit = club
            .engine
            .store()
            .audit_log(club.tenant.id, Some(&format!("member:{member}")), 10)
            .await
            .unwrap();
        let actions: Vec<&str> = audit.iter().map(|entry| entry.action.as_str()).collect();
        assert_eq!(
            actions
                .iter()
                .filter(|a| a.starts_with("member.tier_floor"))
                .count(),
            2,
            "{actions:?}"
        );
        let balance = api
            .get(&format!("/v1/members/{member}/balance"), &club.admin)
            .await;
        assert_eq!(balance.assert_status(200)["tier"]["floor"], json!(null));
        club.stop().await;
    }
}

#[tokio::test]
async fn the_floor_is_for_admins_and_refuses_bad_input() {
    for club in clubs().await {
        let member = club.enroll("tier-2").await;
        let body = json!({ "tier": "gold", "reason": "vip" });
        for key in [&club.pos, &club.read] {
            put_tier(&club, &member, key, None, body.clone())
                .await
                .assert_problem(403, "insufficient_scope");
            delete_tier(&club, &member, key, None)
                .await
                .assert_problem(403, "insufficient_scope");
        }
        let unknown = put_tier(
            &club,
            &member,
            &club.admin,
            None,
            json!({ "tier": "platinum", "reason": "vip" }),
        )
        .await;
        unknown.assert_problem(422, "invalid_value");
        assert_eq!(unknown.body["field"], "tier");
        assert!(unknown.body["detail"].as_str().unwrap().contains("reserve"));
        let blank = put_tier(
            &club,
            &member,
            &club.admin,
            None,
            json!({ "tier": "gold", "reason": " " }),
        )
        .await;
        blank.assert_problem(422, "invalid_value");
        assert_eq!(blank.body["field"], "reason");
        let missing = put_tier(&club, &member, &club.admin, None, json!({ "tier": "gold" })).await;
        missing.assert_problem(400, "missing_field");
        assert_eq!(missing.body["field"], "reason");
        let past = put_tier(
            &club,
            &member,
            &club.admin,
            None,
            json!({ "tier": "gold", "reason": "vip", "until": "2020-01-01T00:00:00Z" }),
        )
        .await;
        past.assert_problem(422, "invalid_value");
        assert_eq!(past.body["field"], "until");
        put_tier(
            &club,
            &member,
            &club.admin,
            None,
            json!({ "tier": "gold", "reason": "vip", "colour": "gold" }),
        )
        .await
        .assert_problem(400, "unknown_field");
        put_tier(&club, "mem_nobody", &club.admin, None, body.clone())
            .await
            .assert_problem(404, "member_not_found");
        // Nothing was written.
        let balance = club
            .api
            .get(&format!("/v1/members/{member}/balance"), &club.admin)
            .await;
        let balance = balance.assert_status(200);
        assert_eq!(balance["tier"]["code"], "regular");
        assert_eq!(balance["tier"]["floor"], json!(null));
        let audit = club
            .engine
            .store()
            .audit_log(club.tenant.id, Some(&format!("member:{member}")), 10)
            .await
            .unwrap();
        assert!(audit.is_empty(), "{audit:?}");
        club.stop().await;
    }
}

#[tokio::test]
async fn another_club_cannot_see_or_set_the_tier() {
    for club in clubs().await {
        let member = club.enroll("tier-3").await;
        put_tier(
            &club,
            &member,
            &club.other,
            None,
            json!({ "tier": "gold", "reason": "vip" }),
        )
        .await
        .assert_problem(404, "member_not_found");
        delete_tier(&club, &member, &club.other, None)
            .await
            .assert_problem(404, "member_not_found");
        club.api
            .get(&format!("/v1/members/{member}/balance"), &club.other)
            .await
            .assert_problem(404, "member_not_found");
        let balance = club
            .api
            .get(&format!("/v1/members/{member}/balance"), &club.admin)
            .await;
        assert_eq!(balance.assert_status(200)["tier"]["code"], "regular");
        club.stop().await;
    }
}

#[tokio::test]
async fn names_and_benefits_come_in_the_members_language() {
    for club in clubs().await {
        club.api
            .put_program(&club.admin, PERSIAN)
            .await
            .assert_status(200);
        let persian = club.enroll("fa-1").await;
        let english = club
            .api
            .post(
                "/v1/members",
                &club.admin,
                json!({ "external_id": "en-1", "channel": "pos", "locale": "en" }),
            )
            .await
            .assert_status(201)["id"]
            .as_str()
            .unwrap()
            .to_string();
        for member in [&persian, &english] {
            put_tier(
                &club,
                member,
                &club.admin,
                None,
                json!({ "tier": "gold", "reason": "VIP" }),
            )
            .await
            .assert_status(200);
        }
        let tier_of = async |member: &str| {
            club.api
                .get(&format!("/v1/members/{member}/balance"), &club.pos)
                .await
                .assert_status(200)["tier"]
                .clone()
        };
        let fa = tier_of(&persian).await;
        assert_eq!(fa["name"], "طلایی");
        assert_eq!(fa["benefits"][1]["name"], "صندوق ویژه");
        assert_eq!(fa["benefits"][1]["kind"], "priority_service");
        let en = tier_of(&english).await;
        assert_eq!(en["name"], "Gold");
        assert_eq!(en["benefits"][1]["name"], "Priority checkout");
        // A floor for good: no review.
        let balance = club
            .api
            .get(&format!("/v1/members/{english}/balance"), &club.pos)
            .await;
        assert_eq!(balance.assert_status(200)["tier_review"], json!(null));
        club.stop().await;
    }
}
