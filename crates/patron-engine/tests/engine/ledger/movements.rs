//! Reversals, transfers, adjustments, anonymous purchases and tiers.

use super::*;

// ----- reversals and transfers -----

#[tokio::test]
async fn reversing_a_redemption_restores_the_lots_with_their_original_expiry() {
    let expiry = "policy = \"after_earning\"\namount = 30\nunit = \"days\"";
    for club in clubs(&program(0, expiry, "within_balance", "forfeit")).await {
        let member = club.enroll("m-1").await;
        club.buy("doc-1", &member, "1", 4000).await;
        club.clock.set(days_after(start(), 10));
        club.buy("doc-2", &member, "1", 4000).await;
        let lots = expiring(&[(days_after(start(), 30), 40), (days_after(start(), 40), 40)]);
        assert_eq!(club.balance(&member).await.expiring, lots);

        let spent = club.redeem(&member, 60).await.unwrap();
        assert_eq!(
            club.balance(&member).await.expiring,
            expiring(&[(days_after(start(), 40), 20)])
        );
        club.clock.set(days_after(start(), 12));
        let reversed = club
            .engine
            .reverse_redemption(&club.tenant, &spent.id, None)
            .await
            .unwrap()
            .value;
        assert_eq!(reversed.status, "reversed");
        assert_eq!(
            club.balance(&member).await.expiring,
            lots,
            "[{}] no expiry reset by a reversal",
            club.label()
        );

        let twice = club
            .engine
            .reverse_redemption(&club.tenant, &spent.id, None)
            .await;
        assert_eq!(
            rejection(twice),
            Rejection::RedemptionResolved {
                redemption_id: spent.id.clone(),
                status: "reversed".into()
            }
        );
        club.verify().await;
        club.db.cleanup().await;
    }
}

#[tokio::test]
async fn reversing_a_partly_captured_hold_restores_only_what_was_captured() {
    let expiry = "policy = \"after_earning\"\namount = 30\nunit = \"days\"";
    for club in clubs(&program(0, expiry, "within_balance", "forfeit")).await {
        let member = club.enroll("m-1").await;
        club.buy("doc-1", &member, "1", 4000).await;
        club.clock.set(days_after(start(), 10));
        club.buy("doc-2", &member, "1", 4000).await;
        let (first, second) = (days_after(start(), 30), days_after(start(), 40));

        let hold = club.hold(&member, 60, 60).await.unwrap();
        club.engine
            .capture(&club.tenant, &hold.id, Some(25), None)
            .await
            .unwrap();
        // The hold took 40 + 20; the 35 not captured went back to the later lot first.
        assert_eq!(
            club.balance(&member).await.expiring,
            expiring(&[(first, 15), (second, 40)])
        );

        let reversed = club
            .engine
            .reverse_redemption(&club.tenant, &hold.id, None)
            .await
            .unwrap()
            .value;
        assert_eq!(
            (reversed.status.as_str(), reversed.captured_points),
            ("reversed", 25)
        );
        let balance = club.balance(&member).await;
        assert_eq!(balance.available, 80);
        assert_eq!(
            balance.expiring,
            expiring(&[(first, 40), (second, 40)]),
            "[{}]",
            club.label()
        );
        club.verify().await;
        club.db.cleanup().await;
    }
}

#[tokio::test]
async fn points_transferred_between_members_keep_their_expiry() {
    let expiry = "policy = \"after_earning\"\namount = 30\nunit = \"days\"";
    for club in clubs(&program(0, expiry, "within_balance", "forfeit")).await {
        let (giver, receiver) = (club.enroll("m-1").await, club.enroll("m-2").await);
        club.buy("doc-1", &giver, "1", 4000).await;
        let earned_expiry = days_after(start(), 30);
        club.clock.set(days_after(start(), 10));

        let request = TransferRequest {
            to_member_id: receiver.clone(),
            points: 30,
        };
        let receipt = club
            .engine
            .transfer(&club.tenant, &giver, &request, None)
            .await
            .unwrap()
            .value;
        assert_eq!((receipt.points, receipt.balance.available), (30, 10));
        assert_eq!(
            club.balance(&receiver).await.expiring,
            expiring(&[(earned_expiry, 30)]),
            "[{}] no expiry reset",
            club.label()
        );

        let report = club.jump_to(earned_expiry).await;
        assert_eq!(report.points_expired, 40);
        assert_eq!(
            (
                club.available(&giver).await,
                club.available(&receiver).await
            ),
            (0, 0)
        );
        club.verify().await;
        club.db.cleanup().await;
    }
}

// ----- adjustments, anonymous purchases, tiers -----

#[tokio::test]
async fn adjustments_are_audited_with_their_reason_and_actor() {
    for club in clubs(&program(0, NEVER, "within_balance", "forfeit")).await {
        let member = club.enroll("m-1").await;
        let credit = patron_engine::AdjustRequest {
            points: 25,
            reason: "goodwill: late order".into(),
        };
        let receipt = club
            .engine
            .adjust(&club.tenant, &member, &credit, "alice", None)
            .await
            .unwrap()
            .value;
        assert_eq!((receipt.points, receipt.balance.available), (25, 25));
        let debit = patron_engine::AdjustRequest {
            points: -5,
            reason: "duplicate credit".into(),
        };
        club.engine
            .adjust(&club.tenant, &member, &debit, "bob", None)
            .await
            .unwrap();
        assert_eq!(club.available(&member).await, 20);

        let log = club
            .engine
            .store()
            .audit_log(club.tenant.id, Some(&format!("member:{member}")), 10)
            .await
            .unwrap();
        let entries: Vec<(&str, &str)> = log
            .iter()
            .map(|e| (e.actor.as_str(), e.action.as_str()))
            .collect();
        assert_eq!(
            entries,
            [("bob", "ledger.adjust"), ("alice", "ledger.adjust")],
            "[{}] newest first",
            club.label()
        );
        assert!(
            log[1].details.contains("+25") && log[1].details.contains("goodwill: late order"),
            "{}",
            log[1].details
        );
        assert!(
            log[0].details.contains("-5") && log[0].details.contains("duplicate credit"),
            "{}",
            log[0].details
        );
        club.verify().await;
        club.db.cleanup().await;
    }
}

#[tokio::test]
async fn an_anonymous_purchase_is_kept_and_earns_once_attached_net_of_earlier_refunds() {
    for club in clubs(&program(0, NEVER, "within_balance", "forfeit")).await {
        let member = club.enroll("m-1").await;
        let request = purchase_request("doc-1", None, "4", 1000, "USD");
        let receipt = club
            .engine
            .post_purchase(&club.tenant, &request, None)
            .await
            .unwrap()
            .value;
        assert_eq!(
            (
                receipt.member_id.as_deref(),
                receipt.points,
                receipt.points_state.as_str()
            ),
            (None, 0, "none")
        );
        let kept = club
            .engine
            .store()
            .purchase_by_document(club.tenant.id, "doc-1")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (kept.total_minor, kept.member_id),
            (4000, None),
            "[{}] kept for identified revenue",
            club.label()
        );

        let refund = club
            .engine
            .refund(
                &club.tenant,
                &receipt.purchase_id,
                &refund_request("ret-1", Some("1")),
                None,
            )
            .await
            .unwrap()
            .value;
        assert_eq!(
            (
                refund.amount_minor,
                refund.clawed_back_points,
                refund.balance
            ),
            (1000, 0, None)
        );

        let attached = club
            .engine
            .attach_purchase(&club.tenant, &receipt.purchase_id, &member, None)
            .await
            .unwrap()
            .value;
        assert_eq!(
            (attached.points, attached.points_state.as_str()),
            (30, "posted"),
            "[{}] earns on what was kept",
            club.label()
        );
        assert_eq!(club.available(&member).await, 30);
        let other = club.enroll("m-2").await;
        let again = club
            .engine
            .attach_purchase(&club.tenant, &receipt.purchase_id, &other, None)
            .await;
        assert_eq!(
            rejection(again),
            Rejection::AlreadyAttached {
                purchase_id: receipt.purchase_id.clone()
            }
        );
        club.verify().await;
        club.db.cleanup().await;
    }
}

#[tokio::test]
async fn a_purchase_that_reaches_a_tier_upgrades_the_member_and_tells_what_the_next_needs() {
    let tiers = "\n[tiers]\nbasis = \"points_earned\"\nwindow = \"lifetime\"\n\n\
                 [[tiers.levels]]\ncode = \"base\"\nname = \"Base\"\nthreshold = 0\n\n\
                 [[tiers.levels]]\ncode = \"silver\"\nname = \"Silver\"\nthreshold = 100\nmultiplier = \"2\"\n\n\
                 [[tiers.levels]]\ncode = \"gold\"\nname = \"Gold\"\nthreshold = 1000\nmultiplier = \"3\"\n";
    let source = program(0, NEVER, "within_balance", "forfeit") + tiers;
    for club in clubs(&source).await {
        let member = club.enroll("m-1").await;
        assert_eq!(
            club.engine
                .member(&club.tenant, &member)
                .await
                .unwrap()
                .tier,
            "base"
        );
        let first = club.buy("doc-1", &member, "1", 6000).await.tier.unwrap();
        assert_eq!(
            (first.code.as_str(), first.upgraded_from.as_deref()),
            ("base", None)
        );
        assert_eq!(
            (first.next.as_deref(), first.needed_for_next),
            (Some("silver"), 40),
            "[{}] 40 points to silver",
            club.label()
        );

        let second = club.buy("doc-2", &member, "1", 5000).await;
        let tier = second.tier.unwrap();
        assert_eq!(
            (tier.code.as_str(), tier.upgraded_from.as_deref()),
            ("silver", Some("base"))
        );
        assert_eq!(
            (tier.metric, tier.next.as_deref(), tier.needed_for_next),
            (110, Some("gold"), 890)
        );
        assert_eq!(
            second.points,
            50,
            "[{}] the upgrading purchase earns at the old rate",
            club.label()
        );
        assert_eq!(
            club.engine
                .member(&club.tenant, &member)
                .await
                .unwrap()
                .tier,
            "silver"
        );

        let third = club.buy("doc-3", &member, "1", 1000).await;
        assert_eq!(third.points, 20, "[{}] silver earns double", club.label());
        club.verify().await;
        club.db.cleanup().await;
    }
}

#[tokio::test]
async fn a_redemption_for_more_than_the_balance_is_refused_and_a_hold_counts_against_it() {
    for club in clubs(&program(0, NEVER, "within_balance", "forfeit")).await {
        let member = club.enroll("m-1").await;
        club.grant(&member, 50).await;
        club.hold(&member, 30, 60).await.unwrap();
        let request = RedeemRequest {
            points: 21,
            hold: false,
            hold_minutes: None,
            description: Some("mug".into()),
        };
        let refused = club
            .engine
            .redeem(&club.tenant, &member, &request, None)
            .await;
        assert_eq!(
            rejection(refused),
            Rejection::InsufficientPoints {
                available: 20,
                requested: 21
            }
        );
        club.verify().await;
        club.db.cleanup().await;
    }
}
