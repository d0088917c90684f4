//! The example programs of `examples/programs/` run as their comments say.

use patron_engine::{PurchaseLineRequest, PurchaseRequest};

use crate::support::{COFFEE, PERSIAN, PHARMACY, clubs, refund_request};

#[tokio::test]
async fn a_purchase_earns_points_and_a_refund_takes_them_back() {
    for club in clubs(&COFFEE).await {
        let member = club.enroll("m-1").await;
        let receipt = club
            .engine
            .post_purchase(
                &club.tenant,
                &club.purchase("doc-1", Some(&member), 1000, "USD"),
                None,
            )
            .await
            .unwrap()
            .value;
        assert_eq!(
            receipt.points,
            20,
            "[{}] 2 beans per dollar on $10",
            club.label()
        );
        assert_eq!(receipt.points_state, "posted");
        assert_eq!(
            club.engine
                .balance(&club.tenant, &member)
                .await
                .unwrap()
                .available,
            20
        );
        let refund = patron_engine::RefundRequest {
            document_id: "ret-1".into(),
            lines: None,
            occurred_at: None,
        };
        let refunded = club
            .engine
            .refund(&club.tenant, &receipt.purchase_id, &refund, None)
            .await
            .unwrap()
            .value;
        assert_eq!(refunded.clawed_back_points, 20);
        assert_eq!(
            club.engine
                .balance(&club.tenant, &member)
                .await
                .unwrap()
                .available,
            0
        );
        club.verify().await;
        club.db.cleanup().await;
    }
}

#[tokio::test]
async fn the_persian_retail_program_earns_a_point_per_100000_rials_above_its_minimum() {
    for club in clubs(PERSIAN).await {
        let member = club.enroll("m-1").await;
        let small = club.purchase("doc-1", Some(&member), 400_000, "IRR");
        let receipt = club
            .engine
            .post_purchase(&club.tenant, &small, None)
            .await
            .unwrap()
            .value;
        assert_eq!(
            receipt.points,
            0,
            "[{}] under the 500,000-rial minimum",
            club.label()
        );
        let big = club.purchase("doc-2", Some(&member), 2_590_000, "IRR");
        let receipt = club
            .engine
            .post_purchase(&club.tenant, &big, None)
            .await
            .unwrap()
            .value;
        assert_eq!(
            (receipt.points, receipt.points_state.as_str()),
            (25, "pending"),
            "[{}] 25 points, not 26, for a week",
            club.label()
        );
        assert_eq!(receipt.tier.unwrap().code, "bronze");
        club.advance_hours(7 * 24).await;
        assert_eq!(club.available(&member).await, 25);
        club.verify().await;
        club.db.cleanup().await;
    }
}

#[tokio::test]
async fn the_pharmacy_program_earns_nothing_on_prescriptions_and_cancels_pending_points_on_return()
{
    for club in clubs(PHARMACY).await {
        let member = club.enroll("m-1").await;
        let line = |sku: &str, category: &str, unit_price_minor| PurchaseLineRequest {
            sku: sku.into(),
            category: category.into(),
            quantity: "1".into(),
            unit_price_minor,
            discount_minor: 0,
        };
        let request = PurchaseRequest {
            document_id: "doc-1".into(),
            member_id: Some(member.clone()),
            store_id: "tel-aviv-1".into(),
            channel: "pos".into(),
            occurred_at: None,
            currency: "ILS".into(),
            lines: vec![
                line("RX-1", "prescription", 5000),
                line("SPF-50", "cosmetics", 1990),
            ],
        };
        let receipt = club
            .engine
            .post_purchase(&club.tenant, &request, None)
            .await
            .unwrap()
            .value;
        assert_eq!(
            (receipt.points, receipt.points_state.as_str()),
            (19, "pending"),
            "[{}] 19.90 ₪ of cosmetics earn 19",
            club.label()
        );
        let refund = club
            .engine
            .refund(
                &club.tenant,
                &receipt.purchase_id,
                &refund_request("ret-1", None),
                None,
            )
            .await
            .unwrap()
            .value;
        assert_eq!(
            (refund.amount_minor, refund.reduced_pending_points),
            (6990, 19)
        );
        club.advance_hours(15 * 24).await;
        assert_eq!(
            club.available(&member).await,
            0,
            "[{}] cancelled while pending",
            club.label()
        );
        club.verify().await;
        club.db.cleanup().await;
    }
}

/// A member's purchase uses the engine's cached program and checks its version inside the
/// unit of work: a version applied by another process (here a second engine on the same
/// database) is the one the next purchase earns under, with nothing written under the old.
#[tokio::test]
async fn a_program_applied_by_another_process_is_used_by_the_next_purchase() {
    use std::sync::Arc;

    use crate::support::{program, start};

    for club in clubs(&program(0, "policy = \"never\"", "unlimited", "forfeit")).await {
        let member = club.enroll("m-1").await;
        let first = club
            .engine
            .post_purchase(
                &club.tenant,
                &club.purchase("doc-1", Some(&member), 1000, "USD"),
                None,
            )
            .await
            .unwrap()
            .value;
        assert_eq!(first.points, 10, "[{}] 1 point per dollar", club.label());
        // Another process applies a version that earns 3 per dollar.
        let other = patron_engine::Engine::new(
            club.db.store.clone(),
            Arc::new(patron_engine::ManualClock::new(start())),
        );
        let tripled = program(0, "policy = \"never\"", "unlimited", "forfeit")
            .replace("points_per_unit = \"1\"", "points_per_unit = \"3\"");
        other
            .apply_program("club", &tripled, "someone else")
            .await
            .unwrap();
        let second = club
            .engine
            .post_purchase(
                &club.tenant,
                &club.purchase("doc-2", Some(&member), 1000, "USD"),
                Some("key-2"),
            )
            .await
            .unwrap();
        assert!(!second.replayed);
        assert_eq!(
            second.value.points,
            30,
            "[{}] the new version's 3 per dollar",
            club.label()
        );
        assert_eq!(club.available(&member).await, 40);
        club.verify().await;
        club.db.cleanup().await;
    }
}
