//! Ledger behaviour (docs/LEDGER.md): pending points, expiry under each policy, refunds under each
//! return policy, holds, reversals, transfers between members, audited adjustments,
//! anonymous purchases and tier upgrades. Time moves only through the injected clock.

use jiff::{SignedDuration, Timestamp};
use patron_engine::{RedeemRequest, TransferRequest};
use patron_store::Rejection;
use patron_store::redemptions::ExpiringPoints;

use crate::support::{
    ZONE, clubs, ny, program, purchase_request, refund_request, rejection, start,
};

/// `days` civil days later in New York (the wall-clock time stays across daylight saving).
fn days_after(at: Timestamp, days: i64) -> Timestamp {
    let zone = jiff::tz::TimeZone::get(ZONE).unwrap();
    at.to_zoned(zone)
        .checked_add(jiff::Span::new().days(days))
        .unwrap()
        .timestamp()
}

fn expiring(list: &[(Timestamp, i64)]) -> Vec<ExpiringPoints> {
    list.iter()
        .map(|&(at, points)| ExpiringPoints { at, points })
        .collect()
}

const NEVER: &str = "policy = \"never\"";

// ----- pending points -----

#[tokio::test]
async fn pending_points_post_when_the_return_window_closes_and_only_once() {
    for club in clubs(&program(14, NEVER, "only_pending", "forfeit")).await {
        let member = club.enroll("m-1").await;
        let receipt = club.buy("doc-1", &member, "1", 5000).await;
        assert_eq!(
            (receipt.points, receipt.points_state.as_str()),
            (50, "pending")
        );
        assert_eq!(receipt.pending_until, Some(days_after(start(), 14)));
        let balance = club.balance(&member).await;
        assert_eq!((balance.available, balance.pending), (0, 50));

        let report = club.jump_to(days_after(start(), 13)).await;
        assert_eq!(
            report.pending_posted,
            0,
            "[{}] the window is still open",
            club.label()
        );
        assert_eq!(club.available(&member).await, 0);

        let report = club.jump_to(days_after(start(), 14)).await;
        assert_eq!(report.pending_posted, 1);
        let balance = club.balance(&member).await;
        assert_eq!((balance.available, balance.pending), (50, 0));
        let again = club.engine.run_due_jobs(&club.tenant).await.unwrap();
        assert_eq!(
            again.pending_posted,
            0,
            "[{}] a pending transfer resolves once",
            club.label()
        );
        assert_eq!(club.available(&member).await, 50);

        let posted = club
            .engine
            .purchase(&club.tenant, &receipt.purchase_id)
            .await
            .unwrap();
        assert_eq!(posted.earn_state, "posted");
        let ledger = club
            .engine
            .store()
            .member_ledger(club.tenant.id, &member, None, 100)
            .await
            .unwrap();
        let kinds: Vec<&str> = ledger.iter().map(|t| t.kind.as_str()).collect();
        assert_eq!(
            kinds,
            ["post_pending", "pending"],
            "[{}] newest first",
            club.label()
        );
        club.verify().await;
        club.db.cleanup().await;
    }
}

#[tokio::test]
async fn a_full_refund_while_pending_voids_the_points() {
    for club in clubs(&program(14, NEVER, "only_pending", "forfeit")).await {
        let member = club.enroll("m-1").await;
        let receipt = club.buy("doc-1", &member, "2", 2000).await;
        let refund = club
            .refund(&receipt.purchase_id, "ret-1", None)
            .await
            .unwrap();
        assert_eq!(
            (
                refund.reduced_pending_points,
                refund.clawed_back_points,
                refund.forgiven_points
            ),
            (40, 0, 0)
        );
        let balance = club.balance(&member).await;
        assert_eq!(
            (balance.available, balance.pending),
            (0, 0),
            "[{}] voided at once",
            club.label()
        );
        let purchase = club
            .engine
            .purchase(&club.tenant, &receipt.purchase_id)
            .await
            .unwrap();
        assert_eq!(purchase.earn_state, "voided");

        let report = club.jump_to(days_after(start(), 15)).await;
        assert_eq!(
            report.pending_posted,
            0,
            "[{}] nothing left to post",
            club.label()
        );
        assert_eq!(club.available(&member).await, 0);
        club.verify().await;
        club.db.cleanup().await;
    }
}

#[tokio::test]
async fn a_partial_refund_while_pending_reduces_what_posts() {
    for club in clubs(&program(14, NEVER, "only_pending", "forfeit")).await {
        let member = club.enroll("m-1").await;
        let receipt = club.buy("doc-1", &member, "4", 1000).await;
        assert_eq!(receipt.points, 40);
        let refund = club
            .refund(&receipt.purchase_id, "ret-1", Some("1"))
            .await
            .unwrap();
        assert_eq!(
            (refund.amount_minor, refund.reduced_pending_points),
            (1000, 10)
        );

        club.jump_to(days_after(start(), 14)).await;
        assert_eq!(
            club.available(&member).await,
            30,
            "[{}] only what stays posts",
            club.label()
        );

        // Under only_pending, points already posted stay with the member.
        let refund = club
            .refund(&receipt.purchase_id, "ret-2", None)
            .await
            .unwrap();
        assert_eq!((refund.clawed_back_points, refund.forgiven_points), (0, 30));
        assert_eq!(club.available(&member).await, 30);
        club.verify().await;
        club.db.cleanup().await;
    }
}

#[tokio::test]
async fn a_partial_refund_while_pending_reduces_the_pending_balance_at_once() {
    for returns in ["only_pending", "within_balance", "unlimited"] {
        for club in clubs(&program(14, NEVER, returns, "forfeit")).await {
            let label = format!("{} {returns}", club.label());
            let member = club.enroll("m-1").await;
            let receipt = club.buy("doc-1", &member, "4", 1000).await;
            assert_eq!(receipt.balance.as_ref().unwrap().pending, 40);

            let refund = club
                .refund(&receipt.purchase_id, "ret-1", Some("1"))
                .await
                .unwrap();
            assert_eq!(refund.reduced_pending_points, 10, "[{label}]");
            assert_eq!(
                refund.balance.unwrap().pending,
                40 - 10,
                "[{label}] the refund's receipt"
            );
            let balance = club.balance(&member).await;
            assert_eq!(
                (balance.available, balance.pending),
                (0, 30),
                "[{label}] pending less exactly what the refund took back"
            );

            // A second partial refund, and a purchase after it: every balance shown agrees.
            let refund = club
                .refund(&receipt.purchase_id, "ret-2", Some("1"))
                .await
                .unwrap();
            assert_eq!(refund.reduced_pending_points, 10, "[{label}]");
            assert_eq!(refund.balance.unwrap().pending, 20, "[{label}]");
            let later = club.buy("doc-2", &member, "1", 500).await;
            assert_eq!(
                later.balance.unwrap().pending,
                20 + 5,
                "[{label}] a later purchase's receipt"
            );
            club.verify().await;

            // The window closes: exactly the reduced figure posts.
            let report = club.jump_to(days_after(start(), 14)).await;
            assert_eq!(report.pending_posted, 2, "[{label}]");
            let balance = club.balance(&member).await;
            assert_eq!(
                (
                    balance.available,
                    balance.pending,
                    balance.lifetime_credited
                ),
                (20 + 5, 0, 20 + 5),
                "[{label}] what posts is what the balance showed pending"
            );
            let posted = club
                .engine
                .purchase(&club.tenant, &receipt.purchase_id)
                .await
                .unwrap();
            assert_eq!(
                (
                    posted.earn_state.as_str(),
                    posted.points,
                    posted.settled_points
                ),
                ("posted", 40, 20),
                "[{label}]"
            );
            club.verify().await;
            club.db.cleanup().await;
        }
    }
}

#[tokio::test]
async fn leaving_after_a_partial_refund_voids_only_what_was_still_to_post() {
    for club in clubs(&program(14, NEVER, "within_balance", "forfeit")).await {
        let member = club.enroll("m-1").await;
        let receipt = club.buy("doc-1", &member, "4", 1000).await;
        club.refund(&receipt.purchase_id, "ret-1", Some("1"))
            .await
            .unwrap();
        let exit = club
            .engine
            .exit_member(&club.tenant, &member, "tester", None)
            .await
            .unwrap()
            .value;
        assert_eq!(
            exit.pending_voided,
            30,
            "[{}] the refund had taken 10 already",
            club.label()
        );
        let balance = club.balance(&member).await;
        assert_eq!((balance.available, balance.pending), (0, 0));
        // Nothing is left to post when the window closes.
        let report = club.jump_to(days_after(start(), 14)).await;
        assert_eq!(report.pending_posted, 0, "[{}]", club.label());
        club.verify().await;
        club.db.cleanup().await;
    }
}

// ----- expiry -----

#[tokio::test]
async fn points_expire_n_days_after_earning_rounded_to_the_end_of_the_month() {
    let expiry =
        "policy = \"after_earning\"\namount = 10\nunit = \"days\"\nround_to = \"end_of_month\"";
    for club in clubs(&program(0, expiry, "within_balance", "forfeit")).await {
        let member = club.enroll("m-1").await;
        // Earned 2 March at noon: 12 March, rounded to the end of March.
        let receipt = club.buy("doc-1", &member, "1", 2500).await;
        let end_of_march = ny("2026-04-01T00:00");
        assert_eq!(
            receipt.balance.unwrap().expiring,
            expiring(&[(end_of_march, 25)])
        );

        let report = club.jump_to(ny("2026-03-31T23:59:59")).await;
        assert_eq!(
            report.points_expired,
            0,
            "[{}] still valid on the last evening",
            club.label()
        );
        assert_eq!(club.available(&member).await, 25);

        let before = club.snapshot(&[&member]).await;
        club.clock.set(end_of_march);
        assert_eq!(
            club.available(&member).await,
            0,
            "[{}] not spendable once due, even before the job",
            club.label()
        );
        let report = club.engine.run_due_jobs(&club.tenant).await.unwrap();
        assert_eq!(report.points_expired, 25);
        let after = club.snapshot(&[&member]).await;
        assert_eq!(after.transfers, before.transfers + 1);

        let again = club.engine.run_due_jobs(&club.tenant).await.unwrap();
        assert_eq!(
            again.points_expired,
            0,
            "[{}] the expiry job is idempotent",
            club.label()
        );
        assert_eq!(
            club.snapshot(&[&member]).await,
            after,
            "[{}] the second run wrote nothing",
            club.label()
        );
        let report = club
            .engine
            .store()
            .verify_ledger(club.tenant.id, club.engine.now())
            .await
            .unwrap();
        assert_eq!(report.lots_past_due, 0);
        club.db.cleanup().await;
    }
}

#[tokio::test]
async fn points_expire_on_a_fixed_yearly_date() {
    for club in clubs(&program(
        0,
        "policy = \"fixed_yearly_date\"\nmonth = 6\nday = 1",
        "within_balance",
        "forfeit",
    ))
    .await
    {
        let member = club.enroll("m-1").await;
        club.buy("doc-1", &member, "1", 3000).await;
        assert_eq!(
            club.balance(&member).await.expiring,
            expiring(&[(ny("2026-06-01T00:00"), 30)])
        );

        let report = club.jump_to(ny("2026-06-01T00:00")).await;
        assert_eq!(report.points_expired, 30);
        // Points earned on the date itself last until the next one.
        club.clock.set(ny("2026-06-01T12:00"));
        club.buy("doc-2", &member, "1", 1000).await;
        assert_eq!(
            club.balance(&member).await.expiring,
            expiring(&[(ny("2027-06-01T00:00"), 10)])
        );
        club.verify().await;
        club.db.cleanup().await;
    }
}

#[tokio::test]
async fn inactivity_expires_the_whole_balance_and_activity_moves_the_deadline() {
    for club in clubs(&program(
        0,
        "policy = \"inactivity\"\nmonths = 2",
        "within_balance",
        "forfeit",
    ))
    .await
    {
        let member = club.enroll("m-1").await;
        club.buy("doc-1", &member, "1", 3000).await;
        assert!(
            club.balance(&member).await.expiring.is_empty(),
            "inactivity sets no dated lots"
        );

        // A redemption a month later is activity: the deadline moves to 2 June.
        club.clock.set(ny("2026-04-02T12:00"));
        club.redeem(&member, 5).await.unwrap();
        let report = club.jump_to(ny("2026-05-03T12:00")).await;
        assert_eq!(
            report.points_expired,
            0,
            "[{}] two months after the purchase, but not after the redemption",
            club.label()
        );
        assert_eq!(club.available(&member).await, 25);

        let report = club.jump_to(ny("2026-06-02T12:00")).await;
        assert_eq!(
            report.points_expired,
            25,
            "[{}] two months without activity",
            club.label()
        );
        assert_eq!(club.available(&member).await, 0);
        assert_eq!(
            club.engine
                .run_due_jobs(&club.tenant)
                .await
                .unwrap()
                .points_expired,
            0
        );
        club.verify().await;
        club.db.cleanup().await;
    }
}

#[tokio::test]
async fn pending_points_posted_after_an_inactivity_deadline_do_not_revive_expired_points() {
    for club in clubs(&program(
        3,
        "policy = \"inactivity\"\nmonths = 1",
        "only_pending",
        "forfeit",
    ))
    .await
    {
        let member = club.enroll("m-1").await;
        club.grant(&member, 10).await;
        club.buy("doc-1", &member, "1", 500).await;
        // The job runs late: the inactivity deadline (2 April) passed before the pending
        // points were posted.
        club.jump_to(ny("2026-04-10T12:00")).await;
        let balance = club.balance(&member).await;
        assert_eq!(
            (balance.available, balance.pending),
            (5, 0),
            "[{}] the 10 points expired on 2 April",
            club.label()
        );
        club.verify().await;
        club.db.cleanup().await;
    }
}

#[tokio::test]
async fn redemption_consumes_the_soonest_expiring_lots_first() {
    let expiry = "policy = \"after_earning\"\namount = 30\nunit = \"days\"";
    for club in clubs(&program(0, expiry, "within_balance", "forfeit")).await {
        let member = club.enroll("m-1").await;
        club.buy("doc-1", &member, "1", 10000).await;
        club.clock.set(days_after(start(), 5));
        club.buy("doc-2", &member, "1", 10000).await;
        let (first, second) = (days_after(start(), 30), days_after(start(), 35));
        assert_eq!(
            club.balance(&member).await.expiring,
            expiring(&[(first, 100), (second, 100)])
        );

        club.redeem(&member, 150).await.unwrap();
        assert_eq!(
            club.balance(&member).await.expiring,
            expiring(&[(second, 50)]),
            "[{}] the older lot went first",
            club.label()
        );
        let report = club.jump_to(first).await;
        assert_eq!(
            report.points_expired,
            0,
            "[{}] nothing left in the older lot",
            club.label()
        );
        assert_eq!(club.available(&member).await, 50);
        club.verify().await;
        club.db.cleanup().await;
    }
}

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
