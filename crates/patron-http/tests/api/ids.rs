//! Opaque, per-club ids: the ids one club sees of its ledger entries, coupon redemptions and
//! analytics runs say nothing of another club's activity on the same deployment, an id of one
//! club is unknown to another, and the OpenAPI document types every id as a string.

use serde_json::{Value, json};

use crate::support::{Club, clubs, contract};

fn is_opaque(id: &str, prefix: &str) -> bool {
    id.strip_prefix(prefix)
        .and_then(|rest| rest.strip_prefix('_'))
        .is_some_and(|digits| {
            digits.len() == 16
                && digits
                    .bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        })
}

/// The 64 bits behind an opaque id, to compare ids as a client could.
fn bits(id: &str) -> u64 {
    let (_, digits) = id.split_once('_').unwrap();
    u64::from_str_radix(digits, 16).unwrap()
}

async fn enroll_with(club: &Club, key: &str, external_id: &str) -> String {
    club.api
        .post(
            "/v1/members",
            key,
            json!({ "external_id": external_id, "channel": "pos" }),
        )
        .await
        .assert_status(201)["id"]
        .as_str()
        .unwrap()
        .to_string()
}

async fn adjust(club: &Club, key: &str, member: &str) -> Value {
    club.api
        .post(
            &format!("/v1/members/{member}/adjustments"),
            key,
            json!({ "points": 10, "reason": "goodwill" }),
        )
        .await
        .assert_status(201)
        .clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consecutive_ledger_entries_of_a_club_have_ids_that_neither_count_nor_order() {
    for club in clubs().await {
        let l = club.label();
        let api = &club.api;
        let ours = club.enroll("ours").await;
        let theirs = enroll_with(&club, &club.other, "theirs").await;
        // The other club posts between two of ours: with shared counters, the gaps between
        // our ids would count its postings.
        let mut ids = Vec::new();
        for _ in 0..12 {
            let answer = adjust(&club, &club.admin, &ours).await;
            let id = answer["transfer_id"]
                .as_str()
                .expect("a string id")
                .to_string();
            assert!(is_opaque(&id, "txn"), "[{l}] {id}");
            ids.push(id);
            adjust(&club, &club.other, &theirs).await;
        }
        let values: Vec<u64> = ids.iter().map(|id| bits(id)).collect();
        let mut distinct = values.clone();
        distinct.sort_unstable();
        distinct.dedup();
        assert_eq!(distinct.len(), values.len(), "[{l}] {ids:?}");
        assert!(
            !values.windows(2).all(|w| w[0] < w[1]) && !values.windows(2).all(|w| w[0] > w[1]),
            "[{l}] consecutive entries have ordered ids: {ids:?}"
        );

        // The ledger shows the same ids, newest first, and its cursors name nothing but the
        // last entry of their page.
        let mut seen = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let path = match &cursor {
                Some(cursor) => format!("/v1/members/{ours}/ledger?cursor={cursor}"),
                None => format!("/v1/members/{ours}/ledger"),
            };
            let page = api.get(&path, &club.read).await.assert_status(200).clone();
            let entries = page["data"].as_array().unwrap();
            for entry in entries {
                seen.push(entry["id"].as_str().expect("a string id").to_string());
            }
            match page["next_cursor"].as_str() {
                Some(next) => {
                    let position = String::from_utf8(hex::decode(next).unwrap()).unwrap();
                    let last = entries.last().unwrap()["id"].as_str().unwrap();
                    assert_eq!(position, format!("ledger:{last}"), "[{l}]");
                    cursor = Some(next.to_string());
                }
                None => break,
            }
        }
        ids.reverse();
        assert_eq!(seen, ids, "[{l}]");

        let other = club.enroll("friend").await;
        let transfer = api
            .post(
                &format!("/v1/members/{ours}/transfers"),
                &club.admin,
                json!({ "to_member_id": other, "points": 5 }),
            )
            .await;
        let transfer_id = transfer.assert_status(201)["transfer_id"].as_str().unwrap();
        assert!(is_opaque(transfer_id, "txn"), "[{l}] {transfer_id}");
        club.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_rfv_run_id_of_one_club_is_not_found_in_another() {
    for club in clubs().await {
        let l = club.label();
        let api = &club.api;
        let other_tenant = club.engine.tenant("other").await.unwrap();
        for (key, tenant) in [(&club.admin, &club.tenant), (&club.other, &other_tenant)] {
            let member = enroll_with(&club, key, "buyer").await;
            api.post(
                "/v1/purchases",
                key,
                crate::support::purchase("d-1", Some(&member), 450),
            )
            .await
            .assert_status(201);
            club.engine.run_segments(tenant, None).await.unwrap();
        }
        let ours = api.get("/v1/analytics/rfv", &club.read).await;
        let ours = ours.assert_status(200)["run_id"]
            .as_str()
            .expect("a string id")
            .to_string();
        assert!(is_opaque(&ours, "rfv"), "[{l}] {ours}");
        let again = api
            .get(&format!("/v1/analytics/rfv?run={ours}"), &club.read)
            .await;
        assert_eq!(again.assert_status(200)["run_id"], ours.as_str(), "[{l}]");

        let theirs = api.get("/v1/analytics/rfv", &club.other).await;
        let theirs = theirs.assert_status(200)["run_id"]
            .as_str()
            .unwrap()
            .to_string();
        assert_ne!(theirs, ours, "[{l}]");
        // Another club's id, a made-up one and the integer form are all simply unknown.
        for run in [theirs.as_str(), "rfv_0123456789abcdef", "1", "rfv_1"] {
            api.get(&format!("/v1/analytics/rfv?run={run}"), &club.read)
                .await
                .assert_problem(404, "no_rfv_run");
        }
        api.get(&format!("/v1/analytics/rfv?run={ours}"), &club.other)
            .await
            .assert_problem(404, "no_rfv_run");
        club.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_coupon_redemption_and_its_release_answer_one_opaque_id() {
    for club in clubs().await {
        let l = club.label();
        let api = &club.api;
        api.post(
            "/v1/promotions",
            &club.admin,
            json!({
                "id": "spring",
                "name": "Spring sale",
                "benefit": { "kind": "discount", "amount_minor": 150 },
                "prefix": "SPRNG"
            }),
        )
        .await
        .assert_status(201);
        let batch = api
            .post(
                "/v1/promotions/spring/codes",
                &club.admin,
                json!({ "count": 1, "return_codes": true }),
            )
            .await;
        let code = batch.assert_status(201)["codes"][0]
            .as_str()
            .unwrap()
            .to_string();
        let redeemed = api
            .post(
                &format!("/v1/coupons/{code}/redeem"),
                &club.pos,
                json!({ "order_id": "o-1" }),
            )
            .await;
        let id = redeemed.assert_status(200)["redemption_id"]
            .as_str()
            .expect("a string id")
            .to_string();
        assert!(is_opaque(&id, "cpr"), "[{l}] {id}");
        let released = api
            .post(
                &format!("/v1/coupons/{code}/release"),
                &club.pos,
                json!({ "order_id": "o-1" }),
            )
            .await;
        assert_eq!(
            released.assert_status(200)["redemption_id"],
            id.as_str(),
            "[{l}]"
        );
        club.stop().await;
    }
}

/// Every schema reachable from `schema`, with `$ref`s resolved and alternatives flattened.
fn leaves<'a>(document: &'a Value, schema: &'a Value) -> Vec<&'a Value> {
    if let Some(reference) = schema["$ref"].as_str() {
        let name = reference.trim_start_matches("#/components/schemas/");
        return leaves(document, &document["components"]["schemas"][name]);
    }
    for combinator in ["oneOf", "anyOf", "allOf"] {
        if let Some(options) = schema[combinator].as_array() {
            return options.iter().flat_map(|s| leaves(document, s)).collect();
        }
    }
    vec![schema]
}

fn is_id_name(name: &str) -> bool {
    name == "id" || name.ends_with("_id") || name == "run" || name.ends_with("cursor")
}

/// Whether a schema admits strings (and perhaps null) and nothing else.
fn is_string(document: &Value, schema: &Value) -> bool {
    leaves(document, schema).iter().all(|leaf| {
        let types: Vec<&str> = match &leaf["type"] {
            Value::String(t) => vec![t.as_str()],
            Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        };
        !types.is_empty() && types.iter().all(|t| *t == "string" || *t == "null")
    })
}

#[test]
fn every_id_the_openapi_document_describes_is_a_string() {
    let contract = contract();
    let document = contract.document();
    let mut not_strings = Vec::new();
    for (name, schema) in document["components"]["schemas"].as_object().unwrap() {
        for (property, value) in schema["properties"].as_object().into_iter().flatten() {
            if is_id_name(property) && !is_string(document, value) {
                not_strings.push(format!("{name}.{property}"));
            }
        }
    }
    for (path, item) in document["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            for parameter in operation["parameters"].as_array().into_iter().flatten() {
                let name = parameter["name"].as_str().unwrap();
                if is_id_name(name) && !is_string(document, &parameter["schema"]) {
                    not_strings.push(format!("{method} {path} ?{name}"));
                }
            }
        }
    }
    assert!(
        not_strings.is_empty(),
        "ids that are not strings: {not_strings:?}"
    );
}

mod codec {
    use patron_engine::model::IdKey;
    use patron_http::ids::{ClubIds, IdKind};
    use proptest::prelude::*;

    const KINDS: [IdKind; 4] = [
        IdKind::Transfer,
        IdKind::CouponRedemption,
        IdKind::RfvRun,
        IdKind::ClvRun,
    ];

    fn kind() -> impl Strategy<Value = IdKind> {
        (0..KINDS.len()).prop_map(|i| KINDS[i])
    }

    proptest! {
        #[test]
        fn an_opaque_id_decodes_to_its_key_and_reads_differently_in_another_club(
            ours in any::<[u8; 32]>(),
            theirs in any::<[u8; 32]>(),
            raw in any::<i64>(),
            kind in kind(),
        ) {
            prop_assume!(ours != theirs);
            let ours = ClubIds::new(&IdKey::from_bytes(ours));
            let theirs = ClubIds::new(&IdKey::from_bytes(theirs));
            let id = ours.encode(kind, raw);
            prop_assert!(super::is_opaque(&id, kind.prefix()), "{}", id);
            prop_assert_eq!(ours.decode(kind, &id), Some(raw));
            prop_assert_ne!(theirs.encode(kind, raw), id.clone());
            prop_assert_ne!(theirs.decode(kind, &id), Some(raw));
            for other in KINDS.into_iter().filter(|k| *k != kind) {
                prop_assert_eq!(ours.decode(other, &id), None);
            }
        }

        #[test]
        fn neighbouring_keys_of_a_club_have_ids_that_neither_count_nor_order(
            key in any::<[u8; 32]>(),
            raw in 0..i64::MAX - 4,
        ) {
            let ids = ClubIds::new(&IdKey::from_bytes(key));
            let values: Vec<u64> = (raw..raw + 4)
                .map(|n| super::bits(&ids.encode(IdKind::Transfer, n)))
                .collect();
            let steps: Vec<u64> = values.windows(2).map(|w| w[1].wrapping_sub(w[0])).collect();
            prop_assert!(steps.iter().any(|s| *s != steps[0]), "{:?}", values);
        }
    }

    #[test]
    fn only_the_issued_form_of_an_id_decodes() {
        let ids = ClubIds::new(&IdKey::from_bytes([7; 32]));
        let id = ids.encode(IdKind::Transfer, 42);
        assert_eq!(ids.decode(IdKind::Transfer, &id), Some(42));
        let digits = id.trim_start_matches("txn_");
        for text in [
            id.to_uppercase(),
            format!("txn_{}", digits.to_uppercase()),
            format!("txn{digits}"),
            format!("txn_{}", &digits[1..]),
            format!("txn_{digits}0"),
            format!(" {id}"),
            format!("cpr_{digits}"),
            "42".to_string(),
            String::new(),
        ] {
            assert_eq!(ids.decode(IdKind::Transfer, &text), None, "{text:?}");
        }
    }
}
