//! Reading `[[rewards]]`: the rewards catalog.
//!
//! Checked like the rest of the file: unknown and misplaced keys (a key of another kind),
//! types, ranges, unknown tier codes, duplicate ids, a window that ends before it starts, a
//! coupon prefix codes cannot use. Every problem at its line and column.

use jiff::Timestamp;
use jiff::ToSpan;
use jiff::civil::{DateTime, Weekday};
use jiff::tz::TimeZone;
use rust_decimal::Decimal;
use toml_edit::Value;

use super::{Entry, Parser, Section, Window};
use crate::coupon::CodeFormat;
use crate::program::Tiers;
use crate::program::diagnostic::line_column;
use crate::rewards::RewardKindCode as Kind;
use crate::rewards::{CouponSettings, DiscountValue, Reward, RewardKind, SoftBenefit, TierPrice};
use crate::rules::limit::{LimitPer, RuleLimit};
use crate::shared::closest;
use crate::shared::{Currency, Locale};

/// At most this many rewards in a catalog.
pub(super) const REWARDS_MAX: usize = 500;
const REWARD_ID_CHARS_MAX: usize = 64;
const POINTS_MAX: i64 = 1_000_000_000;
const STOCK_MAX: i64 = 1_000_000_000;
const LIMIT_COUNT_MAX: i64 = 1_000_000;
const SEGMENTS_MAX: usize = 100;
const VALID_DAYS_MAX: i64 = 3_650;
const DESCRIPTION_CHARS_MAX: usize = 200;

const COMMON_KEYS: &[&str] = &[
    "id",
    "name",
    "description",
    "kind",
    "points",
    "tier_points",
    "stock",
    "limit",
    "from",
    "until",
    "tiers",
    "segments",
    "coupon_prefix",
    "valid_days",
];
const KIND_KEYS: &[&str] = &[
    "amount",
    "percent",
    "cap",
    "sku",
    "points_per_unit",
    "benefit",
    "pool",
];

const KINDS: &[(&str, Kind)] = Kind::CODES;

/// The keys of a reward's table that belong to its kind.
fn kind_keys(kind: Kind) -> &'static [&'static str] {
    match kind {
        Kind::Discount => &["amount", "percent", "cap"],
        Kind::FreeProduct => &["sku"],
        Kind::PointsToCash => &["points_per_unit"],
        Kind::SoftBenefit => &["benefit"],
        Kind::PartnerVoucher => &["pool"],
    }
}

const BENEFITS: &[(&str, SoftBenefit)] = SoftBenefit::CODES;

const PERIODS: &[(&str, LimitPer)] = &[
    ("day", LimitPer::Day),
    ("week", LimitPer::Week),
    ("month", LimitPer::Month),
    ("year", LimitPer::Year),
    ("lifetime", LimitPer::Lifetime),
];

/// What the catalog needs from the rest of the file (`None`: that part did not parse).
pub(super) struct RewardContext<'a> {
    pub(super) currency: Option<&'a Currency>,
    pub(super) default_locale: Option<Locale>,
    pub(super) time_zone: Option<&'a str>,
    pub(super) tiers: Option<&'a Tiers>,
}

impl Parser<'_> {
    pub(super) fn rewards(
        &mut self,
        entry: &Entry<'_>,
        context: &RewardContext<'_>,
    ) -> Option<Vec<Reward>> {
        let tables = self.tables(entry, "[[rewards]]")?;
        if tables.len() > REWARDS_MAX {
            self.report(
                entry.offset,
                &entry.path,
                format!(
                    "there are {} rewards; at most {REWARDS_MAX} are allowed",
                    tables.len()
                ),
                None,
            );
            return None;
        }
        let tz = context.time_zone.and_then(|name| TimeZone::get(name).ok());
        let mut rewards = Vec::new();
        let mut ok = true;
        let mut seen: Vec<(String, usize)> = Vec::new();
        for table in &tables {
            match self.reward(table, context, tz.as_ref(), &mut seen) {
                Some(reward) => rewards.push(reward),
                None => ok = false,
            }
        }
        ok.then_some(rewards)
    }

    fn reward(
        &mut self,
        table: &Section<'_>,
        context: &RewardContext<'_>,
        tz: Option<&TimeZone>,
        seen: &mut Vec<(String, usize)>,
    ) -> Option<Reward> {
        let all_keys: Vec<&str> = COMMON_KEYS.iter().chain(KIND_KEYS).copied().collect();
        self.check_keys(table, &all_keys);

        let id = self
            .required(table, "id")
            .and_then(|entry| self.unique_reward_id(&entry, seen));
        let names = self
            .required(table, "name")
            .and_then(|entry| self.localized(&entry, context.default_locale));
        let descriptions = match table.entry("description") {
            Some(entry) => self.reward_description(&entry, context.default_locale),
            None => Some(Default::default()),
        };
        let kind = self
            .required(table, "kind")
            .and_then(|entry| self.choice(&entry, KINDS));

        let misplaced = kind.is_some_and(|kind| self.misplaced_kind_keys(table, kind));

        let points = self
            .required(table, "points")
            .and_then(|entry| self.integer_in(&entry, 0..=POINTS_MAX));
        let tier_prices = self.tier_points(table, context.tiers);
        let stock = self.reward_stock(table, kind);
        let limit = match table.entry("limit") {
            Some(entry) => self.reward_limit(&entry).map(Some),
            None => Some(None),
        };
        let (from, until) = self.reward_window(table, tz)?;
        let tiers = self.reward_tiers(table, context.tiers);
        let segments = match table.entry("segments") {
            Some(entry) => self.string_list(&entry, SEGMENTS_MAX),
            None => Some(Vec::new()),
        };
        let coupon = self.coupon_settings(table);
        let reward_kind = match kind {
            Some(kind) => self.reward_kind(table, kind, context.currency),
            None => None,
        };
        if misplaced {
            return None;
        }
        Some(Reward {
            id: id?,
            names: names?,
            descriptions: descriptions?,
            kind: reward_kind?,
            points: points?,
            tier_prices: tier_prices?,
            stock: stock?,
            limit: limit?,
            from: from?,
            until: until?,
            tiers: tiers?,
            segments: segments?,
            coupon: coupon?,
        })
    }

    /// The reward's id, reported when an earlier reward has it already.
    fn unique_reward_id(
        &mut self,
        entry: &Entry<'_>,
        seen: &mut Vec<(String, usize)>,
    ) -> Option<String> {
        let id = self.reward_id(entry)?;
        if let Some((_, first)) = seen.iter().find(|(known, _)| *known == id) {
            let (first_line, _) = line_column(self.source, *first);
            self.report(
                entry.offset,
                &entry.path,
                format!("reward id \"{id}\" is used twice (first on line {first_line})"),
                Some("ids must be unique: redemptions and stock count by id".to_owned()),
            );
            return None;
        }
        seen.push((id.clone(), entry.offset));
        Some(id)
    }

    /// Reports each key of another kind than `kind` the table has; true when there was one.
    fn misplaced_kind_keys(&mut self, table: &Section<'_>, kind: Kind) -> bool {
        let mut misplaced = false;
        for key in KIND_KEYS
            .iter()
            .filter(|key| !kind_keys(kind).contains(key))
        {
            if let Some(entry) = table.entry(key) {
                let owner = KINDS
                    .iter()
                    .find(|(_, owner)| kind_keys(*owner).contains(key))
                    .map_or("", |(word, _)| word);
                self.report(
                    table.key_offset(key).unwrap_or(entry.offset),
                    &entry.path,
                    format!(
                        "`{}` does not apply to a reward of kind \"{}\"",
                        entry.path,
                        kind.code()
                    ),
                    Some(format!(
                        "remove it; `{key}` belongs to rewards of kind \"{owner}\""
                    )),
                );
                misplaced = true;
            }
        }
        misplaced
    }

    /// `stock`: a count, or none (unlimited); a partner voucher has none (its pool is its
    /// stock).
    fn reward_stock(&mut self, table: &Section<'_>, kind: Option<Kind>) -> Option<Option<i64>> {
        match table.entry("stock") {
            Some(entry) => {
                if kind == Some(Kind::PartnerVoucher) {
                    self.report(
                        table.key_offset("stock").unwrap_or(entry.offset),
                        &entry.path,
                        format!(
                            "`{}` does not apply to a partner voucher: its stock is the codes \
                     left in its pool",
                            entry.path
                        ),
                        Some("remove it".to_owned()),
                    );
                    None
                } else {
                    self.integer_in(&entry, 0..=STOCK_MAX).map(Some)
                }
            }
            None => Some(None),
        }
    }

    /// `from` and `until`, each optional; `None` (reported) when `until` is not after `from`.
    fn reward_window(&mut self, table: &Section<'_>, tz: Option<&TimeZone>) -> Option<Window> {
        let from = match table.entry("from") {
            Some(entry) => self.reward_instant(&entry, tz, false).map(Some),
            None => Some(None),
        };
        let until = match table.entry("until") {
            Some(entry) => self.reward_instant(&entry, tz, true).map(Some),
            None => Some(None),
        };
        if let (Some(Some(from)), Some(Some(until)), Some(entry)) =
            (from, until, table.entry("until"))
            && until <= from
        {
            self.report(
                entry.offset,
                &entry.path,
                format!("`{}` must be after `from`", entry.path),
                Some("a reward is available from `from` until `until` (exclusive)".to_owned()),
            );
            return None;
        }
        Some((from, until))
    }

    /// `coupon_prefix` and `valid_days`.
    fn coupon_settings(&mut self, table: &Section<'_>) -> Option<CouponSettings> {
        let prefix = match table.entry("coupon_prefix") {
            Some(entry) => {
                self.string(&entry)
                    .and_then(|prefix| match CodeFormat::new(prefix, 8, 4) {
                        Ok(_) => Some(prefix.to_owned()),
                        Err(error) => {
                            self.report(
                                entry.offset,
                                &entry.path,
                                format!("`{}`: {error}", entry.path),
                                Some("for example coupon_prefix = \"BREW\"".to_owned()),
                            );
                            None
                        }
                    })
            }
            None => Some(String::new()),
        };
        let valid_days = match table.entry("valid_days") {
            Some(entry) => self
                .integer_in(&entry, 1..=VALID_DAYS_MAX)
                .and_then(|days| u32::try_from(days).ok())
                .map(Some),
            None => Some(None),
        };
        Some(CouponSettings {
            prefix: prefix?,
            valid_days: valid_days?,
        })
    }

    fn reward_kind(
        &mut self,
        table: &Section<'_>,
        kind: Kind,
        currency: Option<&Currency>,
    ) -> Option<RewardKind> {
        match kind {
            Kind::Discount => self.discount(table, currency),
            Kind::FreeProduct => {
                let entry = self.required(table, "sku")?;
                let sku = self.text(&entry)?;
                Some(RewardKind::FreeProduct { sku })
            }
            Kind::PointsToCash => {
                let entry = self.required(table, "points_per_unit")?;
                let points_per_unit = self.integer_in(&entry, 1..=POINTS_MAX)?;
                Some(RewardKind::PointsToCash { points_per_unit })
            }
            Kind::SoftBenefit => {
                let benefit = match table.entry("benefit") {
                    Some(entry) => self.choice(&entry, BENEFITS)?,
                    None => SoftBenefit::Other,
                };
                Some(RewardKind::Soft { benefit })
            }
            Kind::PartnerVoucher => {
                let entry = self.required(table, "pool")?;
                let pool = self.reward_id(&entry)?;
                Some(RewardKind::PartnerVoucher { pool })
            }
        }
    }

    /// A discount: a fixed `amount`, or a `percent` with an optional `cap`.
    fn discount(&mut self, table: &Section<'_>, currency: Option<&Currency>) -> Option<RewardKind> {
        let amount = table.entry("amount");
        let percent = table.entry("percent");
        match (amount, percent) {
            (Some(amount), None) => {
                if let Some(cap) = table.entry("cap") {
                    self.report(
                        cap.offset,
                        &cap.path,
                        format!("`{}` applies only to a percent discount", cap.path),
                        Some("remove it".to_owned()),
                    );
                    return None;
                }
                let minor = self.money(&amount, currency)?;
                if minor == 0 {
                    self.report(
                        amount.offset,
                        &amount.path,
                        format!("`{}` must be greater than 0", amount.path),
                        None,
                    );
                    return None;
                }
                Some(RewardKind::Discount(DiscountValue::Amount { minor }))
            }
            (None, Some(percent)) => {
                let value = self.decimal_in(&percent, Decimal::ZERO, Decimal::from(100))?;
                if value.is_zero() {
                    self.report(
                        percent.offset,
                        &percent.path,
                        format!("`{}` must be greater than 0", percent.path),
                        None,
                    );
                    return None;
                }
                let cap_minor = match table.entry("cap") {
                    Some(cap) => Some(self.money(&cap, currency)?),
                    None => None,
                };
                Some(RewardKind::Discount(DiscountValue::Percent {
                    percent: value,
                    cap_minor,
                }))
            }
            (Some(_), Some(percent)) => {
                self.report(
                    table.key_offset("percent").unwrap_or(percent.offset),
                    &percent.path,
                    format!(
                        "`{}` has both `amount` and `percent`; a discount is one or the other",
                        table.path
                    ),
                    Some("keep one of them".to_owned()),
                );
                None
            }
            (None, None) => {
                self.report(
                    table.anchor,
                    &table.child_path("amount"),
                    format!(
                        "a discount in {} needs `amount` or `percent`",
                        table.label()
                    ),
                    Some("amount = \"5.00\", or percent = 10 with cap = \"20.00\"".to_owned()),
                );
                None
            }
        }
    }

    fn reward_description(
        &mut self,
        entry: &Entry<'_>,
        default_locale: Option<Locale>,
    ) -> Option<crate::shared::Localized> {
        let localized = self.localized(entry, default_locale)?;
        for locale in Locale::ALL {
            if localized
                .get(locale)
                .is_some_and(|text| text.chars().count() > DESCRIPTION_CHARS_MAX)
            {
                self.report(
                    entry.offset,
                    &entry.path,
                    format!(
                        "`{}` is longer than {DESCRIPTION_CHARS_MAX} characters",
                        entry.path
                    ),
                    None,
                );
                return None;
            }
        }
        Some(localized)
    }

    fn reward_id(&mut self, entry: &Entry<'_>) -> Option<String> {
        let id = self.string(entry)?;
        let valid = id
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if id.is_empty() || id.len() > REWARD_ID_CHARS_MAX || !valid {
            let suggestion: String = id
                .to_lowercase()
                .chars()
                .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
                .collect();
            self.report(
                entry.offset,
                &entry.path,
                format!(
                    "`{}` must be 1 to {REWARD_ID_CHARS_MAX} characters of a-z, 0-9 and _, found \"{id}\"",
                    entry.path
                ),
                (!suggestion.is_empty() && suggestion.len() <= REWARD_ID_CHARS_MAX)
                    .then(|| format!("for example \"{suggestion}\"")),
            );
            return None;
        }
        Some(id.to_owned())
    }

    fn known_tier(&mut self, code: &str, offset: usize, path: &str, tiers: &Tiers) -> bool {
        let known: Vec<&str> = tiers.levels.iter().map(|tier| tier.code.as_str()).collect();
        if known.contains(&code) {
            return true;
        }
        let hint = match closest(code, &known) {
            Some(suggestion) => format!("did you mean \"{suggestion}\"?"),
            None => format!("tier codes: {}", known.join(", ")),
        };
        self.report(
            offset,
            path,
            format!("`{path}`: unknown tier \"{code}\""),
            Some(hint),
        );
        false
    }

    fn reward_tiers(&mut self, table: &Section<'_>, tiers: Option<&Tiers>) -> Option<Vec<String>> {
        let Some(entry) = table.entry("tiers") else {
            return Some(Vec::new());
        };
        let codes = self.string_list(&entry, 100)?;
        let Some(tiers) = tiers else {
            return Some(codes);
        };
        let items = entry.item.as_array();
        let mut ok = true;
        for (index, code) in codes.iter().enumerate() {
            let offset = items
                .and_then(|items| items.get(index))
                .and_then(Value::span)
                .map_or(entry.offset, |span| span.start);
            ok &= self.known_tier(code, offset, &format!("{}[{index}]", entry.path), tiers);
        }
        ok.then_some(codes)
    }

    fn tier_points(
        &mut self,
        table: &Section<'_>,
        tiers: Option<&Tiers>,
    ) -> Option<Vec<TierPrice>> {
        let Some(entry) = table.entry("tier_points") else {
            return Some(Vec::new());
        };
        let Some(inner) = entry.item.as_table_like() else {
            self.wrong_type(&entry, "a table such as { gold = 80, reserve = 60 }");
            return None;
        };
        let section = Section {
            table: inner,
            anchor: entry.offset,
            path: entry.path.clone(),
        };
        let mut prices = Vec::new();
        let mut ok = true;
        for (code, _) in inner.iter() {
            let Some(price) = section.entry(code) else {
                continue;
            };
            if let Some(tiers) = tiers
                && !self.known_tier(code, price.offset, &price.path, tiers)
            {
                ok = false;
                continue;
            }
            match self.integer_in(&price, 0..=POINTS_MAX) {
                Some(points) => prices.push(TierPrice {
                    tier: code.to_owned(),
                    points,
                }),
                None => ok = false,
            }
        }
        ok.then_some(prices)
    }

    fn reward_limit(&mut self, entry: &Entry<'_>) -> Option<RuleLimit> {
        let Some(table) = entry.item.as_table_like() else {
            self.wrong_type(entry, "a table such as { count = 1, per = \"month\" }");
            return None;
        };
        let section = Section {
            table,
            anchor: entry.offset,
            path: entry.path.clone(),
        };
        self.check_keys(&section, &["count", "per"]);
        let count = self
            .required(&section, "count")
            .and_then(|count| self.integer_in(&count, 1..=LIMIT_COUNT_MAX));
        let per = self
            .required(&section, "per")
            .and_then(|per| self.choice(&per, PERIODS));
        Some(RuleLimit {
            count: u32::try_from(count?).ok()?,
            per: per?,
            week_start: Weekday::Monday,
        })
    }

    /// A TOML date or date-time in the club's time zone (or with an offset). A date alone is the
    /// start of that day for `from`, the end of it for `until`.
    fn reward_instant(
        &mut self,
        entry: &Entry<'_>,
        tz: Option<&TimeZone>,
        end_of_date: bool,
    ) -> Option<Timestamp> {
        let Some(datetime) = entry.item.as_datetime() else {
            self.wrong_type(
                entry,
                "a date (2026-03-01) or a date and time (2026-03-01T09:00:00), without quotes",
            );
            return None;
        };
        let invalid = |parser: &mut Self| {
            parser.report(
                entry.offset,
                &entry.path,
                format!("`{}` is not a valid date", entry.path),
                Some("write 2026-03-01 or 2026-03-01T09:00:00".to_owned()),
            );
            None
        };
        let Some(date) = datetime.date else {
            return invalid(self);
        };
        let Ok(civil_date) = jiff::civil::Date::new(
            i16::try_from(date.year).unwrap_or(i16::MAX),
            i8::try_from(date.month).unwrap_or(i8::MAX),
            i8::try_from(date.day).unwrap_or(i8::MAX),
        ) else {
            return invalid(self);
        };
        let Some(time) = datetime.time else {
            let day = if end_of_date {
                civil_date.checked_add(1.day()).ok()?
            } else {
                civil_date
            };
            return crate::calendar::start_of_day(day, tz?);
        };
        let Ok(civil_time) = jiff::civil::Time::new(
            i8::try_from(time.hour).unwrap_or(i8::MAX),
            i8::try_from(time.minute).unwrap_or(i8::MAX),
            i8::try_from(time.second.unwrap_or(0)).unwrap_or(i8::MAX),
            0,
        ) else {
            return invalid(self);
        };
        let civil = DateTime::from_parts(civil_date, civil_time);
        match datetime.offset {
            None => civil
                .to_zoned(tz?.clone())
                .ok()
                .map(|zoned| zoned.timestamp()),
            Some(offset) => {
                let minutes = match offset {
                    toml_edit::Offset::Z => 0,
                    toml_edit::Offset::Custom { minutes } => i32::from(minutes),
                };
                let offset = jiff::tz::Offset::from_seconds(minutes * 60).ok()?;
                offset.to_timestamp(civil).ok()
            }
        }
    }
}
