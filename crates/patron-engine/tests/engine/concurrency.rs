//! Concurrency (docs/LEDGER.md#concurrency): many requests on one member at once never overspend,
//! never lose an update, and transfers in both directions between two members do not fail on
//! deadlocks.

use patron_engine::{RedeemRequest, TransferRequest};
use patron_store::Rejection;

use crate::support::{COFFEE, clubs, purchase_request};

const TASKS: usize = 40;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_redemptions_never_overspend_and_add_up_to_what_was_spent() {
    for club in clubs(&COFFEE).await {
        let member = club.enroll("m-1").await;
        club.grant(&member, 250).await;
        let before = club.available(&member).await;

        let tasks: Vec<_> = (0..TASKS)
            .map(|_| {
                let (engine, tenant, member) =
                    (club.engine.clone(), club.tenant.clone(), member.clone());
                tokio::spawn(async move {
                    let request = RedeemRequest {
                        points: 10,
                        hold: false,
                        hold_minutes: None,
                        description: None,
                    };
                    engine.redeem(&tenant, &member, &request, None).await
                })
            })
            .collect();
        let mut spent = 0;
        let mut refused = 0;
        for task in tasks {
            match task.await.unwrap() {
                Ok(redemption) => {
                    spent += redemption.value.points;
                    assert!(redemption.value.balance.unwrap().available >= 0);
                }
                Err(patron_engine::EngineError::Rejected(Rejection::InsufficientPoints {
                    ..
                })) => refused += 1,
                Err(other) => panic!(
                    "[{}] a redemption failed instead of succeeding or being refused: {other}",
                    club.label()
                ),
            }
        }
        let after = club.balance(&member).await;
        assert_eq!(
            spent,
            before - after.available,
            "[{}] successes add up to what was spent",
            club.label()
        );
        assert_eq!(
            (spent, refused),
            (250, 15),
            "[{}] every point that was there, and not one more",
            club.label()
        );
        assert_eq!((after.available, after.debt), (0, 0));
        club.verify().await;
        club.db.cleanup().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_purchases_for_one_member_all_earn() {
    for club in clubs(&COFFEE).await {
        let member = club.enroll("m-1").await;
        let tasks: Vec<_> = (0..TASKS)
            .map(|n| {
                let (engine, tenant, member) =
                    (club.engine.clone(), club.tenant.clone(), member.clone());
                tokio::spawn(async move {
                    let request =
                        purchase_request(&format!("doc-{n}"), Some(&member), "1", 500, "USD");
                    engine.post_purchase(&tenant, &request, None).await
                })
            })
            .collect();
        let mut earned = Vec::with_capacity(TASKS);
        for task in tasks {
            let receipt = task
                .await
                .unwrap()
                .unwrap_or_else(|e| panic!("[{}] a purchase failed: {e}", club.label()));
            earned.push(receipt.value.points);
        }
        let balance = club.balance(&member).await;
        assert_eq!(
            balance.available,
            earned.iter().sum::<i64>(),
            "[{}] no update lost",
            club.label()
        );
        // The coffee chain's gold tier starts at the 30th visit of the year; from the 31st
        // purchase on, $5 earn 12 beans instead of 10, however the purchases interleave.
        earned.sort_unstable();
        let expected: Vec<i64> = [vec![10; 30], vec![12; TASKS - 30]].concat();
        assert_eq!(
            earned,
            expected,
            "[{}] each purchase earned at the tier it was made in",
            club.label()
        );
        let tier = club
            .engine
            .member(&club.tenant, &member)
            .await
            .unwrap()
            .tier;
        assert_eq!(tier, "gold", "[{}]", club.label());
        club.verify().await;
        club.db.cleanup().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_transfers_in_both_directions_all_complete() {
    for club in clubs(&COFFEE).await {
        let (alice, bob) = (club.enroll("alice").await, club.enroll("bob").await);
        club.grant(&alice, 500).await;
        club.grant(&bob, 500).await;
        let tasks: Vec<_> = (0..TASKS)
            .map(|n| {
                let (engine, tenant) = (club.engine.clone(), club.tenant.clone());
                let (from, to, points) = if n % 2 == 0 {
                    (alice.clone(), bob.clone(), 7)
                } else {
                    (bob.clone(), alice.clone(), 5)
                };
                tokio::spawn(async move {
                    let request = TransferRequest {
                        to_member_id: to,
                        points,
                    };
                    engine.transfer(&tenant, &from, &request, None).await
                })
            })
            .collect();
        for task in tasks {
            task.await
                .unwrap()
                .unwrap_or_else(|e| panic!("[{}] a transfer failed: {e}", club.label()));
        }
        let half = TASKS as i64 / 2;
        assert_eq!(
            club.available(&alice).await,
            500 - 7 * half + 5 * half,
            "[{}]",
            club.label()
        );
        assert_eq!(club.available(&bob).await, 500 + 7 * half - 5 * half);
        club.verify().await;
        club.db.cleanup().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_holds_captures_and_releases_keep_the_ledger_whole() {
    for club in clubs(&COFFEE).await {
        let member = club.enroll("m-1").await;
        club.grant(&member, 400).await;
        let mut holds = Vec::new();
        for _ in 0..10 {
            holds.push(club.hold(&member, 20, 30).await.unwrap().id);
        }
        // Each hold is resolved by two racing calls: exactly one of them wins.
        let tasks: Vec<_> = holds
            .iter()
            .enumerate()
            .flat_map(|(n, id)| (0..2).map(move |attempt| (n, id.clone(), attempt)))
            .map(|(n, id, attempt)| {
                let (engine, tenant) = (club.engine.clone(), club.tenant.clone());
                tokio::spawn(async move {
                    if (n + attempt) % 2 == 0 {
                        engine.capture(&tenant, &id, Some(15), None).await
                    } else {
                        engine.release(&tenant, &id, None).await
                    }
                })
            })
            .collect();
        let (mut won, mut lost, mut captured) = (0, 0, 0);
        for task in tasks {
            match task.await.unwrap() {
                Ok(redemption) => {
                    won += 1;
                    captured += redemption.value.captured_points;
                }
                Err(patron_engine::EngineError::Rejected(Rejection::RedemptionResolved {
                    ..
                })) => lost += 1,
                Err(other) => panic!("[{}] {other}", club.label()),
            }
        }
        assert_eq!(
            (won, lost),
            (10, 10),
            "[{}] each hold resolved exactly once",
            club.label()
        );
        let balance = club.balance(&member).await;
        assert_eq!((balance.available, balance.held), (400 - captured, 0));
        club.verify().await;
        club.db.cleanup().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn nothing_is_spent_from_a_member_after_they_left() {
    let source = crate::support::program(
        0,
        "policy = \"never\"",
        "within_balance",
        "keep_until_expiry",
    );
    for club in clubs(&source).await {
        let member = club.enroll("m-1").await;
        club.grant(&member, 200).await;
        let redeem = |n: usize| {
            let (engine, tenant, member) =
                (club.engine.clone(), club.tenant.clone(), member.clone());
            tokio::spawn(async move {
                let request = RedeemRequest {
                    points: 5 + n as i64 % 3,
                    hold: false,
                    hold_minutes: None,
                    description: None,
                };
                engine
                    .redeem(&tenant, &member, &request, None)
                    .await
                    .map(|r| r.value.points)
            })
        };
        let early: Vec<_> = (0..TASKS / 2).map(redeem).collect();
        let exit = {
            let (engine, tenant, member) =
                (club.engine.clone(), club.tenant.clone(), member.clone());
            tokio::spawn(async move { engine.exit_member(&tenant, &member, "tester", None).await })
        };
        let late: Vec<_> = (TASKS / 2..TASKS).map(redeem).collect();
        let mut spent = 0;
        for task in early.into_iter().chain(late) {
            match task.await.unwrap() {
                Ok(points) => spent += points,
                Err(patron_engine::EngineError::Rejected(
                    Rejection::MemberExited { .. } | Rejection::InsufficientPoints { .. },
                )) => {}
                Err(other) => panic!("[{}] {other}", club.label()),
            }
        }
        let kept = exit.await.unwrap().unwrap().value.points_kept;
        assert_eq!(
            kept + spent,
            200,
            "[{}] every redemption came before the exit",
            club.label()
        );
        assert_eq!(club.available(&member).await, kept);
        club.verify().await;
        club.db.cleanup().await;
    }
}

/// PostgreSQL's optimistic purchase path reads the member without a lock; when a unit of work
/// that holds the wallet's lock commits between that read and the purchase's write (here one
/// that upgrades the member to gold, held open by hand), the write must not commit what it
/// decided on the stale read. It gives way to the locked path, which earns at the new tier.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_purchase_whose_wallet_changed_after_its_read_is_posted_again_under_the_lock() {
    use sqlx::{Executor, Row};
    for club in clubs(&COFFEE).await {
        if club.db.backend() != patron_store::Backend::Postgres {
            club.db.cleanup().await;
            continue;
        }
        let store = club.engine.store().clone();
        let member = club.enroll("m-1").await;
        let before = store.purchase_paths();
        let first = club
            .engine
            .post_purchase(
                &club.tenant,
                &purchase_request("doc-1", Some(&member), "1", 500, "USD"),
                None,
            )
            .await
            .unwrap();
        assert_eq!(first.value.points, 10, "a regular earns 10 beans for $5");
        let after_first = store.purchase_paths();
        assert_eq!(
            after_first.optimistic,
            before.optimistic + 1,
            "an uncontended purchase commits on the optimistic path"
        );

        // Another unit of work takes the wallet's lock (as `ledger::lock_wallets` does) and
        // upgrades the member, and stays open.
        let mut held = store.pool().acquire().await.unwrap();
        held.execute("BEGIN").await.unwrap();
        sqlx::query("UPDATE accounts SET lock_version = lock_version + 1 WHERE member_id = $1")
            .bind(&member)
            .execute(&mut *held)
            .await
            .unwrap();
        sqlx::query("UPDATE members SET tier = 'gold' WHERE id = $1")
            .bind(&member)
            .execute(&mut *held)
            .await
            .unwrap();
        let xid: String = sqlx::query("SELECT CAST(pg_current_xact_id() AS TEXT) AS x")
            .fetch_one(&mut *held)
            .await
            .unwrap()
            .get("x");

        let purchase = tokio::spawn({
            let (engine, tenant, member) =
                (club.engine.clone(), club.tenant.clone(), member.clone());
            async move {
                engine
                    .post_purchase(
                        &tenant,
                        &purchase_request("doc-2", Some(&member), "1", 500, "USD"),
                        None,
                    )
                    .await
            }
        });
        // Wait until the purchase has read (at the old tier) and its write waits for the
        // held lock: a lock wait on the held transaction's id.
        let mut observer = store.pool().acquire().await.unwrap();
        let mut waited = 0;
        loop {
            let waiting: i64 = sqlx::query(
                "SELECT COUNT(*) AS n FROM pg_locks WHERE locktype = 'transactionid' \
                 AND NOT granted AND CAST(transactionid AS TEXT) = $1",
            )
            .bind(&xid)
            .fetch_one(&mut *observer)
            .await
            .unwrap()
            .get("n");
            if waiting > 0 {
                break;
            }
            // Each check is a query: the loop is paced by the server, not by a timer.
            waited += 1;
            assert!(
                waited < 100_000,
                "the purchase never waited for the held lock"
            );
        }
        held.execute("COMMIT").await.unwrap();
        drop((held, observer));

        let second = purchase.await.unwrap().unwrap();
        assert_eq!(
            second.value.points, 12,
            "the purchase earned at the tier committed before it (gold: 10 × 1.25)"
        );
        let after = store.purchase_paths();
        assert_eq!(
            after.locked_fallbacks,
            after_first.locked_fallbacks + 1,
            "the optimistic write gave way"
        );
        assert_eq!(club.balance(&member).await.available, 22);
        club.verify().await;
        club.db.cleanup().await;
    }
}

/// Purchases (on PostgreSQL mostly on the optimistic path, which takes no lock until it
/// writes) racing with redemptions (which hold the wallet's lock) on one member: no update is
/// lost in either direction, no redemption overspends, and the ledger verifies.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn purchases_racing_redemptions_on_one_wallet_lose_nothing() {
    for club in clubs(&COFFEE).await {
        let member = club.enroll("m-1").await;
        club.grant(&member, 100).await;
        let before = club.available(&member).await;
        let tasks: Vec<_> = (0..TASKS)
            .map(|n| {
                let (engine, tenant, member) =
                    (club.engine.clone(), club.tenant.clone(), member.clone());
                tokio::spawn(async move {
                    if n % 2 == 0 {
                        let request =
                            purchase_request(&format!("doc-{n}"), Some(&member), "1", 500, "USD");
                        engine
                            .post_purchase(&tenant, &request, None)
                            .await
                            .map(|receipt| receipt.value.points)
                    } else {
                        let request = RedeemRequest {
                            points: 15,
                            hold: false,
                            hold_minutes: None,
                            description: None,
                        };
                        match engine.redeem(&tenant, &member, &request, None).await {
                            Ok(redemption) => Ok(-redemption.value.points),
                            Err(patron_engine::EngineError::Rejected(
                                Rejection::InsufficientPoints { .. },
                            )) => Ok(0),
                            Err(other) => Err(other),
                        }
                    }
                })
            })
            .collect();
        let mut net = 0;
        for task in tasks {
            net += task
                .await
                .unwrap()
                .unwrap_or_else(|e| panic!("[{}] a call failed: {e}", club.label()));
        }
        let after = club.balance(&member).await;
        assert_eq!(
            after.available,
            before + net,
            "[{}] every earning and every redemption counted once",
            club.label()
        );
        assert!(
            after.available >= 0 && after.debt == 0,
            "[{}]",
            club.label()
        );
        club.verify().await;
        club.db.cleanup().await;
    }
}
