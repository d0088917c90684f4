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

mod holds;
mod movements;
