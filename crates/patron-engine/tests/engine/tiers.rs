//! Tiers in full, on both backends with a controlled clock: upgrades at once, downgrades at the
//! period end after grace (calendar year and rolling terms), `never`, the "will downgrade on"
//! review, tier multipliers, benefits, the manual floor with its expiry and its audit, and the
//! scheduler catching up days on which no server ran.

use jiff::SignedDuration;
use patron_engine::jobs::{JobKind, Worker};
use patron_engine::tiers::{MemberTier, TierFloorRequest};
use patron_engine::{EngineError, EnrollRequest, ProfileFields};
use patron_store::Rejection;

use crate::support::{Club, clubs, invalid_field, ny, program, rejection};

/// A program with three levels over `basis` and `window`, moving down under `downgrade`.
/// Thresholds are 100 and 300 (points or dollars) or 3 and 6 (visits).
fn tiered(basis: &str, window: &str, downgrade: &str) -> String {
    let (silver, gold) = if basis == "visits" {
        (3, 6)
    } else {
        (100, 300)
    };
    format!(
        "{}\n[tiers]\nbasis = \"{basis}\"\nwindow = {window}\ndowngrade = {downgrade}\n\n\
         [[tiers.levels]]\ncode = \"base\"\nname = \"Base\"\nthreshold = 0\n\n\
         [[tiers.levels]]\ncode = \"silver\"\nname = \"Silver\"\nthreshold = {silver}\n\
         multiplier = \"1.5\"\nbenefits = [\"Free refills\", {{ name = \"Priority line\", \
         kind = \"priority_service\" }}]\n\n\
         [[tiers.levels]]\ncode = \"gold\"\nname = \"Gold\"\nthreshold = {gold}\nmultiplier = \"2\"\n",
        program(0, "policy = \"never\"", "within_balance", "forfeit")
    )
}

fn worker() -> Worker {
    Worker::new(SignedDuration::from_secs(60))
}

async fn nightly(club: &Club) -> String {
    let report = club
        .engine
        .run_job_now(&club.tenant, JobKind::Tiers, &worker())
        .await
        .unwrap();
    report.outcome.unwrap()
}

async fn tier_of(club: &Club, member: &str) -> MemberTier {
    club.engine.member_tier(&club.tenant, member).await.unwrap()
}

async fn code_of(club: &Club, member: &str) -> String {
    tier_of(club, member).await.view.status.code
}

fn floor(tier: &str, until: Option<&str>, reason: &str) -> TierFloorRequest {
    TierFloorRequest {
        tier: tier.into(),
        until: until.map(str::to_string),
        reason: reason.into(),
    }
}

#[tokio::test]
async fn calendar_year_upgrades_at_once_and_downgrades_after_new_year_and_grace() {
    let source = tiered(
        "points_earned",
        "\"calendar_year\"",
        "{ policy = \"end_of_period\", grace_days = 30 }",
    );
    for club in clubs(&source).await {
        let member = club.enroll("m1").await;
        // Three items of $50: 150 points, silver at once.
        let receipt = club.buy("doc-1", &member, "3", 5000).await;
        let tier = receipt.tier.unwrap();
        assert_eq!(
            (tier.code.as_str(), tier.upgraded_from.as_deref()),
            ("silver", Some("base")),
            "[{}]",
            club.label()
        );
        // Qualified for the year: nothing to announce.
        assert_eq!(tier_of(&club, &member).await.review, None);
        // Two items back: 50 points count, 50 short of silver by the end of 2026.
        club.refund(&receipt.purchase_id, "ret-1", Some("2"))
            .await
            .unwrap();
        let tier = tier_of(&club, &member).await;
        assert_eq!(tier.view.status.metric, 50);
        let review = tier.review.clone().expect("a review");
        assert_eq!(
            review.review.at,
            ny("2027-01-31T00:00"),
            "[{}]",
            club.label()
        );
        assert_eq!(review.date.to_string(), "2027-01-31");
        assert_eq!(
            (review.review.to.as_str(), review.review.needed),
            ("base", 50)
        );
        assert_eq!(
            (review.to_name.as_str(), review.basis),
            ("Base", "points_earned")
        );
        // A refund never demotes mid-period, nor does the nightly pass before the review.
        assert_eq!(nightly(&club).await, "0 upgraded, 0 downgraded");
        club.clock.set(ny("2027-01-30T23:00"));
        assert_eq!(nightly(&club).await, "0 upgraded, 0 downgraded");
        assert_eq!(code_of(&club, &member).await, "silver");
        club.clock.set(ny("2027-01-31T00:05"));
        assert_eq!(nightly(&club).await, "0 upgraded, 1 downgraded");
        assert_eq!(code_of(&club, &member).await, "base");
        assert_eq!(tier_of(&club, &member).await.review, None);
        club.verify().await;
        club.db.cleanup().await;
    }
}

#[tokio::test]
async fn buying_the_needed_amount_keeps_the_tier() {
    let source = tiered(
        "spend",
        "\"calendar_year\"",
        "{ policy = \"end_of_period\", grace_days = 0 }",
    );
    for club in clubs(&source).await {
        let member = club.enroll("m1").await;
        club.buy("doc-1", &member, "1", 10_000).await; // $100: silver
        club.clock.set(ny("2026-12-01T00:00"));
        club.buy("doc-2", &member, "1", 10_000).await; // $200 in 2026
        // Gold needs $300; silver is safe.
        assert_eq!(tier_of(&club, &member).await.review, None);
        // Spend of 2027 is below silver's $100: the review names the spend still needed.
        club.clock.set(ny("2027-03-01T12:00"));
        club.buy("doc-3", &member, "1", 2_550).await;
        let review = tier_of(&club, &member).await.review.expect("a review");
        assert_eq!(review.review.at, ny("2028-01-01T00:00"));
        assert_eq!((review.review.needed, review.basis), (7_450, "spend"));
        club.buy("doc-4", &member, "1", review.review.needed).await;
        assert_eq!(tier_of(&club, &member).await.review, None);
        club.clock.set(ny("2028-01-01T00:05"));
        assert_eq!(nightly(&club).await, "0 upgraded, 0 downgraded");
        assert_eq!(code_of(&club, &member).await, "silver");
        club.db.cleanup().await;
    }
}

#[tokio::test]
async fn rolling_window_reviews_at_the_end_of_each_tier_term() {
    let source = tiered(
        "visits",
        "{ rolling_months = 3 }",
        "{ policy = \"end_of_period\", grace_days = 10 }",
    );
    for club in clubs(&source).await {
        let member = club.enroll("m1").await;
        for n in 0..3 {
            club.buy(&format!("doc-{n}"), &member, "1", 500).await;
        }
        // Silver since 2 March 12:00: the first term ends on 2 June; the three visits still
        // count then.
        assert_eq!(code_of(&club, &member).await, "silver");
        assert_eq!(tier_of(&club, &member).await.review, None);
        club.clock.set(ny("2026-06-02T11:00"));
        assert_eq!(tier_of(&club, &member).await.review, None);
        // Past the first term's grace, the next term (ends 2 September) counts nothing yet.
        club.clock.set(ny("2026-06-20T00:00"));
        assert_eq!(nightly(&club).await, "0 upgraded, 0 downgraded");
        let review = tier_of(&club, &member).await.review.expect("a review");
        assert_eq!(
            review.review.at,
            ny("2026-09-12T12:00"),
            "[{}]",
            club.label()
        );
        assert_eq!(review.date.to_string(), "2026-09-13");
        assert_eq!(
            (review.review.to.as_str(), review.review.needed),
            ("base", 3)
        );
        club.clock.set(ny("2026-09-12T11:00"));
        assert_eq!(nightly(&club).await, "0 upgraded, 0 downgraded");
        club.clock.set(ny("2026-09-13T00:05"));
        assert_eq!(nightly(&club).await, "0 upgraded, 1 downgraded");
        assert_eq!(code_of(&club, &member).await, "base");
        club.db.cleanup().await;
    }
}

#[tokio::test]
async fn never_means_no_review_and_no_downgrade() {
    let source = tiered("visits", "\"calendar_year\"", "\"never\"");
    for club in clubs(&source).await {
        let member = club.enroll("m1").await;
        for n in 0..6 {
            club.buy(&format!("doc-{n}"), &member, "1", 500).await;
        }
        assert_eq!(code_of(&club, &member).await, "gold");
        club.clock.set(ny("2029-06-01T00:00"));
        assert_eq!(tier_of(&club, &member).await.review, None);
        assert_eq!(nightly(&club).await, "0 upgraded, 0 downgraded");
        assert_eq!(code_of(&club, &member).await, "gold");
        club.db.cleanup().await;
    }
}

#[tokio::test]
async fn the_tier_multiplier_scales_base_earning_and_benefits_are_listed() {
    let source = tiered("points_earned", "\"calendar_year\"", "\"never\"");
    for club in clubs(&source).await {
        let member = club.enroll("m1").await;
        // Base: 1 point per dollar.
        assert_eq!(club.buy("doc-1", &member, "1", 10_000).await.points, 100);
        // Silver earns 1.5 times the base rate.
        let receipt = club.buy("doc-2", &member, "1", 1_000).await;
        assert_eq!((receipt.points, receipt.base_points), (15, 15));
        let tier = tier_of(&club, &member).await;
        assert_eq!(
            (tier.name.as_str(), tier.multiplier.as_str()),
            ("Silver", "1.5")
        );
        let benefits: Vec<(Option<&str>, &str)> = tier
            .benefits
            .iter()
            .map(|b| (b.kind.as_deref(), b.name.as_str()))
            .collect();
        assert_eq!(
            benefits,
            [
                (None, "Free refills"),
                (Some("priority_service"), "Priority line")
            ]
        );
        club.verify().await;
        club.db.cleanup().await;
    }
}

#[tokio::test]
async fn a_floor_raises_holds_and_expires_into_the_downgrade_policy() {
    let source = tiered(
        "visits",
        "\"calendar_year\"",
        "{ policy = \"end_of_period\", grace_days = 14 }",
    );
    for club in clubs(&source).await {
        let member = club.enroll("m1").await;
        let before = club.snapshot(&[&member]).await;
        // Rejected requests write nothing.
        let unknown = club
            .engine
            .set_tier_floor(
                &club.tenant,
                &member,
                &floor("platinum", None, "vip"),
                "admin-key",
                None,
            )
            .await;
        assert_eq!(invalid_field(unknown), "tier");
        let no_reason = club
            .engine
            .set_tier_floor(
                &club.tenant,
                &member,
                &floor("gold", None, "  "),
                "admin-key",
                None,
            )
            .await;
        assert_eq!(invalid_field(no_reason), "reason");
        let past = club
            .engine
            .set_tier_floor(
                &club.tenant,
                &member,
                &floor("gold", Some("2026-01-01"), "vip"),
                "admin-key",
                None,
            )
            .await;
        assert_eq!(invalid_field(past), "until");
        let bad_date = club
            .engine
            .set_tier_floor(
                &club.tenant,
                &member,
                &floor("gold", Some("next year"), "vip"),
                "admin-key",
                None,
            )
            .await;
        assert_eq!(invalid_field(bad_date), "until");
        let missing = club
            .engine
            .set_tier_floor(
                &club.tenant,
                "mem_nobody",
                &floor("gold", None, "vip"),
                "admin-key",
                None,
            )
            .await;
        assert!(matches!(
            rejection(missing),
            Rejection::MemberNotFound { .. }
        ));
        assert_eq!(club.snapshot(&[&member]).await, before);

        // Gold through 30 June 2026 (New York).
        let request = floor("gold", Some("2026-06-30"), "Complaint settled");
        let set = club
            .engine
            .set_tier_floor(
                &club.tenant,
                &member,
                &request,
                "api_key:7 (console)",
                Some("floor-1"),
            )
            .await
            .unwrap();
        assert!(!set.replayed);
        assert_eq!(
            (set.value.tier.as_str(), set.value.raised_from.as_deref()),
            ("gold", Some("base"))
        );
        let until = ny("2026-07-01T00:00");
        assert_eq!(set.value.floor.as_ref().unwrap().until, Some(until));
        // The same key and request: the stored answer.
        let again = club
            .engine
            .set_tier_floor(
                &club.tenant,
                &member,
                &request,
                "api_key:7 (console)",
                Some("floor-1"),
            )
            .await
            .unwrap();
        assert!(again.replayed);
        assert_eq!(again.value, set.value);
        // Audited once: who, what, why.
        let audit = club
            .engine
            .store()
            .audit_log(club.tenant.id, Some(&format!("member:{member}")), 10)
            .await
            .unwrap();
        let floors: Vec<_> = audit
            .iter()
            .filter(|entry| entry.action == "member.tier_floor.set")
            .collect();
        assert_eq!(floors.len(), 1, "{audit:?}");
        assert_eq!(floors[0].actor, "api_key:7 (console)");
        assert!(
            floors[0].details.contains("Complaint settled"),
            "{}",
            floors[0].details
        );
        assert!(
            floors[0].details.contains("floor gold"),
            "{}",
            floors[0].details
        );

        // The floor holds: no review while it lasts past the period's end... it ends in
        // June, so the review is the end of the floor plus grace.
        let tier = tier_of(&club, &member).await;
        assert_eq!(
            tier.view.floor.as_ref().map(|f| f.tier.as_str()),
            Some("gold")
        );
        // One visit in 2026: far from gold (6). After 1 January 2027 + 14 days the member
        // falls to base.
        club.buy("doc-1", &member, "1", 500).await;
        assert_eq!(code_of(&club, &member).await, "gold");
        let review = tier_of(&club, &member).await.review.expect("a review");
        assert_eq!(review.review.at, ny("2027-01-15T00:00"));
        assert_eq!(
            (review.review.to.as_str(), review.review.needed),
            ("base", 5)
        );
        // The nightly pass respects the floor, and the policy after it.
        club.clock.set(ny("2026-06-29T00:05"));
        assert_eq!(nightly(&club).await, "0 upgraded, 0 downgraded");
        club.clock.set(ny("2026-07-20T00:05"));
        assert_eq!(nightly(&club).await, "0 upgraded, 0 downgraded");
        assert_eq!(code_of(&club, &member).await, "gold");
        assert_eq!(tier_of(&club, &member).await.view.floor, None);
        club.clock.set(ny("2027-01-15T00:05"));
        assert_eq!(nightly(&club).await, "0 upgraded, 1 downgraded");
        assert_eq!(code_of(&club, &member).await, "base");
        club.verify().await;
        club.db.cleanup().await;
    }
}

#[tokio::test]
async fn a_floor_ending_after_new_year_delays_the_downgrade_by_its_grace() {
    let source = tiered(
        "visits",
        "\"calendar_year\"",
        "{ policy = \"end_of_period\", grace_days = 14 }",
    );
    for club in clubs(&source).await {
        let member = club.enroll("m1").await;
        club.engine
            .set_tier_floor(
                &club.tenant,
                &member,
                &floor("silver", Some("2027-02-28"), "Store move"),
                "admin",
                None,
            )
            .await
            .unwrap();
        // 2026 ends short, but the floor holds silver until 1 March 2027; then 14 days grace.
        let review = tier_of(&club, &member).await.review.expect("a review");
        assert_eq!(
            review.review.at,
            ny("2027-03-15T00:00"),
            "[{}]",
            club.label()
        );
        club.clock.set(ny("2027-03-14T00:05"));
        assert_eq!(nightly(&club).await, "0 upgraded, 0 downgraded");
        club.clock.set(ny("2027-03-15T00:05"));
        assert_eq!(nightly(&club).await, "0 upgraded, 1 downgraded");
        club.db.cleanup().await;
    }
}

#[tokio::test]
async fn a_floor_below_the_earned_tier_only_limits_the_fall_and_can_be_removed() {
    let source = tiered(
        "visits",
        "\"calendar_year\"",
        "{ policy = \"end_of_period\", grace_days = 0 }",
    );
    for club in clubs(&source).await {
        let member = club.enroll("m1").await;
        for n in 0..6 {
            club.buy(&format!("doc-{n}"), &member, "1", 500).await;
        }
        assert_eq!(code_of(&club, &member).await, "gold");
        let set = club
            .engine
            .set_tier_floor(
                &club.tenant,
                &member,
                &floor("silver", None, "Long-time member"),
                "admin",
                None,
            )
            .await
            .unwrap();
        assert_eq!(
            (set.value.tier.as_str(), set.value.raised_from),
            ("gold", None)
        );
        // 2026 qualified for gold through 2027; with no visits in 2027, gold is lost on
        // 1 January 2028, but never below silver.
        club.clock.set(ny("2027-01-01T00:05"));
        assert_eq!(nightly(&club).await, "0 upgraded, 0 downgraded");
        let review = tier_of(&club, &member).await.review.expect("a review");
        assert_eq!(review.review.at, ny("2028-01-01T00:00"));
        assert_eq!(
            (review.review.to.as_str(), review.review.needed),
            ("silver", 6)
        );
        club.clock.set(ny("2028-01-01T00:05"));
        assert_eq!(nightly(&club).await, "0 upgraded, 1 downgraded");
        assert_eq!(code_of(&club, &member).await, "silver");
        // Removing the floor ends it now; grace (0 days) runs from now, and 2027 was empty.
        let removed = club
            .engine
            .end_tier_floor(
                &club.tenant,
                &member,
                Some("Review done"),
                "admin",
                Some("end-1"),
            )
            .await
            .unwrap();
        assert_eq!(removed.value.floor, None);
        let again = club
            .engine
            .end_tier_floor(&club.tenant, &member, Some("Review done"), "admin", None)
            .await
            .unwrap();
        assert_eq!(again.value.floor, None);
        let ended = club
            .engine
            .store()
            .audit_log(club.tenant.id, Some(&format!("member:{member}")), 10)
            .await
            .unwrap()
            .into_iter()
            .filter(|entry| entry.action == "member.tier_floor.end")
            .count();
        assert_eq!(ended, 1, "removing twice is audited once");
        // Silver was reached on 1 January 2028: it is held through 2028, reviewed with 2028's
        // visits like any tier.
        club.clock.advance(SignedDuration::from_hours(24));
        assert_eq!(nightly(&club).await, "0 upgraded, 0 downgraded");
        let review = tier_of(&club, &member).await.review.expect("a review");
        assert_eq!(review.review.at, ny("2029-01-01T00:00"));
        assert_eq!(
            (review.review.to.as_str(), review.review.needed),
            ("base", 3)
        );
        club.db.cleanup().await;
    }
}

#[tokio::test]
async fn a_floor_for_a_member_who_left_is_refused() {
    let source = tiered("visits", "\"calendar_year\"", "\"never\"");
    for club in clubs(&source).await {
        let member = club.enroll("m1").await;
        club.engine
            .exit_member(&club.tenant, &member, "admin", None)
            .await
            .unwrap();
        let result = club
            .engine
            .set_tier_floor(
                &club.tenant,
                &member,
                &floor("gold", None, "vip"),
                "admin",
                None,
            )
            .await;
        assert!(matches!(rejection(result), Rejection::MemberExited { .. }));
        club.db.cleanup().await;
    }
}

#[tokio::test]
async fn missed_birthday_days_are_caught_up_once() {
    let source = format!(
        "{}\n[[rules]]\nid = \"bday\"\nname = \"Happy birthday\"\nkind = \"birthday\"\namount = \"50\"\n",
        program(0, "policy = \"never\"", "only_pending", "forfeit")
    );
    for club in clubs(&source).await {
        // Born on 4 March; the servers ran on 2 March, then not again until 7 March.
        let request = EnrollRequest {
            profile: ProfileFields {
                external_id: Some("b1".into()),
                birthday: Some("1990-03-04".into()),
                ..ProfileFields::default()
            },
            channel: "pos".into(),
            card_number: None,
            consents: vec![],
        };
        let member = club
            .engine
            .enroll(&club.tenant, &request, None)
            .await
            .unwrap()
            .value
            .id;
        let worker = worker();
        club.engine.ensure_jobs(&club.tenant).await.unwrap();
        club.engine.work_until_idle(&worker, 100).await.unwrap();
        assert_eq!(club.available(&member).await, 0);
        club.clock.set(ny("2026-03-07T09:00"));
        let store = club.engine.store();
        let tenant = club.tenant.id;
        let scheduled =
            |key: &'static str| async move { store.job(tenant, key).await.unwrap().is_some() };
        // 3, 4, 5 and 6 March for birthdays and anniversaries, plus today's jobs.
        assert!(club.engine.ensure_jobs(&club.tenant).await.unwrap() >= 8);
        assert_eq!(club.engine.ensure_jobs(&club.tenant).await.unwrap(), 0);
        for day in ["03", "04", "05", "06", "07"] {
            let key = format!("birthdays:2026-03-{day}");
            assert!(
                store.job(club.tenant.id, &key).await.unwrap().is_some(),
                "{key}"
            );
            let key = format!("anniversaries:2026-03-{day}");
            assert!(
                store.job(club.tenant.id, &key).await.unwrap().is_some(),
                "{key}"
            );
        }
        let reports = club.engine.work_until_idle(&worker, 100).await.unwrap();
        assert!(reports.iter().all(|r| r.outcome.is_ok()), "{reports:?}");
        assert!(reports.iter().any(|r| r.key == "birthdays:2026-03-04"));
        assert_eq!(club.available(&member).await, 50, "[{}]", club.label());
        // Another process scheduling the same days finds them done.
        assert_eq!(club.engine.ensure_jobs(&club.tenant).await.unwrap(), 0);
        assert!(club.engine.work_once(&worker).await.unwrap().is_none());
        // A long outage is caught up for at most 31 days.
        club.clock.set(ny("2026-06-07T09:00"));
        assert!(club.engine.ensure_jobs(&club.tenant).await.unwrap() >= 2 * 31);
        assert!(scheduled("birthdays:2026-05-07").await);
        assert!(!scheduled("birthdays:2026-05-06").await);
        club.engine.work_until_idle(&worker, 1000).await.unwrap();
        assert_eq!(club.available(&member).await, 50);
        club.verify().await;
        club.db.cleanup().await;
    }
}

#[tokio::test]
async fn engine_errors_name_the_field_for_a_bad_floor_reason() {
    let source = tiered("visits", "\"calendar_year\"", "\"never\"");
    for club in clubs(&source).await {
        let member = club.enroll("m1").await;
        let long = "x".repeat(501);
        let result = club
            .engine
            .end_tier_floor(&club.tenant, &member, Some(&long), "admin", None)
            .await;
        assert!(matches!(result, Err(EngineError::Invalid { ref field, .. }) if field == "reason"));
        club.db.cleanup().await;
    }
}

mod properties {
    //! Random sequences of purchases, refunds, floors set and ended, clock moves and nightly
    //! passes: the tier pass never touches the ledger (balances unchanged, verification clean),
    //! never leaves a member below an active floor, settles in one pass, and the review it
    //! announces is a move down in the future.

    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use jiff::SignedDuration;
    use patron_engine::jobs::{JobKind, Worker};
    use patron_engine::tiers::TierFloorRequest;
    use patron_engine::{Engine, ManualClock};
    use patron_store::testing;
    use proptest::prelude::*;
    use proptest::test_runner::{Config, TestCaseError, TestRunner};

    use super::tiered;
    use crate::support::{label, purchase_request, refund_request, start};

    static TENANTS: AtomicUsize = AtomicUsize::new(0);
    const LEVELS: [&str; 3] = ["base", "silver", "gold"];

    #[derive(Debug, Clone)]
    enum Op {
        Buy(u8),
        RefundLast,
        SetFloor { level: usize, days: Option<u16> },
        EndFloor,
        Advance(u16),
        Nightly,
    }

    fn ops() -> impl Strategy<Value = (usize, Vec<Op>)> {
        let op = prop_oneof![
            3 => (1_u8..4).prop_map(Op::Buy),
            1 => Just(Op::RefundLast),
            1 => (0_usize..3, proptest::option::of(1_u16..400))
                .prop_map(|(level, days)| Op::SetFloor { level, days }),
            1 => Just(Op::EndFloor),
            2 => (1_u16..200).prop_map(Op::Advance),
            2 => Just(Op::Nightly),
        ];
        (0_usize..3, proptest::collection::vec(op, 1..25))
    }

    fn program(choice: usize) -> String {
        match choice {
            0 => tiered(
                "visits",
                "\"calendar_year\"",
                "{ policy = \"end_of_period\", grace_days = 30 }",
            ),
            1 => tiered(
                "visits",
                "{ rolling_months = 3 }",
                "{ policy = \"end_of_period\", grace_days = 10 }",
            ),
            _ => tiered("points_earned", "\"calendar_year\"", "\"never\""),
        }
    }

    fn level(code: &str) -> usize {
        LEVELS.iter().position(|l| *l == code).unwrap()
    }

    async fn run_case(
        engine: &Engine,
        clock: &ManualClock,
        choice: usize,
        ops: &[Op],
    ) -> Result<(), TestCaseError> {
        clock.set(start());
        let name = format!("tiers-{}", TENANTS.fetch_add(1, Ordering::SeqCst));
        let (tenant, _, _) = engine
            .apply_program(&name, &program(choice), "test")
            .await
            .unwrap();
        let member = engine
            .enroll(
                &tenant,
                &patron_engine::EnrollRequest {
                    profile: patron_engine::ProfileFields::default(),
                    channel: "pos".into(),
                    card_number: None,
                    consents: vec![],
                },
                None,
            )
            .await
            .unwrap()
            .value
            .id;
        let worker = Worker::new(SignedDuration::from_secs(60));
        let mut purchases: Vec<String> = Vec::new();
        for (step, op) in ops.iter().enumerate() {
            match op {
                Op::Buy(units) => {
                    let request = purchase_request(
                        &format!("doc-{step}"),
                        Some(&member),
                        &units.to_string(),
                        2_000,
                        "USD",
                    );
                    let receipt = engine.post_purchase(&tenant, &request, None).await.unwrap();
                    purchases.push(receipt.value.purchase_id);
                }
                Op::RefundLast => {
                    if let Some(purchase) = purchases.pop() {
                        let request = refund_request(&format!("ret-{step}"), None);
                        engine
                            .refund(&tenant, &purchase, &request, None)
                            .await
                            .unwrap();
                    }
                }
                Op::SetFloor { level, days } => {
                    let until = days.map(|days| {
                        (engine.now() + SignedDuration::from_hours(24 * i64::from(days)))
                            .to_string()
                    });
                    let request = TierFloorRequest {
                        tier: LEVELS[*level].into(),
                        until,
                        reason: "property".into(),
                    };
                    engine
                        .set_tier_floor(&tenant, &member, &request, "prop", None)
                        .await
                        .unwrap();
                }
                Op::EndFloor => {
                    engine
                        .end_tier_floor(&tenant, &member, None, "prop", None)
                        .await
                        .unwrap();
                }
                Op::Advance(days) => {
                    clock.advance(SignedDuration::from_hours(24 * i64::from(*days)));
                }
                Op::Nightly => {
                    let before = engine.balance(&tenant, &member).await.unwrap();
                    let report = engine
                        .run_job_now(&tenant, JobKind::Tiers, &worker)
                        .await
                        .unwrap();
                    prop_assert!(report.outcome.is_ok(), "{report:?}");
                    let after = engine.balance(&tenant, &member).await.unwrap();
                    prop_assert_eq!(before, after, "the tier pass moved points");
                    let again = engine
                        .run_job_now(&tenant, JobKind::Tiers, &worker)
                        .await
                        .unwrap();
                    prop_assert_eq!(
                        again.outcome.as_deref(),
                        Ok("0 upgraded, 0 downgraded"),
                        "a second pass moved someone"
                    );
                    let tier = engine.member_tier(&tenant, &member).await.unwrap();
                    if let Some(floor) = &tier.view.floor {
                        prop_assert!(
                            level(&tier.view.status.code) >= level(&floor.tier),
                            "below the floor: {tier:?}"
                        );
                    }
                }
            }
            let report = engine
                .store()
                .verify_ledger(tenant.id, engine.now())
                .await
                .unwrap();
            prop_assert!(report.is_clean(), "{:?}", report.discrepancies);
            let tier = engine.member_tier(&tenant, &member).await.unwrap();
            if let Some(review) = &tier.review {
                prop_assert!(review.review.at >= engine.now(), "{tier:?}");
                prop_assert!(
                    level(&review.review.to) < level(&tier.view.status.code),
                    "{tier:?}"
                );
            }
        }
        Ok(())
    }

    #[test]
    fn the_tier_pass_keeps_the_ledger_and_the_floor() {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        for db in runtime.block_on(testing::all()) {
            let clock = ManualClock::new(start());
            let engine = Engine::new(db.store.clone(), Arc::new(clock.clone()));
            let cases = std::env::var("PATRON_PROPTEST_CASES")
                .ok()
                .and_then(|c| c.parse().ok())
                .unwrap_or(12);
            let mut runner = TestRunner::new(Config {
                cases,
                failure_persistence: None,
                ..Config::default()
            });
            let result = runner.run(&ops(), |(choice, ops)| {
                runtime.block_on(run_case(&engine, &clock, choice, &ops))
            });
            let name = label(&db);
            runtime.block_on(db.cleanup());
            if let Err(failure) = result {
                panic!("[{name}] {failure}");
            }
        }
    }
}
