//! Refunds that claw points back, and holds at checkout.

use super::*;

// ----- refunds -----

#[tokio::test]
async fn refund_of_half_claws_back_half_the_points() {
    for club in clubs(&program(0, NEVER, "unlimited", "forfeit")).await {
        let member = club.enroll("m-1").await;
        let receipt = club.buy("doc-1", &member, "2", 2000).await;
        let refund = club
            .refund(&receipt.purchase_id, "ret-1", Some("1"))
            .await
            .unwrap();
        assert_eq!((refund.amount_minor, refund.clawed_back_points), (2000, 20));
        assert_eq!(club.available(&member).await, 20);
        club.verify().await;
        club.db.cleanup().await;
    }
}

#[tokio::test]
async fn several_partial_refunds_claw_back_what_one_full_refund_does() {
    for club in clubs(&program(0, NEVER, "unlimited", "forfeit")).await {
        let member = club.enroll("m-1").await;
        // 3 × 19.99 = 59.97: 59 points, and thirds that do not divide evenly.
        let partly = club.buy("doc-1", &member, "3", 1999).await;
        let wholly = club.buy("doc-2", &member, "3", 1999).await;
        assert_eq!((partly.points, wholly.points), (59, 59));
        let mut clawed = Vec::new();
        for n in 1..=3 {
            let refund = club
                .refund(&partly.purchase_id, &format!("ret-a{n}"), Some("1"))
                .await
                .unwrap();
            clawed.push(refund.clawed_back_points);
        }
        assert_eq!(
            clawed,
            [20, 19, 20],
            "[{}] each refund settles the rounded cumulative target",
            club.label()
        );
        let full = club
            .refund(&wholly.purchase_id, "ret-b", None)
            .await
            .unwrap();
        assert_eq!(full.clawed_back_points, clawed.iter().sum::<i64>());
        assert_eq!(club.available(&member).await, 0);
        club.verify().await;
        club.db.cleanup().await;
    }
}

#[tokio::test]
async fn a_refund_under_only_pending_leaves_posted_points_with_the_member() {
    for club in clubs(&program(0, NEVER, "only_pending", "forfeit")).await {
        let member = club.enroll("m-1").await;
        let receipt = club.buy("doc-1", &member, "1", 4000).await;
        let refund = club
            .refund(&receipt.purchase_id, "ret-1", None)
            .await
            .unwrap();
        assert_eq!((refund.clawed_back_points, refund.forgiven_points), (0, 40));
        assert_eq!(club.available(&member).await, 40);
        club.verify().await;
        club.db.cleanup().await;
    }
}

#[tokio::test]
async fn a_refund_within_balance_takes_what_the_balance_allows_and_forgives_the_rest() {
    for club in clubs(&program(0, NEVER, "within_balance", "forfeit")).await {
        let member = club.enroll("m-1").await;
        let receipt = club.buy("doc-1", &member, "1", 10000).await;
        club.redeem(&member, 70).await.unwrap();
        let refund = club
            .refund(&receipt.purchase_id, "ret-1", None)
            .await
            .unwrap();
        assert_eq!(
            (refund.clawed_back_points, refund.forgiven_points),
            (30, 70)
        );
        let balance = club.balance(&member).await;
        assert_eq!(
            (balance.available, balance.debt),
            (0, 0),
            "[{}] never below zero",
            club.label()
        );
        let purchase = club
            .engine
            .purchase(&club.tenant, &receipt.purchase_id)
            .await
            .unwrap();
        assert_eq!(
            (purchase.settled_points, purchase.clawed_back_points),
            (100, 30)
        );
        club.verify().await;
        club.db.cleanup().await;
    }
}

#[tokio::test]
async fn an_unlimited_clawback_leaves_a_debt_that_later_earnings_pay_first() {
    for club in clubs(&program(0, NEVER, "unlimited", "forfeit")).await {
        let member = club.enroll("m-1").await;
        let receipt = club.buy("doc-1", &member, "1", 10000).await;
        club.redeem(&member, 80).await.unwrap();
        let refund = club
            .refund(&receipt.purchase_id, "ret-1", None)
            .await
            .unwrap();
        assert_eq!(refund.clawed_back_points, 100);
        let balance = club.balance(&member).await;
        assert_eq!(
            (balance.available, balance.debt),
            (0, 80),
            "[{}] the balance went below zero",
            club.label()
        );
        let refused = club.redeem(&member, 1).await;
        assert_eq!(
            rejection(refused),
            Rejection::InsufficientPoints {
                available: 0,
                requested: 1
            }
        );
        club.verify().await;

        let first = club.buy("doc-2", &member, "1", 5000).await.balance.unwrap();
        assert_eq!(
            (first.available, first.debt),
            (0, 30),
            "[{}] the next earning pays the debt first",
            club.label()
        );
        let second = club.buy("doc-3", &member, "1", 5000).await.balance.unwrap();
        assert_eq!((second.available, second.debt), (20, 0));
        club.verify().await;
        club.db.cleanup().await;
    }
}

#[tokio::test]
async fn a_hold_released_while_in_debt_pays_the_debt_first() {
    for club in clubs(&program(0, NEVER, "unlimited", "forfeit")).await {
        let member = club.enroll("m-1").await;
        let receipt = club.buy("doc-1", &member, "1", 5000).await;
        let hold = club.hold(&member, 40, 60).await.unwrap();
        let refund = club
            .refund(&receipt.purchase_id, "ret-1", None)
            .await
            .unwrap();
        assert_eq!(refund.clawed_back_points, 50);
        assert_eq!(club.balance(&member).await.debt, 40);
        club.verify().await;

        club.engine
            .release(&club.tenant, &hold.id, None)
            .await
            .unwrap();
        let balance = club.balance(&member).await;
        assert_eq!(
            (balance.available, balance.held, balance.debt),
            (0, 0, 0),
            "[{}] the released points paid the debt",
            club.label()
        );
        club.verify().await;
        club.db.cleanup().await;
    }
}

#[tokio::test]
async fn a_redemption_reversed_while_in_debt_pays_the_debt_first() {
    for club in clubs(&program(0, NEVER, "unlimited", "forfeit")).await {
        let member = club.enroll("m-1").await;
        let receipt = club.buy("doc-1", &member, "1", 5000).await;
        let spent = club.redeem(&member, 30).await.unwrap();
        club.refund(&receipt.purchase_id, "ret-1", None)
            .await
            .unwrap();
        assert_eq!(club.balance(&member).await.debt, 30);

        let reversed = club
            .engine
            .reverse_redemption(&club.tenant, &spent.id, None)
            .await
            .unwrap()
            .value;
        assert_eq!(reversed.status, "reversed");
        let balance = club.balance(&member).await;
        assert_eq!(
            (balance.available, balance.debt),
            (0, 0),
            "[{}] {balance:?}",
            club.label()
        );
        club.verify().await;
        club.db.cleanup().await;
    }
}

// ----- holds -----

#[tokio::test]
async fn capturing_part_of_a_hold_gives_the_rest_back() {
    for club in clubs(&program(0, NEVER, "within_balance", "forfeit")).await {
        let member = club.enroll("m-1").await;
        club.grant(&member, 100).await;
        let hold = club.hold(&member, 60, 30).await.unwrap();
        assert_eq!(hold.status, "held");
        let balance = club.balance(&member).await;
        assert_eq!((balance.available, balance.held), (40, 60));

        let captured = club
            .engine
            .capture(&club.tenant, &hold.id, Some(25), None)
            .await
            .unwrap()
            .value;
        assert_eq!(
            (captured.status.as_str(), captured.captured_points),
            ("captured", 25)
        );
        let balance = club.balance(&member).await;
        assert_eq!(
            (balance.available, balance.held),
            (75, 0),
            "[{}] the 35 not captured came back",
            club.label()
        );
        club.verify().await;
        club.db.cleanup().await;
    }
}

#[tokio::test]
async fn releasing_a_hold_gives_everything_back() {
    for club in clubs(&program(0, NEVER, "within_balance", "forfeit")).await {
        let member = club.enroll("m-1").await;
        club.grant(&member, 100).await;
        let hold = club.hold(&member, 60, 30).await.unwrap();
        let released = club
            .engine
            .release(&club.tenant, &hold.id, None)
            .await
            .unwrap()
            .value;
        assert_eq!(
            (released.status.as_str(), released.captured_points),
            ("released", 0)
        );
        let balance = club.balance(&member).await;
        assert_eq!((balance.available, balance.held), (100, 0));
        club.verify().await;
        club.db.cleanup().await;
    }
}

#[tokio::test]
async fn a_hold_not_resolved_in_time_is_released_by_the_jobs() {
    for club in clubs(&program(0, NEVER, "within_balance", "forfeit")).await {
        let member = club.enroll("m-1").await;
        club.grant(&member, 100).await;
        let hold = club.hold(&member, 60, 30).await.unwrap();
        assert_eq!(
            hold.hold_expires_at,
            Some(start().checked_add(SignedDuration::from_mins(30)).unwrap())
        );
        assert_eq!(club.advance_hours(0).await.holds_released, 0);

        let report = club.advance_hours(1).await;
        assert_eq!(report.holds_released, 1);
        assert_eq!(
            club.engine
                .run_due_jobs(&club.tenant)
                .await
                .unwrap()
                .holds_released,
            0
        );
        let balance = club.balance(&member).await;
        assert_eq!((balance.available, balance.held), (100, 0));
        let late = club
            .engine
            .capture(&club.tenant, &hold.id, None, None)
            .await;
        assert_eq!(
            rejection(late),
            Rejection::RedemptionResolved {
                redemption_id: hold.id.clone(),
                status: "released".into()
            }
        );
        club.verify().await;
        club.db.cleanup().await;
    }
}

#[tokio::test]
async fn a_hold_released_after_its_points_expired_gives_back_nothing_spendable() {
    let expiry = "policy = \"after_earning\"\namount = 1\nunit = \"days\"";
    for club in clubs(&program(0, expiry, "within_balance", "forfeit")).await {
        let member = club.enroll("m-1").await;
        club.grant(&member, 50).await;
        let hold = club.hold(&member, 30, 3 * 24 * 60).await.unwrap();
        let report = club.advance_hours(25).await;
        assert_eq!((report.points_expired, report.holds_released), (20, 0));

        club.engine
            .release(&club.tenant, &hold.id, None)
            .await
            .unwrap();
        assert_eq!(
            club.balance(&member).await.available,
            0,
            "[{}] the restored points had expired",
            club.label()
        );
        let report = club
            .engine
            .store()
            .verify_ledger(club.tenant.id, club.engine.now())
            .await
            .unwrap();
        assert!(report.is_clean(), "{:?}", report.discrepancies);
        assert_eq!(
            report.lots_past_due,
            0,
            "[{}] expired as they came back",
            club.label()
        );
        club.db.cleanup().await;
    }
}

#[tokio::test]
async fn a_member_leaving_with_a_hold_on_expired_points_forfeits_only_what_is_valid() {
    let expiry = "policy = \"after_earning\"\namount = 1\nunit = \"days\"";
    for club in clubs(&program(0, expiry, "within_balance", "forfeit")).await {
        let member = club.enroll("m-1").await;
        club.grant(&member, 50).await;
        club.hold(&member, 30, 3 * 24 * 60).await.unwrap();
        club.advance_hours(25).await;
        club.grant(&member, 5).await;

        let receipt = club
            .engine
            .exit_member(&club.tenant, &member, "tester", None)
            .await
            .unwrap()
            .value;
        assert_eq!(
            (
                receipt.holds_released,
                receipt.points_forfeited,
                receipt.points_kept
            ),
            (30, 5, 0),
            "[{}]",
            club.label()
        );
        let report = club
            .engine
            .store()
            .verify_ledger(club.tenant.id, club.engine.now())
            .await
            .unwrap();
        assert!(report.is_clean(), "{:?}", report.discrepancies);
        assert_eq!(report.lots_past_due, 0);
        club.db.cleanup().await;
    }
}
