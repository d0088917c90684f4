//! Referrals (docs/PROGRAM.md, "Referrals"): every member's code, enrolling with one, the
//! codes that are refused, and the referral rule paying both sides once, on the newcomer's
//! first qualifying purchase, under replays, concurrency and refunds; on both backends, with
//! the ledger verified after each scenario.

use std::collections::BTreeSet;

use patron_engine::{EngineError, EnrollRequest, ProfileFields, TransferRequest};
use patron_store::Rejection;
use patron_store::members::{Lookup, Member};

use crate::support::{Club, clubs, program, purchase_request, rejection};

/// A club paying 200 points to the referrer and 50 to the newcomer once the newcomer's
/// eligible amount reaches $10; 1 point per dollar, no pending, no expiry.
fn referral_program(returns: &str) -> String {
    format!(
        "{}\n[[rules]]\nid = \"bring_a_friend\"\nname = {{ en = \"Bring a friend\", he = \"הבא חבר\" }}\n\
         kind = \"referral\"\nreferrer_points = 200\nnewcomer_points = 50\nminimum_purchase = \"10.00\"\n",
        program(0, "policy = \"never\"", returns, "forfeit").replace(
            "default_locale = \"en\"",
            "default_locale = \"en\"\nlocales = [\"en\", \"he\"]"
        )
    )
}

fn enroll_request(phone: Option<&str>, email: Option<&str>, locale: Option<&str>) -> EnrollRequest {
    EnrollRequest {
        profile: ProfileFields {
            phone: phone.map(str::to_string),
            email: email.map(str::to_string),
            locale: locale.map(str::to_string),
            ..ProfileFields::default()
        },
        channel: "referral".into(),
        card_number: None,
        consents: vec![],
    }
}

async fn enroll(club: &Club, email: &str, code: Option<&str>) -> Result<Member, EngineError> {
    club.engine
        .enroll_referred(
            &club.tenant,
            &enroll_request(None, Some(email), None),
            code,
            None,
        )
        .await
        .map(|outcome| outcome.value)
}

/// A referrer and a newcomer enrolled with the referrer's code.
async fn pair(club: &Club) -> (Member, Member) {
    let referrer = enroll(club, "ada@example.com", None).await.unwrap();
    let code = referrer.referral.code.clone().unwrap();
    let newcomer = enroll(club, "bob@example.com", Some(&code)).await.unwrap();
    (referrer, newcomer)
}

fn fired(receipt: &patron_store::purchases::PurchaseReceipt, rule: &str) -> Option<i64> {
    receipt
        .rules
        .iter()
        .find(|award| award.rule_id == rule)
        .map(|award| award.points)
}

async fn member(club: &Club, id: &str) -> Member {
    club.engine.member(&club.tenant, id).await.unwrap()
}

#[tokio::test]
async fn every_member_gets_a_readable_code_unique_in_the_club() {
    for club in clubs(&referral_program("unlimited")).await {
        let mut codes = BTreeSet::new();
        for i in 0..20 {
            let id = club.enroll(&format!("crm-{i}")).await;
            let code = member(&club, &id).await.referral.code.unwrap();
            assert_eq!(code.len(), 8, "[{}] {code}", club.label());
            // The coupon alphabet with its check character: no 0, O, 1, I or L.
            assert_eq!(
                patron_domain::coupon::validate(&code).unwrap(),
                code,
                "[{}]",
                club.label()
            );
            assert!(!code.contains(['0', 'O', '1', 'I', 'L']));
            codes.insert(code);
        }
        assert_eq!(codes.len(), 20, "[{}] codes repeat", club.label());

        // Found by its code, typed in any case and with a dash.
        let (referrer, _) = pair(&club).await;
        let code = referrer.referral.code.clone().unwrap();
        let typed = format!("{}-{}", &code[..4], &code[4..]).to_lowercase();
        let found = club
            .engine
            .find_member(&club.tenant, Lookup::ReferralCode(&typed))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(found.id, referrer.id, "[{}]", club.label());
    }
}

#[tokio::test]
async fn enrolling_with_a_code_records_who_referred_the_newcomer() {
    for club in clubs(&referral_program("unlimited")).await {
        let (referrer, newcomer) = pair(&club).await;
        assert_eq!(
            newcomer.referral.referred_by.as_deref(),
            Some(referrer.id.as_str())
        );
        assert_eq!(newcomer.referral.referred_at, Some(club.engine.now()));
        assert_eq!(newcomer.referral.rewarded_at, None);
        assert_eq!(newcomer.channel, "referral");
        assert_ne!(newcomer.referral.code, referrer.referral.code);
        assert_eq!(referrer.referral.referred_by, None, "[{}]", club.label());
        // Replayed under its key, the enrollment answers the same member; another code under
        // the same key is a different request.
        let request = enroll_request(None, Some("cy@example.com"), None);
        let code = referrer.referral.code.clone().unwrap();
        let first = club
            .engine
            .enroll_referred(&club.tenant, &request, Some(&code), Some("enroll-cy"))
            .await
            .unwrap();
        let again = club
            .engine
            .enroll_referred(&club.tenant, &request, Some(&code), Some("enroll-cy"))
            .await
            .unwrap();
        assert!(again.replayed);
        assert_eq!(again.value, first.value);
        let other = club
            .engine
            .enroll_referred(
                &club.tenant,
                &request,
                newcomer.referral.code.as_deref(),
                Some("enroll-cy"),
            )
            .await;
        assert!(
            matches!(other, Err(EngineError::IdempotencyMismatch { .. })),
            "[{}] {other:?}",
            club.label()
        );
        club.verify().await;
    }
}

#[tokio::test]
async fn an_unknown_or_mistyped_code_is_refused_and_writes_nothing() {
    for club in clubs(&referral_program("unlimited")).await {
        let referrer = enroll(&club, "ada@example.com", None).await.unwrap();
        let code = referrer.referral.code.clone().unwrap();
        let before = club.snapshot(&[&referrer.id]).await;
        // A well-formed code nobody has.
        let mut payload: String = code
            .chars()
            .take(7)
            .collect::<String>()
            .chars()
            .rev()
            .collect();
        if code.starts_with(&payload) {
            payload = if payload == "2345678" {
                "3456789"
            } else {
                "2345678"
            }
            .to_string();
        }
        let check = patron_domain::coupon::check_character(&payload).unwrap();
        let nobody = format!("{payload}{check}");
        let refused = rejection(enroll(&club, "bob@example.com", Some(&nobody)).await);
        assert!(
            matches!(refused, Rejection::UnknownReferralCode { .. }),
            "[{}] {refused:?}",
            club.label()
        );
        // A typo the check character catches (one character changed).
        let mut typo: Vec<char> = code.chars().collect();
        typo[2] = if typo[2] == 'A' { 'B' } else { 'A' };
        let typo: String = typo.into_iter().collect();
        let refused = rejection(enroll(&club, "bob@example.com", Some(&typo)).await);
        assert!(
            matches!(refused, Rejection::UnknownReferralCode { .. }),
            "[{}] {refused:?}",
            club.label()
        );
        assert_eq!(
            club.snapshot(&[&referrer.id]).await,
            before,
            "[{}]",
            club.label()
        );
        assert_eq!(
            club.engine
                .find_member(&club.tenant, Lookup::Email("bob@example.com"))
                .await
                .unwrap(),
            None
        );
    }
}

#[tokio::test]
async fn a_member_cannot_refer_themselves() {
    for club in clubs(&referral_program("unlimited")).await {
        let referrer = club
            .engine
            .enroll(
                &club.tenant,
                &enroll_request(Some("+12125550100"), Some("ada@example.com"), None),
                None,
            )
            .await
            .unwrap()
            .value;
        let code = referrer.referral.code.clone().unwrap();
        let before = club.snapshot(&[&referrer.id]).await;
        // The same email (however it is written) or the same phone: the same person.
        for (phone, email, field) in [
            (None, Some("ADA@example.com"), "email"),
            (Some("+1 212 555 0100"), Some("other@example.com"), "phone"),
        ] {
            let result = club
                .engine
                .enroll_referred(
                    &club.tenant,
                    &enroll_request(phone, email, None),
                    Some(&code),
                    None,
                )
                .await;
            match rejection(result) {
                Rejection::SelfReferral { field: found } => {
                    assert_eq!(found, field, "[{}]", club.label());
                }
                other => panic!("[{}] expected self-referral, got {other:?}", club.label()),
            }
        }
        assert_eq!(
            club.snapshot(&[&referrer.id]).await,
            before,
            "[{}]",
            club.label()
        );
    }
}

#[tokio::test]
async fn referral_links_point_up_a_tree_and_pay_only_the_direct_referrer() {
    for club in clubs(&referral_program("unlimited")).await {
        // A refers B, B refers C: C's first purchase pays B, never A, and B's pays A. A link is
        // made only at enrollment, by a member who already exists, so no chain can loop back.
        let (a, b) = pair(&club).await;
        let c = enroll(&club, "cy@example.com", b.referral.code.as_deref())
            .await
            .unwrap();
        assert_eq!(c.referral.referred_by.as_deref(), Some(b.id.as_str()));
        club.buy("c-1", &c.id, "1", 20_00).await;
        assert_eq!(club.available(&a.id).await, 0, "[{}]", club.label());
        assert_eq!(club.available(&b.id).await, 200, "[{}]", club.label());
        club.buy("b-1", &b.id, "1", 20_00).await;
        assert_eq!(club.available(&a.id).await, 200, "[{}]", club.label());
        assert_eq!(club.available(&b.id).await, 200 + 20 + 50);
        club.verify().await;
    }
}

#[tokio::test]
async fn both_sides_are_paid_once_on_the_first_qualifying_purchase() {
    for club in clubs(&referral_program("unlimited")).await {
        let (referrer, newcomer) = pair(&club).await;
        // Below the minimum: the base only, and the referral stays open.
        let small = club.buy("n-1", &newcomer.id, "1", 5_00).await;
        assert_eq!(small.points, 5, "[{}]", club.label());
        assert_eq!(fired(&small, "bring_a_friend"), None);
        assert_eq!(club.available(&referrer.id).await, 0);
        assert_eq!(member(&club, &newcomer.id).await.referral.rewarded_at, None);

        // The first qualifying purchase pays both sides.
        let first = club.buy("n-2", &newcomer.id, "1", 20_00).await;
        assert_eq!(first.points, 20 + 50, "[{}]", club.label());
        assert_eq!(fired(&first, "bring_a_friend"), Some(50));
        assert_eq!(
            club.available(&referrer.id).await,
            200,
            "[{}]",
            club.label()
        );
        assert_eq!(
            member(&club, &newcomer.id).await.referral.rewarded_at,
            Some(club.engine.now())
        );
        let reward = club
            .engine
            .store()
            .referral_reward(club.tenant.id, &newcomer.id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(reward.referrer_id, referrer.id);
        assert_eq!(reward.purchase_id, first.purchase_id);
        assert_eq!(reward.referrer_points, 200);
        // The purchase's rules, read again, are the newcomer's receipt lines only; the
        // referrer's line is theirs (source `referral`).
        let rules = club
            .engine
            .purchase_rules(&club.tenant, &first.purchase_id)
            .await
            .unwrap();
        assert_eq!(rules, first.rules, "[{}]", club.label());
        let theirs = club
            .engine
            .store()
            .rule_awards(club.tenant.id, "referral", &first.purchase_id)
            .await
            .unwrap();
        assert_eq!(theirs.len(), 1);
        assert_eq!(theirs[0].points, 200);
        assert_eq!(theirs[0].name, "Bring a friend");

        // Never again.
        let second = club.buy("n-3", &newcomer.id, "1", 20_00).await;
        assert_eq!(second.points, 20, "[{}]", club.label());
        assert_eq!(fired(&second, "bring_a_friend"), None);
        assert_eq!(club.available(&referrer.id).await, 200);
        club.verify().await;
    }
}

#[tokio::test]
async fn the_referrers_line_is_in_the_referrers_language() {
    for club in clubs(&referral_program("unlimited")).await {
        let referrer = club
            .engine
            .enroll(
                &club.tenant,
                &enroll_request(None, Some("ada@example.com"), Some("he")),
                None,
            )
            .await
            .unwrap()
            .value;
        let newcomer = enroll(&club, "bob@example.com", referrer.referral.code.as_deref())
            .await
            .unwrap();
        let receipt = club.buy("n-1", &newcomer.id, "1", 20_00).await;
        assert_eq!(receipt.rules[0].name, "Bring a friend");
        let theirs = club
            .engine
            .store()
            .rule_awards(club.tenant.id, "referral", &receipt.purchase_id)
            .await
            .unwrap();
        assert_eq!(theirs[0].name, "הבא חבר", "[{}]", club.label());
    }
}

#[tokio::test]
async fn an_anonymous_purchase_attached_to_the_newcomer_pays_the_referral() {
    for club in clubs(&referral_program("unlimited")).await {
        let (referrer, newcomer) = pair(&club).await;
        let request = purchase_request("anon-1", None, "1", 20_00, "USD");
        let anonymous = club
            .engine
            .post_purchase(&club.tenant, &request, None)
            .await
            .unwrap()
            .value;
        let attached = club
            .engine
            .attach_purchase(&club.tenant, &anonymous.purchase_id, &newcomer.id, None)
            .await
            .unwrap()
            .value;
        assert_eq!(
            fired(&attached, "bring_a_friend"),
            Some(50),
            "[{}]",
            club.label()
        );
        assert_eq!(
            club.available(&referrer.id).await,
            200,
            "[{}]",
            club.label()
        );
        assert!(
            member(&club, &newcomer.id)
                .await
                .referral
                .rewarded_at
                .is_some()
        );
        club.verify().await;
    }
}

#[tokio::test]
async fn a_replayed_purchase_pays_the_referral_once() {
    for club in clubs(&referral_program("unlimited")).await {
        let (referrer, newcomer) = pair(&club).await;
        let request = purchase_request("n-1", Some(&newcomer.id), "1", 20_00, "USD");
        let first = club
            .engine
            .post_purchase(&club.tenant, &request, Some("key-1"))
            .await
            .unwrap();
        for key in [Some("key-1"), None] {
            let again = club
                .engine
                .post_purchase(&club.tenant, &request, key)
                .await
                .unwrap();
            assert!(again.replayed, "[{}]", club.label());
            assert_eq!(again.value, first.value);
        }
        assert_eq!(
            club.available(&referrer.id).await,
            200,
            "[{}]",
            club.label()
        );
        assert_eq!(club.available(&newcomer.id).await, 70);
        club.verify().await;
    }
}

#[tokio::test]
async fn concurrent_first_purchases_pay_the_referral_once() {
    for club in clubs(&referral_program("unlimited")).await {
        let (referrer, newcomer) = pair(&club).await;
        let tasks: Vec<_> = (0..8)
            .map(|i| {
                let engine = club.engine.clone();
                let tenant = club.tenant.clone();
                let request =
                    purchase_request(&format!("n-{i}"), Some(&newcomer.id), "1", 20_00, "USD");
                tokio::spawn(async move { engine.post_purchase(&tenant, &request, None).await })
            })
            .collect();
        let mut paid = 0;
        for task in tasks {
            let receipt = task.await.unwrap().unwrap().value;
            if fired(&receipt, "bring_a_friend").is_some() {
                paid += 1;
            }
        }
        assert_eq!(paid, 1, "[{}]", club.label());
        assert_eq!(
            club.available(&referrer.id).await,
            200,
            "[{}]",
            club.label()
        );
        assert_eq!(club.available(&newcomer.id).await, 8 * 20 + 50);
        club.verify().await;
    }
}

/// The newcomer's purchase locks the newcomer's wallet, then the referrer's. The referrer's
/// own purchases, and transfers between the two (which lock both wallets in id order), race
/// it here: everything completes (a PostgreSQL deadlock between a transfer and the purchase
/// would be detected and the unit retried) and the referral pays once.
#[tokio::test]
async fn the_referrers_own_purchases_and_transfers_racing_the_referral_all_complete() {
    for club in clubs(&referral_program("unlimited")).await {
        let (referrer, newcomer) = pair(&club).await;
        club.grant(&referrer.id, 1_000).await;
        club.grant(&newcomer.id, 1_000).await;
        let mut tasks = Vec::new();
        for i in 0..6 {
            let engine = club.engine.clone();
            let tenant = club.tenant.clone();
            let (buyer, document) = if i % 2 == 0 {
                (newcomer.id.clone(), format!("n-{i}"))
            } else {
                (referrer.id.clone(), format!("r-{i}"))
            };
            let request = purchase_request(&document, Some(&buyer), "1", 20_00, "USD");
            tasks.push(tokio::spawn(async move {
                engine
                    .post_purchase(&tenant, &request, None)
                    .await
                    .map(|_| ())
            }));
        }
        for i in 0..4 {
            let engine = club.engine.clone();
            let tenant = club.tenant.clone();
            let (from, to) = if i % 2 == 0 {
                (referrer.id.clone(), newcomer.id.clone())
            } else {
                (newcomer.id.clone(), referrer.id.clone())
            };
            tasks.push(tokio::spawn(async move {
                let request = TransferRequest {
                    to_member_id: to,
                    points: 10,
                };
                engine
                    .transfer(&tenant, &from, &request, None)
                    .await
                    .map(|_| ())
            }));
        }
        for task in tasks {
            task.await.unwrap().unwrap();
        }
        // Transfers cancel out (two each way); three purchases each of $20; one referral.
        assert_eq!(club.available(&referrer.id).await, 1_000 + 3 * 20 + 200);
        assert_eq!(club.available(&newcomer.id).await, 1_000 + 3 * 20 + 50);
        club.verify().await;
    }
}

#[tokio::test]
async fn a_refund_of_the_rewarding_purchase_claws_back_both_sides_in_proportion() {
    for club in clubs(&referral_program("unlimited")).await {
        let (referrer, newcomer) = pair(&club).await;
        let first = club.buy("n-1", &newcomer.id, "4", 5_00).await;
        assert_eq!(first.points, 70, "[{}]", club.label());
        // Half returned: half of each side.
        let half = club
            .refund(&first.purchase_id, "ret-1", Some("2"))
            .await
            .unwrap();
        assert_eq!(half.clawed_back_points, 35, "[{}]", club.label());
        assert_eq!(club.available(&newcomer.id).await, 35);
        assert_eq!(
            club.available(&referrer.id).await,
            100,
            "[{}]",
            club.label()
        );
        // The rest: nothing left on either side; the referral stays used.
        club.refund(&first.purchase_id, "ret-2", None)
            .await
            .unwrap();
        assert_eq!(club.available(&newcomer.id).await, 0);
        assert_eq!(club.available(&referrer.id).await, 0, "[{}]", club.label());
        let reward = club
            .engine
            .store()
            .referral_reward(club.tenant.id, &newcomer.id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(reward.settled_points, 200);
        let next = club.buy("n-2", &newcomer.id, "1", 20_00).await;
        assert_eq!(fired(&next, "bring_a_friend"), None, "[{}]", club.label());
        assert_eq!(club.available(&referrer.id).await, 0);
        club.verify().await;
    }
}

#[tokio::test]
async fn under_within_balance_a_refund_takes_what_the_referrer_still_has() {
    for club in clubs(&referral_program("within_balance")).await {
        let (referrer, newcomer) = pair(&club).await;
        let first = club.buy("n-1", &newcomer.id, "1", 20_00).await;
        // The referrer spends 150 of the 200 before the newcomer returns everything.
        club.redeem(&referrer.id, 150).await.unwrap();
        club.refund(&first.purchase_id, "ret-1", None)
            .await
            .unwrap();
        assert_eq!(club.available(&referrer.id).await, 0, "[{}]", club.label());
        let reward = club
            .engine
            .store()
            .referral_reward(club.tenant.id, &newcomer.id)
            .await
            .unwrap()
            .unwrap();
        // 50 clawed back, 150 forgiven: settled in full, so a later refund takes nothing.
        assert_eq!(reward.settled_points, 200, "[{}]", club.label());
        club.verify().await;
    }
}

#[tokio::test]
async fn a_referrer_who_left_has_no_working_code_and_earns_nothing_more() {
    for club in clubs(&referral_program("unlimited")).await {
        let (referrer, newcomer) = pair(&club).await;
        let code = referrer.referral.code.clone().unwrap();
        club.engine
            .exit_member(&club.tenant, &referrer.id, "tester", None)
            .await
            .unwrap();
        let refused = rejection(enroll(&club, "cy@example.com", Some(&code)).await);
        assert!(
            matches!(refused, Rejection::UnknownReferralCode { .. }),
            "[{}] {refused:?}",
            club.label()
        );
        assert_eq!(
            club.engine
                .find_member(&club.tenant, Lookup::ReferralCode(&code))
                .await
                .unwrap(),
            None
        );
        // The newcomer referred before the exit still gets their part; the referrer nothing.
        let first = club.buy("n-1", &newcomer.id, "1", 20_00).await;
        assert_eq!(first.points, 70, "[{}]", club.label());
        assert_eq!(club.balance(&referrer.id).await.lifetime_credited, 0);
        let reward = club
            .engine
            .store()
            .referral_reward(club.tenant.id, &newcomer.id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(reward.referrer_points, 0, "[{}]", club.label());
        club.verify().await;
    }
}

#[tokio::test]
async fn members_enrolled_before_the_codes_existed_and_imported_members_get_codes() {
    for club in clubs(&referral_program("unlimited")).await {
        // Members from before migration 0009 have no code; migrating again fills them.
        let old = club.enroll("crm-old").await;
        sqlx::query("UPDATE members SET referral_code = NULL WHERE tenant_id = $1 AND id = $2")
            .bind(club.tenant.id.0)
            .bind(&old)
            .execute(club.engine.store().pool())
            .await
            .unwrap();
        assert_eq!(member(&club, &old).await.referral.code, None);
        club.engine.store().migrate().await.unwrap();
        let filled = member(&club, &old).await.referral.code.unwrap();
        assert_eq!(patron_domain::coupon::validate(&filled).unwrap(), filled);

        let csv = "external_id,email\ncrm-1,one@example.com\ncrm-2,two@example.com\n";
        let report = club
            .engine
            .import_members(&club.tenant, csv.as_bytes(), "consent", &|_| {})
            .await
            .unwrap();
        assert_eq!(report.imported, 2, "[{}]", club.label());
        let mut codes = BTreeSet::new();
        for external_id in ["crm-1", "crm-2"] {
            let found = club
                .engine
                .find_member(&club.tenant, Lookup::ExternalId(external_id))
                .await
                .unwrap()
                .unwrap();
            codes.insert(found.referral.code.unwrap());
        }
        assert_eq!(codes.len(), 2, "[{}]", club.label());
        // Filling again finds nobody without a code.
        assert_eq!(
            club.engine
                .store()
                .fill_referral_codes(club.tenant.id)
                .await
                .unwrap(),
            0
        );
    }
}

// ----- Limits and refunds (the receipt gaps of the rules) ------------------------------------

/// The referral club plus a treat rule limited to once a day.
fn treat_program(returns: &str, pending_days: u32) -> String {
    let base = referral_program(returns);
    let base = if pending_days > 0 {
        base.replacen(
            "[expiry]",
            &format!("[pending]\ndays = {pending_days}\n\n[expiry]"),
            1,
        )
    } else {
        base
    };
    format!(
        "{base}\n[[rules]]\nid = \"daily_treat\"\nname = \"Treat of the day\"\nkind = \"product\"\n\
         categories = [\"treat\"]\npoints = 50\nlimit = {{ count = 1, per = \"day\" }}\n"
    )
}

async fn buy_treat(
    club: &Club,
    document: &str,
    member: &str,
) -> patron_store::purchases::PurchaseReceipt {
    let mut request = purchase_request(document, Some(member), "1", 3_00, "USD");
    request.lines[0].category = "treat".into();
    club.engine
        .post_purchase(&club.tenant, &request, None)
        .await
        .unwrap()
        .value
}

#[tokio::test]
async fn a_purchase_returned_in_full_and_taken_back_no_longer_counts_against_limits() {
    for club in clubs(&treat_program("unlimited", 0)).await {
        let id = club.enroll("crm-1").await;
        let first = buy_treat(&club, "t-1", &id).await;
        assert_eq!(fired(&first, "daily_treat"), Some(50), "[{}]", club.label());
        assert_eq!(
            fired(&buy_treat(&club, "t-2", &id).await, "daily_treat"),
            None
        );
        // Returned in full and clawed back: the usage comes back.
        club.refund(&first.purchase_id, "ret-1", None)
            .await
            .unwrap();
        let again = buy_treat(&club, "t-3", &id).await;
        assert_eq!(fired(&again, "daily_treat"), Some(50), "[{}]", club.label());
        // The returned purchase still reads back with the rule it fired.
        let rules = club
            .engine
            .purchase_rules(&club.tenant, &first.purchase_id)
            .await
            .unwrap();
        assert_eq!(rules, first.rules);
        club.verify().await;
    }
}

#[tokio::test]
async fn a_partial_return_or_a_forgiven_bonus_keeps_the_limit_used() {
    // only_pending: the posted bonus is forgiven on return, so the member keeps it and it
    // stays counted.
    for club in clubs(&treat_program("only_pending", 0)).await {
        let id = club.enroll("crm-1").await;
        let first = buy_treat(&club, "t-1", &id).await;
        let refund = club
            .refund(&first.purchase_id, "ret-1", None)
            .await
            .unwrap();
        assert!(refund.forgiven_points > 0, "[{}]", club.label());
        assert_eq!(
            fired(&buy_treat(&club, "t-2", &id).await, "daily_treat"),
            None
        );
    }
    // Pending points reduced to nothing: the bonus is gone, the usage comes back.
    for club in clubs(&treat_program("only_pending", 14)).await {
        let id = club.enroll("crm-1").await;
        let first = buy_treat(&club, "t-1", &id).await;
        assert_eq!(first.points_state, "pending");
        club.refund(&first.purchase_id, "ret-1", None)
            .await
            .unwrap();
        assert_eq!(
            fired(&buy_treat(&club, "t-2", &id).await, "daily_treat"),
            Some(50),
            "[{}]",
            club.label()
        );
        club.verify().await;
    }
    // Two of three returned: still counted.
    for club in clubs(&treat_program("unlimited", 0)).await {
        let id = club.enroll("crm-1").await;
        let mut request = purchase_request("t-1", Some(&id), "3", 3_00, "USD");
        request.lines[0].category = "treat".into();
        let first = club
            .engine
            .post_purchase(&club.tenant, &request, None)
            .await
            .unwrap()
            .value;
        club.refund(&first.purchase_id, "ret-1", Some("2"))
            .await
            .unwrap();
        assert_eq!(
            fired(&buy_treat(&club, "t-2", &id).await, "daily_treat"),
            None,
            "[{}]",
            club.label()
        );
    }
}

// ----- Referred later ------------------------------------------------------------------------

async fn set_referrer(club: &Club, member: &str, code: &str) -> Result<Member, EngineError> {
    club.engine
        .set_referrer(&club.tenant, member, code, None)
        .await
        .map(|outcome| outcome.value)
}

fn code_of(member: &Member) -> String {
    member.referral.code.clone().unwrap()
}

#[tokio::test]
async fn a_referrer_added_later_never_makes_a_loop_and_pays_like_one_given_at_enrollment() {
    for club in clubs(&referral_program("unlimited")).await {
        // A referred B, B referred C.
        let (a, b) = pair(&club).await;
        let c = enroll(&club, "cy@example.com", Some(&code_of(&b)))
            .await
            .unwrap();
        // A (no purchase, no referrer) cannot be put under B or C: both are below A.
        for below in [&b, &c] {
            let refused = rejection(set_referrer(&club, &a.id, &code_of(below)).await);
            assert!(
                matches!(refused, Rejection::ReferralLoop { .. }),
                "[{}] {refused:?}",
                club.label()
            );
        }
        // Their own code.
        let d = enroll(&club, "dee@example.com", None).await.unwrap();
        let refused = rejection(set_referrer(&club, &d.id, &code_of(&d)).await);
        assert_eq!(
            refused,
            Rejection::SelfReferral {
                field: "referral_code".into()
            },
            "[{}]",
            club.label()
        );
        // D under C: fine, once.
        let linked = set_referrer(&club, &d.id, &code_of(&c)).await.unwrap();
        assert_eq!(linked.referral.referred_by.as_deref(), Some(c.id.as_str()));
        assert_eq!(linked.referral.referred_at, Some(club.engine.now()));
        let refused = rejection(set_referrer(&club, &d.id, &code_of(&a)).await);
        assert!(
            matches!(refused, Rejection::ReferralNotAllowed { .. }),
            "[{}] {refused:?}",
            club.label()
        );
        // Not after a purchase.
        let e = enroll(&club, "eve@example.com", None).await.unwrap();
        club.buy("e-1", &e.id, "1", 1_00).await;
        let refused = rejection(set_referrer(&club, &e.id, &code_of(&a)).await);
        assert!(
            matches!(refused, Rejection::ReferralNotAllowed { .. }),
            "[{}] {refused:?}",
            club.label()
        );
        // D's first qualifying purchase pays C.
        club.buy("d-1", &d.id, "1", 20_00).await;
        assert_eq!(club.available(&c.id).await, 200, "[{}]", club.label());
        club.verify().await;
    }
}

#[tokio::test]
async fn two_later_links_made_at_once_cannot_close_a_loop() {
    for club in clubs(&referral_program("unlimited")).await {
        for round in 0..4 {
            let a = enroll(&club, &format!("a{round}@example.com"), None)
                .await
                .unwrap();
            let b = enroll(&club, &format!("b{round}@example.com"), None)
                .await
                .unwrap();
            let tasks: Vec<_> = [(a.id.clone(), code_of(&b)), (b.id.clone(), code_of(&a))]
                .into_iter()
                .map(|(member, code)| {
                    let engine = club.engine.clone();
                    let tenant = club.tenant.clone();
                    tokio::spawn(
                        async move { engine.set_referrer(&tenant, &member, &code, None).await },
                    )
                })
                .collect();
            let mut linked = 0;
            for task in tasks {
                match task.await.unwrap() {
                    Ok(_) => linked += 1,
                    Err(EngineError::Rejected(Rejection::ReferralLoop { .. })) => {}
                    Err(other) => panic!("[{}] {other:?}", club.label()),
                }
            }
            assert_eq!(linked, 1, "[{}] round {round}", club.label());
        }
    }
}

// ----- Cancelling a reward redemption ----------------------------------------------------

async fn tumbler_stock(club: &Club, member: &str) -> Option<i64> {
    club.engine
        .rewards_catalog(&club.tenant, Some(member), None)
        .await
        .unwrap()
        .into_iter()
        .find(|entry| entry.reward.id == "tumbler")
        .unwrap()
        .stock_left
}

#[tokio::test]
async fn a_reward_redemption_with_an_unused_coupon_can_be_cancelled_once() {
    for club in clubs(&crate::support::COFFEE).await {
        let (engine, tenant) = (&club.engine, &club.tenant);
        let member = club.enroll("crm-1").await;
        club.grant(&member, 1_000).await;
        let before = club.balance(&member).await;
        let redeemed = engine
            .redeem_reward(tenant, &member, "tumbler", None)
            .await
            .unwrap()
            .value;
        assert_eq!(club.available(&member).await, 600);
        assert_eq!(tumbler_stock(&club, &member).await, Some(4));

        let cancelled = engine
            .cancel_reward_redemption(tenant, &redeemed.id, Some("cancel-1"))
            .await
            .unwrap()
            .value;
        assert_eq!(cancelled.points, 400, "[{}]", club.label());
        assert_eq!(cancelled.coupon_code, redeemed.coupon.code);
        assert_eq!(cancelled.balance.available, 1_000);
        // The points went back to the lot they came from, with its expiry.
        assert_eq!(club.balance(&member).await.expiring, before.expiring);
        assert_eq!(tumbler_stock(&club, &member).await, Some(5));
        // Replayed under its key: the same answer; again without: already cancelled.
        let again = engine
            .cancel_reward_redemption(tenant, &redeemed.id, Some("cancel-1"))
            .await
            .unwrap();
        assert!(again.replayed);
        assert_eq!(again.value, cancelled);
        let refused = rejection(
            engine
                .cancel_reward_redemption(tenant, &redeemed.id, None)
                .await,
        );
        assert!(
            matches!(refused, Rejection::RedemptionResolved { ref status, .. } if status == "cancelled"),
            "[{}] {refused:?}",
            club.label()
        );
        // The voided coupon is refused at the till.
        let usage = patron_store::coupons::CouponUse {
            member_id: Some(member.clone()),
            order_id: Some("order-1".into()),
            cart_minor: None,
        };
        let refused = rejection(
            engine
                .redeem_coupon(tenant, &redeemed.coupon.code, &usage, None)
                .await,
        );
        assert!(
            matches!(refused, Rejection::CouponRefused { ref reason, .. } if reason == "expired"),
            "[{}] {refused:?}",
            club.label()
        );
        // The lifetime limit of one is free again: redeem, use the coupon, and now the
        // cancellation is refused.
        let second = engine
            .redeem_reward(tenant, &member, "tumbler", None)
            .await
            .unwrap()
            .value;
        engine
            .redeem_coupon(tenant, &second.coupon.code, &usage, None)
            .await
            .unwrap();
        let refused = rejection(
            engine
                .cancel_reward_redemption(tenant, &second.id, None)
                .await,
        );
        assert!(
            matches!(refused, Rejection::CouponRefused { ref reason, .. } if reason == "used"),
            "[{}] {refused:?}",
            club.label()
        );
        assert_eq!(club.available(&member).await, 600);
        let refused = rejection(
            engine
                .cancel_reward_redemption(tenant, "rrd_nope", None)
                .await,
        );
        assert!(matches!(refused, Rejection::RedemptionNotFound { .. }));
        club.verify().await;
    }
}
