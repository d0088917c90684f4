//! Program changes that would reinterpret history are refused: the currency, its minor unit,
//! the time zone and the calendar once the club has ledger history, and the removal of a tier
//! members hold unless the new version says where they go (`[tiers] replaced`), which the
//! apply then does in its unit of work.

use patron_domain::program::Diagnostic;
use patron_engine::EngineError;
use patron_engine::tiers::TierFloorRequest;

use crate::support::{Club, clubs, program};

/// The test program with its `[club]` settings replaced, and tiers base/silver/gold (or the
/// `levels` given) plus `extra` lines in `[tiers]`.
fn club_program(
    currency: &str,
    zone: &str,
    calendar: &str,
    levels: &[&str],
    extra: &str,
) -> String {
    let base = program(0, "policy = \"never\"", "within_balance", "forfeit")
        .replace("currency = \"USD\"", &format!("currency = {currency}"))
        .replace(
            "time_zone = \"America/New_York\"",
            &format!("time_zone = \"{zone}\"\ncalendar = \"{calendar}\""),
        );
    let mut source =
        format!("{base}\n[tiers]\nbasis = \"points_earned\"\nwindow = \"lifetime\"\n{extra}\n");
    for (index, code) in levels.iter().enumerate() {
        source.push_str(&format!(
            "\n[[tiers.levels]]\ncode = \"{code}\"\nname = \"{code}\"\nthreshold = {}\n",
            index * 100
        ));
    }
    source
}

const LEVELS: &[&str] = &["base", "silver", "gold"];

fn usd() -> String {
    club_program("\"USD\"", "America/New_York", "gregorian", LEVELS, "")
}

async fn apply(club: &Club, source: &str) -> Result<(i64, bool), EngineError> {
    club.engine
        .apply_program("club", source, "test")
        .await
        .map(|(_, version, changed)| (version, changed))
}

async fn version(club: &Club) -> i64 {
    club.engine
        .store()
        .current_program(club.tenant.id)
        .await
        .unwrap()
        .unwrap()
        .version
}

fn diagnostics(result: Result<(i64, bool), EngineError>) -> Vec<Diagnostic> {
    match result {
        Err(EngineError::Program(diagnostics)) => diagnostics,
        other => panic!("expected the program to be refused, got {other:?}"),
    }
}

#[tokio::test]
async fn a_club_with_purchases_cannot_change_its_currency_minor_unit_time_zone_or_calendar() {
    for club in clubs(&usd()).await {
        let member = club.enroll("crm-1").await;
        club.buy("doc-1", &member, "1", 1000).await;
        let before = version(&club).await;
        let changes = [
            (
                club_program("\"IRR\"", "America/New_York", "gregorian", LEVELS, ""),
                vec!["club.currency"],
            ),
            (
                club_program(
                    "{ code = \"USD\", minor_unit = 0 }",
                    "America/New_York",
                    "gregorian",
                    LEVELS,
                    "",
                ),
                vec!["club.currency.minor_unit"],
            ),
            (
                club_program("\"USD\"", "Asia/Tehran", "persian", LEVELS, ""),
                vec!["club.time_zone", "club.calendar"],
            ),
        ];
        for (source, expected) in changes {
            let found = diagnostics(apply(&club, &source).await);
            let paths: Vec<&str> = found.iter().map(|d| d.path.as_str()).collect();
            assert_eq!(paths, expected, "[{}]", club.label());
            let first = &found[0];
            let line = source.lines().nth(first.line - 1).unwrap();
            let key = expected[0].rsplit('.').next().unwrap();
            assert!(
                line.contains(key),
                "[{}] located at the key: line {} is {line:?}",
                club.label(),
                first.line
            );
            assert!(
                first.message.contains("history"),
                "[{}] the reason is given: {}",
                club.label(),
                first.message
            );
        }
        assert_eq!(
            version(&club).await,
            before,
            "[{}] nothing applied",
            club.label()
        );
        assert_eq!(
            club.engine
                .program(&club.tenant)
                .await
                .unwrap()
                .program
                .currency
                .code,
            "USD"
        );
        club.verify().await;
        club.db.cleanup().await;
    }
}

#[tokio::test]
async fn a_club_without_history_may_still_change_its_currency_and_time_zone() {
    for club in clubs(&usd()).await {
        club.enroll("crm-1").await;
        let irr = club_program(
            "{ code = \"IRR\", minor_unit = 0 }",
            "Asia/Tehran",
            "persian",
            LEVELS,
            "",
        );
        assert_eq!(
            apply(&club, &irr).await.unwrap(),
            (2, true),
            "[{}]",
            club.label()
        );
        club.db.cleanup().await;
    }
}

#[tokio::test]
async fn with_history_other_changes_still_apply() {
    for club in clubs(&usd()).await {
        let member = club.enroll("crm-1").await;
        club.buy("doc-1", &member, "1", 1000).await;
        let changed = usd()
            .replace("points_per_unit = \"1\"", "points_per_unit = \"2\"")
            .replace("name = \"Test Club\"", "name = \"Renamed Club\"")
            .replace(
                "[[tiers.levels]]\ncode = \"gold\"",
                "[[tiers.levels]]\ncode = \"gold\"\nmultiplier = \"3\"",
            )
            + "\n[[tiers.levels]]\ncode = \"platinum\"\nname = \"Platinum\"\nthreshold = 500\n";
        assert_eq!(
            apply(&club, &changed).await.unwrap(),
            (2, true),
            "[{}]",
            club.label()
        );
        club.db.cleanup().await;
    }
}

async fn raise_to(club: &Club, member: &str, tier: &str) {
    let request = TierFloorRequest {
        tier: tier.into(),
        until: None,
        reason: "service recovery".into(),
    };
    club.engine
        .set_tier_floor(&club.tenant, member, &request, "admin", None)
        .await
        .unwrap();
}

async fn tier_code(club: &Club, member: &str) -> String {
    club.engine.member(&club.tenant, member).await.unwrap().tier
}

#[tokio::test]
async fn removing_a_tier_members_hold_is_refused_without_a_mapping_naming_the_tier_and_its_holders()
{
    for club in clubs(&usd()).await {
        let (a, b) = (club.enroll("crm-a").await, club.enroll("crm-b").await);
        raise_to(&club, &a, "silver").await;
        raise_to(&club, &b, "silver").await;
        let before = version(&club).await;
        let without_silver = club_program(
            "\"USD\"",
            "America/New_York",
            "gregorian",
            &["base", "gold"],
            "",
        );
        let found = diagnostics(apply(&club, &without_silver).await);
        assert_eq!(found.len(), 1, "[{}] {found:?}", club.label());
        assert_eq!(found[0].path, "tiers.levels");
        assert!(
            found[0].message.contains("\"silver\"") && found[0].message.contains("2 members"),
            "[{}] {}",
            club.label(),
            found[0].message
        );
        assert!(found[0].hint.as_deref().unwrap().contains("replaced"));
        assert_eq!(
            version(&club).await,
            before,
            "[{}] nothing applied",
            club.label()
        );
        assert_eq!(tier_code(&club, &a).await, "silver");
        club.db.cleanup().await;
    }
}

#[tokio::test]
async fn a_mapping_moves_the_holders_of_a_removed_tier_and_their_floors_in_the_apply() {
    for club in clubs(&usd()).await {
        let (a, b) = (club.enroll("crm-a").await, club.enroll("crm-b").await);
        raise_to(&club, &a, "silver").await;
        let mapped = club_program(
            "\"USD\"",
            "America/New_York",
            "gregorian",
            &["base", "gold"],
            "replaced = { silver = \"gold\" }",
        );
        assert_eq!(
            apply(&club, &mapped).await.unwrap(),
            (2, true),
            "[{}]",
            club.label()
        );
        assert_eq!(tier_code(&club, &a).await, "gold", "[{}]", club.label());
        assert_eq!(tier_code(&club, &b).await, "base");
        let floor = club
            .engine
            .tier_floor(&club.tenant, &a)
            .await
            .unwrap()
            .expect("the floor is kept");
        assert_eq!(floor.tier, "gold", "[{}] the floor moved too", club.label());
        let audit = club
            .engine
            .store()
            .audit_log(club.tenant.id, Some("program:"), 10)
            .await
            .unwrap();
        let moved = audit
            .iter()
            .find(|e| e.action == "program.tier_replaced")
            .expect("the move is audited");
        assert!(moved.details.contains("silver") && moved.details.contains("gold"));
        assert_eq!(moved.subject, "program:v2");
        club.db.cleanup().await;
    }
}

#[tokio::test]
async fn a_mapping_must_name_a_removed_tier_and_a_level_of_the_new_version() {
    for club in clubs(&usd()).await {
        let still_a_level = club_program(
            "\"USD\"",
            "America/New_York",
            "gregorian",
            LEVELS,
            "replaced = { silver = \"gold\" }",
        );
        let paths: Vec<String> = diagnostics(apply(&club, &still_a_level).await)
            .into_iter()
            .map(|d| d.path)
            .collect();
        assert_eq!(paths, ["tiers.replaced.silver"], "[{}]", club.label());
        let unknown_target = club_program(
            "\"USD\"",
            "America/New_York",
            "gregorian",
            &["base", "gold"],
            "replaced = { silver = \"platinum\" }",
        );
        let paths: Vec<String> = diagnostics(apply(&club, &unknown_target).await)
            .into_iter()
            .map(|d| d.path)
            .collect();
        assert_eq!(paths, ["tiers.replaced.silver"]);
        club.db.cleanup().await;
    }
}
