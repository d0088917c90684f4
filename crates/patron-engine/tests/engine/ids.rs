//! The ids the engine makes and the keys the API encrypts its integer ids under: nothing in
//! them counts across the clubs of a deployment (docs/API-DESIGN.md, "Ids").

use patron_store::tenants::IdKey;

use crate::support::label;

/// The bits of a version 7 UUID below its millisecond (version, random and variant bits).
const BELOW_THE_MILLISECOND: u128 = (1 << 80) - 1;

/// A process-wide counter in the UUIDs (the `uuid` crate's default for `now_v7`) would number
/// the rows every club makes within a millisecond: two ids of one club in the same
/// millisecond would be as far apart as the rows the other clubs made between them.
#[test]
fn ids_made_in_the_same_millisecond_share_no_counter() {
    let ids: Vec<u128> = (0..2000)
        .map(|_| {
            let id = patron_engine::new_id("mem");
            uuid::Uuid::parse_str(id.trim_start_matches("mem_"))
                .unwrap()
                .as_u128()
        })
        .collect();
    let mut same_millisecond = 0;
    for pair in ids.windows(2) {
        if pair[0] >> 80 != pair[1] >> 80 {
            continue;
        }
        same_millisecond += 1;
        let gap = (pair[0] & BELOW_THE_MILLISECOND).abs_diff(pair[1] & BELOW_THE_MILLISECOND);
        assert!(
            gap > 1 << 48,
            "two ids of the same millisecond are {gap} apart: {:032x} {:032x}",
            pair[0],
            pair[1]
        );
    }
    assert!(same_millisecond > 0, "no two ids in the same millisecond");
}

/// Every club gets an id key of its own when it is made, and keeps it: a key that changed
/// would turn every id the API handed out into another one.
#[tokio::test]
async fn every_club_has_an_id_key_of_its_own_that_never_changes() {
    for db in patron_store::testing::all().await {
        let l = label(&db);
        let now = jiff::Timestamp::now();
        let first = db.store.ensure_tenant("first", now).await.unwrap();
        let second = db.store.ensure_tenant("second", now).await.unwrap();
        assert_ne!(first.id_key, second.id_key, "[{l}]");
        assert_eq!(
            db.store
                .tenant_by_name("first")
                .await
                .unwrap()
                .unwrap()
                .id_key,
            first.id_key,
            "[{l}]"
        );
        assert_eq!(
            format!("{:?}", first.id_key),
            "IdKey(..)",
            "[{l}] not logged"
        );

        let changed = sqlx::query("UPDATE tenants SET id_key = $1 WHERE id = $2")
            .bind(hex::encode(IdKey::random().as_bytes()))
            .bind(first.id.0)
            .execute(db.store.pool())
            .await;
        assert!(changed.is_err(), "[{l}] a club's key changed");
        let keyless = sqlx::query("INSERT INTO tenants (name, created_at) VALUES ('keyless', 0)")
            .execute(db.store.pool())
            .await;
        assert!(keyless.is_err(), "[{l}] a club without a key");
        let malformed =
            sqlx::query("INSERT INTO tenants (name, created_at, id_key) VALUES ('short', 0, 'ab')")
                .execute(db.store.pool())
                .await;
        assert!(malformed.is_err(), "[{l}] a key that is not 32 bytes");
        db.cleanup().await;
    }
}
