//! `patron program apply` refuses a version that would reinterpret the club's history, with the
//! file, line and column of the key, and applies nothing.

use std::sync::Arc;

use patron_engine::model::StoreOptions;
use patron_engine::{Engine, EnrollRequest, ProfileFields, SystemClock};

use super::{TempDir, apply_coffee, examples_dir, patron_db};

/// Enrolls one member in `tenant`: the coffee chain's join gift makes ledger history.
fn enroll_with_join_gift(dir: &TempDir, tenant: &str) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let engine = Engine::connect(&dir.db(), StoreOptions::default(), Arc::new(SystemClock))
            .await
            .unwrap();
        let tenant = engine.tenant(tenant).await.unwrap();
        let request = EnrollRequest {
            profile: ProfileFields {
                external_id: Some("history-1".into()),
                ..ProfileFields::default()
            },
            channel: "pos".into(),
            card_number: None,
            consents: vec![],
        };
        engine.enroll(&tenant, &request, None).await.unwrap();
        engine.close().await;
    });
}

#[test]
fn apply_refuses_a_new_currency_once_the_club_has_history_at_the_key() {
    let dir = TempDir::new("program-history");
    apply_coffee(&dir, "club");
    enroll_with_join_gift(&dir, "club");
    let coffee = std::fs::read_to_string(examples_dir().join("coffee-chain.toml")).unwrap();
    let eur = coffee.replace("currency = \"USD\"", "currency = \"EUR\"");
    assert_ne!(
        eur, coffee,
        "the example's currency line moved: update the test"
    );
    let line = eur
        .lines()
        .position(|l| l.starts_with("currency ="))
        .unwrap()
        + 1;
    let file = dir.write("eur.toml", &eur);
    let out = patron_db(
        &dir,
        &[
            "program",
            "apply",
            file.to_str().unwrap(),
            "--tenant",
            "club",
        ],
    );
    assert_ne!(out.code, 0, "{out:?}");
    assert!(
        out.stderr.contains(&format!("eur.toml:{line}:"))
            && out.stderr.contains("club.currency")
            && out.stderr.contains("nothing was applied"),
        "{}",
        out.stderr
    );
    let versions = patron_db(&dir, &["program", "show", "--tenant", "club"]);
    assert!(
        versions.stdout.contains("currency = \"USD\""),
        "{versions:?}"
    );
}
