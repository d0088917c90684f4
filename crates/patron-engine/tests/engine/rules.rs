//! Earning rules through the engine (docs/PROGRAM.md, "[[rules]]"): each purchase rule kind,
//! the filters (channel, store, tier, window), limits under concurrency, run-time failures,
//! dry runs, events, the join gift; the ledger verifies clean after each scenario.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use patron_engine::{
    EnrollRequest, EventRequest, ProfileFields, PurchaseLineRequest, PurchaseRequest,
    RuleFailureObserver,
};
use patron_store::purchases::PurchaseReceipt;
use serde_json::json;

use crate::support::{COFFEE_EXAMPLE, Club, clubs, ny};

/// A club with one rule of each purchase kind, filters, a window, a limit, a rule that fails
/// at run time for members without a `city`, an event rule and a join gift.
pub const RULES: &str = r#"
[club]
name = "Rules Club"
default_locale = "en"
locales = ["en", "he"]
currency = "USD"
time_zone = "America/New_York"

[earning]
points_per_unit = "1"
rounding = "down"
excluded_categories = ["gift_cards"]

[expiry]
policy = "never"

[returns]
policy = "unlimited"

[exit]
policy = "forfeit"

[tiers]
basis = "visits"
window = "lifetime"

[[tiers.levels]]
code = "regular"
name = "Regular"
threshold = 0

[[tiers.levels]]
code = "gold"
name = "Gold"
threshold = 3

[cards]
prefix = "42"

[[rules]]
id = "shoe_spend"
name = "Shoe bonus"
kind = "spend"
points_per_unit = "1"
minimum_purchase = "20.00"
categories = ["shoes"]

[[rules]]
id = "double_coffee"
name = "Double coffee"
kind = "multiplier"
multiplier = 2
categories = ["coffee"]

[[rules]]
id = "croissant"
name = { en = "Croissant bonus", he = "בונוס קרואסון" }
kind = "product"
skus = ["CROISSANT"]
points = 5

[[rules]]
id = "app_only"
name = "App bonus"
kind = "product"
categories = ["app_item"]
points = 10
channels = ["app"]

[[rules]]
id = "store_nine"
name = "Store nine bonus"
kind = "product"
categories = ["store_item"]
points = 7
stores = ["store-9"]

[[rules]]
id = "gold_only"
name = "Gold bonus"
kind = "product"
categories = ["gold_item"]
points = 4
tiers = ["gold"]

[[rules]]
id = "spring"
name = "Spring bonus"
kind = "product"
categories = ["spring"]
points = 6
from = 2026-03-10
until = 2026-03-20

[[rules]]
id = "daily_treat"
name = "Treat of the day"
kind = "product"
categories = ["treat"]
points = 50
limit = { count = 1, per = "day" }

[[rules]]
id = "boston"
name = "Boston bonus"
kind = "product"
categories = ["local"]
points = 3
when = "member.attributes.city == 'Boston'"

[[rules]]
id = "review"
name = "Thanks for your review"
kind = "event"
event = "review_written"
amount = "has(event.properties.stars) && event.properties.stars >= 4 ? 20 : 10"
limit = { count = 2, per = "month" }

[[rules]]
id = "welcome"
name = "Welcome"
kind = "join"
points = 25
"#;

fn line(sku: &str, category: &str, quantity: &str, unit_minor: i64) -> PurchaseLineRequest {
    PurchaseLineRequest {
        sku: sku.into(),
        category: category.into(),
        quantity: quantity.into(),
        unit_price_minor: unit_minor,
        discount_minor: 0,
    }
}

fn request(document_id: &str, member: &str, lines: Vec<PurchaseLineRequest>) -> PurchaseRequest {
    PurchaseRequest {
        document_id: document_id.into(),
        member_id: Some(member.into()),
        store_id: "store-1".into(),
        channel: "pos".into(),
        occurred_at: None,
        currency: "USD".into(),
        lines,
    }
}

async fn post(club: &Club, request: &PurchaseRequest) -> PurchaseReceipt {
    club.engine
        .post_purchase(&club.tenant, request, None)
        .await
        .unwrap()
        .value
}

/// rule id → points, from a receipt.
fn fired(receipt: &PurchaseReceipt) -> BTreeMap<String, i64> {
    receipt
        .rules
        .iter()
        .map(|rule| (rule.rule_id.clone(), rule.points))
        .collect()
}

fn rules_of(pairs: &[(&str, i64)]) -> BTreeMap<String, i64> {
    pairs.iter().map(|(id, p)| (id.to_string(), *p)).collect()
}

async fn enroll_with(club: &Club, external_id: &str, profile: ProfileFields) -> String {
    let request = EnrollRequest {
        profile: ProfileFields {
            external_id: Some(external_id.into()),
            ..profile
        },
        channel: "pos".into(),
        card_number: None,
        consents: vec![],
    };
    club.engine
        .enroll(&club.tenant, &request, None)
        .await
        .unwrap()
        .value
        .id
}

#[tokio::test]
async fn each_purchase_rule_kind_adds_its_points_to_the_base() {
    for club in clubs(RULES).await {
        let member = club.enroll("m-1").await;
        // The join gift, in the enrollment's unit of work.
        assert_eq!(club.available(&member).await, 25, "[{}]", club.label());

        let receipt = post(
            &club,
            &request(
                "d-1",
                &member,
                vec![
                    line("LATTE", "coffee", "1", 400),
                    line("CROISSANT", "pastry", "2", 300),
                    line("BOOTS", "shoes", "1", 2500),
                    line("GIFT", "gift_cards", "1", 5000),
                ],
            ),
        )
        .await;
        // Base: the eligible $35 (gift cards excluded) at 1 per dollar.
        assert_eq!(receipt.base_points, 35, "[{}]", club.label());
        assert_eq!(
            fired(&receipt),
            rules_of(&[("shoe_spend", 25), ("double_coffee", 4), ("croissant", 10)]),
            "[{}]",
            club.label()
        );
        assert_eq!(receipt.points, 35 + 25 + 4 + 10);
        assert_eq!(receipt.points_state, "posted");
        assert_eq!(club.available(&member).await, 25 + 74);
        let names: Vec<&str> = receipt.rules.iter().map(|r| r.name.as_str()).collect();
        assert!(names.contains(&"Croissant bonus"), "{names:?}");

        // Below the spend rule's minimum, only the base.
        let small = post(
            &club,
            &request("d-2", &member, vec![line("SANDALS", "shoes", "1", 1500)]),
        )
        .await;
        assert_eq!((small.base_points, small.points), (15, 15));
        assert!(small.rules.is_empty());

        // A refund claws back in proportion to the whole earning, rules included.
        let refund = club
            .refund(&receipt.purchase_id, "r-1", None)
            .await
            .unwrap();
        assert_eq!(refund.clawed_back_points, 74, "[{}]", club.label());
        assert_eq!(club.available(&member).await, 25 + 15);

        // The firings are recorded with the purchase.
        let awards = club
            .engine
            .store()
            .rule_awards(club.tenant.id, "purchase", &receipt.purchase_id)
            .await
            .unwrap();
        assert_eq!(awards, receipt.rules);
        club.verify().await;
        club.db.cleanup().await;
    }
}

#[tokio::test]
async fn rules_filter_by_channel_store_tier_and_window() {
    for club in clubs(RULES).await {
        let member = club.enroll("m-1").await;
        let mut n = 0;
        let mut next = || {
            n += 1;
            format!("f-{n}")
        };
        // Channel.
        let pos = post(
            &club,
            &request(&next(), &member, vec![line("A", "app_item", "1", 100)]),
        )
        .await;
        assert!(pos.rules.is_empty(), "[{}] {pos:?}", club.label());
        let mut app = request(&next(), &member, vec![line("A", "app_item", "1", 100)]);
        app.channel = "app".into();
        assert_eq!(
            fired(&post(&club, &app).await),
            rules_of(&[("app_only", 10)])
        );
        // Store.
        let mut nine = request(&next(), &member, vec![line("S", "store_item", "1", 100)]);
        assert!(post(&club, &nine).await.rules.is_empty());
        nine.document_id = next();
        nine.store_id = "store-9".into();
        assert_eq!(
            fired(&post(&club, &nine).await),
            rules_of(&[("store_nine", 7)])
        );
        // Tier: three visits made the member gold; the fourth purchase is a gold one.
        assert_eq!(
            club.engine
                .member(&club.tenant, &member)
                .await
                .unwrap()
                .tier,
            "gold"
        );
        let gold = post(
            &club,
            &request(&next(), &member, vec![line("G", "gold_item", "1", 100)]),
        )
        .await;
        assert_eq!(
            fired(&gold),
            rules_of(&[("gold_only", 4)]),
            "[{}]",
            club.label()
        );
        let other = club.enroll("m-2").await;
        let regular = post(
            &club,
            &request(&next(), &other, vec![line("G", "gold_item", "1", 100)]),
        )
        .await;
        assert!(regular.rules.is_empty());
        // Window: [10 March, 20 March] in New York, judged at the purchase's time.
        let spring = |doc: String, at: Option<&str>| {
            let mut r = request(&doc, &member, vec![line("P", "spring", "1", 100)]);
            r.occurred_at = at.map(ny);
            r
        };
        assert!(post(&club, &spring(next(), None)).await.rules.is_empty());
        // The window's purchases are dated before the clock (back-dated within the limit),
        // never ahead of it.
        club.clock.set(ny("2026-03-25T12:00"));
        let inside = post(&club, &spring(next(), Some("2026-03-10T00:00"))).await;
        assert_eq!(fired(&inside), rules_of(&[("spring", 6)]));
        let last_day = post(&club, &spring(next(), Some("2026-03-20T23:59"))).await;
        assert_eq!(fired(&last_day), rules_of(&[("spring", 6)]));
        let after = post(&club, &spring(next(), Some("2026-03-21T00:00"))).await;
        assert!(after.rules.is_empty());
        club.verify().await;
        club.db.cleanup().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_limit_of_one_a_day_holds_for_ten_concurrent_purchases() {
    for club in clubs(RULES).await {
        let member = club.enroll("m-1").await;
        let tasks: Vec<_> = (0..10)
            .map(|n| {
                let (engine, tenant) = (club.engine.clone(), club.tenant.clone());
                let request = request(
                    &format!("t-{n}"),
                    &member,
                    vec![line("T", "treat", "1", 200)],
                );
                tokio::spawn(async move { engine.post_purchase(&tenant, &request, None).await })
            })
            .collect();
        let mut treats = 0;
        let mut points = 0;
        for task in tasks {
            let receipt = task.await.unwrap().unwrap().value;
            treats += receipt
                .rules
                .iter()
                .filter(|r| r.rule_id == "daily_treat")
                .count();
            points += receipt.points;
        }
        assert_eq!(
            treats,
            1,
            "[{}] exactly one purchase got the daily treat",
            club.label()
        );
        assert_eq!(points, 10 * 2 + 50);
        assert_eq!(club.available(&member).await, 25 + 70);
        // The next day it fires again, once.
        club.advance_hours(24).await;
        let again = post(
            &club,
            &request("t-next", &member, vec![line("T", "treat", "1", 200)]),
        )
        .await;
        assert_eq!(fired(&again), rules_of(&[("daily_treat", 50)]));
        let twice = post(
            &club,
            &request("t-twice", &member, vec![line("T", "treat", "1", 200)]),
        )
        .await;
        assert!(twice.rules.is_empty());
        club.verify().await;
        club.db.cleanup().await;
    }
}

/// Counts what the engine reports.
#[derive(Debug, Default)]
struct Failures(Mutex<Vec<(String, String)>>);

impl RuleFailureObserver for Failures {
    fn rule_failed(&self, rule_id: &str, error: &str) {
        self.0
            .lock()
            .unwrap()
            .push((rule_id.to_string(), error.to_string()));
    }
}

#[tokio::test]
async fn a_rule_failing_at_run_time_is_skipped_and_reported_never_the_purchase() {
    for club in clubs(RULES).await {
        let observer = Arc::new(Failures::default());
        let engine = club
            .engine
            .clone()
            .with_rule_failure_observer(observer.clone());
        let member = club.enroll("m-1").await;
        let request = request(
            "b-1",
            &member,
            vec![line("L", "local", "1", 1000), line("C", "coffee", "1", 100)],
        );
        let receipt = engine
            .post_purchase(&club.tenant, &request, None)
            .await
            .unwrap()
            .value;
        // `member.attributes.city` is missing: the Boston rule is skipped, the rest earns.
        assert_eq!(
            fired(&receipt),
            rules_of(&[("double_coffee", 1)]),
            "[{}]",
            club.label()
        );
        assert_eq!(receipt.points, 11 + 1);
        let failures = observer.0.lock().unwrap().clone();
        assert_eq!(failures.len(), 1, "{failures:?}");
        assert_eq!(failures[0].0, "boston");
        // A replay evaluates nothing and reports nothing.
        engine
            .post_purchase(&club.tenant, &request, None)
            .await
            .unwrap();
        assert_eq!(observer.0.lock().unwrap().len(), 1);
        // A Bostonian gets it.
        let bostonian = enroll_with(
            &club,
            "m-2",
            ProfileFields {
                attributes: [("city".to_string(), json!("Boston"))].into(),
                ..ProfileFields::default()
            },
        )
        .await;
        let local = engine
            .post_purchase(
                &club.tenant,
                &self::request("b-2", &bostonian, vec![line("L", "local", "1", 1000)]),
                None,
            )
            .await
            .unwrap()
            .value;
        assert_eq!(fired(&local), rules_of(&[("boston", 3)]));
        assert_eq!(observer.0.lock().unwrap().len(), 1);
        club.verify().await;
        club.db.cleanup().await;
    }
}

#[tokio::test]
async fn a_dry_run_answers_the_receipt_and_writes_nothing() {
    for club in clubs(RULES).await {
        let member = club.enroll("m-1").await;
        let request = request(
            "dry-1",
            &member,
            vec![
                line("CROISSANT", "pastry", "1", 300),
                line("T", "treat", "1", 100),
            ],
        );
        let before = club.snapshot(&[&member]).await;
        let preview = club
            .engine
            .preview_purchase(&club.tenant, &request)
            .await
            .unwrap();
        let again = club
            .engine
            .preview_purchase(&club.tenant, &request)
            .await
            .unwrap();
        assert_eq!(
            club.snapshot(&[&member]).await,
            before,
            "[{}]",
            club.label()
        );
        assert!(
            club.engine
                .store()
                .purchase_by_document(club.tenant.id, "dry-1")
                .await
                .unwrap()
                .is_none()
        );
        assert_eq!((preview.points, preview.base_points), (4 + 5 + 50, 4));
        assert_eq!(fired(&again), fired(&preview), "a preview uses no limit");
        assert_eq!(preview.balance, None);
        // Posting it for real earns what the preview said.
        let posted = post(&club, &request).await;
        assert_eq!(
            (posted.points, posted.base_points),
            (preview.points, preview.base_points)
        );
        assert_eq!(posted.rules, preview.rules);
        assert_eq!(posted.points_state, preview.points_state);
        // And the next preview knows the limit is used up.
        let mut next = request.clone();
        next.document_id = "dry-2".into();
        let after = club
            .engine
            .preview_purchase(&club.tenant, &next)
            .await
            .unwrap();
        assert_eq!(fired(&after), rules_of(&[("croissant", 5)]));
        club.verify().await;
        club.db.cleanup().await;
    }
}

fn review(member: &str, stars: i64) -> EventRequest {
    EventRequest {
        member_id: member.into(),
        event_type: "review_written".into(),
        occurred_at: None,
        properties: json!({ "stars": stars, "text": "Lovely" })
            .as_object()
            .unwrap()
            .clone(),
    }
}

#[tokio::test]
async fn events_earn_by_their_rules_within_limits_and_once_per_key() {
    for club in clubs(RULES).await {
        let member = club.enroll("m-1").await;
        let first = club
            .engine
            .post_event(&club.tenant, &review(&member, 5), Some("ev-1"))
            .await
            .unwrap();
        assert!(!first.replayed);
        assert_eq!(first.value.points, 20, "[{}]", club.label());
        assert_eq!(first.value.rules.len(), 1);
        assert_eq!(first.value.rules[0].name, "Thanks for your review");
        let replay = club
            .engine
            .post_event(&club.tenant, &review(&member, 5), Some("ev-1"))
            .await
            .unwrap();
        assert!(replay.replayed);
        assert_eq!(replay.value, first.value);
        assert_eq!(club.available(&member).await, 25 + 20);
        // The same key with another event is refused and does nothing.
        let reused = club
            .engine
            .post_event(&club.tenant, &review(&member, 1), Some("ev-1"))
            .await;
        assert!(reused.is_err());

        let second = club
            .engine
            .post_event(&club.tenant, &review(&member, 2), Some("ev-2"))
            .await
            .unwrap();
        assert_eq!(second.value.points, 10);
        // Two a month: the third earns nothing, and is still recorded.
        let third = club
            .engine
            .post_event(&club.tenant, &review(&member, 5), Some("ev-3"))
            .await
            .unwrap();
        assert_eq!((third.value.points, third.value.rules.len()), (0, 0));
        // An event no rule rewards.
        let mut other = review(&member, 5);
        other.event_type = "app_installed".into();
        let other = club
            .engine
            .post_event(&club.tenant, &other, None)
            .await
            .unwrap();
        assert_eq!(other.value.points, 0);
        // Next month the limit starts again.
        let mut april = review(&member, 4);
        april.occurred_at = Some(ny("2026-04-02T10:00"));
        // An event is dated at most `[limits] future_minutes_max` ahead of the clock.
        club.clock.set(ny("2026-04-02T10:05"));
        let april = club
            .engine
            .post_event(&club.tenant, &april, None)
            .await
            .unwrap();
        assert_eq!(april.value.points, 20);
        assert_eq!(club.available(&member).await, 25 + 20 + 10 + 20);
        // A bad type is refused before anything happens.
        let mut bad = review(&member, 5);
        bad.event_type = "Review Written".into();
        assert!(
            club.engine
                .post_event(&club.tenant, &bad, None)
                .await
                .is_err()
        );
        club.verify().await;
        club.db.cleanup().await;
    }
}

#[tokio::test]
async fn receipts_name_the_rules_in_the_members_language() {
    for club in clubs(RULES).await {
        let member = enroll_with(
            &club,
            "m-he",
            ProfileFields {
                locale: Some("he".into()),
                ..ProfileFields::default()
            },
        )
        .await;
        let receipt = post(
            &club,
            &request(
                "he-1",
                &member,
                vec![
                    line("CROISSANT", "pastry", "1", 300),
                    line("C", "coffee", "1", 100),
                ],
            ),
        )
        .await;
        let names: BTreeMap<&str, &str> = receipt
            .rules
            .iter()
            .map(|r| (r.rule_id.as_str(), r.name.as_str()))
            .collect();
        // Hebrew where the club wrote it, the default language elsewhere.
        assert_eq!(names["croissant"], "בונוס קרואסון", "[{}]", club.label());
        assert_eq!(names["double_coffee"], "Double coffee");
        club.verify().await;
        club.db.cleanup().await;
    }
}

#[tokio::test]
async fn the_coffee_example_gives_its_join_gift_and_pastry_pairing() {
    for club in clubs(COFFEE_EXAMPLE).await {
        let member = club.enroll("m-1").await;
        assert_eq!(club.available(&member).await, 25, "[{}]", club.label());
        let receipt = post(
            &club,
            &request(
                "c-1",
                &member,
                vec![
                    line("LATTE", "coffee", "1", 475),
                    line("MUFFIN", "pastry", "2", 300),
                ],
            ),
        )
        .await;
        // 2 beans per dollar on $10.75, and 3 per pastry with a coffee (a Monday: no double).
        assert_eq!(receipt.base_points, 21);
        assert_eq!(fired(&receipt), rules_of(&[("pastry_pairing", 6)]));
        club.verify().await;
        club.db.cleanup().await;
    }
}
