//! Exactly once (docs/LEDGER.md#idempotency; invariant 4): one key and one request give one effect
//! and the same answer, whether replayed in turn, concurrently, or after a crash between the
//! commit and the reply; the same key with another request is refused and changes nothing.

use std::sync::Arc;

use patron_engine::{Engine, EngineError, EnrollRequest, ProfileFields, RedeemRequest, Replayable};
use patron_store::Rejection;

use crate::support::{COFFEE, Club, clubs, purchase_request, refund_request, rejection};

/// Runs `count` copies of `call` at once and returns their answers.
async fn race<T, F, Fut>(count: usize, call: F) -> Vec<Result<Replayable<T>, EngineError>>
where
    T: Send + 'static,
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<Replayable<T>, EngineError>> + Send + 'static,
{
    let tasks: Vec<_> = (0..count).map(|_| tokio::spawn(call())).collect();
    let mut answers = Vec::with_capacity(count);
    for task in tasks {
        answers.push(task.await.unwrap());
    }
    answers
}

/// Every answer succeeded with the same value, and exactly one of them did the work.
fn one_effect_same_answer<T: PartialEq + std::fmt::Debug>(
    label: &str,
    answers: Vec<Result<Replayable<T>, EngineError>>,
) -> T {
    let answers: Vec<Replayable<T>> = answers.into_iter().map(|a| a.unwrap()).collect();
    let fresh = answers.iter().filter(|a| !a.replayed).count();
    assert_eq!(
        fresh, 1,
        "[{label}] exactly one answer did the work, the others are replays"
    );
    let first = &answers[0].value;
    assert!(
        answers.iter().all(|a| &a.value == first),
        "[{label}] every answer is identical"
    );
    answers.into_iter().next().unwrap().value
}

fn enroll_request(external_id: &str) -> EnrollRequest {
    EnrollRequest {
        profile: ProfileFields {
            external_id: Some(external_id.into()),
            name: Some("Dana".into()),
            ..ProfileFields::default()
        },
        channel: "web".into(),
        card_number: None,
        consents: vec![],
    }
}

#[tokio::test]
async fn a_purchase_replayed_with_its_key_has_one_effect_and_the_same_answer() {
    for club in clubs(&COFFEE).await {
        let member = club.enroll("m-1").await;
        let request = club.purchase("doc-1", Some(&member), 1000, "USD");
        let first = club
            .engine
            .post_purchase(&club.tenant, &request, Some("key-1"))
            .await
            .unwrap();
        let before = club.snapshot(&[&member]).await;
        let second = club
            .engine
            .post_purchase(&club.tenant, &request, Some("key-1"))
            .await
            .unwrap();
        assert!(!first.replayed && second.replayed);
        assert_eq!(
            first.value,
            second.value,
            "[{}] the same response",
            club.label()
        );
        assert_eq!(
            club.snapshot(&[&member]).await,
            before,
            "[{}] no second effect",
            club.label()
        );
        // The document id alone (no key) also replays the same purchase.
        let third = club
            .engine
            .post_purchase(&club.tenant, &request, None)
            .await
            .unwrap();
        assert!(third.replayed);
        assert_eq!(third.value, first.value);
        assert_eq!(club.available(&member).await, 20);
        club.verify().await;
        club.db.cleanup().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_purchases_with_one_key_have_one_effect_and_identical_answers() {
    for club in clubs(&COFFEE).await {
        let member = club.enroll("m-1").await;
        let request = club.purchase("doc-1", Some(&member), 1000, "USD");
        let (engine, tenant) = (club.engine.clone(), club.tenant.clone());
        let answers = race(10, || {
            let (engine, tenant, request) = (engine.clone(), tenant.clone(), request.clone());
            async move { engine.post_purchase(&tenant, &request, Some("key-1")).await }
        })
        .await;
        let receipt = one_effect_same_answer(club.label(), answers);
        assert_eq!(receipt.points, 20);
        assert_eq!(
            club.available(&member).await,
            20,
            "[{}] earned once",
            club.label()
        );
        assert_eq!(
            club.engine
                .store()
                .member_ledger(club.tenant.id, &member, None, 100)
                .await
                .unwrap()
                .len(),
            1
        );
        club.verify().await;
        club.db.cleanup().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_enrollments_with_one_key_enroll_one_member() {
    for club in clubs(&COFFEE).await {
        let request = enroll_request("ext-1");
        let (engine, tenant) = (club.engine.clone(), club.tenant.clone());
        let answers = race(10, || {
            let (engine, tenant, request) = (engine.clone(), tenant.clone(), request.clone());
            async move { engine.enroll(&tenant, &request, Some("enroll-1")).await }
        })
        .await;
        let member = one_effect_same_answer(club.label(), answers);
        assert_eq!(
            club.engine
                .store()
                .count_members(club.tenant.id)
                .await
                .unwrap(),
            1
        );
        let replay = club
            .engine
            .enroll(&club.tenant, &request, Some("enroll-1"))
            .await
            .unwrap();
        assert!(replay.replayed);
        assert_eq!(
            replay.value,
            member,
            "[{}] the same member, card and all",
            club.label()
        );
        // Without the key the same person is a duplicate, not a second member.
        let duplicate = club.engine.enroll(&club.tenant, &request, None).await;
        assert_eq!(
            rejection(duplicate),
            Rejection::Duplicate {
                field: "external_id".into(),
                value: "ext-1".into()
            }
        );
        club.verify().await;
        club.db.cleanup().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_redemptions_with_one_key_spend_once() {
    for club in clubs(&COFFEE).await {
        let member = club.enroll("m-1").await;
        club.grant(&member, 100).await;
        let request = RedeemRequest {
            points: 30,
            hold: false,
            hold_minutes: None,
            description: None,
        };
        let (engine, tenant, id) = (club.engine.clone(), club.tenant.clone(), member.clone());
        let answers = race(10, || {
            let (engine, tenant, id, request) =
                (engine.clone(), tenant.clone(), id.clone(), request.clone());
            async move {
                engine
                    .redeem(&tenant, &id, &request, Some("redeem-1"))
                    .await
            }
        })
        .await;
        let redemption = one_effect_same_answer(club.label(), answers);
        assert_eq!(redemption.balance.unwrap().available, 70);
        assert_eq!(
            club.available(&member).await,
            70,
            "[{}] spent once",
            club.label()
        );
        club.verify().await;
        club.db.cleanup().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_refund_replayed_by_its_document_id_claws_back_once() {
    for club in clubs(&COFFEE).await {
        let member = club.enroll("m-1").await;
        let receipt = club.buy("doc-1", &member, "2", 1000).await;
        let request = refund_request("ret-1", Some("1"));
        let (engine, tenant, purchase) = (
            club.engine.clone(),
            club.tenant.clone(),
            receipt.purchase_id.clone(),
        );
        let answers = race(10, || {
            let (engine, tenant, purchase, request) = (
                engine.clone(),
                tenant.clone(),
                purchase.clone(),
                request.clone(),
            );
            async move { engine.refund(&tenant, &purchase, &request, None).await }
        })
        .await;
        let refund = one_effect_same_answer(club.label(), answers);
        assert_eq!(refund.clawed_back_points, 20);
        let replay = club
            .engine
            .refund(&club.tenant, &receipt.purchase_id, &request, None)
            .await
            .unwrap();
        assert!(replay.replayed);
        assert_eq!(replay.value, refund);
        assert_eq!(
            club.available(&member).await,
            20,
            "[{}] one of the two items refunded, once",
            club.label()
        );
        let purchase = club
            .engine
            .purchase(&club.tenant, &receipt.purchase_id)
            .await
            .unwrap();
        assert_eq!(purchase.refunded_minor, 1000);
        club.verify().await;
        club.db.cleanup().await;
    }
}

/// A second process on the same database, with the same clock (a restart).
async fn restarted(club: &Club) -> Engine {
    Engine::new(
        club.db.reopen().await.unwrap(),
        Arc::new(club.clock.clone()),
    )
}

#[tokio::test]
async fn a_replay_after_a_crash_between_commit_and_reply_gives_the_stored_answer() {
    for club in clubs(&COFFEE).await {
        let member = club.enroll("m-1").await;
        club.grant(&member, 100).await;
        let purchase = club.purchase("doc-1", Some(&member), 1500, "USD");
        let redeem = RedeemRequest {
            points: 40,
            hold: true,
            hold_minutes: Some(10),
            description: None,
        };
        // The calls commit; their answers are lost on the way back.
        drop(
            club.engine
                .post_purchase(&club.tenant, &purchase, Some("buy-1"))
                .await
                .unwrap(),
        );
        let lost = club
            .engine
            .redeem(&club.tenant, &member, &redeem, Some("redeem-1"))
            .await
            .unwrap();
        let before = club.snapshot(&[&member]).await;

        let engine = restarted(&club).await;
        let bought = engine
            .post_purchase(&club.tenant, &purchase, Some("buy-1"))
            .await
            .unwrap();
        assert!(
            bought.replayed,
            "[{}] the committed purchase is found",
            club.label()
        );
        assert_eq!(bought.value.points, 30);
        let redeemed = engine
            .redeem(&club.tenant, &member, &redeem, Some("redeem-1"))
            .await
            .unwrap();
        assert_eq!(
            redeemed,
            Replayable {
                value: lost.value,
                replayed: true
            },
            "[{}] the stored response",
            club.label()
        );
        assert_eq!(
            club.snapshot(&[&member]).await,
            before,
            "[{}] nothing done twice",
            club.label()
        );
        engine.store().close().await;
        club.verify().await;
        club.db.cleanup().await;
    }
}

#[tokio::test]
async fn a_key_reused_for_another_request_is_refused_and_changes_nothing() {
    for club in clubs(&COFFEE).await {
        let member = club.enroll("m-1").await;
        let first = club.purchase("doc-1", Some(&member), 1000, "USD");
        club.engine
            .post_purchase(&club.tenant, &first, Some("key-1"))
            .await
            .unwrap();
        let before = club.snapshot(&[&member]).await;

        let other = club.purchase("doc-2", Some(&member), 5000, "USD");
        let refused = club
            .engine
            .post_purchase(&club.tenant, &other, Some("key-1"))
            .await;
        assert!(
            matches!(refused, Err(EngineError::IdempotencyMismatch { ref key }) if key == "client:key-1"),
            "{refused:?}"
        );
        // The key of a purchase cannot be used for another operation either.
        let redeem = RedeemRequest {
            points: 1,
            hold: false,
            hold_minutes: None,
            description: None,
        };
        let refused = club
            .engine
            .redeem(&club.tenant, &member, &redeem, Some("key-1"))
            .await;
        assert!(
            matches!(refused, Err(EngineError::IdempotencyMismatch { .. })),
            "{refused:?}"
        );

        assert_eq!(
            club.snapshot(&[&member]).await,
            before,
            "[{}] no effect",
            club.label()
        );
        assert!(
            club.engine
                .store()
                .purchase_by_document(club.tenant.id, "doc-2")
                .await
                .unwrap()
                .is_none()
        );
        club.verify().await;
        club.db.cleanup().await;
    }
}

#[tokio::test]
async fn a_document_id_posted_again_with_other_content_is_refused() {
    for club in clubs(&COFFEE).await {
        let member = club.enroll("m-1").await;
        club.engine
            .post_purchase(
                &club.tenant,
                &club.purchase("doc-1", Some(&member), 1000, "USD"),
                None,
            )
            .await
            .unwrap();
        let before = club.snapshot(&[&member]).await;
        let changed = club.purchase("doc-1", Some(&member), 2000, "USD");
        for key in [None, Some("fresh-key")] {
            let refused = club.engine.post_purchase(&club.tenant, &changed, key).await;
            assert!(
                matches!(refused, Err(EngineError::IdempotencyMismatch { ref key }) if key == "document:purchase:doc-1"),
                "[{}] {refused:?}",
                club.label()
            );
        }
        assert_eq!(
            club.snapshot(&[&member]).await,
            before,
            "[{}] no effect",
            club.label()
        );
        let stored = club
            .engine
            .store()
            .purchase_by_document(club.tenant.id, "doc-1")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            stored.total_minor,
            1000,
            "[{}] the first content stands",
            club.label()
        );
        club.verify().await;
        club.db.cleanup().await;
    }
}

#[tokio::test]
async fn a_refused_redemption_is_replayed_even_after_the_member_can_afford_it() {
    for club in clubs(&COFFEE).await {
        let member = club.enroll("m-1").await;
        let request = RedeemRequest {
            points: 100,
            hold: false,
            hold_minutes: None,
            description: None,
        };
        let refused = club
            .engine
            .redeem(&club.tenant, &member, &request, Some("redeem-1"))
            .await;
        let expected = Rejection::InsufficientPoints {
            available: 0,
            requested: 100,
        };
        assert_eq!(rejection(refused), expected);

        club.grant(&member, 200).await;
        let replay = club
            .engine
            .redeem(&club.tenant, &member, &request, Some("redeem-1"))
            .await;
        assert!(
            matches!(replay, Err(EngineError::ReplayedRejection(_))),
            "the stored rejection is answered as a replay"
        );
        assert_eq!(
            rejection(replay),
            expected,
            "[{}] the stored rejection, not a new decision",
            club.label()
        );
        assert_eq!(club.available(&member).await, 200);
        // A new key is a new request, and now succeeds.
        let fresh = club
            .engine
            .redeem(&club.tenant, &member, &request, Some("redeem-2"))
            .await
            .unwrap();
        assert_eq!(fresh.value.balance.unwrap().available, 100);
        club.verify().await;
        club.db.cleanup().await;
    }
}

#[tokio::test]
async fn an_enrollment_replayed_with_its_key_returns_the_same_member() {
    for club in clubs(&COFFEE).await {
        let request = enroll_request("ext-1");
        let first = club
            .engine
            .enroll(&club.tenant, &request, Some("enroll-1"))
            .await
            .unwrap();
        let second = club
            .engine
            .enroll(&club.tenant, &request, Some("enroll-1"))
            .await
            .unwrap();
        assert!(!first.replayed && second.replayed);
        assert_eq!(first.value, second.value);
        let other = club
            .engine
            .enroll(&club.tenant, &enroll_request("ext-2"), Some("enroll-1"))
            .await;
        assert!(
            matches!(other, Err(EngineError::IdempotencyMismatch { .. })),
            "{other:?}"
        );
        assert_eq!(
            club.engine
                .store()
                .count_members(club.tenant.id)
                .await
                .unwrap(),
            1,
            "[{}]",
            club.label()
        );
        club.db.cleanup().await;
    }
}

#[tokio::test]
async fn a_purchase_replayed_under_a_new_key_with_its_document_id_is_the_same_purchase() {
    for club in clubs(&COFFEE).await {
        let member = club.enroll("m-1").await;
        let request = purchase_request("doc-1", Some(&member), "1", 1000, "USD");
        let first = club
            .engine
            .post_purchase(&club.tenant, &request, Some("till-attempt-1"))
            .await
            .unwrap();
        let second = club
            .engine
            .post_purchase(&club.tenant, &request, Some("till-attempt-2"))
            .await
            .unwrap();
        assert!(second.replayed);
        assert_eq!(second.value, first.value);
        // The new key now answers the same as well.
        let third = club
            .engine
            .post_purchase(&club.tenant, &request, Some("till-attempt-2"))
            .await
            .unwrap();
        assert_eq!(third.value, first.value);
        assert_eq!(club.available(&member).await, 20, "[{}]", club.label());
        club.db.cleanup().await;
    }
}

/// A purchase for a member id that does not exist is refused and not remembered: nothing is
/// written, not even its keys, so the same document can be posted for the right member.
#[tokio::test]
async fn a_purchase_for_an_unknown_member_is_refused_and_stores_nothing() {
    for club in clubs(&COFFEE).await {
        let member = club.enroll("m-1").await;
        let keys = |db: &patron_store::testing::TestDatabase| {
            let pool = db.store.pool().clone();
            async move {
                sqlx::query("SELECT COUNT(*) AS n FROM idempotency_keys")
                    .fetch_one(&pool)
                    .await
                    .map(|row| sqlx::Row::get::<i64, _>(&row, "n"))
                    .unwrap()
            }
        };
        let before = keys(&club.db).await;
        let wrong = club.purchase("doc-1", Some("mem_nobody"), 1000, "USD");
        for _ in 0..2 {
            assert_eq!(
                rejection(
                    club.engine
                        .post_purchase(&club.tenant, &wrong, Some("key-1"))
                        .await
                ),
                Rejection::MemberNotFound {
                    member_id: "mem_nobody".into()
                },
                "[{}]",
                club.label()
            );
        }
        assert_eq!(
            keys(&club.db).await,
            before,
            "[{}] no key stored",
            club.label()
        );
        let right = club.purchase("doc-1", Some(&member), 1000, "USD");
        let receipt = club
            .engine
            .post_purchase(&club.tenant, &right, Some("key-2"))
            .await
            .unwrap();
        assert!(!receipt.replayed);
        assert_eq!(receipt.value.points, 20);
        club.verify().await;
        club.db.cleanup().await;
    }
}
