//! Every refusal is a clear error and writes nothing: the ledger verifies, and the counts of
//! accounts, transfers, lots, members and audit entries and the members' balances are what
//! they were before the call.

use patron_engine::{
    AdjustRequest, Engine, EngineError, EnrollRequest, ProfileFields, RedeemRequest,
    TransferRequest,
};
use patron_store::Rejection;

use crate::support::{COFFEE, Club, clubs, invalid_field, program, rejection};

/// A club with two members holding 100 points each, ready to be refused things.
async fn club_with_two_members(club: &Club) -> (String, String) {
    let (alice, bob) = (club.enroll("alice").await, club.enroll("bob").await);
    club.grant(&alice, 100).await;
    club.grant(&bob, 100).await;
    (alice, bob)
}

fn enroll_with(profile: ProfileFields, card_number: Option<&str>) -> EnrollRequest {
    EnrollRequest {
        profile,
        channel: "pos".into(),
        card_number: card_number.map(str::to_string),
        consents: vec![],
    }
}

fn redeem(points: i64) -> RedeemRequest {
    RedeemRequest {
        points,
        hold: false,
        hold_minutes: None,
        description: None,
    }
}

#[tokio::test]
async fn operations_on_an_unknown_member_are_refused() {
    for club in clubs(&COFFEE).await {
        let (alice, _) = club_with_two_members(&club).await;
        let before = club.snapshot(&[&alice]).await;
        let nobody = Rejection::MemberNotFound {
            member_id: "mem_nobody".into(),
        };
        assert_eq!(
            rejection(
                club.engine
                    .redeem(&club.tenant, "mem_nobody", &redeem(1), None)
                    .await
            ),
            nobody
        );
        let purchase = club.purchase("doc-1", Some("mem_nobody"), 1000, "USD");
        assert_eq!(
            rejection(
                club.engine
                    .post_purchase(&club.tenant, &purchase, None)
                    .await
            ),
            nobody
        );
        let adjust = AdjustRequest {
            points: 5,
            reason: "test".into(),
        };
        assert_eq!(
            rejection(
                club.engine
                    .adjust(&club.tenant, "mem_nobody", &adjust, "tester", None)
                    .await
            ),
            nobody
        );
        let transfer = TransferRequest {
            to_member_id: "mem_nobody".into(),
            points: 5,
        };
        assert_eq!(
            rejection(
                club.engine
                    .transfer(&club.tenant, &alice, &transfer, None)
                    .await
            ),
            nobody
        );
        assert_eq!(
            rejection(club.engine.balance(&club.tenant, "mem_nobody").await),
            nobody
        );
        assert_eq!(
            rejection(
                club.engine
                    .exit_member(&club.tenant, "mem_nobody", "tester", None)
                    .await
            ),
            nobody
        );
        assert_eq!(
            club.snapshot(&[&alice]).await,
            before,
            "[{}] nothing written",
            club.label()
        );
        club.db.cleanup().await;
    }
}

#[tokio::test]
async fn spending_more_than_the_balance_is_refused() {
    for club in clubs(&COFFEE).await {
        let (alice, bob) = club_with_two_members(&club).await;
        let before = club.snapshot(&[&alice, &bob]).await;
        let short = Rejection::InsufficientPoints {
            available: 100,
            requested: 101,
        };
        assert_eq!(rejection(club.redeem(&alice, 101).await), short);
        assert_eq!(rejection(club.hold(&alice, 101, 10).await), short);
        let transfer = TransferRequest {
            to_member_id: bob.clone(),
            points: 101,
        };
        assert_eq!(
            rejection(
                club.engine
                    .transfer(&club.tenant, &alice, &transfer, None)
                    .await
            ),
            short
        );
        let debit = AdjustRequest {
            points: -101,
            reason: "too much".into(),
        };
        assert_eq!(
            rejection(
                club.engine
                    .adjust(&club.tenant, &alice, &debit, "tester", None)
                    .await
            ),
            short
        );
        assert_eq!(
            club.snapshot(&[&alice, &bob]).await,
            before,
            "[{}] nothing written",
            club.label()
        );
        club.db.cleanup().await;
    }
}

#[tokio::test]
async fn a_purchase_in_another_currency_is_refused() {
    for club in clubs(&COFFEE).await {
        let (alice, _) = club_with_two_members(&club).await;
        let before = club.snapshot(&[&alice]).await;
        let refused = club
            .engine
            .post_purchase(
                &club.tenant,
                &club.purchase("doc-1", Some(&alice), 1000, "EUR"),
                None,
            )
            .await;
        assert_eq!(
            rejection(refused),
            Rejection::WrongCurrency {
                expected: "USD".into(),
                found: "EUR".into()
            }
        );
        assert_eq!(
            club.snapshot(&[&alice]).await,
            before,
            "[{}] nothing written",
            club.label()
        );
        assert!(
            club.engine
                .store()
                .purchase_by_document(club.tenant.id, "doc-1")
                .await
                .unwrap()
                .is_none()
        );
        club.db.cleanup().await;
    }
}

#[tokio::test]
async fn transfers_to_oneself_or_involving_a_member_who_left_are_refused() {
    for club in clubs(&program(
        0,
        "policy = \"never\"",
        "within_balance",
        "keep_until_expiry",
    ))
    .await
    {
        let (alice, bob) = club_with_two_members(&club).await;
        let carol = club.enroll("carol").await;
        club.grant(&carol, 100).await;
        club.engine
            .exit_member(&club.tenant, &carol, "tester", None)
            .await
            .unwrap();
        let before = club.snapshot(&[&alice, &bob, &carol]).await;

        let to_self = TransferRequest {
            to_member_id: alice.clone(),
            points: 10,
        };
        assert_eq!(
            rejection(
                club.engine
                    .transfer(&club.tenant, &alice, &to_self, None)
                    .await
            ),
            Rejection::TransferToSelf
        );
        let to_leaver = TransferRequest {
            to_member_id: carol.clone(),
            points: 10,
        };
        let exited = Rejection::MemberExited {
            member_id: carol.clone(),
        };
        assert_eq!(
            rejection(
                club.engine
                    .transfer(&club.tenant, &alice, &to_leaver, None)
                    .await
            ),
            exited
        );
        let from_leaver = TransferRequest {
            to_member_id: bob.clone(),
            points: 10,
        };
        assert_eq!(
            rejection(
                club.engine
                    .transfer(&club.tenant, &carol, &from_leaver, None)
                    .await
            ),
            exited
        );
        // Nor can a member who left spend, earn or leave again.
        assert_eq!(rejection(club.redeem(&carol, 10).await), exited);
        let purchase = club.purchase("doc-1", Some(&carol), 1000, "USD");
        assert_eq!(
            rejection(
                club.engine
                    .post_purchase(&club.tenant, &purchase, None)
                    .await
            ),
            exited
        );
        assert_eq!(
            rejection(
                club.engine
                    .exit_member(&club.tenant, &carol, "tester", None)
                    .await
            ),
            exited
        );
        assert_eq!(
            club.snapshot(&[&alice, &bob, &carol]).await,
            before,
            "[{}] nothing written",
            club.label()
        );
        club.db.cleanup().await;
    }
}

#[tokio::test]
async fn giving_points_back_to_a_member_who_left_is_refused_and_the_refusal_replayed() {
    for exit in ["forfeit", "keep_until_expiry"] {
        for club in clubs(&program(0, "policy = \"never\"", "within_balance", exit)).await {
            let carol = club.enroll("carol").await;
            club.grant(&carol, 100).await;
            let spent = club.redeem(&carol, 40).await.unwrap();
            let held = club.hold(&carol, 30, 10).await.unwrap();
            let captured = club
                .engine
                .capture(&club.tenant, &held.id, None, None)
                .await
                .unwrap()
                .value;
            assert_eq!(captured.status, "captured");
            let receipt = club
                .engine
                .exit_member(&club.tenant, &carol, "tester", None)
                .await
                .unwrap()
                .value;
            let kept = if exit == "forfeit" { 0 } else { 30 };
            assert_eq!(
                (receipt.points_forfeited, receipt.points_kept),
                (30 - kept, kept)
            );
            let before = club.snapshot(&[&carol]).await;
            let exited = Rejection::MemberExited {
                member_id: carol.clone(),
            };

            // Under a key the refusal is stored: the same request again is its replay.
            let refused = club
                .engine
                .reverse_redemption(&club.tenant, &spent.id, Some("reverse-1"))
                .await;
            assert!(
                matches!(&refused, Err(EngineError::Rejected(r)) if *r == exited),
                "[{} {exit}] {refused:?}",
                club.label()
            );
            let replayed = club
                .engine
                .reverse_redemption(&club.tenant, &spent.id, Some("reverse-1"))
                .await;
            assert!(
                matches!(&replayed, Err(EngineError::ReplayedRejection(r)) if *r == exited),
                "[{} {exit}] {replayed:?}",
                club.label()
            );
            assert_eq!(
                rejection(
                    club.engine
                        .reverse_redemption(&club.tenant, &captured.id, None)
                        .await
                ),
                exited,
                "[{} {exit}] a captured hold neither",
                club.label()
            );

            assert_eq!(
                club.snapshot(&[&carol]).await,
                before,
                "[{} {exit}] nothing written",
                club.label()
            );
            for (id, status) in [(&spent.id, "completed"), (&captured.id, "captured")] {
                let stored = club.engine.redemption(&club.tenant, id).await.unwrap();
                assert_eq!(stored.status, status, "[{} {exit}]", club.label());
            }
            club.db.cleanup().await;
        }
    }
}

#[tokio::test]
async fn cancelling_a_reward_of_a_member_who_left_is_refused_and_the_refusal_replayed() {
    // The coffee chain forfeits the points of a member who leaves.
    for club in clubs(&COFFEE).await {
        let carol = club.enroll("carol").await;
        club.grant(&carol, 1_000).await;
        let redeemed = club
            .engine
            .redeem_reward(&club.tenant, &carol, "tumbler", None)
            .await
            .unwrap()
            .value;
        let receipt = club
            .engine
            .exit_member(&club.tenant, &carol, "tester", None)
            .await
            .unwrap()
            .value;
        assert_eq!(receipt.points_forfeited, 600);
        let before = club.snapshot(&[&carol]).await;
        let exited = Rejection::MemberExited {
            member_id: carol.clone(),
        };
        let refused = club
            .engine
            .cancel_reward_redemption(&club.tenant, &redeemed.id, Some("cancel-1"))
            .await;
        assert!(
            matches!(&refused, Err(EngineError::Rejected(r)) if *r == exited),
            "[{}] {refused:?}",
            club.label()
        );
        let replayed = club
            .engine
            .cancel_reward_redemption(&club.tenant, &redeemed.id, Some("cancel-1"))
            .await;
        assert!(
            matches!(&replayed, Err(EngineError::ReplayedRejection(r)) if *r == exited),
            "[{}] {replayed:?}",
            club.label()
        );
        assert_eq!(
            club.snapshot(&[&carol]).await,
            before,
            "[{}] nothing written",
            club.label()
        );
        club.db.cleanup().await;
    }
}

#[tokio::test]
async fn refunding_more_than_was_bought_is_refused() {
    for club in clubs(&COFFEE).await {
        let (alice, _) = club_with_two_members(&club).await;
        let receipt = club.buy("doc-1", &alice, "2", 1000).await;
        let before = club.snapshot(&[&alice]).await;
        let too_many = club.refund(&receipt.purchase_id, "ret-1", Some("3")).await;
        assert!(
            matches!(rejection(too_many), Rejection::RefundTooLarge { .. }),
            "[{}] 3 of 2 items",
            club.label()
        );
        let no_such_line = patron_engine::RefundRequest {
            document_id: "ret-2".into(),
            lines: Some(vec![patron_engine::RefundLineRequest {
                line_no: 7,
                quantity: "1".into(),
            }]),
            occurred_at: None,
        };
        let no_line = club
            .engine
            .refund(&club.tenant, &receipt.purchase_id, &no_such_line, None)
            .await;
        assert!(matches!(
            rejection(no_line),
            Rejection::RefundTooLarge { .. }
        ));
        assert_eq!(
            club.snapshot(&[&alice]).await,
            before,
            "[{}] nothing written",
            club.label()
        );

        club.refund(&receipt.purchase_id, "ret-3", None)
            .await
            .unwrap();
        let after_full = club.snapshot(&[&alice]).await;
        let again = club.refund(&receipt.purchase_id, "ret-4", None).await;
        assert!(
            matches!(rejection(again), Rejection::RefundTooLarge { .. }),
            "[{}] a second full refund",
            club.label()
        );
        let one_more = club.refund(&receipt.purchase_id, "ret-5", Some("1")).await;
        assert!(matches!(
            rejection(one_more),
            Rejection::RefundTooLarge { .. }
        ));
        assert_eq!(
            club.snapshot(&[&alice]).await,
            after_full,
            "[{}] nothing written",
            club.label()
        );
        let unknown = club.refund("pur_nothing", "ret-6", None).await;
        assert_eq!(
            rejection(unknown),
            Rejection::PurchaseNotFound {
                purchase_id: "pur_nothing".into()
            }
        );
        club.db.cleanup().await;
    }
}

#[tokio::test]
async fn capturing_more_than_held_after_release_or_twice_is_refused() {
    for club in clubs(&COFFEE).await {
        let (alice, _) = club_with_two_members(&club).await;
        let hold = club.hold(&alice, 40, 30).await.unwrap();
        let before = club.snapshot(&[&alice]).await;
        let over = club
            .engine
            .capture(&club.tenant, &hold.id, Some(41), None)
            .await;
        assert_eq!(
            rejection(over),
            Rejection::CaptureTooLarge {
                held: 40,
                requested: 41
            }
        );
        assert_eq!(
            club.snapshot(&[&alice]).await,
            before,
            "[{}] nothing written",
            club.label()
        );

        club.engine
            .release(&club.tenant, &hold.id, None)
            .await
            .unwrap();
        let released = club.snapshot(&[&alice]).await;
        let resolved = Rejection::RedemptionResolved {
            redemption_id: hold.id.clone(),
            status: "released".into(),
        };
        assert_eq!(
            rejection(
                club.engine
                    .capture(&club.tenant, &hold.id, None, None)
                    .await
            ),
            resolved
        );
        assert_eq!(
            rejection(club.engine.release(&club.tenant, &hold.id, None).await),
            resolved,
            "[{}] a second release",
            club.label()
        );
        assert_eq!(
            club.snapshot(&[&alice]).await,
            released,
            "[{}] nothing written",
            club.label()
        );

        let captured = club.hold(&alice, 10, 30).await.unwrap();
        club.engine
            .capture(&club.tenant, &captured.id, None, None)
            .await
            .unwrap();
        let done = club.snapshot(&[&alice]).await;
        let resolved = Rejection::RedemptionResolved {
            redemption_id: captured.id.clone(),
            status: "captured".into(),
        };
        assert_eq!(
            rejection(
                club.engine
                    .capture(&club.tenant, &captured.id, None, None)
                    .await
            ),
            resolved
        );
        assert_eq!(
            rejection(club.engine.release(&club.tenant, &captured.id, None).await),
            resolved
        );
        assert_eq!(
            club.snapshot(&[&alice]).await,
            done,
            "[{}] nothing written",
            club.label()
        );
        let unknown = club
            .engine
            .capture(&club.tenant, "red_nothing", None, None)
            .await;
        assert_eq!(
            rejection(unknown),
            Rejection::RedemptionNotFound {
                redemption_id: "red_nothing".into()
            }
        );
        club.db.cleanup().await;
    }
}

#[tokio::test]
async fn enrolling_with_a_bad_phone_email_birthday_or_locale_is_refused() {
    for club in clubs(&COFFEE).await {
        let before = club.snapshot(&[]).await;
        let cases = [
            (
                "phone",
                ProfileFields {
                    phone: Some("09121234567".into()),
                    ..ProfileFields::default()
                },
            ),
            (
                "phone",
                ProfileFields {
                    phone: Some("+1 555 CALL NOW".into()),
                    ..ProfileFields::default()
                },
            ),
            (
                "email",
                ProfileFields {
                    email: Some("dana.example.com".into()),
                    ..ProfileFields::default()
                },
            ),
            (
                "birthday",
                ProfileFields {
                    birthday: Some("1990-02-30".into()),
                    ..ProfileFields::default()
                },
            ),
            (
                "birthday",
                ProfileFields {
                    birthday: Some("2030-01-01".into()),
                    ..ProfileFields::default()
                },
            ),
            (
                "locale",
                ProfileFields {
                    locale: Some("de".into()),
                    ..ProfileFields::default()
                },
            ),
            (
                "time_zone",
                ProfileFields {
                    time_zone: Some("Mars/Olympus".into()),
                    ..ProfileFields::default()
                },
            ),
        ];
        for (field, profile) in cases {
            let refused = club
                .engine
                .enroll(&club.tenant, &enroll_with(profile, None), None)
                .await;
            assert_eq!(invalid_field(refused), field, "[{}]", club.label());
        }
        assert_eq!(
            club.snapshot(&[]).await,
            before,
            "[{}] nothing written",
            club.label()
        );
        club.db.cleanup().await;
    }
}

#[tokio::test]
async fn enrolling_with_a_phone_email_or_external_id_already_in_use_is_refused() {
    for club in clubs(&COFFEE).await {
        let existing = ProfileFields {
            external_id: Some("ext-1".into()),
            phone: Some("+972 50 765 4321".into()),
            email: Some("dana@example.com".into()),
            ..ProfileFields::default()
        };
        club.engine
            .enroll(&club.tenant, &enroll_with(existing, None), None)
            .await
            .unwrap();
        let before = club.snapshot(&[]).await;
        let cases = [
            (
                "external_id",
                "ext-1",
                ProfileFields {
                    external_id: Some("ext-1".into()),
                    ..ProfileFields::default()
                },
            ),
            // Written differently, the same number once normalized.
            (
                "phone",
                "+972507654321",
                ProfileFields {
                    phone: Some("00972-50-765-4321".into()),
                    ..ProfileFields::default()
                },
            ),
            (
                "email",
                "dana@example.com",
                ProfileFields {
                    email: Some("dana@EXAMPLE.com".into()),
                    ..ProfileFields::default()
                },
            ),
        ];
        for (field, value, profile) in cases {
            let refused = club
                .engine
                .enroll(&club.tenant, &enroll_with(profile, None), None)
                .await;
            assert_eq!(
                rejection(refused),
                Rejection::Duplicate {
                    field: field.into(),
                    value: value.into()
                },
                "[{}]",
                club.label()
            );
        }
        assert_eq!(
            club.snapshot(&[]).await,
            before,
            "[{}] nothing written",
            club.label()
        );
        club.db.cleanup().await;
    }
}

#[tokio::test]
async fn cards_with_a_bad_check_digit_unknown_or_already_bound_are_refused() {
    for club in clubs(&COFFEE).await {
        let (_, numbers) = club
            .engine
            .issue_card_batch(&club.tenant, 2, "tester")
            .await
            .unwrap();
        let good = numbers[0].clone();
        let last = good.chars().last().unwrap().to_digit(10).unwrap();
        let bad_check_digit = format!("{}{}", &good[..good.len() - 1], (last + 1) % 10);
        let never_issued = patron_domain::card::card_number("7", 999_999, 16).unwrap();
        club.engine
            .enroll(
                &club.tenant,
                &enroll_with(ProfileFields::default(), Some(&good)),
                None,
            )
            .await
            .unwrap();
        let before = club.snapshot(&[]).await;

        let refused = club
            .engine
            .enroll(
                &club.tenant,
                &enroll_with(ProfileFields::default(), Some(&bad_check_digit)),
                None,
            )
            .await;
        assert_eq!(invalid_field(refused), "card_number");
        let refused = club
            .engine
            .enroll(
                &club.tenant,
                &enroll_with(ProfileFields::default(), Some(&never_issued)),
                None,
            )
            .await;
        assert_eq!(
            rejection(refused),
            Rejection::CardNotFound {
                number: never_issued.clone()
            }
        );
        let refused = club
            .engine
            .enroll(
                &club.tenant,
                &enroll_with(ProfileFields::default(), Some(&good)),
                None,
            )
            .await;
        assert_eq!(
            rejection(refused),
            Rejection::CardUnavailable {
                number: good.clone(),
                status: "active".into()
            }
        );
        let refused = club
            .engine
            .replace_card(&club.tenant, &good, Some(&bad_check_digit), "tester", None)
            .await;
        assert_eq!(invalid_field(refused), "replacement");
        assert_eq!(
            club.snapshot(&[]).await,
            before,
            "[{}] no member, wallet or card change",
            club.label()
        );
        assert_eq!(
            club.engine
                .store()
                .card(club.tenant.id, &numbers[1])
                .await
                .unwrap()
                .unwrap()
                .status,
            "available"
        );
        club.db.cleanup().await;
    }
}

#[tokio::test]
async fn adjustments_without_a_reason_or_points_are_refused() {
    for club in clubs(&COFFEE).await {
        let (alice, _) = club_with_two_members(&club).await;
        let before = club.snapshot(&[&alice]).await;
        for (field, request) in [
            (
                "reason",
                AdjustRequest {
                    points: 10,
                    reason: String::new(),
                },
            ),
            (
                "reason",
                AdjustRequest {
                    points: 10,
                    reason: "   ".into(),
                },
            ),
            (
                "points",
                AdjustRequest {
                    points: 0,
                    reason: "nothing".into(),
                },
            ),
        ] {
            let refused = club
                .engine
                .adjust(&club.tenant, &alice, &request, "tester", None)
                .await;
            assert_eq!(invalid_field(refused), field, "[{}]", club.label());
        }
        assert_eq!(invalid_field(club.redeem(&alice, 0).await), "points");
        assert_eq!(
            club.snapshot(&[&alice]).await,
            before,
            "[{}] nothing written, nothing audited",
            club.label()
        );
        club.db.cleanup().await;
    }
}

#[tokio::test]
async fn an_invalid_program_is_refused_with_every_problem_located() {
    let source = COFFEE
        .replace(
            "time_zone = \"America/New_York\"",
            "time_zone = \"America/New_Yrok\"",
        )
        .replace("policy = \"forfeit\"", "policy = \"forfit\"");
    let zone_line = source
        .lines()
        .position(|l| l.starts_with("time_zone"))
        .unwrap()
        + 1;
    let exit_line = source
        .lines()
        .position(|l| l.contains("\"forfit\""))
        .unwrap()
        + 1;
    let Err(EngineError::Program(diagnostics)) = Engine::validate_program(&source) else {
        panic!("the program should not validate");
    };
    let lines: Vec<usize> = diagnostics.iter().map(|d| d.line).collect();
    assert!(
        lines.contains(&zone_line) && lines.contains(&exit_line),
        "{diagnostics:?}"
    );
    assert!(diagnostics.iter().all(|d| d.column >= 1));
    let zone = diagnostics.iter().find(|d| d.line == zone_line).unwrap();
    assert_eq!(zone.column, "time_zone = ".len() + 1, "{zone:?}");
    assert!(
        zone.hint
            .as_deref()
            .unwrap_or("")
            .contains("America/New_York"),
        "{zone:?}"
    );

    let Err(EngineError::Program(syntax)) = Engine::validate_program("[club\nname = 1") else {
        panic!("a TOML syntax error should not validate");
    };
    assert_eq!(syntax[0].line, 1, "{syntax:?}");

    for club in clubs(&COFFEE).await {
        let versions = club
            .engine
            .store()
            .program_versions(club.tenant.id)
            .await
            .unwrap()
            .len();
        let refused = club
            .engine
            .apply_program(&club.tenant.name, &source, "tester")
            .await;
        assert!(
            matches!(refused, Err(EngineError::Program(_))),
            "[{}]",
            club.label()
        );
        assert_eq!(
            club.engine
                .store()
                .program_versions(club.tenant.id)
                .await
                .unwrap()
                .len(),
            versions,
            "[{}] not stored",
            club.label()
        );
        club.db.cleanup().await;
    }
}
