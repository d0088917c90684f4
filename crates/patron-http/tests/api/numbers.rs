//! Numbers and phone numbers over HTTP (issue 18): quantities in Persian and Arabic-Indic
//! digits are numbers, exponents and other odd forms are refused; phone numbers are checked
//! against their country's numbering plan, national numbers are read in the program's
//! country, and a refusal suggests an example from that country.

use patron_engine::keys::Scope;
use serde_json::json;

use crate::hygiene::{assert_invalid, member_count};
use crate::support::{Club, clubs, purchase};

const PHARMACY: &str = include_str!("../../../../examples/programs/israeli-pharmacy.toml");
const PERSIAN: &str = include_str!("../../../../examples/programs/persian-retail.toml");

/// An admin key of a second club on the same server, running `source`.
async fn club_running(club: &Club, name: &str, source: &str) -> String {
    let (tenant, _, _) = club
        .engine
        .apply_program(name, source, "test")
        .await
        .unwrap();
    club.engine
        .create_api_key(&tenant, Scope::Admin, "admin", "test")
        .await
        .unwrap()
        .1
}

fn with_quantity(document_id: &str, member: &str, quantity: &str) -> serde_json::Value {
    let mut body = purchase(document_id, Some(member), 500);
    body["lines"][0]["quantity"] = json!(quantity);
    body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quantities_in_persian_or_arabic_indic_digits_are_numbers() {
    for club in clubs().await {
        let api = &club.api;
        let member = club.enroll("digits").await;
        for (document, quantity, total, stored) in [
            ("fa-1", "۲", 1000, "2"),
            ("ar-1", "٣", 1500, "3"),
            ("fa-2", "۱٫۵", 750, "1.5"),
            ("fa-3", "۰.۵", 250, "0.5"),
        ] {
            let posted = api
                .post(
                    "/v1/purchases",
                    &club.pos,
                    with_quantity(document, &member, quantity),
                )
                .await;
            let id = posted.assert_status(201)["purchase_id"]
                .as_str()
                .unwrap()
                .to_string();
            let fetched = api.get(&format!("/v1/purchases/{id}"), &club.pos).await;
            let fetched = fetched.assert_status(200);
            assert_eq!(fetched["total_minor"], total, "{quantity}");
            assert_eq!(fetched["lines"][0]["quantity"], stored, "{quantity}");
        }
        club.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quantities_with_exponents_or_other_odd_forms_are_refused_and_nothing_is_written() {
    for club in clubs().await {
        let api = &club.api;
        let member = club.enroll("odd").await;
        for quantity in [
            "1e3", "1E3", "2e-1", "+1", " 1", "1 ", "1_000", "1,000", "1٬000", "NaN", "nan",
            "Infinity", "inf", "0x10", "", "1.", ".5", "1.2.3", "--1", "١e٣",
        ] {
            let refused = api
                .post(
                    "/v1/purchases",
                    &club.pos,
                    with_quantity("odd-1", &member, quantity),
                )
                .await;
            assert_invalid(&refused, "lines[0].quantity", quantity);
            if quantity.contains(['e', 'E']) && !quantity.contains('n') {
                assert!(
                    refused.body["detail"]
                        .as_str()
                        .unwrap()
                        .contains("exponent"),
                    "{quantity}: {}",
                    refused.text
                );
            }
        }
        assert_eq!(club.available(&member).await, 0, "[{}]", club.label());
        // Nothing claimed the document: the same id posts once it is well-formed.
        let posted = api
            .post(
                "/v1/purchases",
                &club.pos,
                with_quantity("odd-1", &member, "1"),
            )
            .await;
        posted.assert_status(201);
        assert!(!posted.replayed());

        let id = posted.body["purchase_id"].as_str().unwrap().to_string();
        let refund = |document: &str, quantity: &str| json!({ "document_id": document, "lines": [{ "line_no": 1, "quantity": quantity }] });
        for quantity in ["1e0", "+1", "1_0", "NaN"] {
            let refused = api
                .post(
                    &format!("/v1/purchases/{id}/refunds"),
                    &club.pos,
                    refund("ret-1", quantity),
                )
                .await;
            assert_invalid(&refused, "lines[0].quantity", quantity);
        }
        let refunded = api
            .post(
                &format!("/v1/purchases/{id}/refunds"),
                &club.pos,
                refund("ret-1", "۱"),
            )
            .await;
        assert_eq!(refunded.assert_status(201)["amount_minor"], 500);
        club.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn phone_numbers_are_checked_against_their_countrys_numbering_plan() {
    for club in clubs().await {
        let api = &club.api;
        let before = member_count(&club).await;
        for phone in [
            "+10005550100",
            "+1 212 555 010",
            "+98 912 123 456",
            "+999 1234 5678",
            "+1 (212) 555-0101 ext 7",
        ] {
            let refused = api
                .post(
                    "/v1/members",
                    &club.admin,
                    json!({ "phone": phone, "channel": "pos" }),
                )
                .await;
            assert_invalid(&refused, "phone", phone);
        }
        assert_eq!(member_count(&club).await, before, "[{}]", club.label());

        for (phone, stored) in [
            ("+1 (212) 555-0101", "+12125550101"),
            ("+۹۸ ۹۱۲ ۱۲۳ ۴۵۶۷", "+989121234567"),
            ("00972 50-234-5678", "+972502345678"),
        ] {
            let enrolled = api
                .post(
                    "/v1/members",
                    &club.admin,
                    json!({ "phone": phone, "channel": "pos" }),
                )
                .await;
            assert_eq!(enrolled.assert_status(201)["phone"], stored, "{phone}");
        }
        club.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn national_phone_numbers_are_read_in_the_programs_country() {
    for club in clubs().await {
        let api = &club.api;
        let pharmacy = club_running(&club, "pharmacy", PHARMACY).await;
        let persian = club_running(&club, "persian", PERSIAN).await;
        for (key, phone, stored) in [
            (&club.admin, "(212) 555-0101", "+12125550101"),
            (&pharmacy, "050-234-5678", "+972502345678"),
            (&persian, "09121234567", "+989121234567"),
            (&persian, "۰۹۱۲ ۷۶۵ ۴۳۲۱", "+989127654321"),
        ] {
            let enrolled = api
                .post(
                    "/v1/members",
                    key,
                    json!({ "phone": phone, "channel": "pos" }),
                )
                .await;
            assert_eq!(enrolled.assert_status(201)["phone"], stored, "{phone}");
        }
        // A look-up reads the number the same way.
        let found = api
            .get("/v1/members?phone=%28212%29%20555-0101", &club.admin)
            .await;
        assert_eq!(found.assert_status(200)["data"][0]["phone"], "+12125550101");
        club.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_phone_refusal_suggests_an_example_from_the_clubs_country() {
    for club in clubs().await {
        let api = &club.api;
        let pharmacy = club_running(&club, "pharmacy", PHARMACY).await;
        let persian = club_running(&club, "persian", PERSIAN).await;
        for (key, country_code, others) in [
            (&club.admin, "+1 ", ["+98", "+972"]),
            (&pharmacy, "+972", ["+98", "+1 "]),
            (&persian, "+98", ["+972", "+1 "]),
        ] {
            for phone in ["123", "call me"] {
                let refused = api
                    .post(
                        "/v1/members",
                        key,
                        json!({ "phone": phone, "channel": "pos" }),
                    )
                    .await;
                assert_invalid(&refused, "phone", phone);
                let detail = refused.body["detail"].as_str().unwrap();
                assert!(detail.contains(country_code), "{detail}");
                for other in others {
                    assert!(!detail.contains(other), "{detail}");
                }
            }
        }
        club.stop().await;
    }
}
