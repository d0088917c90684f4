//! Members and cards: enrollment with a virtual or a pre-printed card, look-ups by every key,
//! partial updates, consents with their evidence, card replacement, and leaving the club.

use std::collections::BTreeMap;

use patron_domain::card::is_valid_card_number;
use patron_engine::{ConsentRequest, EnrollRequest, MemberPatch, ProfileFields};
use patron_store::Rejection;
use patron_store::members::{Lookup, Member};

use crate::support::{Club, clubs, program, rejection, start};

const NEVER: &str = "policy = \"never\"";

fn full_profile() -> ProfileFields {
    ProfileFields {
        external_id: Some("crm-1001".into()),
        name: Some("Dana Levi".into()),
        phone: Some("+972 (50) 765-4321".into()),
        email: Some("Dana.Levi@Example.COM".into()),
        birthday: Some("1990-05-17".into()),
        locale: Some("he".into()),
        time_zone: Some("Asia/Jerusalem".into()),
        attributes: BTreeMap::from([
            ("favourite_store".into(), serde_json::json!("haifa")),
            ("kids".into(), serde_json::json!(2)),
        ]),
    }
}

fn consent(channel: &str, granted: bool, text: &str) -> ConsentRequest {
    ConsentRequest {
        channel: channel.into(),
        topic: None,
        granted,
        method: "pos".into(),
        text_shown: text.into(),
    }
}

async fn enroll_full(club: &Club) -> Member {
    let request = EnrollRequest {
        profile: full_profile(),
        channel: "pos".into(),
        card_number: None,
        consents: vec![
            consent("email", true, "Yes, email me offers"),
            consent("sms", false, "Text me offers"),
        ],
    };
    club.engine
        .enroll(&club.tenant, &request, None)
        .await
        .unwrap()
        .value
}

async fn find(club: &Club, lookup: Lookup<'_>) -> Option<String> {
    club.engine
        .find_member(&club.tenant, lookup)
        .await
        .unwrap()
        .map(|m| m.id)
}

#[tokio::test]
async fn enrollment_issues_a_virtual_card_with_a_valid_check_digit() {
    for club in clubs(&program(0, NEVER, "within_balance", "forfeit")).await {
        let member = enroll_full(&club).await;
        assert_eq!(
            (
                member.status.as_str(),
                member.tier.as_str(),
                member.enrolled_at
            ),
            ("active", "member", start())
        );
        let number = member.card_number.clone().expect("a card at enrollment");
        assert!(is_valid_card_number(&number), "[{}] {number}", club.label());
        assert!(
            number.starts_with("42") && number.len() == 16,
            "the program's prefix: {number}"
        );
        let card = club
            .engine
            .store()
            .card(club.tenant.id, &number)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (
                card.kind.as_str(),
                card.status.as_str(),
                card.member_id.as_deref()
            ),
            ("virtual", "active", Some(member.id.as_str()))
        );
        let second = club.enroll("other").await;
        let other_number = club
            .engine
            .member(&club.tenant, &second)
            .await
            .unwrap()
            .card_number
            .unwrap();
        assert!(
            is_valid_card_number(&other_number) && other_number != number,
            "[{}] each member their own number",
            club.label()
        );
        club.db.cleanup().await;
    }
}

#[tokio::test]
async fn a_member_is_found_by_id_external_id_phone_in_any_format_email_and_card() {
    for club in clubs(&program(0, NEVER, "within_balance", "forfeit")).await {
        let member = enroll_full(&club).await;
        assert_eq!(
            member.profile.phone.as_deref(),
            Some("+972507654321"),
            "stored in E.164"
        );
        assert_eq!(
            member.profile.email.as_deref(),
            Some("Dana.Levi@example.com"),
            "domain lower-cased"
        );
        let id = Some(member.id.clone());
        let card = member.card_number.clone().unwrap();
        assert_eq!(find(&club, Lookup::Id(&member.id)).await, id);
        assert_eq!(find(&club, Lookup::ExternalId("crm-1001")).await, id);
        for phone in [
            "+972507654321",
            "00972 50 765 4321",
            "+972-50-765-4321",
            "(+972) 50.765.4321",
            "\u{200e}+972 50 765 4321",
            "۰۰۹۷۲۵۰۷۶۵۴۳۲۱",
        ] {
            assert_eq!(
                find(&club, Lookup::Phone(phone)).await,
                id,
                "[{}] phone written as {phone:?}",
                club.label()
            );
        }
        assert_eq!(
            find(&club, Lookup::Email("Dana.Levi@EXAMPLE.com")).await,
            id
        );
        let spaced = format!(
            "{} {} {} {}",
            &card[..4],
            &card[4..8],
            &card[8..12],
            &card[12..]
        );
        assert_eq!(
            find(&club, Lookup::Card(&spaced)).await,
            id,
            "[{}] card as printed",
            club.label()
        );
        assert_eq!(find(&club, Lookup::ExternalId("crm-9999")).await, None);
        assert_eq!(find(&club, Lookup::Phone("+972503456789")).await, None);
        club.db.cleanup().await;
    }
}

#[tokio::test]
async fn an_update_changes_what_it_names_and_null_clears() {
    for club in clubs(&program(0, NEVER, "within_balance", "forfeit")).await {
        let member = enroll_full(&club).await;
        let other = club.enroll("someone-else").await;
        club.clock.advance(jiff::SignedDuration::from_hours(1));
        let patch = MemberPatch {
            name: Some(Some("Dana Cohen".into())),
            email: Some(None),
            birthday: Some(None),
            attributes: BTreeMap::from([
                ("kids".into(), serde_json::Value::Null),
                ("vip".into(), serde_json::json!(true)),
            ]),
            consents: vec![consent("email", false, "Unsubscribe from offers")],
            ..MemberPatch::default()
        };
        let updated = club
            .engine
            .update_member(&club.tenant, &member.id, &patch, None)
            .await
            .unwrap()
            .value;
        assert_eq!(updated.profile.name.as_deref(), Some("Dana Cohen"));
        assert_eq!(
            (updated.profile.email, updated.profile.birthday),
            (None, None),
            "[{}] null clears",
            club.label()
        );
        assert_eq!(
            updated.profile.phone, member.profile.phone,
            "absent fields stay"
        );
        assert_eq!(updated.profile.external_id, member.profile.external_id);
        let attributes: serde_json::Value =
            serde_json::from_str(&updated.profile.attributes).unwrap();
        assert_eq!(
            attributes,
            serde_json::json!({"favourite_store": "haifa", "vip": true})
        );
        assert_eq!(
            find(&club, Lookup::Email("Dana.Levi@example.com")).await,
            None,
            "the cleared email finds nobody"
        );

        let taken = MemberPatch {
            phone: Some(Some("+972507654321".into())),
            ..MemberPatch::default()
        };
        let refused = club
            .engine
            .update_member(&club.tenant, &other, &taken, None)
            .await;
        assert_eq!(
            rejection(refused),
            Rejection::Duplicate {
                field: "phone".into(),
                value: "+972507654321".into()
            }
        );
        let bad = MemberPatch {
            email: Some(Some("not-an-email".into())),
            ..MemberPatch::default()
        };
        assert!(matches!(
            club.engine
                .update_member(&club.tenant, &member.id, &bad, None)
                .await,
            Err(patron_engine::EngineError::Invalid { .. })
        ));
        club.db.cleanup().await;
    }
}

/// How many patches race in the concurrency test: one per custom attribute, plus one per
/// profile field it sets.
const RACING_PATCHES: usize = 24;

/// The patches of the concurrency test: each sets something no other one touches.
fn racing_patch(n: usize) -> MemberPatch {
    match n {
        0 => MemberPatch {
            name: Some(Some("Dana Cohen".into())),
            ..MemberPatch::default()
        },
        1 => MemberPatch {
            locale: Some(Some("en".into())),
            ..MemberPatch::default()
        },
        2 => MemberPatch {
            time_zone: Some(Some("Europe/London".into())),
            ..MemberPatch::default()
        },
        3 => MemberPatch {
            // Removes one of the enrollment's attributes.
            attributes: BTreeMap::from([("kids".into(), serde_json::Value::Null)]),
            ..MemberPatch::default()
        },
        n => MemberPatch {
            attributes: BTreeMap::from([(format!("attr_{n}"), serde_json::json!(n))]),
            ..MemberPatch::default()
        },
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_patches_of_different_fields_all_survive() {
    for club in clubs(&program(0, NEVER, "within_balance", "forfeit")).await {
        let member = enroll_full(&club).await;
        let start_line = std::sync::Arc::new(tokio::sync::Barrier::new(RACING_PATCHES));
        let tasks: Vec<_> = (0..RACING_PATCHES)
            .map(|n| {
                let (engine, tenant, id, start_line) = (
                    club.engine.clone(),
                    club.tenant.clone(),
                    member.id.clone(),
                    start_line.clone(),
                );
                tokio::spawn(async move {
                    start_line.wait().await;
                    let key = format!("patch-{n}");
                    engine
                        .update_member(&tenant, &id, &racing_patch(n), Some(&key))
                        .await
                })
            })
            .collect();
        let mut answers = Vec::with_capacity(RACING_PATCHES);
        for task in tasks {
            let answer = task.await.unwrap();
            assert!(
                answer.is_ok(),
                "[{}] a patch failed: {answer:?}",
                club.label()
            );
            answers.push(answer.unwrap());
        }

        let stored = club.engine.member(&club.tenant, &member.id).await.unwrap();
        let mut expected =
            BTreeMap::from([("favourite_store".to_string(), serde_json::json!("haifa"))]);
        for n in 4..RACING_PATCHES {
            expected.insert(format!("attr_{n}"), serde_json::json!(n));
        }
        let attributes: BTreeMap<String, serde_json::Value> =
            serde_json::from_str(&stored.profile.attributes).unwrap();
        assert_eq!(
            attributes,
            expected,
            "[{}] every attribute set survives, the removed one stays removed",
            club.label()
        );
        assert_eq!(
            (
                stored.profile.name.as_deref(),
                stored.profile.locale.as_deref(),
                stored.profile.time_zone.as_deref(),
            ),
            (Some("Dana Cohen"), Some("en"), Some("Europe/London")),
            "[{}] every field set survives",
            club.label()
        );
        assert_eq!(
            (
                stored.profile.external_id.as_deref(),
                stored.profile.phone.as_deref(),
                stored.profile.birthday.as_deref(),
            ),
            (Some("crm-1001"), Some("+972507654321"), Some("1990-05-17")),
            "[{}] what no patch named stays",
            club.label()
        );

        // Replaying a key answers what that patch answered then, not the member as now.
        for (n, first) in answers.iter().enumerate() {
            let again = club
                .engine
                .update_member(
                    &club.tenant,
                    &member.id,
                    &racing_patch(n),
                    Some(&format!("patch-{n}")),
                )
                .await
                .unwrap();
            assert!(again.replayed, "[{}] patch {n} replayed", club.label());
            assert_eq!(again.value, first.value, "[{}] patch {n}", club.label());
        }
        club.db.cleanup().await;
    }
}

#[tokio::test]
async fn a_patch_invalid_only_once_merged_is_refused_with_nothing_written_or_stored() {
    for club in clubs(&program(0, NEVER, "within_balance", "forfeit")).await {
        let member = enroll_full(&club).await;
        // The enrollment's 2 attributes and 98 more: the limit of 100.
        let fill = MemberPatch {
            attributes: (0..98)
                .map(|n| (format!("fill_{n}"), serde_json::json!(n)))
                .collect(),
            ..MemberPatch::default()
        };
        club.engine
            .update_member(&club.tenant, &member.id, &fill, None)
            .await
            .unwrap();
        let before = club.engine.member(&club.tenant, &member.id).await.unwrap();

        // Valid on its own (a name and one attribute); 101 attributes once merged.
        let one_more = MemberPatch {
            name: Some(Some("Dana Cohen".into())),
            attributes: BTreeMap::from([("one_more".into(), serde_json::json!(true))]),
            ..MemberPatch::default()
        };
        let refused = club
            .engine
            .update_member(&club.tenant, &member.id, &one_more, Some("one-more"))
            .await;
        assert_eq!(
            crate::support::invalid_field(refused),
            "attributes",
            "[{}]",
            club.label()
        );
        assert_eq!(
            club.engine.member(&club.tenant, &member.id).await.unwrap(),
            before,
            "[{}] nothing written, not even the name",
            club.label()
        );

        // Not stored under the key: once there is room, the same request under the same key
        // runs (an invalid request is not a business rejection, and is never replayed).
        let room = MemberPatch {
            attributes: BTreeMap::from([("fill_0".into(), serde_json::Value::Null)]),
            ..MemberPatch::default()
        };
        club.engine
            .update_member(&club.tenant, &member.id, &room, None)
            .await
            .unwrap();
        let updated = club
            .engine
            .update_member(&club.tenant, &member.id, &one_more, Some("one-more"))
            .await
            .unwrap();
        assert!(!updated.replayed, "[{}]", club.label());
        assert_eq!(updated.value.profile.name.as_deref(), Some("Dana Cohen"));
        club.db.cleanup().await;
    }
}

#[tokio::test]
async fn consents_are_kept_with_their_evidence_and_history() {
    for club in clubs(&program(0, NEVER, "within_balance", "forfeit")).await {
        let member = enroll_full(&club).await;
        club.clock.advance(jiff::SignedDuration::from_hours(2));
        let withdrawal = MemberPatch {
            consents: vec![consent(
                "email",
                false,
                "Unsubscribe link in the May newsletter",
            )],
            ..MemberPatch::default()
        };
        club.engine
            .update_member(&club.tenant, &member.id, &withdrawal, None)
            .await
            .unwrap();

        let consents = club
            .engine
            .store()
            .consents(club.tenant.id, &member.id)
            .await
            .unwrap();
        let summary: Vec<(&str, &str, bool, &str, &str)> = consents
            .iter()
            .map(|c| {
                (
                    c.channel.as_str(),
                    c.topic.as_str(),
                    c.granted,
                    c.method.as_str(),
                    c.text_shown.as_str(),
                )
            })
            .collect();
        assert_eq!(
            summary,
            [
                ("email", "marketing", true, "pos", "Yes, email me offers"),
                ("sms", "marketing", false, "pos", "Text me offers"),
                (
                    "email",
                    "marketing",
                    false,
                    "pos",
                    "Unsubscribe link in the May newsletter"
                ),
            ],
            "[{}] every decision kept, in order",
            club.label()
        );
        assert_eq!(consents[0].at, start());
        assert_eq!(
            consents[2].at,
            start()
                .checked_add(jiff::SignedDuration::from_hours(2))
                .unwrap()
        );

        let no_evidence = MemberPatch {
            consents: vec![consent("email", true, " ")],
            ..MemberPatch::default()
        };
        assert!(matches!(
            club.engine
                .update_member(&club.tenant, &member.id, &no_evidence, None)
                .await,
            Err(patron_engine::EngineError::Invalid { .. })
        ));
        club.db.cleanup().await;
    }
}

#[tokio::test]
async fn a_pre_printed_card_from_a_batch_is_bound_at_enrollment() {
    for club in clubs(&program(0, NEVER, "within_balance", "forfeit")).await {
        let (batch, numbers) = club
            .engine
            .issue_card_batch(&club.tenant, 3, "warehouse")
            .await
            .unwrap();
        assert_eq!(numbers.len(), 3);
        for number in &numbers {
            assert!(
                is_valid_card_number(number) && number.starts_with("42"),
                "{number}"
            );
            let card = club
                .engine
                .store()
                .card(club.tenant.id, number)
                .await
                .unwrap()
                .unwrap();
            assert_eq!(
                (
                    card.kind.as_str(),
                    card.status.as_str(),
                    card.batch_id,
                    card.member_id
                ),
                ("physical", "available", Some(batch), None)
            );
        }
        let audit = club
            .engine
            .store()
            .audit_log(club.tenant.id, Some("card_batch:"), 10)
            .await
            .unwrap();
        assert_eq!((audit.len(), audit[0].actor.as_str()), (1, "warehouse"));

        // Typed at the till with spaces and dashes.
        let typed = format!(
            "{}-{} {}",
            &numbers[1][..4],
            &numbers[1][4..8],
            &numbers[1][8..]
        );
        let request = EnrollRequest {
            profile: ProfileFields::default(),
            channel: "pos".into(),
            card_number: Some(typed),
            consents: vec![],
        };
        let member = club
            .engine
            .enroll(&club.tenant, &request, None)
            .await
            .unwrap()
            .value;
        assert_eq!(
            member.card_number.as_deref(),
            Some(numbers[1].as_str()),
            "[{}] no virtual card besides",
            club.label()
        );
        let card = club
            .engine
            .store()
            .card(club.tenant.id, &numbers[1])
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (card.status.as_str(), card.member_id.as_deref()),
            ("active", Some(member.id.as_str()))
        );
        assert_eq!(
            find(&club, Lookup::Card(&numbers[1])).await,
            Some(member.id.clone())
        );
        assert_eq!(
            find(&club, Lookup::Card(&numbers[0])).await,
            None,
            "an unbound card belongs to nobody"
        );
        club.db.cleanup().await;
    }
}

#[tokio::test]
async fn a_replaced_card_is_blocked_and_the_balance_follows_the_member() {
    for club in clubs(&program(0, NEVER, "within_balance", "forfeit")).await {
        let member = enroll_full(&club).await;
        club.grant(&member.id, 75).await;
        let old = member.card_number.clone().unwrap();
        let replaced = club
            .engine
            .replace_card(&club.tenant, &old, None, "desk", None)
            .await
            .unwrap()
            .value;
        assert_eq!(
            (replaced.member_id.as_str(), replaced.old_number.as_str()),
            (member.id.as_str(), old.as_str())
        );
        assert!(is_valid_card_number(&replaced.new_number) && replaced.new_number != old);
        assert_eq!(
            find(&club, Lookup::Card(&old)).await,
            None,
            "[{}] the lost card finds nobody",
            club.label()
        );
        assert_eq!(
            find(&club, Lookup::Card(&replaced.new_number)).await,
            Some(member.id.clone())
        );
        assert_eq!(
            club.engine
                .store()
                .card(club.tenant.id, &old)
                .await
                .unwrap()
                .unwrap()
                .status,
            "blocked"
        );
        assert_eq!(
            club.available(&member.id).await,
            75,
            "[{}] the balance is the member's, not the card's",
            club.label()
        );

        // Replaced again, by a pre-printed card this time.
        let (_, numbers) = club
            .engine
            .issue_card_batch(&club.tenant, 1, "warehouse")
            .await
            .unwrap();
        club.engine
            .replace_card(
                &club.tenant,
                &replaced.new_number,
                Some(&numbers[0]),
                "desk",
                None,
            )
            .await
            .unwrap();
        assert_eq!(
            club.engine
                .member(&club.tenant, &member.id)
                .await
                .unwrap()
                .card_number
                .as_deref(),
            Some(numbers[0].as_str())
        );
        let blocked = club
            .engine
            .replace_card(&club.tenant, &old, None, "desk", None)
            .await;
        assert_eq!(
            rejection(blocked),
            Rejection::CardUnavailable {
                number: old.clone(),
                status: "blocked".into()
            }
        );
        let audit = club
            .engine
            .store()
            .audit_log(club.tenant.id, Some(&format!("member:{}", member.id)), 10)
            .await
            .unwrap();
        assert_eq!(
            audit.iter().filter(|e| e.action == "card.replace").count(),
            2
        );
        club.verify().await;
        club.db.cleanup().await;
    }
}

async fn exit_scenario(club: &Club) -> (Member, String, String) {
    let member = enroll_full(club).await;
    club.grant(&member.id, 100).await;
    let pending = club.buy("doc-1", &member.id, "1", 3000).await;
    assert_eq!(pending.points_state, "pending");
    let hold = club.hold(&member.id, 20, 60).await.unwrap();
    (member, pending.purchase_id, hold.id)
}

async fn assert_erased(club: &Club, member: &Member) {
    let left = club.engine.member(&club.tenant, &member.id).await.unwrap();
    assert_eq!(
        (left.status.as_str(), left.exited_at),
        ("exited", Some(club.engine.now()))
    );
    let p = &left.profile;
    assert_eq!(
        (
            &p.external_id,
            &p.name,
            &p.phone,
            &p.email,
            &p.birthday,
            &p.time_zone
        ),
        (&None, &None, &None, &None, &None, &None),
        "[{}] personal data erased",
        club.label()
    );
    assert_eq!(p.attributes, "{}");
    assert_eq!(left.card_number, None, "cards blocked");
    assert_eq!(
        find(club, Lookup::Phone("+972507654321")).await,
        None,
        "[{}] the old phone finds nobody",
        club.label()
    );
    assert_eq!(
        find(club, Lookup::Email("Dana.Levi@example.com")).await,
        None
    );
    assert_eq!(find(club, Lookup::ExternalId("crm-1001")).await, None);
    assert_eq!(
        find(club, Lookup::Card(member.card_number.as_deref().unwrap())).await,
        None
    );
    let audit = club
        .engine
        .store()
        .audit_log(club.tenant.id, Some(&format!("member:{}", member.id)), 10)
        .await
        .unwrap();
    let exit = audit
        .iter()
        .find(|e| e.action == "member.exit")
        .expect("the erasure is audited");
    assert_eq!(exit.actor, "privacy-officer");
    assert!(
        !exit.details.contains("Dana") && !exit.details.contains("972"),
        "the audit keeps no personal data: {}",
        exit.details
    );
}

#[tokio::test]
async fn leaving_a_forfeit_club_erases_personal_data_voids_pending_releases_holds_and_forfeits_points()
 {
    for club in clubs(&program(7, NEVER, "within_balance", "forfeit")).await {
        let (member, purchase, hold) = exit_scenario(&club).await;
        let receipt = club
            .engine
            .exit_member(&club.tenant, &member.id, "privacy-officer", None)
            .await
            .unwrap()
            .value;
        assert_eq!(
            (
                receipt.pending_voided,
                receipt.holds_released,
                receipt.points_forfeited,
                receipt.points_kept
            ),
            (30, 20, 100, 0),
            "[{}]",
            club.label()
        );
        assert_erased(&club, &member).await;
        let balance = club.balance(&member.id).await;
        assert_eq!(
            (balance.available, balance.pending, balance.held),
            (0, 0, 0)
        );
        assert_eq!(
            club.engine
                .purchase(&club.tenant, &purchase)
                .await
                .unwrap()
                .earn_state,
            "voided"
        );
        assert_eq!(
            club.engine
                .store()
                .redemption(club.tenant.id, &hold)
                .await
                .unwrap()
                .unwrap()
                .status,
            "released"
        );
        club.verify().await;

        // The pending points never post.
        let report = club.advance_hours(8 * 24).await;
        assert_eq!(report.pending_posted, 0);
        assert_eq!(club.available(&member.id).await, 0);
        // The phone is free for a new enrollment.
        let again = EnrollRequest {
            profile: full_profile(),
            channel: "web".into(),
            card_number: None,
            consents: vec![],
        };
        let returning = club
            .engine
            .enroll(&club.tenant, &again, None)
            .await
            .unwrap()
            .value;
        assert_ne!(returning.id, member.id);
        club.verify().await;
        club.db.cleanup().await;
    }
}

#[tokio::test]
async fn leaving_a_keep_until_expiry_club_keeps_the_points_until_they_expire() {
    let expiry = "policy = \"after_earning\"\namount = 30\nunit = \"days\"";
    for club in clubs(&program(7, expiry, "within_balance", "keep_until_expiry")).await {
        let (member, _, _) = exit_scenario(&club).await;
        let receipt = club
            .engine
            .exit_member(&club.tenant, &member.id, "privacy-officer", None)
            .await
            .unwrap()
            .value;
        assert_eq!(
            (
                receipt.pending_voided,
                receipt.holds_released,
                receipt.points_forfeited,
                receipt.points_kept
            ),
            (30, 20, 0, 100),
            "[{}]",
            club.label()
        );
        assert_erased(&club, &member).await;
        assert_eq!(
            club.available(&member.id).await,
            100,
            "[{}] kept on the closed account",
            club.label()
        );
        club.verify().await;

        let report = club.advance_hours(31 * 24).await;
        assert_eq!(
            report.points_expired,
            100,
            "[{}] until the expiry policy removes them",
            club.label()
        );
        assert_eq!(club.available(&member.id).await, 0);
        club.verify().await;
        club.db.cleanup().await;
    }
}

#[tokio::test]
async fn a_member_who_left_cannot_be_updated() {
    for club in clubs(&program(0, NEVER, "within_balance", "forfeit")).await {
        let member = enroll_full(&club).await;
        club.engine
            .exit_member(&club.tenant, &member.id, "privacy-officer", None)
            .await
            .unwrap();
        let patch = MemberPatch {
            name: Some(Some("Dana".into())),
            ..MemberPatch::default()
        };
        let refused = club
            .engine
            .update_member(&club.tenant, &member.id, &patch, None)
            .await;
        assert_eq!(
            rejection(refused),
            Rejection::MemberExited {
                member_id: member.id.clone()
            }
        );
        assert_eq!(
            club.engine
                .member(&club.tenant, &member.id)
                .await
                .unwrap()
                .profile
                .name,
            None,
            "[{}]",
            club.label()
        );
        club.db.cleanup().await;
    }
}

#[test]
fn a_patch_with_null_clears_and_a_missing_field_keeps() {
    let patch: patron_engine::MemberPatch =
        serde_json::from_str(r#"{"name": null, "email": "a@b.co"}"#).unwrap();
    assert_eq!(patch.name, Some(None), "null means clear");
    assert_eq!(patch.email, Some(Some("a@b.co".to_string())));
    assert_eq!(patch.phone, None, "absent means keep");
}

/// Under the `unlimited` return policy a refund may take a wallet into debt, which later
/// earnings settle. A member who left never earns again: a refund of their purchase after
/// the exit claws back only what their closed account still holds, and forgives the rest.
#[tokio::test]
async fn a_refund_after_an_exit_never_leaves_a_debt_on_the_closed_account() {
    for exit in ["forfeit", "keep_until_expiry"] {
        for club in clubs(&program(0, NEVER, "unlimited", exit)).await {
            let member = club.enroll("leaver").await;
            let bought = club.buy("doc-exit-1", &member, "1", 3000).await;
            assert_eq!(
                (bought.points, bought.points_state.as_str()),
                (30, "posted")
            );
            club.redeem(&member, 10).await.unwrap();
            club.engine
                .exit_member(&club.tenant, &member, "privacy-officer", None)
                .await
                .unwrap();
            let refund = club
                .refund(&bought.purchase_id, "ret-exit-1", None)
                .await
                .unwrap();
            let (clawed, forgiven) = match exit {
                "forfeit" => (0, 30),
                _ => (20, 10),
            };
            assert_eq!(
                (
                    refund.amount_minor,
                    refund.clawed_back_points,
                    refund.forgiven_points
                ),
                (3000, clawed, forgiven),
                "[{}] {exit}",
                club.label()
            );
            let balance = club.balance(&member).await;
            assert_eq!(
                (balance.available, balance.debt),
                (0, 0),
                "[{}] {exit}: no debt",
                club.label()
            );
            club.verify().await;

            // The same refund for a member still in the club does take the wallet into debt.
            let stays = club.enroll("stays").await;
            let bought = club.buy("doc-exit-2", &stays, "1", 3000).await;
            club.redeem(&stays, 10).await.unwrap();
            let refund = club
                .refund(&bought.purchase_id, "ret-exit-2", None)
                .await
                .unwrap();
            assert_eq!((refund.clawed_back_points, refund.forgiven_points), (30, 0));
            let balance = club.balance(&stays).await;
            assert_eq!((balance.available, balance.debt), (0, 10));
            club.verify().await;
            club.db.cleanup().await;
        }
    }
}
