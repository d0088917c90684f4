//! The demo club's world (its stores, menu, guests and their habits) and the simulation that
//! walks it day by day through the engine's use cases (see the parent module).

use std::io::IsTerminal;
use std::time::Instant;

use anyhow::Context;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use jiff::civil::Date;
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};
use patron_engine::model::Tenant;
use patron_engine::{
    Clock, ConsentRequest, Engine, EngineError, EnrollRequest, ManualClock, ProfileFields,
    PurchaseLineRequest, PurchaseRequest, RedeemRequest, RefundLineRequest, RefundRequest,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::DemoArgs;
use crate::store::thousands;

/// The instant of `minute` minutes after midnight on `date` in `tz`.
pub(super) fn at(tz: &TimeZone, date: Date, minute: u32) -> anyhow::Result<Timestamp> {
    let hour = i8::try_from(minute / 60).unwrap_or(23).min(23);
    let minute = i8::try_from(minute % 60).unwrap_or(0);
    Ok(date
        .at(hour, minute, 0, 0)
        .to_zoned(tz.clone())?
        .timestamp())
}

pub(super) const STORES: &[&str] = &[
    "nyc-soho",
    "nyc-midtown",
    "nyc-upper-east",
    "bk-williamsburg",
    "bk-park-slope",
    "jc-grove-st",
];

/// (sku, category, price in cents)
type Item = (&'static str, &'static str, i64);
const DRINKS: &[Item] = &[
    ("DRIP-12", "coffee", 275),
    ("DRIP-16", "coffee", 325),
    ("LATTE-12", "coffee", 495),
    ("LATTE-16", "coffee", 545),
    ("CAPPUCCINO-12", "coffee", 475),
    ("COLD-BREW-16", "coffee", 525),
    ("MOCHA-12", "coffee", 545),
    ("AMERICANO-12", "coffee", 375),
    ("CHAI-LATTE-12", "tea", 475),
    ("GREEN-TEA-12", "tea", 325),
];
const WINTER_DRINKS: &[Item] = &[
    ("PEPPERMINT-MOCHA-12", "coffee", 595),
    ("GINGERBREAD-LATTE-12", "coffee", 595),
];
const SUMMER_DRINKS: &[Item] = &[
    ("ICED-LATTE-16", "coffee", 545),
    ("NITRO-COLD-BREW-16", "coffee", 575),
];
const BAKERY: &[Item] = &[
    ("CROISSANT", "bakery", 375),
    ("BLUEBERRY-MUFFIN", "bakery", 325),
    ("SCONE", "bakery", 350),
    ("COOKIE", "bakery", 250),
    ("BANANA-BREAD", "bakery", 395),
];
const FOOD: &[Item] = &[
    ("BACON-EGG-CHEESE", "sandwiches", 695),
    ("TURKEY-PESTO", "sandwiches", 895),
    ("AVOCADO-TOAST", "sandwiches", 795),
];
const RETAIL: &[Item] = &[
    ("HOUSE-BLEND-1LB", "beans", 1699),
    ("ESPRESSO-1LB", "beans", 1799),
    ("MUG", "merch", 1495),
    ("TUMBLER", "merch", 2495),
];
const GIFT_CARDS: &[Item] = &[
    ("GIFT-CARD-25", "gift_cards", 2500),
    ("GIFT-CARD-50", "gift_cards", 5000),
];

const FIRST_NAMES: &[&str] = &[
    "Olivia",
    "Liam",
    "Emma",
    "Noah",
    "Ava",
    "Elijah",
    "Sophia",
    "James",
    "Isabella",
    "William",
    "Mia",
    "Benjamin",
    "Charlotte",
    "Lucas",
    "Amelia",
    "Henry",
    "Harper",
    "Alexander",
    "Evelyn",
    "Daniel",
    "Abigail",
    "Mateo",
    "Emily",
    "Jackson",
    "Sofia",
    "Sebastian",
    "Aaliyah",
    "Jack",
    "Camila",
    "Aiden",
    "Priya",
    "Wei",
    "Fatima",
    "Diego",
    "Yuki",
    "Kwame",
    "Noa",
    "Ravi",
    "Chloe",
    "Omar",
];
const LAST_NAMES: &[&str] = &[
    "Smith",
    "Johnson",
    "Williams",
    "Brown",
    "Jones",
    "Garcia",
    "Miller",
    "Davis",
    "Rodriguez",
    "Martinez",
    "Hernandez",
    "Lopez",
    "Gonzalez",
    "Wilson",
    "Anderson",
    "Thomas",
    "Taylor",
    "Moore",
    "Jackson",
    "Martin",
    "Lee",
    "Perez",
    "Thompson",
    "White",
    "Harris",
    "Sanchez",
    "Clark",
    "Ramirez",
    "Lewis",
    "Robinson",
    "Patel",
    "Chen",
    "Kim",
    "Nguyen",
    "Cohen",
    "Okafor",
    "Silva",
    "Rossi",
    "Murphy",
    "Kowalski",
];
const AREA_CODES: &[&str] = &["212", "646", "718", "917", "347", "201"];
const CONSENT_TEXT: &str =
    "Yes, send me Northside Coffee offers and news. I can unsubscribe at any time.";

/// Relative traffic by weekday, Monday first.
const WEEKDAY_FACTOR: [f64; 7] = [0.9, 0.9, 0.95, 1.0, 1.1, 1.35, 1.2];
/// Relative traffic by month, January first: a slow January, a busy December.
const MONTH_FACTOR: [f64; 12] = [
    0.82, 0.88, 0.95, 1.0, 1.0, 0.97, 0.92, 0.9, 1.0, 1.05, 1.12, 1.38,
];
/// Weights of the opening hours 6:00 to 19:00 on weekdays (a morning rush) and weekends.
const WEEKDAY_HOURS: [u32; 14] = [5, 13, 16, 11, 7, 6, 9, 7, 5, 6, 5, 4, 3, 2];
const WEEKEND_HOURS: [u32; 14] = [1, 4, 9, 13, 13, 10, 10, 8, 7, 7, 6, 5, 4, 2];

/// Share of purchases that are anonymous (no card shown).
const ANONYMOUS_SHARE: f64 = 0.25;
const REFUND_SHARE: f64 = 0.03;
/// 100 beans buy a drink ($2 off); 250 a drink and a pastry.
const REWARDS: &[(i64, &str)] = &[(100, "Free drink"), (250, "Drink and pastry")];

#[derive(Debug, Clone, Copy)]
enum Habit {
    /// Most mornings.
    Regular,
    /// A couple of times a month.
    Occasional,
    /// Came once or twice.
    OneOff,
}

#[derive(Debug)]
struct PlannedMember {
    join_day: usize,
    /// Visits per week when active.
    rate: f64,
    home_store: usize,
    /// Starting this day, visits fade out.
    fades_from: Option<usize>,
    id: Option<String>,
    /// Spendable beans as the last receipt said.
    available: i64,
}

#[derive(Debug)]
enum Event {
    Enroll(usize),
    Visit(usize),
    Anonymous,
    Refund {
        purchase_id: String,
        member: Option<usize>,
        lines: Option<Vec<RefundLineRequest>>,
    },
}

#[derive(Debug, Default)]
pub(super) struct Stats {
    pub(super) enrolled: u64,
    pub(super) purchases: u64,
    pub(super) anonymous: u64,
    pub(super) refunds: u64,
    pub(super) redemptions: u64,
    pub(super) points_earned: i64,
    pub(super) points_expired: i64,
    pub(super) holds_released: i64,
    pub(super) rejections: u64,
}

/// Where the simulation's time goes, per kind of call (logged at debug level).
#[derive(Debug, Default)]
struct Timings {
    jobs: std::time::Duration,
    enroll: std::time::Duration,
    purchase: std::time::Duration,
    redeem: std::time::Duration,
    refund: std::time::Duration,
}

impl Stats {
    pub(super) fn add_jobs(&mut self, report: &patron_engine::JobReport) {
        self.points_expired += report.points_expired;
        self.holds_released += report.holds_released;
    }
}

pub(super) struct Simulation<'e> {
    engine: &'e Engine,
    pub(super) clock: ManualClock,
    tenant: Tenant,
    tz: TimeZone,
    pub(super) days: Vec<Date>,
    rng: StdRng,
    members: Vec<PlannedMember>,
    pub(super) cards: Vec<String>,
    /// Refunds planned for later: (when, event).
    refunds: Vec<(Timestamp, Event)>,
    document_seq: u64,
    pub(super) stats: Stats,
    timings: Timings,
}

impl<'e> Simulation<'e> {
    pub(super) fn new(
        engine: &'e Engine,
        clock: ManualClock,
        tenant: Tenant,
        tz: TimeZone,
        days: Vec<Date>,
        args: &DemoArgs,
    ) -> anyhow::Result<Self> {
        let mut rng = StdRng::seed_from_u64(args.seed);
        let day_count = days.len().max(1);
        let launch_days = day_count.min(7);
        let mut members = Vec::with_capacity(args.members as usize);
        for _ in 0..args.members {
            // A launch burst in the first week, then steady sign-ups, busier on busy days.
            let join_day = if rng.random_bool(0.12) {
                rng.random_range(0..launch_days)
            } else {
                loop {
                    let candidate = rng.random_range(0..day_count);
                    if rng.random_bool(day_factor(days[candidate]) / 1.9) {
                        break candidate;
                    }
                }
            };
            // Most members of a loyalty club are occasional or one-off guests; a few regulars
            // carry the visits. (Rates are tuned so the default club builds in well under a
            // minute: every purchase is a real ledger transaction.)
            let habit = match rng.random_range(0..100) {
                0..9 => Habit::Regular,
                9..48 => Habit::Occasional,
                _ => Habit::OneOff,
            };
            let rate = match habit {
                Habit::Regular => rng.random_range(0.7..1.4),
                Habit::Occasional => rng.random_range(0.1..0.35),
                Habit::OneOff => rng.random_range(0.005..0.03),
            };
            // A third of members drift away some weeks or months after joining.
            let fades_from = rng
                .random_bool(0.33)
                .then(|| join_day + rng.random_range(14..200));
            members.push(PlannedMember {
                join_day,
                rate,
                home_store: rng.random_range(0..STORES.len()),
                fades_from,
                id: None,
                available: 0,
            });
        }
        Ok(Simulation {
            engine,
            clock,
            tenant,
            tz,
            days,
            rng,
            members,
            cards: Vec::new(),
            refunds: Vec::new(),
            document_seq: 0,
            stats: Stats::default(),
            timings: Timings::default(),
        })
    }

    pub(super) async fn run(&mut self) -> anyhow::Result<()> {
        let bar = ProgressBar::with_draw_target(
            Some(self.days.len() as u64),
            if std::io::stderr().is_terminal() {
                ProgressDrawTarget::stderr()
            } else {
                ProgressDrawTarget::hidden()
            },
        );
        if let Ok(style) = ProgressStyle::with_template(
            "{spinner} simulating [{bar:30}] {pos}/{len} days, {msg} ({eta} left)",
        ) {
            bar.set_style(style.progress_chars("=> "));
        }
        for day_index in 0..self.days.len() {
            let date = self.days[day_index];
            self.simulate_day(day_index, date)
                .await
                .with_context(|| format!("the demo simulation failed on {date}"))?;
            bar.set_position(day_index as u64 + 1);
            bar.set_message(format!(
                "{} members, {} purchases",
                thousands(self.stats.enrolled),
                thousands(self.stats.purchases + self.stats.anonymous)
            ));
        }
        bar.finish_and_clear();
        tracing::debug!(timings = ?self.timings, "where the demo's time went");
        if self.stats.rejections > 0 {
            tracing::info!(
                rejections = self.stats.rejections,
                "requests the engine refused during the demo (expected: stale balances)"
            );
        }
        Ok(())
    }

    async fn simulate_day(&mut self, day_index: usize, date: Date) -> anyhow::Result<()> {
        // The nightly jobs, before the shops open.
        self.clock.set(at(&self.tz, date, 3 * 60)?);
        let started = Instant::now();
        let report = self.engine.run_due_jobs(&self.tenant).await?;
        self.timings.jobs += started.elapsed();
        self.stats.add_jobs(&report);

        let factor = day_factor(date);
        let weekend = date.weekday().to_monday_zero_offset() >= 5;
        let christmas = date.month() == 12 && date.day() == 25;
        let mut events: Vec<(Timestamp, Event)> = Vec::new();
        for index in 0..self.members.len() {
            let member = &self.members[index];
            if member.join_day == day_index {
                let minute = self.minute_of_day(weekend);
                events.push((at(&self.tz, date, minute)?, Event::Enroll(index)));
                continue;
            }
            if member.join_day > day_index {
                continue;
            }
            let fade = match member.fades_from {
                Some(from) if day_index > from => (-((day_index - from) as f64) / 10.0).exp(),
                _ => 1.0,
            };
            let probability =
                (member.rate / 7.0 * factor * fade * if christmas { 0.25 } else { 1.0 }).min(0.95);
            if self.rng.random_bool(probability) {
                let minute = self.minute_of_day(weekend);
                events.push((at(&self.tz, date, minute)?, Event::Visit(index)));
            }
        }
        // Anonymous purchases: about a quarter of all, so a third of the identified ones.
        let identified = events.len() as f64;
        let expected = identified * ANONYMOUS_SHARE / (1.0 - ANONYMOUS_SHARE);
        let anonymous =
            expected.floor() as usize + usize::from(self.rng.random_bool(expected.fract()));
        for _ in 0..anonymous {
            let minute = self.minute_of_day(weekend);
            events.push((at(&self.tz, date, minute)?, Event::Anonymous));
        }
        // Refunds planned for today.
        let end_of_day = at(&self.tz, date, 23 * 60 + 59)?;
        let mut later = Vec::new();
        for (when, event) in self.refunds.drain(..) {
            if when <= end_of_day {
                events.push((when, event));
            } else {
                later.push((when, event));
            }
        }
        self.refunds = later;
        events.sort_by_key(|(when, _)| *when);

        for (when, event) in events {
            self.clock.set(when);
            match event {
                Event::Enroll(index) => {
                    self.enroll(index).await?;
                    // Many join at the till, buying something.
                    if self.rng.random_bool(0.5) {
                        self.clock.set(
                            when.checked_add(SignedDuration::from_mins(1))
                                .unwrap_or(when),
                        );
                        self.visit(index).await?;
                    }
                }
                Event::Visit(index) => self.visit(index).await?,
                Event::Anonymous => {
                    let store = self.rng.random_range(0..STORES.len());
                    self.purchase(None, store, "pos").await?;
                }
                Event::Refund {
                    purchase_id,
                    member,
                    lines,
                } => self.refund(&purchase_id, member, lines).await?,
            }
        }
        Ok(())
    }

    /// Minutes after midnight, following the day's rhythm.
    fn minute_of_day(&mut self, weekend: bool) -> u32 {
        let weights: &[u32] = if weekend {
            &WEEKEND_HOURS
        } else {
            &WEEKDAY_HOURS
        };
        let total: u32 = weights.iter().sum();
        let mut pick = self.rng.random_range(0..total.max(1));
        let mut hour = 6;
        for (offset, weight) in weights.iter().enumerate() {
            if pick < *weight {
                hour = 6 + offset as u32;
                break;
            }
            pick -= weight;
        }
        hour * 60 + self.rng.random_range(0..60)
    }

    fn next_document(&mut self, prefix: &str) -> String {
        self.document_seq += 1;
        format!("{prefix}-{:07}", self.document_seq)
    }

    async fn enroll(&mut self, index: usize) -> anyhow::Result<()> {
        let rng = &mut self.rng;
        let first = FIRST_NAMES[rng.random_range(0..FIRST_NAMES.len())];
        let last = LAST_NAMES[rng.random_range(0..LAST_NAMES.len())];
        let channel = match rng.random_range(0..100) {
            0..60 => "pos",
            60..85 => "web",
            85..90 => "phone",
            _ => "referral",
        };
        let phone = (rng.random_bool(0.6) && index < AREA_CODES.len() * 10_000).then(|| {
            format!(
                "+1 {} 555 {:04}",
                AREA_CODES[index % AREA_CODES.len()],
                index / AREA_CODES.len()
            )
        });
        let birthday = rng.random_bool(0.7).then(|| {
            format!(
                "{}-{:02}-{:02}",
                rng.random_range(1950..2006),
                rng.random_range(1..=12),
                rng.random_range(1..=28)
            )
        });
        let method = if channel == "web" { "web" } else { "pos" };
        let mut consents = vec![ConsentRequest {
            channel: "email".into(),
            topic: None,
            granted: rng.random_bool(0.65),
            method: method.into(),
            text_shown: CONSENT_TEXT.into(),
        }];
        if phone.is_some() && rng.random_bool(0.4) {
            consents.push(ConsentRequest {
                channel: "sms".into(),
                topic: None,
                granted: true,
                method: method.into(),
                text_shown: CONSENT_TEXT.into(),
            });
        }
        let card_number = if channel == "pos" && rng.random_bool(0.4) {
            self.cards.pop()
        } else {
            None
        };
        let mut attributes = std::collections::BTreeMap::new();
        attributes.insert(
            "favorite_drink".to_string(),
            serde_json::Value::String(DRINKS[rng.random_range(0..DRINKS.len())].0.to_string()),
        );
        let request = EnrollRequest {
            profile: ProfileFields {
                external_id: Some(format!("NS-{:06}", index + 1)),
                name: Some(format!("{first} {last}")),
                phone,
                email: Some(format!(
                    "{}.{}.{}@example.com",
                    first.to_lowercase(),
                    last.to_lowercase(),
                    index + 1
                )),
                birthday,
                locale: Some("en".into()),
                time_zone: None,
                attributes,
            },
            channel: channel.into(),
            card_number,
            consents,
        };
        let started = Instant::now();
        let member = self
            .engine
            .enroll(&self.tenant, &request, None)
            .await?
            .value;
        self.timings.enroll += started.elapsed();
        self.members[index].id = Some(member.id);
        self.stats.enrolled += 1;
        Ok(())
    }

    async fn visit(&mut self, index: usize) -> anyhow::Result<()> {
        let Some(member_id) = self.members[index].id.clone() else {
            return Ok(());
        };
        let store = if self.rng.random_bool(0.8) {
            self.members[index].home_store
        } else {
            self.rng.random_range(0..STORES.len())
        };
        let channel = if self.rng.random_bool(0.15) {
            "app"
        } else {
            "pos"
        };
        // Redeem at checkout: beans for a drink. App orders hold the beans and capture them
        // when the order is picked up; a few orders are never picked up and the nightly job
        // releases the hold.
        let available = self.members[index].available;
        let reward = REWARDS
            .iter()
            .rev()
            .find(|(points, _)| available >= *points && self.rng.random_bool(0.35));
        if let Some((points, description)) = reward.copied() {
            let hold = channel == "app";
            let request = RedeemRequest {
                points,
                hold,
                hold_minutes: hold.then_some(20),
                description: Some(description.to_string()),
            };
            let started = Instant::now();
            let redeemed = self
                .engine
                .redeem(&self.tenant, &member_id, &request, None)
                .await;
            self.timings.redeem += started.elapsed();
            match redeemed {
                Ok(redemption) => {
                    let redemption = redemption.value;
                    if let Some(balance) = &redemption.balance {
                        self.members[index].available = balance.available;
                    }
                    if hold && self.rng.random_bool(0.95) {
                        self.engine
                            .capture(&self.tenant, &redemption.id, None, None)
                            .await?;
                        self.stats.redemptions += 1;
                    } else if !hold {
                        self.stats.redemptions += 1;
                    }
                }
                Err(EngineError::Rejected(_) | EngineError::ReplayedRejection(_)) => {
                    self.stats.rejections += 1
                }
                Err(error) => return Err(error.into()),
            }
        }
        self.purchase(Some(index), store, channel).await
    }

    fn basket(&mut self, month: i8) -> Vec<PurchaseLineRequest> {
        let rng = &mut self.rng;
        let mut items: Vec<Item> = Vec::new();
        if rng.random_bool(0.93) {
            let seasonal = match month {
                11 | 12 => WINTER_DRINKS,
                6..=8 => SUMMER_DRINKS,
                _ => &[],
            };
            let drink = if !seasonal.is_empty() && rng.random_bool(0.3) {
                seasonal[rng.random_range(0..seasonal.len())]
            } else {
                DRINKS[rng.random_range(0..DRINKS.len())]
            };
            items.push(drink);
        }
        if rng.random_bool(0.35) {
            items.push(BAKERY[rng.random_range(0..BAKERY.len())]);
        }
        if rng.random_bool(0.12) {
            items.push(FOOD[rng.random_range(0..FOOD.len())]);
        }
        let holidays = month == 12;
        if rng.random_bool(if holidays { 0.09 } else { 0.03 }) {
            items.push(RETAIL[rng.random_range(0..RETAIL.len())]);
        }
        if rng.random_bool(if holidays { 0.07 } else { 0.01 }) || items.is_empty() {
            items.push(GIFT_CARDS[rng.random_range(0..GIFT_CARDS.len())]);
        }
        items
            .into_iter()
            .map(|(sku, category, price)| {
                let quantity = if category == "coffee" && rng.random_bool(0.1) {
                    "2"
                } else {
                    "1"
                };
                PurchaseLineRequest {
                    sku: sku.to_string(),
                    category: category.to_string(),
                    quantity: quantity.to_string(),
                    unit_price_minor: price,
                    discount_minor: 0,
                }
            })
            .collect()
    }

    async fn purchase(
        &mut self,
        member: Option<usize>,
        store: usize,
        channel: &str,
    ) -> anyhow::Result<()> {
        let now = self.clock.now();
        let month = now.to_zoned(self.tz.clone()).month();
        let lines = self.basket(month);
        let line_count = lines.len();
        let request = PurchaseRequest {
            document_id: self.next_document(&format!("{}-R", STORES[store])),
            member_id: member.and_then(|i| self.members[i].id.clone()),
            store_id: STORES[store].to_string(),
            channel: channel.to_string(),
            occurred_at: None,
            currency: "USD".into(),
            lines,
        };
        let started = Instant::now();
        let receipt = self
            .engine
            .post_purchase(&self.tenant, &request, None)
            .await?
            .value;
        self.timings.purchase += started.elapsed();
        match member {
            Some(index) => {
                self.stats.purchases += 1;
                self.stats.points_earned += receipt.points;
                if let Some(balance) = &receipt.balance {
                    self.members[index].available = balance.available;
                }
            }
            None => self.stats.anonymous += 1,
        }
        if self.rng.random_bool(REFUND_SHARE) {
            // Most returns come back the same day or the next; a few take a couple of days.
            let after = SignedDuration::from_mins(self.rng.random_range(10..3 * 24 * 60));
            let lines = (line_count > 1 && self.rng.random_bool(0.4)).then(|| {
                vec![RefundLineRequest {
                    line_no: self.rng.random_range(1..=line_count as i64),
                    quantity: "1".into(),
                }]
            });
            let when = now.checked_add(after).unwrap_or(now);
            self.refunds.push((
                when,
                Event::Refund {
                    purchase_id: receipt.purchase_id,
                    member,
                    lines,
                },
            ));
        }
        Ok(())
    }

    async fn refund(
        &mut self,
        purchase_id: &str,
        member: Option<usize>,
        lines: Option<Vec<RefundLineRequest>>,
    ) -> anyhow::Result<()> {
        let request = RefundRequest {
            document_id: self.next_document("RET"),
            lines,
            occurred_at: None,
        };
        let started = Instant::now();
        let refunded = self
            .engine
            .refund(&self.tenant, purchase_id, &request, None)
            .await;
        self.timings.refund += started.elapsed();
        match refunded {
            Ok(receipt) => {
                self.stats.refunds += 1;
                if let (Some(index), Some(balance)) = (member, &receipt.value.balance) {
                    self.members[index].available = balance.available;
                }
            }
            Err(EngineError::Rejected(_) | EngineError::ReplayedRejection(_)) => {
                self.stats.rejections += 1
            }
            Err(error) => return Err(error.into()),
        }
        Ok(())
    }
}

/// How busy a day is, relative to an average day.
fn day_factor(date: Date) -> f64 {
    let weekday = WEEKDAY_FACTOR[date.weekday().to_monday_zero_offset() as usize % 7];
    let month = MONTH_FACTOR[(date.month() as usize).saturating_sub(1) % 12];
    weekday * month
}
