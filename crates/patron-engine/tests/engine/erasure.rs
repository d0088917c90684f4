//! Erasure reaches every copy: after a member leaves, none of their personal values is left
//! anywhere in the database, and every text column of the schema is classified as personal
//! (erased or redacted at the exit) or not, so a new column cannot hold personal data
//! unnoticed.

use std::collections::{BTreeMap, BTreeSet};

use patron_engine::tiers::TierFloorRequest;
use patron_engine::{
    AdjustRequest, ConsentRequest, EnrollRequest, EventRequest, MemberPatch, ProfileFields,
    RedeemRequest,
};
use patron_store::Backend;
use patron_store::members::Member;
use sqlx::Row;

use crate::support::{COFFEE_EXAMPLE, Club, clubs, purchase_request};

/// Text columns an exit erases or redacts (docs/ARCHITECTURE.md, "Personal data and erasure").
const PERSONAL: &[&str] = &[
    "members.external_id",
    "members.name",
    "members.phone",
    "members.email",
    "members.birthday",
    "members.time_zone",
    "members.attributes",
    "consents.text_shown",
    "idempotency_keys.response",
    "events.properties",
    "audit_log.details",
    "tier_floors.reason",
    "transfers.note",
    "redemptions.description",
];

/// Text columns that hold no personal data: ids, codes, states, the club's own texts, hashes.
const NOT_PERSONAL: &[&str] = &[
    "patron_migrations.name",
    "tenants.name",
    // The club's secret its opaque API ids are encrypted under.
    "tenants.id_key",
    "program_versions.source",
    "program_versions.created_by",
    "audit_log.actor",
    "audit_log.action",
    "audit_log.subject",
    "counters.name",
    "members.id",
    "members.status",
    "members.locale",
    "members.channel",
    "members.tier",
    "members.referral_code",
    "members.referred_by",
    "consents.member_id",
    "consents.channel",
    "consents.topic",
    "consents.method",
    "card_batches.created_by",
    "cards.number",
    "cards.kind",
    "cards.status",
    "cards.member_id",
    "cards.replaced_by",
    "accounts.kind",
    "accounts.member_id",
    "transfers.transfer_key",
    "transfers.code",
    "transfers.kind",
    "transfers.member_id",
    "transfers.document_type",
    "transfers.document_id",
    "purchases.id",
    "purchases.document_id",
    "purchases.store_id",
    "purchases.channel",
    "purchases.member_id",
    "purchases.currency",
    "purchases.earn_state",
    "purchases.request_hash",
    "purchase_lines.purchase_id",
    "purchase_lines.sku",
    "purchase_lines.category",
    "purchase_lines.quantity",
    "purchase_lines.refunded_quantity",
    "refunds.id",
    "refunds.purchase_id",
    "refunds.document_id",
    "refunds.request_hash",
    "refunds.response",
    "redemptions.id",
    "redemptions.member_id",
    "redemptions.status",
    "idempotency_keys.key",
    "idempotency_keys.operation",
    "idempotency_keys.request_hash",
    "api_keys.name",
    "api_keys.prefix",
    "api_keys.secret_hash",
    "api_keys.scope",
    "api_keys.created_by",
    "rule_awards.member_id",
    "rule_awards.rule_id",
    "rule_awards.period_key",
    "rule_awards.source_type",
    "rule_awards.source_id",
    "rule_awards.name",
    "events.id",
    "events.member_id",
    "events.type",
    "events.request_hash",
    "jobs.kind",
    "jobs.job_key",
    "jobs.state",
    "jobs.locked_by",
    "jobs.last_error",
    "jobs.result",
    "job_runs.worker",
    "job_runs.outcome",
    "job_runs.error",
    "reward_stock.reward_id",
    "reward_redemptions.id",
    "reward_redemptions.member_id",
    "reward_redemptions.reward_id",
    "reward_redemptions.period_key",
    "reward_redemptions.coupon_code",
    "promotions.id",
    "promotions.name",
    "promotions.benefit",
    "promotions.prefix",
    "promotions.limit_per",
    "promotions.member_limit_per",
    "coupons.code",
    "coupons.display",
    "coupons.kind",
    "coupons.reward_id",
    "coupons.promotion_id",
    "coupons.member_id",
    "coupons.state",
    "coupons.benefit",
    "coupon_redemptions.code",
    "coupon_redemptions.promotion_id",
    "coupon_redemptions.reward_id",
    "coupon_redemptions.member_id",
    "coupon_redemptions.order_id",
    "coupon_events.code",
    "coupon_events.event",
    "coupon_events.promotion_id",
    "coupon_events.reward_id",
    "coupon_events.member_id",
    "partner_codes.pool",
    "partner_codes.code",
    "member_stats.member_id",
    "member_category_spend.member_id",
    "member_category_spend.category",
    "rfv_runs.as_of",
    "rfv_members.member_id",
    "rfv_members.segment",
    "segment_members.segment_id",
    "segment_members.member_id",
    "member_events.member_id",
    "member_events.type",
    "member_events.properties",
    "clv_runs.monthly_discount_pct",
    "clv_runs.margin_pct",
    "clv_members.member_id",
    "referral_rewards.member_id",
    "referral_rewards.referrer_id",
    "referral_rewards.purchase_id",
    "referral_rewards.rule_id",
    "tier_floors.member_id",
    "tier_floors.tier",
    "tier_floors.set_by",
];

/// Every text-like column of the migrated schema, as `table.column`, asked of the database.
async fn text_columns(club: &Club) -> BTreeSet<String> {
    let sql = match club.db.backend() {
        Backend::Sqlite => {
            "SELECT m.name AS t, p.name AS c FROM sqlite_master m, pragma_table_info(m.name) p \
             WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%' \
             AND (upper(p.type) LIKE '%TEXT%' OR upper(p.type) LIKE '%CHAR%' OR upper(p.type) LIKE '%CLOB%' \
             OR upper(p.type) LIKE '%JSON%' OR p.type = '')"
        }
        Backend::Postgres => {
            "SELECT CAST(table_name AS TEXT) AS t, CAST(column_name AS TEXT) AS c \
             FROM information_schema.columns WHERE table_schema = current_schema() \
             AND data_type IN ('text', 'character varying', 'character', 'json', 'jsonb')"
        }
    };
    sqlx::query(sql)
        .fetch_all(club.db.store.pool())
        .await
        .unwrap()
        .iter()
        .map(|row| {
            let table: String = row.try_get("t").unwrap();
            let column: String = row.try_get("c").unwrap();
            format!("{table}.{column}")
        })
        .collect()
}

#[tokio::test]
async fn every_text_column_of_the_schema_is_classified_as_personal_or_not() {
    for club in clubs(COFFEE_EXAMPLE).await {
        let columns = text_columns(&club).await;
        let classified: BTreeSet<String> = PERSONAL
            .iter()
            .chain(NOT_PERSONAL)
            .map(|c| (*c).to_owned())
            .collect();
        let unclassified: Vec<&String> = columns.difference(&classified).collect();
        assert!(
            unclassified.is_empty(),
            "[{}] classify these columns in PERSONAL or NOT_PERSONAL (and erase the personal ones \
             at the exit, patron-store's erasure.rs): {unclassified:?}",
            club.label()
        );
        let both: Vec<&&str> = PERSONAL
            .iter()
            .filter(|c| NOT_PERSONAL.contains(c))
            .collect();
        assert!(both.is_empty(), "classified twice: {both:?}");
        club.db.cleanup().await;
    }
}

const NAME: &str = "Dana Levi";
const NEW_NAME: &str = "Dana Cohen";
const PHONE: &str = "+972507654321";
const NEW_PHONE: &str = "+972507654399";
const EMAIL: &str = "Dana.Levi@example.com";
const EXTERNAL_ID: &str = "crm-dana-1001";
const BIRTHDAY: &str = "1990-05-17";
const ATTRIBUTE: &str = "haifa-carmel-branch";
const TIME_ZONE: &str = "Asia/Jerusalem";

fn dana() -> EnrollRequest {
    EnrollRequest {
        profile: ProfileFields {
            external_id: Some(EXTERNAL_ID.into()),
            name: Some(NAME.into()),
            phone: Some("+972 50 765 4321".into()),
            email: Some("Dana.Levi@Example.COM".into()),
            birthday: Some(BIRTHDAY.into()),
            locale: Some("he".into()),
            time_zone: Some(TIME_ZONE.into()),
            attributes: BTreeMap::from([("favourite_store".into(), serde_json::json!(ATTRIBUTE))]),
        },
        channel: "pos".into(),
        card_number: None,
        consents: vec![ConsentRequest {
            channel: "email".into(),
            topic: None,
            granted: true,
            method: "pos".into(),
            text_shown: format!("I, {NAME}, agree to offers at {EMAIL}"),
        }],
    }
}

/// Everything a member can do that leaves personal data somewhere: enrolled by referral with
/// an idempotency key, refused as a duplicate under someone else's key, renamed and given a
/// new phone under a key (the texts written later still quote the old phone),
/// purchases, a custom event with personal properties, a card replaced, an adjustment, a
/// points hold and a reward's coupon described by name, a tier floor whose reason names them.
async fn busy_member(club: &Club) -> Member {
    let (tenant, engine) = (&club.tenant, &club.engine);
    let referrer = club.enroll("crm-referrer").await;
    let code = engine
        .member(tenant, &referrer)
        .await
        .unwrap()
        .referral
        .code
        .unwrap();
    let member = engine
        .enroll_referred(tenant, &dana(), Some(&code), Some("k-enroll"))
        .await
        .unwrap()
        .value;
    let mut twin = dana();
    twin.profile.external_id = None;
    twin.profile.email = None;
    assert!(
        engine.enroll(tenant, &twin, Some("k-twin")).await.is_err(),
        "the same phone is a stored duplicate"
    );
    // A new name and phone: the old ones stay in the copies made before.
    let patch = MemberPatch {
        name: Some(Some(NEW_NAME.into())),
        phone: Some(Some(NEW_PHONE.into())),
        ..MemberPatch::default()
    };
    engine
        .update_member(tenant, &member.id, &patch, Some("k-patch"))
        .await
        .unwrap();
    for (document, key) in [("doc-1", "k-buy-1"), ("doc-2", "k-buy-2")] {
        let request = purchase_request(document, Some(&member.id), "1", 2500, "USD");
        engine
            .post_purchase(tenant, &request, Some(key))
            .await
            .unwrap();
    }
    let event = EventRequest {
        member_id: member.id.clone(),
        event_type: "review_written".into(),
        occurred_at: None,
        properties: serde_json::Map::from_iter([
            ("stars".into(), serde_json::json!(5)),
            ("author".into(), serde_json::json!(NEW_NAME)),
            ("contact".into(), serde_json::json!(EMAIL)),
        ]),
    };
    engine
        .post_event(tenant, &event, Some("k-event"))
        .await
        .unwrap();
    let card = member.card_number.clone().unwrap();
    engine
        .replace_card(tenant, &card, None, "admin", Some("k-card"))
        .await
        .unwrap();
    let adjust = AdjustRequest {
        points: 500,
        reason: format!("goodwill for {NEW_NAME} ({PHONE})"),
    };
    engine
        .adjust(tenant, &member.id, &adjust, "admin", Some("k-adjust"))
        .await
        .unwrap();
    let hold = RedeemRequest {
        points: 30,
        hold: true,
        hold_minutes: Some(60),
        description: Some(format!("order for {NEW_NAME}")),
    };
    engine
        .redeem(tenant, &member.id, &hold, Some("k-hold"))
        .await
        .unwrap();
    engine
        .redeem_reward(tenant, &member.id, "free_drink", Some("k-reward"))
        .await
        .unwrap();
    let floor = TierFloorRequest {
        tier: "gold".into(),
        until: None,
        reason: format!("{NEW_NAME} complained; call {PHONE}"),
    };
    engine
        .set_tier_floor(tenant, &member.id, &floor, "admin", Some("k-floor"))
        .await
        .unwrap();
    member
}

/// Where `value` still appears: `table.column` and how many rows.
async fn occurrences(club: &Club, columns: &BTreeSet<String>, value: &str) -> Vec<String> {
    let mut found = Vec::new();
    for column in columns {
        let (table, name) = column.split_once('.').unwrap();
        let sql = format!(
            "SELECT COUNT(*) AS n FROM {table} WHERE CAST({name} AS TEXT) LIKE '%' || $1 || '%'"
        );
        let n: i64 = sqlx::query(&sql)
            .bind(value)
            .fetch_one(club.db.store.pool())
            .await
            .unwrap()
            .try_get("n")
            .unwrap();
        if n > 0 {
            found.push(format!("{column} ({n})"));
        }
    }
    found
}

#[tokio::test]
async fn after_an_exit_no_personal_value_of_the_member_is_left_anywhere_in_the_database() {
    for club in clubs(COFFEE_EXAMPLE).await {
        let member = busy_member(&club).await;
        let columns = text_columns(&club).await;
        // The scenario did leave every value around, or the test would prove nothing.
        for value in [
            NAME,
            NEW_NAME,
            PHONE,
            NEW_PHONE,
            EMAIL,
            EXTERNAL_ID,
            ATTRIBUTE,
        ] {
            assert!(
                !occurrences(&club, &columns, value).await.is_empty(),
                "[{}] {value:?} was never stored",
                club.label()
            );
        }
        club.engine
            .exit_member(&club.tenant, &member.id, "privacy-officer", Some("k-exit"))
            .await
            .unwrap();
        let values = [
            NAME,
            NEW_NAME,
            PHONE,
            NEW_PHONE,
            EMAIL,
            EXTERNAL_ID,
            BIRTHDAY,
            ATTRIBUTE,
            TIME_ZONE,
        ];
        for value in values {
            assert_eq!(
                occurrences(&club, &columns, value).await,
                Vec::<String>::new(),
                "[{}] {value:?} survived the exit",
                club.label()
            );
        }
        club.verify().await;
        club.db.cleanup().await;
    }
}

#[tokio::test]
async fn a_replayed_enrollment_after_the_exit_answers_the_stored_member_without_personal_data() {
    for club in clubs(COFFEE_EXAMPLE).await {
        let request = dana();
        let enrolled = club
            .engine
            .enroll(&club.tenant, &request, Some("k-enroll"))
            .await
            .unwrap()
            .value;
        club.engine
            .exit_member(&club.tenant, &enrolled.id, "privacy-officer", None)
            .await
            .unwrap();
        let replay = club
            .engine
            .enroll(&club.tenant, &request, Some("k-enroll"))
            .await
            .unwrap();
        assert!(replay.replayed, "[{}]", club.label());
        let p = &replay.value.profile;
        assert_eq!(replay.value.id, enrolled.id);
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
            "[{}]",
            club.label()
        );
        assert_eq!(p.attributes, "{}");
        club.db.cleanup().await;
    }
}
