//! Authentication, authorization per scope, and tenant isolation.

use serde_json::{Value, json};

use crate::support::{Body, Club, clubs, purchase};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_key_or_a_bad_key_is_401() {
    for club in clubs().await {
        let api = &club.api;
        let none = api.send("GET", "/v1/members", None, None, Body::None).await;
        none.assert_problem(401, "unauthenticated");
        let wrong = api.get("/v1/members", "ptk_0123456789abcdef").await;
        wrong.assert_problem(401, "unauthenticated");
        let garbage = api.get("/v1/members", "not a key at all").await;
        garbage.assert_problem(401, "unauthenticated");
        // Authentication comes before the body is looked at.
        let post = api
            .send(
                "POST",
                "/v1/members",
                None,
                None,
                Body::Json(json!({ "junk": true })),
            )
            .await;
        post.assert_problem(401, "unauthenticated");
        // A revoked key stops working.
        let keys = club.engine.store().api_keys(club.tenant.id).await.unwrap();
        let read_key = keys.iter().find(|k| k.scope == "read").unwrap();
        assert!(
            club.engine
                .store()
                .revoke_api_key(club.tenant.id, read_key.id, "test", club.engine.now())
                .await
                .unwrap()
        );
        api.get("/v1/members", &club.read)
            .await
            .assert_problem(401, "unauthenticated");
        club.stop().await;
    }
}

/// Every route with the scopes that may call it. Ids are made up: an allowed call answers
/// anything but 401/403 (mostly 404), a refused one answers 403 before looking at anything.
fn routes() -> Vec<(
    &'static str,
    &'static str,
    Option<Value>,
    &'static [&'static str],
)> {
    const ALL: &[&str] = &["admin", "pos", "read"];
    const WRITE: &[&str] = &["admin", "pos"];
    const ADMIN: &[&str] = &["admin"];
    const READ: &[&str] = &["admin", "read"];
    vec![
        (
            "POST",
            "/v1/members",
            Some(json!({ "channel": "pos" })),
            WRITE,
        ),
        ("GET", "/v1/members", None, READ),
        ("GET", "/v1/members?phone=%2B12125550199", None, ALL),
        ("GET", "/v1/members?card=7000000000000005", None, ALL),
        ("GET", "/v1/members/mem_x", None, ALL),
        (
            "PATCH",
            "/v1/members/mem_x",
            Some(json!({ "name": "N" })),
            ADMIN,
        ),
        ("POST", "/v1/members/mem_x/exit", None, ADMIN),
        ("GET", "/v1/members/mem_x/balance", None, ALL),
        ("GET", "/v1/members/mem_x/ledger", None, READ),
        (
            "POST",
            "/v1/members/mem_x/adjustments",
            Some(json!({ "points": 1, "reason": "r" })),
            ADMIN,
        ),
        (
            "POST",
            "/v1/members/mem_x/transfers",
            Some(json!({ "to_member_id": "mem_y", "points": 1 })),
            ADMIN,
        ),
        (
            "POST",
            "/v1/members/mem_x/redemptions",
            Some(json!({ "points": 1 })),
            WRITE,
        ),
        ("GET", "/v1/redemptions/red_x", None, ALL),
        ("POST", "/v1/redemptions/red_x/capture", None, WRITE),
        ("POST", "/v1/redemptions/red_x/release", None, WRITE),
        (
            "POST",
            "/v1/purchases",
            Some(purchase("auth-doc", Some("mem_x"), 100)),
            WRITE,
        ),
        ("GET", "/v1/purchases/pur_x", None, ALL),
        (
            "POST",
            "/v1/purchases/pur_x/refunds",
            Some(json!({ "document_id": "r" })),
            WRITE,
        ),
        (
            "POST",
            "/v1/purchases/pur_x/attach",
            Some(json!({ "member_id": "mem_x" })),
            WRITE,
        ),
        (
            "POST",
            "/v1/events",
            Some(json!({ "member_id": "mem_x", "type": "review_written" })),
            WRITE,
        ),
        ("GET", "/v1/program", None, READ),
        ("POST", "/v1/cards/7000000000000005/replace", None, ADMIN),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_scope_reaches_exactly_its_routes() {
    for club in clubs().await {
        let keys = [
            ("admin", club.admin.as_str()),
            ("pos", club.pos.as_str()),
            ("read", club.read.as_str()),
        ];
        for (method, path, body, allowed) in routes() {
            for (scope, key) in keys {
                let body = body.clone().map_or(Body::None, Body::Json);
                let answer = club.api.send(method, path, Some(key), None, body).await;
                if allowed.contains(&scope) {
                    assert!(
                        answer.status != 401 && answer.status != 403,
                        "[{}] {scope} must reach {method} {path}: {}",
                        club.label(),
                        answer.text
                    );
                } else {
                    answer.assert_problem(403, "insufficient_scope");
                }
            }
        }
        // The program is replaced by admins only (an invalid text proves the call got in).
        for (scope, key) in keys {
            let answer = club.api.put_program(key, "not = [toml").await;
            if scope == "admin" {
                answer.assert_problem(422, "invalid_program");
            } else {
                answer.assert_problem(403, "insufficient_scope");
            }
        }
        club.stop().await;
    }
}

/// What the first club has, to be attacked with the second club's key.
struct Holdings {
    member: String,
    phone: String,
    card: String,
    purchase: String,
    anonymous: String,
    hold: String,
}

async fn holdings(club: &Club) -> Holdings {
    let api = &club.api;
    // Card numbers are per club: the second club's first member gets the same number as
    // this club's first. Fillers make this club's card a number the other club lacks.
    for filler in ["filler-1", "filler-2"] {
        club.enroll(filler).await;
    }
    let member = api
        .post(
            "/v1/members",
            &club.admin,
            json!({ "channel": "pos", "phone": "+12125550142", "email": "a@example.com", "external_id": "x-1" }),
        )
        .await
        .assert_status(201)
        .clone();
    let id = member["id"].as_str().unwrap().to_string();
    club.grant(&id, 300).await;
    let purchase_id = api
        .post(
            "/v1/purchases",
            &club.pos,
            purchase("iso-1", Some(&id), 1000),
        )
        .await
        .assert_status(201)["purchase_id"]
        .as_str()
        .unwrap()
        .to_string();
    let anonymous = api
        .post("/v1/purchases", &club.pos, purchase("iso-2", None, 1000))
        .await
        .assert_status(201)["purchase_id"]
        .as_str()
        .unwrap()
        .to_string();
    let hold = api
        .post(
            &format!("/v1/members/{id}/redemptions"),
            &club.pos,
            json!({ "points": 50, "hold": true }),
        )
        .await
        .assert_status(201)["id"]
        .as_str()
        .unwrap()
        .to_string();
    Holdings {
        member: id,
        phone: "%2B12125550142".into(),
        card: member["card_number"].as_str().unwrap().to_string(),
        purchase: purchase_id,
        anonymous,
        hold,
    }
}

/// Everything the first club's admin can see of its holdings.
async fn view(club: &Club, h: &Holdings) -> Vec<Value> {
    let api = &club.api;
    let mut seen = Vec::new();
    for path in [
        format!("/v1/members/{}", h.member),
        format!("/v1/members/{}/balance", h.member),
        format!("/v1/members/{}/ledger", h.member),
        format!("/v1/purchases/{}", h.purchase),
        format!("/v1/purchases/{}", h.anonymous),
        format!("/v1/redemptions/{}", h.hold),
        format!("/v1/members?card={}", h.card),
    ] {
        seen.push(api.get(&path, &club.admin).await.assert_status(200).clone());
    }
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_clubs_key_finds_nothing_of_this_club() {
    for club in clubs().await {
        let h = holdings(&club).await;
        let before = view(&club, &h).await;
        let api = &club.api;
        let stranger = api
            .post("/v1/members", &club.other, json!({ "channel": "pos" }))
            .await
            .assert_status(201)["id"]
            .as_str()
            .unwrap()
            .to_string();
        // Each call with the first club's id, and the same call with an id that exists
        // nowhere: the answers must be the same problem.
        let calls: Vec<(&str, String, String, Option<Value>)> = vec![
            (
                "GET",
                format!("/v1/members/{}", h.member),
                "/v1/members/mem_nowhere".into(),
                None,
            ),
            (
                "PATCH",
                format!("/v1/members/{}", h.member),
                "/v1/members/mem_nowhere".into(),
                Some(json!({ "name": "Mallory" })),
            ),
            (
                "POST",
                format!("/v1/members/{}/exit", h.member),
                "/v1/members/mem_nowhere/exit".into(),
                None,
            ),
            (
                "GET",
                format!("/v1/members/{}/balance", h.member),
                "/v1/members/mem_nowhere/balance".into(),
                None,
            ),
            (
                "GET",
                format!("/v1/members/{}/ledger", h.member),
                "/v1/members/mem_nowhere/ledger".into(),
                None,
            ),
            (
                "POST",
                format!("/v1/members/{}/adjustments", h.member),
                "/v1/members/mem_nowhere/adjustments".into(),
                Some(json!({ "points": -10, "reason": "theft" })),
            ),
            (
                "POST",
                format!("/v1/members/{}/transfers", h.member),
                "/v1/members/mem_nowhere/transfers".into(),
                Some(json!({ "to_member_id": stranger, "points": 10 })),
            ),
            (
                "POST",
                format!("/v1/members/{stranger}/transfers"),
                format!("/v1/members/{stranger}/transfers"),
                Some(json!({ "to_member_id": h.member, "points": 1 })),
            ),
            (
                "POST",
                format!("/v1/members/{}/redemptions", h.member),
                "/v1/members/mem_nowhere/redemptions".into(),
                Some(json!({ "points": 10 })),
            ),
            (
                "GET",
                format!("/v1/redemptions/{}", h.hold),
                "/v1/redemptions/red_nowhere".into(),
                None,
            ),
            (
                "POST",
                format!("/v1/redemptions/{}/capture", h.hold),
                "/v1/redemptions/red_nowhere/capture".into(),
                None,
            ),
            (
                "POST",
                format!("/v1/redemptions/{}/release", h.hold),
                "/v1/redemptions/red_nowhere/release".into(),
                None,
            ),
            (
                "GET",
                format!("/v1/purchases/{}", h.purchase),
                "/v1/purchases/pur_nowhere".into(),
                None,
            ),
            (
                "POST",
                format!("/v1/purchases/{}/refunds", h.purchase),
                "/v1/purchases/pur_nowhere/refunds".into(),
                Some(json!({ "document_id": "steal-1" })),
            ),
            (
                "POST",
                format!("/v1/purchases/{}/attach", h.anonymous),
                "/v1/purchases/pur_nowhere/attach".into(),
                Some(json!({ "member_id": stranger })),
            ),
            (
                "POST",
                "/v1/purchases".into(),
                "/v1/purchases".into(),
                Some(purchase("steal-2", Some(&h.member), 100)),
            ),
            (
                "POST",
                format!("/v1/cards/{}/replace", h.card),
                "/v1/cards/7000000000000005/replace".into(),
                None,
            ),
        ];
        for (method, theirs, nowhere, body) in calls {
            let nowhere_body = body.clone().map(|b| {
                // The made-up twin of a body that names the first club's member.
                // (with its own document ids: a refused document id is remembered too).
                let text = b
                    .to_string()
                    .replace(&h.member, "mem_nowhere")
                    .replace("steal-", "twin-");
                serde_json::from_str(&text).unwrap()
            });
            let attack = api
                .send(
                    method,
                    &theirs,
                    Some(&club.other),
                    None,
                    body.map_or(Body::None, Body::Json),
                )
                .await;
            let control = api
                .send(
                    method,
                    &nowhere,
                    Some(&club.other),
                    None,
                    nowhere_body.map_or(Body::None, Body::Json),
                )
                .await;
            assert_eq!(
                attack.status,
                404,
                "[{}] {method} {theirs}: {}",
                club.label(),
                attack.text
            );
            assert_eq!(
                (attack.status, attack.code().to_string()),
                (control.status, control.code().to_string()),
                "{method} {theirs} must answer like an id that does not exist"
            );
        }
        // Look-ups and lists show nothing of the first club.
        for path in [
            format!("/v1/members?phone={}", h.phone),
            "/v1/members?email=a%40example.com".to_string(),
            "/v1/members?external_id=x-1".to_string(),
            format!("/v1/members?card={}", h.card),
        ] {
            let found = api.get(&path, &club.other).await;
            assert_eq!(found.assert_status(200)["data"], json!([]), "{path}");
        }
        let listed = api.get("/v1/members?limit=5", &club.other).await;
        let ids: Vec<&str> = listed.assert_status(200)["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["id"].as_str().unwrap())
            .collect();
        assert_eq!(ids, vec![stranger.as_str()]);
        // And nothing of the first club changed.
        assert_eq!(view(&club, &h).await, before, "[{}]", club.label());
        club.stop().await;
    }
}
