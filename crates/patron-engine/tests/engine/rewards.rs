//! Rewards and coupons (issue 4, items 4 and 5) on both backends: eligibility and its
//! reasons, stock never oversold under concurrency, per-member limits, coupons that catch
//! typos, redeem/replay/release, promotion limits per day and budgets, partner pools, and a
//! record of every issue and redemption.

use jiff::SignedDuration;
use patron_engine::EngineError;
use patron_engine::jobs::{JobKind, Worker};
use patron_engine::rewards::PromotionRequest;
use patron_store::Rejection;
use patron_store::coupons::{CouponBenefit, CouponUse, PeriodLimit};

use crate::support::{COFFEE, Club, clubs, rejection};

fn reasons(result: Result<impl std::fmt::Debug, EngineError>) -> Vec<String> {
    match rejection(result) {
        Rejection::RewardUnavailable { reasons, .. } => reasons,
        other => panic!("expected reward_unavailable, got {other:?}"),
    }
}

fn refusal(result: Result<impl std::fmt::Debug, EngineError>) -> String {
    match rejection(result) {
        Rejection::CouponRefused { reason, .. } => reason,
        other => panic!("expected a coupon refusal, got {other:?}"),
    }
}

fn usage(member: Option<&str>, order: Option<&str>) -> CouponUse {
    CouponUse {
        member_id: member.map(str::to_string),
        order_id: order.map(str::to_string),
        cart_minor: Some(1_000),
    }
}

async fn counts(club: &Club) -> Vec<(String, i64)> {
    club.engine
        .store()
        .coupon_event_counts(club.tenant.id)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_catalog_says_why_not_and_limits_count_per_member() {
    for club in clubs(&COFFEE).await {
        let (engine, tenant) = (&club.engine, &club.tenant);
        let member = club.enroll("m-1").await;
        let catalog = engine
            .rewards_catalog(tenant, Some(&member), None)
            .await
            .unwrap();
        let of = |id: &str| catalog.iter().find(|e| e.reward.id == id).unwrap().clone();
        assert_eq!(of("free_drink").reasons, ["insufficient_points"]);
        assert_eq!(of("free_drink").name, "Any handcrafted drink");
        assert_eq!(of("reserve_tasting").reasons, ["not_in_tier"]);
        assert_eq!(of("tumbler").stock_left, Some(5));
        assert_eq!(
            of("cinema_ticket").reasons,
            ["out_of_stock", "insufficient_points"]
        );

        club.grant(&member, 1_000).await;
        let first = engine
            .redeem_reward(tenant, &member, "free_drink", None)
            .await
            .unwrap()
            .value;
        assert_eq!(first.points, 100);
        assert_eq!(first.balance.available, 900);
        assert!(
            first.coupon.code.starts_with("BREW-"),
            "{}",
            first.coupon.code
        );
        assert_eq!(first.coupon.member_id.as_deref(), Some(member.as_str()));
        assert_eq!(first.coupon.benefit.sku.as_deref(), Some("ANY-DRINK"));
        assert!(first.coupon.expires_at.is_some());
        engine
            .redeem_reward(tenant, &member, "free_drink", None)
            .await
            .unwrap();
        // Two a day: the third is refused, and nothing is debited.
        assert_eq!(
            reasons(
                engine
                    .redeem_reward(tenant, &member, "free_drink", None)
                    .await
            ),
            ["limit_reached"],
            "[{}]",
            club.label()
        );
        assert_eq!(club.available(&member).await, 800);
        // The next day counts afresh.
        club.clock.advance(SignedDuration::from_hours(24));
        engine
            .redeem_reward(tenant, &member, "free_drink", None)
            .await
            .unwrap();
        // A lifetime limit of one.
        engine
            .redeem_reward(tenant, &member, "tumbler", None)
            .await
            .unwrap();
        assert_eq!(
            reasons(engine.redeem_reward(tenant, &member, "tumbler", None).await),
            ["limit_reached", "insufficient_points"]
        );
        // Unknown rewards are 404s; a reward out of its window says so.
        assert!(matches!(
            rejection(engine.redeem_reward(tenant, &member, "nope", None).await),
            Rejection::RewardNotFound { .. }
        ));
        club.clock.set("2027-02-01T17:00:00Z".parse().unwrap());
        let catalog = engine
            .rewards_catalog(tenant, Some(&member), None)
            .await
            .unwrap();
        let tasting = catalog
            .iter()
            .find(|e| e.reward.id == "reserve_tasting")
            .unwrap();
        assert_eq!(tasting.reasons, ["not_in_tier", "out_of_window"]);
        club.verify().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn stock_is_never_oversold_under_concurrency() {
    for club in clubs(&COFFEE).await {
        let mut members = Vec::new();
        for index in 0..20 {
            let member = club.enroll(&format!("m-{index}")).await;
            club.grant(&member, 400).await;
            members.push(member);
        }
        let tasks: Vec<_> = members
            .iter()
            .map(|member| {
                let (engine, tenant, member) =
                    (club.engine.clone(), club.tenant.clone(), member.clone());
                tokio::spawn(async move {
                    engine
                        .redeem_reward(&tenant, &member, "tumbler", None)
                        .await
                })
            })
            .collect();
        let (mut won, mut out_of_stock) = (0, 0);
        for task in tasks {
            match task.await.unwrap() {
                Ok(_) => won += 1,
                Err(EngineError::Rejected(Rejection::RewardUnavailable { reasons, .. }))
                    if reasons == ["out_of_stock"] =>
                {
                    out_of_stock += 1
                }
                Err(other) => panic!("[{}] unexpected: {other}", club.label()),
            }
        }
        assert_eq!((won, out_of_stock), (5, 15), "[{}]", club.label());
        let mut spent = 0;
        for member in &members {
            spent += 400 - club.available(member).await;
        }
        assert_eq!(spent, 5 * 400, "[{}] exactly five paid", club.label());
        assert_eq!(counts(&club).await, [("issued".to_string(), 5)]);
        club.verify().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_coupon_is_validated_redeemed_once_and_released() {
    for club in clubs(&COFFEE).await {
        let (engine, tenant) = (&club.engine, &club.tenant);
        let member = club.enroll("owner").await;
        let stranger = club.enroll("stranger").await;
        club.grant(&member, 500).await;
        let issued = engine
            .redeem_reward(tenant, &member, "two_dollars_off", Some("reward-1"))
            .await
            .unwrap();
        // The same key answers the same coupon, and debits once.
        let replay = engine
            .redeem_reward(tenant, &member, "two_dollars_off", Some("reward-1"))
            .await
            .unwrap();
        assert!(replay.replayed);
        assert_eq!(replay.value.coupon.code, issued.value.coupon.code);
        assert_eq!(club.available(&member).await, 400);
        let code = issued.value.coupon.code.clone();

        // A typo is caught by the check character, with a clear reason.
        let mut typo: Vec<char> = code.chars().collect();
        // One character changed (a substitution is always caught).
        typo[0] = if typo[0] == 'A' { 'B' } else { 'A' };
        let typo: String = typo.into_iter().collect();
        match rejection(
            engine
                .validate_coupon(tenant, &typo, &usage(None, None))
                .await,
        ) {
            Rejection::InvalidCouponCode { reason, .. } => {
                assert!(reason.contains("typo"), "{reason}")
            }
            other => panic!("{other:?}"),
        }

        let check = engine
            .validate_coupon(
                tenant,
                &code.to_lowercase().replace('-', ""),
                &usage(Some(&member), None),
            )
            .await
            .unwrap();
        assert!(check.valid);
        assert_eq!(check.discount_minor, Some(200));
        let check = engine
            .validate_coupon(tenant, &code, &usage(Some(&stranger), None))
            .await
            .unwrap();
        assert_eq!(check.reason.as_deref(), Some("not_for_member"));
        assert_eq!(
            refusal(
                engine
                    .redeem_coupon(tenant, &code, &usage(Some(&stranger), None), None)
                    .await
            ),
            "not_for_member"
        );

        let used = engine
            .redeem_coupon(
                tenant,
                &code,
                &usage(Some(&member), Some("order-1")),
                Some("pos-1"),
            )
            .await
            .unwrap();
        assert_eq!(used.value.coupon.state, "redeemed");
        assert_eq!(used.value.discount_minor, 200);
        let again = engine
            .redeem_coupon(
                tenant,
                &code,
                &usage(Some(&member), Some("order-1")),
                Some("pos-1"),
            )
            .await
            .unwrap();
        assert!(again.replayed);
        assert_eq!(again.value.redemption_id, used.value.redemption_id);
        assert_eq!(
            refusal(
                engine
                    .redeem_coupon(tenant, &code, &usage(Some(&member), Some("order-2")), None)
                    .await
            ),
            "used"
        );

        // The order is cancelled: the coupon can be used again.
        let released = engine
            .release_coupon(tenant, &code, Some("order-1"), None)
            .await
            .unwrap();
        assert_eq!(released.value.coupon.state, "released");
        assert!(matches!(
            rejection(engine.release_coupon(tenant, &code, None, None).await),
            Rejection::CouponNotRedeemed { .. }
        ));
        engine
            .redeem_coupon(tenant, &code, &usage(Some(&member), Some("order-3")), None)
            .await
            .unwrap();
        assert_eq!(
            counts(&club).await,
            [
                ("issued".to_string(), 1),
                ("redeemed".to_string(), 2),
                ("released".to_string(), 1)
            ],
            "[{}] every issue and redemption is recorded",
            club.label()
        );
        // A code nobody issued.
        let format = patron_domain::coupon::CodeFormat::new("BREW", 8, 4).unwrap();
        let stranger_code = format.generate(&mut patron_domain::rand::rng());
        assert!(matches!(
            rejection(
                engine
                    .validate_coupon(tenant, &stranger_code, &usage(None, None))
                    .await
            ),
            Rejection::CouponNotFound { .. }
        ));
        club.verify().await;
    }
}

fn promotion(id: &str) -> PromotionRequest {
    PromotionRequest {
        id: Some(id.into()),
        name: "Spring".into(),
        benefit: CouponBenefit {
            kind: "discount".into(),
            percent: Some("10".into()),
            cap_minor: Some(300),
            ..CouponBenefit::default()
        },
        prefix: "SPRNG".into(),
        budget_redemptions: None,
        budget_minor: None,
        limit: None,
        member_limit: None,
        uses_per_code: Some(1),
        starts_at: None,
        ends_at: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn promotions_honour_their_daily_limit_budget_and_member_limit() {
    for club in clubs(&COFFEE).await {
        let (engine, tenant) = (&club.engine, &club.tenant);
        let request = PromotionRequest {
            budget_redemptions: Some(3),
            limit: Some(PeriodLimit {
                count: 2,
                per: "day".into(),
            }),
            ..promotion("spring")
        };
        engine
            .create_promotion(tenant, &request, None)
            .await
            .unwrap();
        let batch = engine
            .generate_promotion_codes(tenant, "spring", 5, true, None)
            .await
            .unwrap()
            .value;
        assert_eq!((batch.created, batch.codes.len()), (5, 5));
        assert!(batch.codes.iter().all(|c| c.starts_with("SPRNG-")));
        let page = engine
            .promotion_codes(tenant, "spring", None, 3)
            .await
            .unwrap();
        assert_eq!(page.len(), 3);
        let rest = engine
            .promotion_codes(tenant, "spring", Some(&page[2].0), 10)
            .await
            .unwrap();
        assert_eq!(rest.len(), 2);

        let anonymous = usage(None, None);
        let sale = async |code: &str| engine.redeem_coupon(tenant, code, &anonymous, None).await;
        let first = sale(&batch.codes[0]).await.unwrap().value;
        assert_eq!(first.discount_minor, 100, "10% of $10");
        sale(&batch.codes[1]).await.unwrap();
        assert_eq!(refusal(sale(&batch.codes[2]).await), "limit_reached");
        club.clock.advance(SignedDuration::from_hours(24));
        sale(&batch.codes[2]).await.unwrap();
        assert_eq!(refusal(sale(&batch.codes[3]).await), "budget_exhausted");
        let spring = engine.promotion(tenant, "spring").await.unwrap();
        assert_eq!(
            (spring.codes, spring.redemptions, spring.spent_minor),
            (5, 3, 300)
        );
        // A release gives the budget back.
        engine
            .release_coupon(tenant, &batch.codes[0], None, None)
            .await
            .unwrap();
        sale(&batch.codes[3]).await.unwrap();

        // One public code, many uses, once per member per month.
        let request = PromotionRequest {
            member_limit: Some(PeriodLimit {
                count: 1,
                per: "month".into(),
            }),
            uses_per_code: None,
            prefix: "WEEK".into(),
            ..promotion("week")
        };
        engine
            .create_promotion(tenant, &request, None)
            .await
            .unwrap();
        let code = engine
            .generate_promotion_codes(tenant, "week", 1, true, None)
            .await
            .unwrap()
            .value
            .codes
            .remove(0);
        let (a, b) = (club.enroll("a").await, club.enroll("b").await);
        engine
            .redeem_coupon(tenant, &code, &usage(Some(&a), None), None)
            .await
            .unwrap();
        assert_eq!(
            refusal(
                engine
                    .redeem_coupon(tenant, &code, &usage(Some(&a), None), None)
                    .await
            ),
            "member_limit_reached"
        );
        engine
            .redeem_coupon(tenant, &code, &usage(Some(&b), None), None)
            .await
            .unwrap();
        // Ids are unique; bad limits are refused before anything is written.
        assert!(matches!(
            rejection(
                engine
                    .create_promotion(tenant, &promotion("week"), None)
                    .await
            ),
            Rejection::Duplicate { .. }
        ));
        let bad = PromotionRequest {
            limit: Some(PeriodLimit {
                count: 1,
                per: "fortnight".into(),
            }),
            ..promotion("bad")
        };
        assert!(matches!(
            engine.create_promotion(tenant, &bad, None).await,
            Err(EngineError::Invalid { .. })
        ));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partner_vouchers_come_from_the_uploaded_pool() {
    for club in clubs(&COFFEE).await {
        let (engine, tenant) = (&club.engine, &club.tenant);
        let added = engine
            .import_partner_codes(
                tenant,
                "cinema",
                &["cine-0001".into(), "CINE 0002".into(), "CINE0001".into()],
                None,
            )
            .await
            .unwrap();
        assert_eq!(added.value, 2, "a code already in the pool is skipped");
        let mut issued = Vec::new();
        for name in ["p1", "p2", "p3"] {
            let member = club.enroll(name).await;
            club.grant(&member, 300).await;
            match engine
                .redeem_reward(tenant, &member, "cinema_ticket", None)
                .await
            {
                Ok(redemption) => issued.push((member, redemption.value.coupon.code)),
                Err(EngineError::Rejected(Rejection::RewardUnavailable { reasons, .. })) => {
                    assert_eq!(reasons, ["out_of_stock"]);
                    assert_eq!(club.available(&member).await, 300);
                }
                Err(other) => panic!("{other}"),
            }
        }
        let codes: Vec<&str> = issued.iter().map(|(_, code)| code.as_str()).collect();
        assert_eq!(codes, ["CINE0001", "CINE0002"], "[{}]", club.label());
        // A partner code has no check character, and is still found as typed.
        let (owner, _) = &issued[0];
        engine
            .redeem_coupon(tenant, "cine-0001", &usage(Some(owner), None), None)
            .await
            .unwrap();
        club.verify().await;
    }
}

/// The coupon job: codes past their promotion's end become `expired` once, with an event
/// each; a code already used stays `redeemed`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_coupon_job_expires_unused_codes_once() {
    for club in clubs(&COFFEE).await {
        let (engine, tenant) = (&club.engine, &club.tenant);
        let ends_at = engine.now() + SignedDuration::from_hours(24);
        let request = PromotionRequest {
            ends_at: Some(ends_at),
            ..promotion("weekend")
        };
        engine
            .create_promotion(tenant, &request, None)
            .await
            .unwrap();
        let codes = engine
            .generate_promotion_codes(tenant, "weekend", 3, true, None)
            .await
            .unwrap()
            .value
            .codes;
        engine
            .redeem_coupon(tenant, &codes[0], &usage(None, None), None)
            .await
            .unwrap();
        club.clock.advance(SignedDuration::from_hours(48));
        let worker = Worker::new(SignedDuration::from_secs(60));
        for expected in ["2 coupons expired", "0 coupons expired"] {
            let report = engine
                .run_job_now(tenant, JobKind::Coupons, &worker)
                .await
                .unwrap();
            assert_eq!(
                report.outcome.as_deref(),
                Ok(expected),
                "[{}]",
                club.label()
            );
        }
        let counts = counts(&club).await;
        assert!(
            counts.contains(&("expired".to_string(), 2)),
            "[{}] {counts:?}",
            club.label()
        );
        club.verify().await;
    }
}

/// A member's exit voids their unused coupons: presented at a till afterwards they are refused
/// with `member_exited`, and a use released after the exit leaves the coupon void.
#[tokio::test]
async fn a_members_exit_voids_their_coupons() {
    for club in clubs(&COFFEE).await {
        let (engine, tenant) = (&club.engine, &club.tenant);
        let member = club.enroll("leaver").await;
        club.grant(&member, 500).await;
        let mut codes = Vec::new();
        for key in ["reward-a", "reward-b"] {
            let issued = engine
                .redeem_reward(tenant, &member, "two_dollars_off", Some(key))
                .await
                .unwrap();
            codes.push(issued.value.coupon.code);
        }
        // The first is used on an order before the member leaves; the second is not.
        engine
            .redeem_coupon(
                tenant,
                &codes[0],
                &usage(Some(&member), Some("order-1")),
                None,
            )
            .await
            .unwrap();
        let exit = engine
            .exit_member(tenant, &member, "test", Some("exit-1"))
            .await
            .unwrap();
        assert_eq!(exit.value.coupons_voided, 1);

        let check = engine
            .validate_coupon(tenant, &codes[1], &usage(Some(&member), None))
            .await
            .unwrap();
        assert!(!check.valid);
        assert_eq!(check.reason.as_deref(), Some("member_exited"));
        assert_eq!(check.coupon.state, "voided");
        assert_eq!(
            refusal(
                engine
                    .redeem_coupon(tenant, &codes[1], &usage(Some(&member), Some("o2")), None)
                    .await
            ),
            "member_exited"
        );
        // The order with the first coupon is cancelled: the use is given back, and the coupon
        // stays out of reach.
        let released = engine
            .release_coupon(tenant, &codes[0], Some("order-1"), None)
            .await
            .unwrap();
        assert_eq!(released.value.coupon.state, "voided");
        assert_eq!(
            refusal(
                engine
                    .redeem_coupon(tenant, &codes[0], &usage(Some(&member), Some("o3")), None)
                    .await
            ),
            "member_exited"
        );
        let events = counts(&club).await;
        assert!(events.contains(&("voided".to_string(), 1)), "{events:?}");
        club.verify().await;
        club.db.cleanup().await;
    }
}
