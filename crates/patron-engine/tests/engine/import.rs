//! Member import from CSV: good rows land, bad rows are reported with their line numbers and
//! leave nothing behind, and a file with an unknown column is refused as a whole.

use std::sync::Mutex;

use patron_engine::EngineError;
use patron_engine::import::RowError;
use patron_store::members::Lookup;

use crate::support::{Club, clubs, program};

const NEVER: &str = "policy = \"never\"";

async fn import(
    club: &Club,
    csv: &str,
) -> Result<patron_engine::import::ImportReport, EngineError> {
    let progress = Mutex::new(Vec::new());
    let report = club
        .engine
        .import_members(
            &club.tenant,
            csv.as_bytes(),
            "Imported from the old loyalty system",
            &|rows| progress.lock().unwrap().push(rows),
        )
        .await;
    if let Ok(report) = &report {
        assert_eq!(
            progress.lock().unwrap().last(),
            Some(&report.rows),
            "progress reaches the last row"
        );
    }
    report
}

#[tokio::test]
async fn an_import_lands_good_rows_and_reports_bad_ones_by_line() {
    for club in clubs(&program(0, NEVER, "within_balance", "forfeit")).await {
        let (_, cards) = club
            .engine
            .issue_card_batch(&club.tenant, 1, "warehouse")
            .await
            .unwrap();
        let never_issued = patron_domain::card::card_number("42", 999_999, 16).unwrap();
        let csv = format!(
            "external_id,name,phone,email,card_number,consent_email,attr.city\n\
             ext-1,\"Levi, Dana\",+972 50 765 4321,dana@example.com,,yes,Haifa\n\
             ext-2,Bad Phone,12345,,,,\n\
             ext-1,Same External Id,+972503333333,,,,\n\
             ext-3,سارا,۰۰۹۸۹۱۲۲۲۲۲۲۲۲,,,no,\"Tehran, Iran\"\n\
             ext-4,Card Never Issued,+972502222222,,{never_issued},,\n\
             ext-5,Pre-printed Card,,,{},,\n\
             ext-6,Bad Consent,,,,maybe,\n",
            cards[0]
        );
        let report = import(&club, &csv).await.unwrap();
        assert_eq!(
            (report.rows, report.imported),
            (7, 3),
            "[{}] {report:?}",
            club.label()
        );
        let lines: Vec<u64> = report
            .rejected
            .iter()
            .map(|RowError { line, .. }| *line)
            .collect();
        assert_eq!(
            lines,
            [3, 4, 6, 8],
            "[{}] bad rows by line (the header is line 1)",
            club.label()
        );
        assert!(
            report.rejected[0].reason.contains("phone"),
            "{:?}",
            report.rejected[0]
        );
        assert!(
            report.rejected[1].reason.contains("external_id"),
            "{:?}",
            report.rejected[1]
        );
        assert!(
            report.rejected[2].reason.contains(&never_issued),
            "{:?}",
            report.rejected[2]
        );
        assert!(
            report.rejected[3].reason.contains("consent_email"),
            "{:?}",
            report.rejected[3]
        );

        let dana = club
            .engine
            .find_member(&club.tenant, Lookup::ExternalId("ext-1"))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            dana.profile.name.as_deref(),
            Some("Levi, Dana"),
            "[{}] a quoted field keeps its comma",
            club.label()
        );
        assert_eq!(dana.profile.phone.as_deref(), Some("+972507654321"));
        assert_eq!(dana.channel, "import");
        let attributes: serde_json::Value = serde_json::from_str(&dana.profile.attributes).unwrap();
        assert_eq!(attributes, serde_json::json!({"city": "Haifa"}));
        let consents = club
            .engine
            .store()
            .consents(club.tenant.id, &dana.id)
            .await
            .unwrap();
        assert_eq!(consents.len(), 1);
        assert_eq!(
            (
                consents[0].channel.as_str(),
                consents[0].granted,
                consents[0].method.as_str()
            ),
            ("email", true, "import")
        );
        assert_eq!(
            consents[0].text_shown,
            "Imported from the old loyalty system"
        );

        let sara = club
            .engine
            .find_member(&club.tenant, Lookup::Phone("+989122222222"))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            sara.profile.external_id.as_deref(),
            Some("ext-3"),
            "[{}] Persian digits read as a phone number",
            club.label()
        );
        assert_eq!(sara.profile.name.as_deref(), Some("سارا"));
        let carded = club
            .engine
            .find_member(&club.tenant, Lookup::Card(&cards[0]))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(carded.profile.external_id.as_deref(), Some("ext-5"));

        // A refused row leaves nothing: no member, no wallet, no card.
        assert!(
            club.engine
                .find_member(&club.tenant, Lookup::ExternalId("ext-4"))
                .await
                .unwrap()
                .is_none()
        );
        assert!(
            club.engine
                .find_member(&club.tenant, Lookup::Phone("+972502222222"))
                .await
                .unwrap()
                .is_none()
        );
        assert!(
            club.engine
                .store()
                .card(club.tenant.id, &never_issued)
                .await
                .unwrap()
                .is_none()
        );
        assert_eq!(
            club.engine
                .store()
                .count_members(club.tenant.id)
                .await
                .unwrap(),
            3
        );
        let verify = club
            .engine
            .store()
            .verify_ledger(club.tenant.id, club.engine.now())
            .await
            .unwrap();
        assert!(verify.is_clean());
        assert_eq!(
            verify.accounts,
            3 + patron_store::tenants::SYSTEM_ACCOUNTS.len() as u64,
            "[{}] one wallet per member landed",
            club.label()
        );
        club.db.cleanup().await;
    }
}

#[tokio::test]
async fn an_import_with_an_unknown_column_is_refused_whole() {
    for club in clubs(&program(0, NEVER, "within_balance", "forfeit")).await {
        let csv = "external_id,name,loyalty_tier\next-1,Dana,gold\next-2,Avi,silver\n";
        match import(&club, csv).await {
            Err(EngineError::Invalid { field, message }) => {
                assert_eq!(field, "header");
                assert!(message.contains("loyalty_tier"), "{message}");
            }
            other => panic!(
                "[{}] expected the file to be refused, got {other:?}",
                club.label()
            ),
        }
        assert_eq!(
            club.engine
                .store()
                .count_members(club.tenant.id)
                .await
                .unwrap(),
            0,
            "[{}] nothing imported",
            club.label()
        );
        club.db.cleanup().await;
    }
}

#[tokio::test]
async fn an_import_that_duplicates_existing_members_reports_them_and_imports_the_rest() {
    for club in clubs(&program(0, NEVER, "within_balance", "forfeit")).await {
        club.enroll("ext-1").await;
        let csv = "external_id,email\next-1,one@example.com\next-2,two@example.com\next-3,two@EXAMPLE.com\n";
        let report = import(&club, csv).await.unwrap();
        assert_eq!(
            (report.rows, report.imported),
            (3, 1),
            "[{}] {report:?}",
            club.label()
        );
        let lines: Vec<u64> = report.rejected.iter().map(|e| e.line).collect();
        assert_eq!(
            lines,
            [2, 4],
            "[{}] the existing external id, and the same email with its domain in capitals",
            club.label()
        );
        assert_eq!(
            club.engine
                .store()
                .count_members(club.tenant.id)
                .await
                .unwrap(),
            2
        );
        club.verify().await;

        // Importing the same file again adds nobody.
        let again = import(&club, csv).await.unwrap();
        assert_eq!((again.imported, again.rejected.len()), (0, 3));
        club.db.cleanup().await;
    }
}

/// A bulk load leaves PostgreSQL's statistics current (docs/CONFIG.md, "PostgreSQL's
/// statistics"): the planner knows the members it just received, without waiting for
/// autovacuum.
#[tokio::test]
async fn an_import_refreshes_postgresqls_statistics() {
    for club in clubs(&program(0, NEVER, "within_balance", "forfeit")).await {
        if club.db.backend() != patron_store::Backend::Postgres {
            continue;
        }
        let mut csv = String::from("external_id,name\n");
        for i in 0..300 {
            csv.push_str(&format!("stat-{i},Member {i}\n"));
        }
        let report = import(&club, &csv).await.unwrap();
        assert_eq!(report.imported, 300);
        // The club's system accounts are counted with the wallets.
        for (table, at_least) in [("members", 300), ("accounts", 300)] {
            let row = sqlx::query(
                "SELECT CAST(reltuples AS BIGINT) AS n FROM pg_class \
                 WHERE relname = $1 AND relnamespace = current_schema()::regnamespace",
            )
            .bind(table)
            .fetch_one(club.db.store.pool())
            .await
            .unwrap();
            let analyzed: i64 = sqlx::Row::try_get(&row, "n").unwrap();
            assert!(
                analyzed >= at_least,
                "{table}: the planner counts {analyzed} rows after the import"
            );
        }
    }
}

/// An import larger than one multi-row INSERT (200 rows) lands every row whole: each
/// member's fields, wallet, card and consent where that row put them, on both backends (SQLite
/// binds these statements by position, PostgreSQL by number).
#[tokio::test]
async fn an_import_of_several_statements_keeps_every_row_whole() {
    for club in clubs(&program(0, NEVER, "within_balance", "forfeit")).await {
        let mut csv = String::from("external_id,name,email,birthday,consent_email\n");
        for i in 0..450 {
            let consent = if i % 2 == 0 { "yes" } else { "no" };
            csv.push_str(&format!(
                "row-{i},Member {i},m{i}@example.com,1990-01-{:02},{consent}\n",
                i % 28 + 1
            ));
        }
        let report = import(&club, &csv).await.unwrap();
        assert_eq!((report.rows, report.imported), (450, 450), "{report:?}");
        let mut cards = std::collections::HashSet::new();
        for i in [0, 1, 199, 200, 201, 399, 400, 449] {
            let member = club
                .engine
                .find_member(&club.tenant, Lookup::ExternalId(&format!("row-{i}")))
                .await
                .unwrap()
                .unwrap();
            let name = format!("Member {i}");
            let email = format!("m{i}@example.com");
            let birthday = format!("1990-01-{:02}", i % 28 + 1);
            assert_eq!(
                (
                    member.profile.name.as_deref(),
                    member.profile.email.as_deref(),
                    member.profile.birthday.as_deref()
                ),
                (
                    Some(name.as_str()),
                    Some(email.as_str()),
                    Some(birthday.as_str())
                ),
                "[{}] row {i}",
                club.label()
            );
            assert_eq!(club.balance(&member.id).await.available, 0);
            let card = member.card_number.clone().unwrap();
            assert!(cards.insert(card), "row {i}: a card of its own");
            let consents = club
                .engine
                .store()
                .consents(club.tenant.id, &member.id)
                .await
                .unwrap();
            assert_eq!(consents.len(), 1, "row {i}");
            assert_eq!(consents[0].granted, i % 2 == 0, "row {i}");
        }
        club.verify().await;
        club.db.cleanup().await;
    }
}
