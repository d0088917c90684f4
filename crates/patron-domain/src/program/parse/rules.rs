//! Reading `[[rules]]`: earning rules with CEL conditions and amounts.
//!
//! Every rule is checked like the rest of the file (unknown and misplaced keys, types, ranges,
//! unknown tier codes, duplicate ids), and every expression is compiled here, once: a CEL
//! problem is reported at its line and column *inside the expression*, mapped back through the
//! TOML string's quotes and escapes to the position in the file.

use jiff::tz::TimeZone;
use rust_decimal::Decimal;
use toml_edit::{Item, Value};

use super::values::describe_value;
use super::{EXCLUDED_ITEMS_MAX, Entry, Parser, ROUNDINGS, Section, Window};
use crate::program::Tiers;
use crate::program::diagnostic::line_column;
use crate::rules::expr::Purpose;
use crate::rules::{Amount, EarningRule, LineFilter, RuleKind, TriggerKind, variables_for};
use crate::shared::closest;
use crate::shared::{Currency, Locale, Rounding};

/// At most this many rules in a program: each one costs every purchase a little.
pub(super) const RULES_MAX: usize = 200;
const RULE_ID_CHARS_MAX: usize = 64;
const PRIORITY_MAX: i64 = 1_000_000;
const FILTER_ITEMS_MAX: usize = 1_000;
const POINTS_MAX: i64 = 1_000_000_000;

const COMMON_KEYS: &[&str] = &[
    "id", "name", "kind", "when", "priority", "stop", "from", "until", "channels", "stores",
    "tiers", "limit", "rounding",
];
const KIND_KEYS: &[&str] = &[
    "points_per_unit",
    "minimum_purchase",
    "skus",
    "categories",
    "multiplier",
    "points",
    "amount",
    "event",
    "referrer_points",
    "newcomer_points",
];

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Spend,
    Multiplier,
    Product,
    Event,
    Birthday,
    Anniversary,
    Join,
    Referral,
}

const KINDS: &[(&str, Kind)] = &[
    ("spend", Kind::Spend),
    ("multiplier", Kind::Multiplier),
    ("product", Kind::Product),
    ("event", Kind::Event),
    ("birthday", Kind::Birthday),
    ("anniversary", Kind::Anniversary),
    ("join", Kind::Join),
    ("referral", Kind::Referral),
];

impl Kind {
    fn word(self) -> &'static str {
        KINDS
            .iter()
            .find(|(_, kind)| *kind == self)
            .map_or("", |(word, _)| word)
    }

    /// The kind-specific keys this kind takes.
    fn keys(self) -> &'static [&'static str] {
        match self {
            Kind::Spend => &["points_per_unit", "minimum_purchase", "skus", "categories"],
            Kind::Multiplier => &["multiplier", "skus", "categories"],
            Kind::Product => &["points", "amount", "skus", "categories"],
            Kind::Event => &["event", "points", "amount"],
            Kind::Birthday | Kind::Anniversary | Kind::Join => &["points", "amount"],
            Kind::Referral => &["referrer_points", "newcomer_points", "minimum_purchase"],
        }
    }

    fn is_purchase(self) -> bool {
        matches!(
            self,
            Kind::Spend | Kind::Multiplier | Kind::Product | Kind::Referral
        )
    }

    /// The kinds that take this key, for the hint on a misplaced key.
    fn owners_of(key: &str) -> impl Iterator<Item = Kind> {
        KINDS
            .iter()
            .map(|(_, kind)| *kind)
            .filter(move |kind| kind.keys().contains(&key))
    }
}

/// What the rules need from the rest of the file; each is `None` when that part did not parse
/// (its problem is reported already, so checks that need it are skipped silently).
pub(super) struct RuleContext<'a> {
    pub(super) currency: Option<&'a Currency>,
    pub(super) default_locale: Option<Locale>,
    pub(super) time_zone: Option<&'a str>,
    pub(super) tiers: Option<&'a Tiers>,
    pub(super) rounding: Option<Rounding>,
}

impl Parser<'_> {
    pub(super) fn rules(
        &mut self,
        entry: &Entry<'_>,
        context: &RuleContext<'_>,
    ) -> Option<Vec<EarningRule>> {
        let tables = self.tables(entry, "[[rules]]")?;
        if tables.len() > RULES_MAX {
            self.report(
                entry.offset,
                &entry.path,
                format!(
                    "there are {} rules; at most {RULES_MAX} are allowed",
                    tables.len()
                ),
                Some(
                    "end promotions that are over, or merge rules with the same effect".to_owned(),
                ),
            );
            return None;
        }
        let tz = context.time_zone.and_then(|name| TimeZone::get(name).ok());
        let mut rules = Vec::new();
        let mut ok = true;
        let mut seen_ids: Vec<(String, usize)> = Vec::new();
        for table in &tables {
            match self.rule(table, context, tz.as_ref(), &mut seen_ids) {
                Some(rule) => rules.push(rule),
                None => ok = false,
            }
        }
        if !ok {
            return None;
        }
        // Evaluation order: priority, highest first; ties by id, so the order never depends
        // on where a rule sits in the file.
        rules.sort_by(|a, b| b.priority.cmp(&a.priority).then_with(|| a.id.cmp(&b.id)));
        Some(rules)
    }

    /// `[[name]]` tables, or an inline list of inline tables (rules, rewards).
    pub(super) fn tables<'d>(
        &mut self,
        entry: &Entry<'d>,
        example: &str,
    ) -> Option<Vec<Section<'d>>> {
        let mut tables = Vec::new();
        if let Some(array) = entry.item.as_array_of_tables() {
            for (index, table) in array.iter().enumerate() {
                tables.push(Section {
                    table,
                    anchor: table.span().map_or(entry.offset, |span| span.start),
                    path: format!("{}[{index}]", entry.path),
                });
            }
        } else if let Some(array) = entry.item.as_array() {
            for (index, value) in array.iter().enumerate() {
                let path = format!("{}[{index}]", entry.path);
                let offset = value.span().map_or(entry.offset, |span| span.start);
                let Some(table) = value.as_inline_table() else {
                    self.report(
                        offset,
                        &path,
                        format!("`{path}` must be a table, found {}", describe_value(value)),
                        None,
                    );
                    return None;
                };
                tables.push(Section {
                    table,
                    anchor: offset,
                    path,
                });
            }
        } else {
            self.wrong_type(entry, &format!("a list of tables ({example})"));
            return None;
        }
        Some(tables)
    }

    fn rule(
        &mut self,
        table: &Section<'_>,
        context: &RuleContext<'_>,
        tz: Option<&TimeZone>,
        seen_ids: &mut Vec<(String, usize)>,
    ) -> Option<EarningRule> {
        let all_keys: Vec<&str> = COMMON_KEYS.iter().chain(KIND_KEYS).copied().collect();
        self.check_keys(table, &all_keys);

        let id = self
            .required(table, "id")
            .and_then(|entry| self.unique_rule_id(&entry, seen_ids));
        let names = self
            .required(table, "name")
            .and_then(|entry| self.localized(&entry, context.default_locale));
        let kind_entry = self.required(table, "kind");
        let kind = kind_entry
            .as_ref()
            .and_then(|entry| self.choice(entry, KINDS));

        // Keys that belong to another kind are almost always a mistake (a copied rule).
        let misplaced = kind.is_some_and(|kind| self.misplaced_rule_keys(table, kind));

        let rounding = match table.entry("rounding") {
            Some(entry) => self.choice(&entry, ROUNDINGS),
            None => Some(context.rounding.unwrap_or(Rounding::Down)),
        };
        let priority = match table.entry("priority") {
            Some(entry) => self.integer_in(&entry, -PRIORITY_MAX..=PRIORITY_MAX),
            None => Some(0),
        };
        let stop = match table.entry("stop") {
            Some(entry) => self.boolean(&entry),
            None => Some(false),
        };
        let (from, until) = self.rule_window(table, tz)?;
        let channels = self.optional_list(table, "channels", FILTER_ITEMS_MAX);
        let stores = self.optional_list(table, "stores", FILTER_ITEMS_MAX);
        let tiers = self.rule_tiers(table, context.tiers);
        let limit = match table.entry("limit") {
            Some(entry) => self.limit(&entry).map(Some),
            None => Some(None),
        };
        let when = match (table.entry("when"), kind) {
            (Some(entry), Some(kind)) => {
                let variables = kind_variables(kind);
                self.expression(&entry, Purpose::Condition, variables)
                    .map(Some)
            }
            (Some(_), None) => None,
            (None, _) => Some(None),
        };
        let rule_kind = match kind {
            Some(kind) => self.rule_kind(table, kind, context.currency),
            None => None,
        };
        if misplaced {
            return None;
        }
        Some(EarningRule {
            id: id?,
            names: names?,
            kind: rule_kind?,
            when: when?,
            priority: priority?,
            stop: stop?,
            from: from?,
            until: until?,
            channels: channels?,
            stores: stores?,
            tiers: tiers?,
            limit: limit?,
            rounding: rounding?,
        })
    }

    /// The rule's id, reported when an earlier rule has it already.
    fn unique_rule_id(
        &mut self,
        entry: &Entry<'_>,
        seen_ids: &mut Vec<(String, usize)>,
    ) -> Option<String> {
        let id = self.code(entry, RULE_ID_CHARS_MAX)?;
        if let Some((_, first)) = seen_ids.iter().find(|(seen, _)| *seen == id) {
            let (first_line, _) = line_column(self.source, *first);
            self.report(
                entry.offset,
                &entry.path,
                format!("rule id \"{id}\" is used twice (first on line {first_line})"),
                Some("ids must be unique: limits and the ledger count by id".to_owned()),
            );
            return None;
        }
        seen_ids.push((id.clone(), entry.offset));
        Some(id)
    }

    /// Reports each key of another kind than `kind` the table has, and `channels` or `stores`
    /// on a rule that is not about purchases; true when there was one.
    fn misplaced_rule_keys(&mut self, table: &Section<'_>, kind: Kind) -> bool {
        let mut misplaced = false;
        for key in KIND_KEYS.iter().filter(|key| !kind.keys().contains(key)) {
            if let Some(entry) = table.entry(key) {
                let owners: Vec<String> = Kind::owners_of(key)
                    .map(|owner| format!("\"{}\"", owner.word()))
                    .collect();
                let hint = if owners.is_empty() {
                    "remove it".to_owned()
                } else {
                    format!(
                        "remove it; `{key}` belongs to rules of kind {}",
                        owners.join(" or ")
                    )
                };
                self.report(
                    table.key_offset(key).unwrap_or(entry.offset),
                    &entry.path,
                    format!(
                        "`{}` does not apply to a rule of kind \"{}\"",
                        entry.path,
                        kind.word()
                    ),
                    Some(hint),
                );
                misplaced = true;
            }
        }
        if !kind.is_purchase() {
            for key in ["channels", "stores"] {
                if let Some(entry) = table.entry(key) {
                    self.report(
                        table.key_offset(key).unwrap_or(entry.offset),
                        &entry.path,
                        format!(
                            "`{}` does not apply to a rule of kind \"{}\": only purchases \
                             have a channel and a store",
                            entry.path,
                            kind.word()
                        ),
                        Some("remove it".to_owned()),
                    );
                    misplaced = true;
                }
            }
        }
        misplaced
    }

    /// `from` and `until`, each optional; `None` (reported) when `until` is not after `from`.
    fn rule_window(&mut self, table: &Section<'_>, tz: Option<&TimeZone>) -> Option<Window> {
        let from = match table.entry("from") {
            Some(entry) => self.instant(&entry, tz, false).map(Some),
            None => Some(None),
        };
        let until = match table.entry("until") {
            Some(entry) => self.instant(&entry, tz, true).map(Some),
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
                Some("a rule runs from `from` (inclusive) until `until` (exclusive)".to_owned()),
            );
            return None;
        }
        Some((from, until))
    }

    fn rule_kind(
        &mut self,
        table: &Section<'_>,
        kind: Kind,
        currency: Option<&Currency>,
    ) -> Option<RuleKind> {
        match kind {
            Kind::Spend => {
                let rate = self
                    .required(table, "points_per_unit")
                    .and_then(|entry| self.positive_decimal(&entry, Decimal::new(1_000_000, 0)));
                let minimum = self.minimum_purchase(table, currency);
                let lines = self.line_filter(table, false);
                Some(RuleKind::Spend {
                    points_per_unit: rate?,
                    minimum_purchase_minor: minimum?,
                    lines: lines?,
                })
            }
            Kind::Multiplier => {
                let multiplier = self
                    .required(table, "multiplier")
                    .and_then(|entry| self.rule_multiplier(&entry));
                let lines = self.line_filter(table, false);
                Some(RuleKind::Multiplier {
                    multiplier: multiplier?,
                    lines: lines?,
                })
            }
            Kind::Product => {
                let points = self.amount(table, kind);
                let lines = self.line_filter(table, true);
                Some(RuleKind::Product {
                    points: points?,
                    lines: lines?,
                })
            }
            Kind::Event => {
                let event_type = self
                    .required(table, "event")
                    .and_then(|entry| self.code(&entry, RULE_ID_CHARS_MAX));
                let points = self.amount(table, kind);
                Some(RuleKind::Event {
                    event_type: event_type?,
                    points: points?,
                })
            }
            Kind::Birthday => Some(RuleKind::Birthday {
                points: self.amount(table, kind)?,
            }),
            Kind::Anniversary => Some(RuleKind::Anniversary {
                points: self.amount(table, kind)?,
            }),
            Kind::Join => Some(RuleKind::Join {
                points: self.amount(table, kind)?,
            }),
            Kind::Referral => self.referral(table, currency),
        }
    }

    /// `minimum_purchase`: money, 0 when absent.
    fn minimum_purchase(
        &mut self,
        table: &Section<'_>,
        currency: Option<&Currency>,
    ) -> Option<i64> {
        match table.entry("minimum_purchase") {
            Some(entry) => self.money(&entry, currency),
            None => Some(0),
        }
    }

    /// A multiplier rule's `multiplier`: above 1, at most 100.
    fn rule_multiplier(&mut self, entry: &Entry<'_>) -> Option<Decimal> {
        let value = self.decimal_in(entry, Decimal::ZERO, Decimal::new(100, 0))?;
        if value <= Decimal::ONE {
            self.report(
                entry.offset,
                &entry.path,
                format!("`{}` must be greater than 1, found {value}", entry.path),
                Some(
                    "2 doubles the points of the matching lines; to stop products \
                     earning, list them in [earning] excluded_skus"
                        .to_owned(),
                ),
            );
            return None;
        }
        Some(value)
    }

    /// A referral rule: points for the referrer, the newcomer or both, and a minimum purchase.
    fn referral(&mut self, table: &Section<'_>, currency: Option<&Currency>) -> Option<RuleKind> {
        let mut read = |key: &str| match table.entry(key) {
            Some(entry) => self.integer_in(&entry, 0..=POINTS_MAX),
            None => Some(0),
        };
        let referrer = read("referrer_points");
        let newcomer = read("newcomer_points");
        let minimum = self.minimum_purchase(table, currency);
        let (referrer, newcomer) = (referrer?, newcomer?);
        if referrer == 0 && newcomer == 0 {
            self.report(
                table.anchor,
                &table.path,
                format!("`{}` gives no points to anyone", table.path),
                Some("set referrer_points, newcomer_points or both".to_owned()),
            );
            return None;
        }
        Some(RuleKind::Referral {
            referrer_points: referrer,
            newcomer_points: newcomer,
            minimum_purchase_minor: minimum?,
        })
    }

    /// `points` (a fixed number) or `amount` (an expression): exactly one of them.
    fn amount(&mut self, table: &Section<'_>, kind: Kind) -> Option<Amount> {
        match (table.entry("points"), table.entry("amount")) {
            (Some(points), None) => {
                let value = self.decimal_in(&points, Decimal::ZERO, Decimal::from(POINTS_MAX))?;
                if value.is_zero() {
                    self.report(
                        points.offset,
                        &points.path,
                        format!("`{}` must be greater than 0", points.path),
                        None,
                    );
                    return None;
                }
                Some(Amount::Fixed(value))
            }
            (None, Some(amount)) => {
                if let Item::Value(Value::Integer(_) | Value::Float(_)) = amount.item {
                    self.report(
                        amount.offset,
                        &amount.path,
                        format!("`{}` is an expression, in quotes", amount.path),
                        Some(
                            "for a fixed number of points write `points = ...` instead".to_owned(),
                        ),
                    );
                    return None;
                }
                let expression = self.expression(&amount, Purpose::Amount, kind_variables(kind))?;
                Some(Amount::Expr(expression))
            }
            (Some(_), Some(amount)) => {
                self.report(
                    amount.offset,
                    &amount.path,
                    format!("`{}` and `points` cannot both be set", amount.path),
                    Some("`points` is a fixed number, `amount` an expression: keep one".to_owned()),
                );
                None
            }
            (None, None) => {
                let per_unit = if kind == Kind::Product {
                    " per unit"
                } else {
                    ""
                };
                self.report(
                    table.anchor,
                    &format!("{}.points", table.path),
                    format!("missing `points` or `amount` in `{}`", table.path),
                    Some(format!(
                        "add points = 10 (a fixed number{per_unit}) or amount = \"...\" (an \
                         expression)"
                    )),
                );
                None
            }
        }
    }

    fn line_filter(&mut self, table: &Section<'_>, required: bool) -> Option<LineFilter> {
        let skus = self.optional_list(table, "skus", EXCLUDED_ITEMS_MAX);
        let categories = self.optional_list(table, "categories", EXCLUDED_ITEMS_MAX);
        let (skus, categories) = (skus?, categories?);
        if required && skus.is_empty() && categories.is_empty() {
            self.report(
                table.anchor,
                &format!("{}.skus", table.path),
                format!("`{}` names no products", table.path),
                Some("add skus = [\"...\"], categories = [\"...\"] or both".to_owned()),
            );
            return None;
        }
        Some(LineFilter { skus, categories })
    }

    fn optional_list(
        &mut self,
        table: &Section<'_>,
        key: &str,
        items_max: usize,
    ) -> Option<Vec<String>> {
        match table.entry(key) {
            Some(entry) => self.string_list(&entry, items_max),
            None => Some(Vec::new()),
        }
    }

    fn rule_tiers(&mut self, table: &Section<'_>, tiers: Option<&Tiers>) -> Option<Vec<String>> {
        let Some(entry) = table.entry("tiers") else {
            return Some(Vec::new());
        };
        let codes = self.string_list(&entry, FILTER_ITEMS_MAX)?;
        let Some(tiers) = tiers else {
            // The ladder did not parse; its problems are reported already.
            return Some(codes);
        };
        let known: Vec<&str> = tiers.levels.iter().map(|tier| tier.code.as_str()).collect();
        let items = entry.item.as_array();
        let mut ok = true;
        for (index, code) in codes.iter().enumerate() {
            if known.contains(&code.as_str()) {
                continue;
            }
            let offset = items
                .and_then(|items| items.get(index))
                .and_then(|item| item.span())
                .map_or(entry.offset, |span| span.start);
            let hint = match closest(code, &known) {
                Some(suggestion) => format!("did you mean \"{suggestion}\"?"),
                None => format!(
                    "tier codes: {}",
                    known
                        .iter()
                        .map(|code| format!("\"{code}\""))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            };
            self.report(
                offset,
                &format!("{}[{index}]", entry.path),
                format!("`{}`: unknown tier \"{code}\"", entry.path),
                Some(hint),
            );
            ok = false;
        }
        ok.then_some(codes)
    }

    /// A rule id or event type: like a tier code, up to `chars_max` characters.
    fn code(&mut self, entry: &Entry<'_>, chars_max: usize) -> Option<String> {
        let code = self.string(entry)?;
        let valid = code
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if code.is_empty() || code.len() > chars_max || !valid {
            let suggestion: String = code
                .to_lowercase()
                .chars()
                .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
                .collect();
            let hint = (!suggestion.is_empty()
                && suggestion.len() <= chars_max
                && suggestion.chars().any(|c| c != '_'))
            .then(|| format!("for example \"{suggestion}\""));
            self.report(
                entry.offset,
                &entry.path,
                format!(
                    "`{}` must be 1 to {chars_max} characters of a-z, 0-9 and _, found \"{code}\"",
                    entry.path
                ),
                hint,
            );
            return None;
        }
        Some(code.to_owned())
    }

    fn boolean(&mut self, entry: &Entry<'_>) -> Option<bool> {
        if let Some(value) = entry.item.as_bool() {
            return Some(value);
        }
        let hint = entry
            .item
            .as_str()
            .filter(|text| matches!(*text, "true" | "false"))
            .map(|text| format!("remove the quotes: {text}"));
        self.wrong_type_hinted(entry, "true or false", hint);
        None
    }

    fn positive_decimal(&mut self, entry: &Entry<'_>, max: Decimal) -> Option<Decimal> {
        let value = self.decimal_in(entry, Decimal::ZERO, max)?;
        if value.is_zero() {
            self.report(
                entry.offset,
                &entry.path,
                format!("`{}` must be greater than 0", entry.path),
                None,
            );
            return None;
        }
        Some(value)
    }
}

fn kind_variables(kind: Kind) -> &'static [crate::rules::expr::Variable] {
    let trigger = match kind {
        Kind::Spend | Kind::Multiplier | Kind::Product | Kind::Referral => TriggerKind::Purchase,
        Kind::Event => TriggerKind::Event,
        Kind::Birthday => TriggerKind::Birthday,
        Kind::Anniversary => TriggerKind::Anniversary,
        Kind::Join => TriggerKind::Enrollment,
    };
    variables_for(trigger, matches!(kind, Kind::Multiplier | Kind::Product))
}
