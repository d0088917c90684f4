//! Member segments: the RFV grid's named segments and the club's rule segments.
//!
//! - **RFV segments** (`docs/ANALYTICS.md`, "RFV / RFM"): every member with a counted purchase
//!   gets R, F and M scores 1-5 as of a date, and the (R, F) cell of a 5 x 5 grid names their
//!   segment. [`RfvSegments`] holds the grid as segment *codes* (`champions`, `at_risk`...)
//!   and the club's localized names for them; the program may rename segments (`[rfv.names]`)
//!   and replace the whole grid (`[rfv] grid`).
//! - **Rule segments** (`[[segments]]`): a CEL condition over `member` (its attributes and
//!   [`STATISTICS`]) and `now`, evaluated for every member in a batch.
//!
//! Batch evaluation has two paths that must agree: [`sql_subset`] recognises conditions made
//! only of comparisons of SQL-computable statistics ([`Statistic`]) with constants, combined
//! with `&&`, `||` and parentheses, which the store turns into a parameterised `WHERE`
//! clause; everything else is evaluated here ([`evaluate`]), member by member. The SQL form
//! keeps CEL's meaning exactly: `&&`/`||` absorb errors the way SQL's three-valued logic
//! absorbs `NULL` (`error || true` is true, `error && false` is false), an ordering
//! comparison with a missing value (`null > 60`) is an error in CEL and `NULL` in SQL, and
//! equality with a missing value is false (`==`) or true (`!=`) in both (the store writes
//! `x IS NOT NULL AND x = ?` and `x IS NULL OR x <> ?`). [`RuleSegment::prefilter`] is the
//! SQL-able part of a top-level conjunction, used to narrow the members a complex condition is
//! evaluated for.
//!
//! Pure: no I/O, times passed in.

use std::collections::BTreeMap;

use jiff::Timestamp;
use jiff::tz::TimeZone;

use crate::program::{Locale, Localized};
use crate::rules::expr::{CompiledExpr, ExprError, ExprValue, Scope, Variable};
use crate::rules::{FactValue, MemberFacts};

/// The number of score buckets (and rows and columns of the grid).
pub const SCORES: usize = 5;

/// `member.statistics.top_categories_180d` looks at the club's this many top categories...
pub const TOP_CATEGORIES: usize = 5;
/// ...over this many days before the evaluation (also the window of `purchases_180d`).
pub const WINDOW_DAYS: i64 = 180;

/// The default segments: code and English name, in the order the grid first shows them.
pub const DEFAULT_SEGMENTS: [(&str, &str); 10] = [
    ("new_customers", "New Customers"),
    ("potential_loyalists", "Potential Loyalists"),
    ("champions", "Champions"),
    ("promising", "Promising"),
    ("loyal_customers", "Loyal Customers"),
    ("about_to_sleep", "About To Sleep"),
    ("need_attention", "Need Attention"),
    ("hibernating", "Hibernating"),
    ("at_risk", "At Risk"),
    ("cant_lose_them", "Can't Lose Them"),
];

/// The practitioners' grid (`docs/ANALYTICS.md`): rows R = 5 down to 1, columns F = 1 to 5.
pub const DEFAULT_GRID: [[&str; SCORES]; SCORES] = [
    [
        "new_customers",
        "potential_loyalists",
        "potential_loyalists",
        "champions",
        "champions",
    ],
    [
        "promising",
        "potential_loyalists",
        "potential_loyalists",
        "loyal_customers",
        "loyal_customers",
    ],
    [
        "about_to_sleep",
        "about_to_sleep",
        "need_attention",
        "loyal_customers",
        "loyal_customers",
    ],
    [
        "hibernating",
        "hibernating",
        "at_risk",
        "at_risk",
        "cant_lose_them",
    ],
    [
        "hibernating",
        "hibernating",
        "at_risk",
        "at_risk",
        "cant_lose_them",
    ],
];

/// The RFV grid of segment codes and the names the club gives them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RfvSegments {
    /// Rows R = 5, 4, 3, 2, 1 (as the table is printed), each with the codes for F = 1 to 5.
    pub grid: [[String; SCORES]; SCORES],
    /// Names by code: the club's (`[rfv.names]`) over the English defaults.
    pub names: BTreeMap<String, Localized>,
}

impl Default for RfvSegments {
    fn default() -> Self {
        let grid = DEFAULT_GRID.map(|row| row.map(str::to_owned));
        let names = DEFAULT_SEGMENTS
            .iter()
            .map(|(code, name)| {
                (
                    (*code).to_owned(),
                    Localized {
                        en: Some((*name).to_owned()),
                        ..Localized::default()
                    },
                )
            })
            .collect();
        RfvSegments { grid, names }
    }
}

impl RfvSegments {
    /// The segment code of the cell (r, f); scores outside 1-5 are clamped.
    pub fn code(&self, r: u8, f: u8) -> &str {
        let row = SCORES - usize::from(r.clamp(1, SCORES as u8));
        let column = usize::from(f.clamp(1, SCORES as u8)) - 1;
        &self.grid[row][column]
    }

    /// Every code of the grid once, in first-appearance order (R = 5 row first).
    pub fn codes(&self) -> Vec<&str> {
        let mut codes: Vec<&str> = Vec::new();
        for row in &self.grid {
            for code in row {
                if !codes.contains(&code.as_str()) {
                    codes.push(code);
                }
            }
        }
        codes
    }

    /// Whether `code` is a segment of the grid.
    pub fn contains(&self, code: &str) -> bool {
        self.grid.iter().flatten().any(|c| c == code)
    }

    /// The name to show for a code: in `locale`, else `fallback`, else any, else the code.
    pub fn name(&self, code: &str, locale: Locale, fallback: Locale) -> String {
        match self.names.get(code).map(|n| n.resolve(locale, fallback)) {
            Some(name) if !name.is_empty() => name.to_owned(),
            _ => code.to_owned(),
        }
    }
}

/// A named segment defined by a condition (`[[segments]]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleSegment {
    /// `[a-z0-9_]+`, unique among the program's segments (RFV codes included).
    pub id: String,
    pub names: Localized,
    /// A condition over `member` and `now`.
    pub condition: CompiledExpr,
    /// The whole condition as SQL, when it is in the SQL subset.
    pub sql: Option<Condition>,
    /// When it is not: the SQL-able conjuncts of a top-level `&&` chain (a member the
    /// condition holds for satisfies them), to narrow the members evaluated in process.
    pub prefilter: Option<Condition>,
}

impl RuleSegment {
    /// A segment with this condition (the plans are derived from it).
    pub fn new(id: String, names: Localized, condition: CompiledExpr) -> RuleSegment {
        let sql = sql_subset(condition.source());
        let prefilter = if sql.is_some() {
            None
        } else {
            sql_prefilter(condition.source())
        };
        RuleSegment {
            id,
            names,
            condition,
            sql,
            prefilter,
        }
    }

    /// Whether the condition reads `member.statistics.<name>` (the batch computes the costly
    /// statistics only when some segment reads them).
    pub fn reads_statistic(&self, name: &str) -> bool {
        statistics_read(self.condition.source()).contains(&name)
    }
}

// ----- Statistics ------------------------------------------------------------------------------

/// What `member.statistics` holds in a segment condition, with its CEL type.
pub const STATISTICS: [(&str, &str); 13] = [
    ("purchases", "int"),
    ("purchase_days", "int"),
    ("spend", "double"),
    ("average_spend", "double"),
    ("first_purchase_at", "timestamp or null"),
    ("last_purchase_at", "timestamp or null"),
    ("days_since_last_purchase", "int or null"),
    ("median_gap_days", "double or null"),
    ("purchases_180d", "int"),
    ("top_categories_180d", "int"),
    ("rfv_r", "int or null"),
    ("rfv_f", "int or null"),
    ("rfv_m", "int or null"),
];

/// One member's statistics as a segment evaluation sees them.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SegmentStatistics {
    /// Counted purchases (not fully refunded).
    pub purchases: i64,
    pub purchase_days: i64,
    pub spend_minor: i64,
    pub first_purchase_at: Option<Timestamp>,
    pub last_purchase_at: Option<Timestamp>,
    /// Day number (days since 1970-01-01, club time zone) of the last counted purchase.
    pub last_purchase_day: Option<i64>,
    /// The median of the gaps (days) between consecutive purchase days; [`median_gap_days`].
    pub median_gap_days: Option<f64>,
    /// Counted purchases in the [`WINDOW_DAYS`] before the evaluation day.
    pub purchases_180d: i64,
    /// How many of the club's top [`TOP_CATEGORIES`] categories of the window the member
    /// bought in it.
    pub top_categories_180d: i64,
    /// The member's (R, F, M) scores in the RFV run the evaluation uses.
    pub rfv: Option<(u8, u8, u8)>,
}

impl SegmentStatistics {
    /// `member.statistics` as of day `today` (club time zone), amounts in major units.
    pub fn facts(&self, today: i64, minor_unit: u32) -> BTreeMap<String, FactValue> {
        let scale = 10f64.powi(i32::try_from(minor_unit).unwrap_or(0));
        let spend = self.spend_minor as f64 / scale;
        let average = if self.purchases > 0 {
            self.spend_minor as f64 / self.purchases as f64 / scale
        } else {
            0.0
        };
        let optional_ts = |t: Option<Timestamp>| t.map_or(FactValue::Null, FactValue::Timestamp);
        let optional_int = |v: Option<i64>| v.map_or(FactValue::Null, FactValue::Int);
        let score =
            |pick: fn((u8, u8, u8)) -> u8| optional_int(self.rfv.map(|s| i64::from(pick(s))));
        BTreeMap::from([
            ("purchases".into(), FactValue::Int(self.purchases)),
            ("purchase_days".into(), FactValue::Int(self.purchase_days)),
            ("spend".into(), FactValue::Double(spend)),
            ("average_spend".into(), FactValue::Double(average)),
            (
                "first_purchase_at".into(),
                optional_ts(self.first_purchase_at),
            ),
            (
                "last_purchase_at".into(),
                optional_ts(self.last_purchase_at),
            ),
            (
                "days_since_last_purchase".into(),
                optional_int(self.last_purchase_day.map(|day| today - day)),
            ),
            (
                "median_gap_days".into(),
                self.median_gap_days
                    .map_or(FactValue::Null, FactValue::Double),
            ),
            ("purchases_180d".into(), FactValue::Int(self.purchases_180d)),
            (
                "top_categories_180d".into(),
                FactValue::Int(self.top_categories_180d),
            ),
            ("rfv_r".into(), score(|s| s.0)),
            ("rfv_f".into(), score(|s| s.1)),
            ("rfv_m".into(), score(|s| s.2)),
        ])
    }
}

/// The median gap in days between consecutive purchase days (`days` sorted ascending and
/// distinct); `None` with fewer than two days. An even number of gaps averages the middle two.
pub fn median_gap_days(days: &[i64]) -> Option<f64> {
    let mut gaps: Vec<i64> = days.windows(2).map(|w| w[1] - w[0]).collect();
    if gaps.is_empty() {
        return None;
    }
    gaps.sort_unstable();
    let middle = gaps.len() / 2;
    Some(if gaps.len() % 2 == 1 {
        gaps[middle] as f64
    } else {
        (gaps[middle - 1] + gaps[middle]) as f64 / 2.0
    })
}

/// Whether a member is in a rule segment: the condition evaluated over the member (with
/// `statistics` as [`SegmentStatistics::facts`] gives them) and `now`. An error (a missing
/// attribute, a comparison with a missing value) means "not in the segment"; the caller
/// counts it.
pub fn evaluate(
    segment: &RuleSegment,
    member: &MemberFacts,
    now: Timestamp,
    tz: &TimeZone,
) -> Result<bool, ExprError> {
    let scope = Scope::new(vec![
        (Variable::Member, member_value(member, now, tz)),
        (Variable::Now, ExprValue::timestamp(now, tz)),
    ])?;
    segment.condition.condition(&scope)
}

fn member_value(member: &MemberFacts, now: Timestamp, tz: &TimeZone) -> ExprValue {
    let enrolled_on = member.enrolled_at.to_zoned(tz.clone()).date();
    let today = now.to_zoned(tz.clone()).date();
    let days_since_enrollment = today
        .since(enrolled_on)
        .map_or(0, |span| i64::from(span.get_days()));
    let birth_date = member
        .birth_date
        .and_then(|date| date.to_zoned(tz.clone()).ok())
        .map_or_else(ExprValue::null, |z| ExprValue::timestamp(z.timestamp(), tz));
    ExprValue::map([
        ("id", ExprValue::text(&member.id)),
        ("tier", ExprValue::text(&member.tier)),
        (
            "segments",
            ExprValue::list(member.segments.iter().map(|s| ExprValue::text(s)).collect()),
        ),
        ("attributes", facts_map(&member.attributes, tz)),
        ("statistics", facts_map(&member.statistics, tz)),
        ("birth_date", birth_date),
        ("enrolled_at", ExprValue::timestamp(member.enrolled_at, tz)),
        (
            "days_since_enrollment",
            ExprValue::int(days_since_enrollment),
        ),
    ])
}

fn facts_map(facts: &BTreeMap<String, FactValue>, tz: &TimeZone) -> ExprValue {
    ExprValue::map(
        facts
            .iter()
            .map(|(key, value)| (key.as_str(), fact_value(value, tz))),
    )
}

fn fact_value(value: &FactValue, tz: &TimeZone) -> ExprValue {
    match value {
        FactValue::Null => ExprValue::null(),
        FactValue::Bool(value) => ExprValue::bool(*value),
        FactValue::Int(value) => ExprValue::int(*value),
        FactValue::Double(value) => ExprValue::double(*value),
        FactValue::Text(value) => ExprValue::text(value),
        FactValue::Timestamp(value) => ExprValue::timestamp(*value, tz),
        FactValue::List(values) => {
            ExprValue::list(values.iter().map(|value| fact_value(value, tz)).collect())
        }
        FactValue::Map(map) => facts_map(map, tz),
    }
}

// ----- The SQL subset --------------------------------------------------------------------------

/// A statistic the store computes in SQL.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Statistic {
    /// `purchases` (0 without statistics).
    Purchases,
    /// `purchase_days` (0 without statistics).
    PurchaseDays,
    /// `spend`: spend in minor units / 10^minor_unit, a double (0.0 without statistics).
    Spend,
    /// `days_since_last_purchase`: evaluation day − last purchase day (NULL without).
    DaysSinceLastPurchase,
    /// `rfv_r`, `rfv_f`, `rfv_m`: the scores in the run used (NULL when not scored).
    RfvR,
    RfvF,
    RfvM,
}

impl Statistic {
    const ALL: [Statistic; 7] = [
        Statistic::Purchases,
        Statistic::PurchaseDays,
        Statistic::Spend,
        Statistic::DaysSinceLastPurchase,
        Statistic::RfvR,
        Statistic::RfvF,
        Statistic::RfvM,
    ];

    /// The name conditions use.
    pub fn name(self) -> &'static str {
        match self {
            Statistic::Purchases => "purchases",
            Statistic::PurchaseDays => "purchase_days",
            Statistic::Spend => "spend",
            Statistic::DaysSinceLastPurchase => "days_since_last_purchase",
            Statistic::RfvR => "rfv_r",
            Statistic::RfvF => "rfv_f",
            Statistic::RfvM => "rfv_m",
        }
    }

    fn from_name(name: &str) -> Option<Statistic> {
        Statistic::ALL.into_iter().find(|s| s.name() == name)
    }
}

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Comparison {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl Comparison {
    /// The SQL operator.
    pub fn sql(self) -> &'static str {
        match self {
            Comparison::Eq => "=",
            Comparison::Ne => "<>",
            Comparison::Lt => "<",
            Comparison::Le => "<=",
            Comparison::Gt => ">",
            Comparison::Ge => ">=",
        }
    }

    /// The operator with its operands swapped (`5 < x` is `x > 5`).
    fn flipped(self) -> Comparison {
        match self {
            Comparison::Lt => Comparison::Gt,
            Comparison::Le => Comparison::Ge,
            Comparison::Gt => Comparison::Lt,
            Comparison::Ge => Comparison::Le,
            other => other,
        }
    }
}

/// A constant in a comparison.
#[derive(Debug, Clone, Copy)]
pub enum Literal {
    Int(i64),
    Double(f64),
}

impl PartialEq for Literal {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Literal::Int(a), Literal::Int(b)) => a == b,
            (Literal::Double(a), Literal::Double(b)) => a.to_bits() == b.to_bits(),
            _ => false,
        }
    }
}

impl Eq for Literal {}

/// A condition in the SQL subset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Condition {
    /// `member.statistics.<statistic> <op> <literal>`.
    Compare {
        statistic: Statistic,
        op: Comparison,
        value: Literal,
    },
    And(Box<Condition>, Box<Condition>),
    Or(Box<Condition>, Box<Condition>),
}

impl Condition {
    /// Every statistic the condition reads.
    pub fn statistics(&self) -> Vec<Statistic> {
        let mut out = Vec::new();
        self.collect(&mut out);
        out
    }

    fn collect(&self, out: &mut Vec<Statistic>) {
        match self {
            Condition::Compare { statistic, .. } => {
                if !out.contains(statistic) {
                    out.push(*statistic);
                }
            }
            Condition::And(a, b) | Condition::Or(a, b) => {
                a.collect(out);
                b.collect(out);
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Token<'a> {
    Ident(&'a str),
    Int(i64),
    Double(f64),
    Op(&'static str),
    /// A string literal or anything else the subset does not use.
    Other,
}

const OPERATORS: [&str; 22] = [
    "&&", "||", "==", "!=", "<=", ">=", "<", ">", "!", "(", ")", "[", "]", "{", "}", ".", ",", "?",
    ":", "+", "-", "*",
];

/// Splits CEL source into tokens; `None` for text the tokenizer does not follow (raw or
/// triple-quoted strings, bytes), which then has no SQL form.
fn tokenize(source: &str) -> Option<Vec<Token<'_>>> {
    let bytes = source.as_bytes();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        if c.is_ascii_whitespace() {
            i += 1;
        } else if c.is_ascii_alphabetic() || c == b'_' {
            let start = i;
            while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_') {
                i += 1;
            }
            // A prefixed string (r"...", b'...') is beyond the tokenizer.
            if i < bytes.len() && (bytes[i] == b'"' || bytes[i] == b'\'') {
                return None;
            }
            tokens.push(Token::Ident(&source[start..i]));
        } else if c.is_ascii_digit() {
            let start = i;
            while i < bytes.len() && bytes[i].is_ascii_digit() {
                i += 1;
            }
            let mut double = false;
            if i + 1 < bytes.len() && bytes[i] == b'.' && bytes[i + 1].is_ascii_digit() {
                double = true;
                i += 1;
                while i < bytes.len() && bytes[i].is_ascii_digit() {
                    i += 1;
                }
            }
            // Exponents, hex and unsigned suffixes are left to the interpreter.
            if i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'.') {
                tokens.push(Token::Other);
                while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'.') {
                    i += 1;
                }
                continue;
            }
            let text = &source[start..i];
            tokens.push(if double {
                text.parse().map(Token::Double).unwrap_or(Token::Other)
            } else {
                text.parse().map(Token::Int).unwrap_or(Token::Other)
            });
        } else if c == b'"' || c == b'\'' {
            if source[i..].starts_with("\"\"\"") || source[i..].starts_with("'''") {
                return None;
            }
            i += 1;
            loop {
                match bytes.get(i) {
                    None => return None,
                    Some(b'\\') => i += 2,
                    Some(&q) if q == c => {
                        i += 1;
                        break;
                    }
                    Some(_) => i += 1,
                }
            }
            tokens.push(Token::Other);
        } else if let Some(op) = OPERATORS.iter().find(|op| source[i..].starts_with(**op)) {
            tokens.push(Token::Op(op));
            i += op.len();
        } else {
            tokens.push(Token::Other);
            i += source[i..].chars().next().map_or(1, char::len_utf8);
        }
    }
    Some(tokens)
}

struct SubsetParser<'t, 'a> {
    tokens: &'t [Token<'a>],
    position: usize,
}

impl SubsetParser<'_, '_> {
    fn peek(&self) -> Option<&Token<'_>> {
        self.tokens.get(self.position)
    }

    fn eat(&mut self, op: &str) -> bool {
        if matches!(self.peek(), Some(Token::Op(found)) if *found == op) {
            self.position += 1;
            true
        } else {
            false
        }
    }

    fn or(&mut self) -> Option<Condition> {
        let mut left = self.and()?;
        while self.eat("||") {
            let right = self.and()?;
            left = Condition::Or(Box::new(left), Box::new(right));
        }
        Some(left)
    }

    fn and(&mut self) -> Option<Condition> {
        let mut left = self.atom()?;
        while self.eat("&&") {
            let right = self.atom()?;
            left = Condition::And(Box::new(left), Box::new(right));
        }
        Some(left)
    }

    fn atom(&mut self) -> Option<Condition> {
        if self.eat("(") {
            let inner = self.or()?;
            return self.eat(")").then_some(inner);
        }
        let left = self.operand()?;
        let op = match self.peek()? {
            Token::Op("==") => Comparison::Eq,
            Token::Op("!=") => Comparison::Ne,
            Token::Op("<") => Comparison::Lt,
            Token::Op("<=") => Comparison::Le,
            Token::Op(">") => Comparison::Gt,
            Token::Op(">=") => Comparison::Ge,
            _ => return None,
        };
        self.position += 1;
        let right = self.operand()?;
        match (left, right) {
            (Operand::Statistic(statistic), Operand::Literal(value)) => Some(Condition::Compare {
                statistic,
                op,
                value,
            }),
            (Operand::Literal(value), Operand::Statistic(statistic)) => Some(Condition::Compare {
                statistic,
                op: op.flipped(),
                value,
            }),
            _ => None,
        }
    }

    fn operand(&mut self) -> Option<Operand> {
        let negative = self.eat("-");
        match self.peek()?.clone() {
            Token::Int(value) => {
                self.position += 1;
                let value = if negative {
                    value.checked_neg()?
                } else {
                    value
                };
                Some(Operand::Literal(Literal::Int(value)))
            }
            Token::Double(value) => {
                self.position += 1;
                Some(Operand::Literal(Literal::Double(if negative {
                    -value
                } else {
                    value
                })))
            }
            Token::Ident("member") if !negative => {
                let path = [
                    Token::Ident("member"),
                    Token::Op("."),
                    Token::Ident("statistics"),
                    Token::Op("."),
                ];
                if self.tokens.get(self.position..self.position + 4)? != path {
                    return None;
                }
                let Some(Token::Ident(name)) = self.tokens.get(self.position + 4) else {
                    return None;
                };
                let statistic = Statistic::from_name(name)?;
                self.position += 5;
                // `member.statistics.x.y` or `member.statistics.x(...)` is something else.
                if matches!(self.peek(), Some(Token::Op("." | "(" | "["))) {
                    return None;
                }
                Some(Operand::Statistic(statistic))
            }
            _ => None,
        }
    }
}

enum Operand {
    Statistic(Statistic),
    Literal(Literal),
}

/// The condition as a [`Condition`] when it is in the SQL subset: comparisons of
/// `member.statistics.<s>` ([`Statistic`]) with a number, combined with `&&`, `||` and
/// parentheses. `None` otherwise.
pub fn sql_subset(source: &str) -> Option<Condition> {
    let tokens = tokenize(source)?;
    parse_tokens(&tokens)
}

fn parse_tokens(tokens: &[Token<'_>]) -> Option<Condition> {
    let mut parser = SubsetParser {
        tokens,
        position: 0,
    };
    let condition = parser.or()?;
    (parser.position == tokens.len()).then_some(condition)
}

/// The SQL-able conjuncts of a condition whose top level is a chain of `&&` (no `||` or `?:`
/// outside parentheses), combined with `&&`; `None` when there are none.
pub fn sql_prefilter(source: &str) -> Option<Condition> {
    let tokens = tokenize(source)?;
    let mut depth = 0i32;
    let mut conjuncts: Vec<&[Token<'_>]> = Vec::new();
    let mut start = 0;
    for (i, token) in tokens.iter().enumerate() {
        match token {
            Token::Op("(" | "[" | "{") => depth += 1,
            Token::Op(")" | "]" | "}") => depth -= 1,
            Token::Op("||" | "?" | ":") if depth == 0 => return None,
            Token::Op("&&") if depth == 0 => {
                conjuncts.push(&tokens[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    conjuncts.push(&tokens[start..]);
    conjuncts
        .into_iter()
        .filter_map(parse_tokens)
        .reduce(|a, b| Condition::And(Box::new(a), Box::new(b)))
}

/// The names read as `member.statistics.<name>` in a condition, each once.
pub fn statistics_read(source: &str) -> Vec<&str> {
    let mut names: Vec<&str> = Vec::new();
    let Some(tokens) = tokenize(source) else {
        // Text the tokenizer cannot follow: assume it reads everything.
        return STATISTICS.iter().map(|(name, _)| *name).collect();
    };
    for window in tokens.windows(5) {
        if let [
            Token::Ident("member"),
            Token::Op("."),
            Token::Ident("statistics"),
            Token::Op("."),
            Token::Ident(name),
        ] = window
            && !names.contains(name)
        {
            names.push(name);
        }
    }
    // `member.statistics` used other than as `member.statistics.<name>` (an index, the map
    // passed whole) reads everything.
    let uses = tokens
        .windows(3)
        .filter(|w| {
            matches!(
                w,
                [
                    Token::Ident("member"),
                    Token::Op("."),
                    Token::Ident("statistics")
                ]
            )
        })
        .count();
    let named = tokens
        .windows(5)
        .filter(|w| {
            matches!(
                w,
                [
                    Token::Ident("member"),
                    Token::Op("."),
                    Token::Ident("statistics"),
                    Token::Op("."),
                    Token::Ident(_)
                ]
            )
        })
        .count();
    if uses > named {
        return STATISTICS.iter().map(|(name, _)| *name).collect();
    }
    names
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::expr::Purpose;

    fn compare(statistic: Statistic, op: Comparison, value: Literal) -> Condition {
        Condition::Compare {
            statistic,
            op,
            value,
        }
    }

    #[test]
    fn simple_conditions_have_a_sql_form() {
        let c = sql_subset(
            "member.statistics.purchases >= 5 && (member.statistics.spend > 100.5 || 3 > member.statistics.rfv_r)",
        )
        .unwrap();
        assert_eq!(
            c,
            Condition::And(
                Box::new(compare(
                    Statistic::Purchases,
                    Comparison::Ge,
                    Literal::Int(5)
                )),
                Box::new(Condition::Or(
                    Box::new(compare(
                        Statistic::Spend,
                        Comparison::Gt,
                        Literal::Double(100.5)
                    )),
                    Box::new(compare(Statistic::RfvR, Comparison::Lt, Literal::Int(3))),
                )),
            )
        );
        assert_eq!(
            sql_subset("member.statistics.days_since_last_purchase != -1"),
            Some(compare(
                Statistic::DaysSinceLastPurchase,
                Comparison::Ne,
                Literal::Int(-1)
            ))
        );
    }

    #[test]
    fn other_conditions_have_none() {
        for source in [
            "member.statistics.median_gap_days > 3.0",
            "member.statistics.purchases > member.statistics.purchase_days",
            "!(member.statistics.purchases > 1)",
            "member.statistics.purchases > 1 ? true : false",
            "member.tier == 'gold'",
            "member.statistics.purchases > 1u",
            "member.statistics.purchases > 1e3",
            "member.statistics.purchases > 1 && 'a && b' == 'x'",
            "member.statistics.purchases.size() > 1",
            "(member.statistics.purchases > 1",
        ] {
            assert_eq!(sql_subset(source), None, "{source}");
        }
    }

    #[test]
    fn a_top_level_conjunction_has_a_prefilter() {
        assert_eq!(
            sql_prefilter(
                "member.statistics.days_since_last_purchase > 2.0 * member.statistics.median_gap_days && member.statistics.days_since_last_purchase > 60"
            ),
            Some(compare(
                Statistic::DaysSinceLastPurchase,
                Comparison::Gt,
                Literal::Int(60)
            ))
        );
        assert_eq!(
            sql_prefilter("member.statistics.purchases > 1 || member.tier == 'gold'"),
            None
        );
        assert_eq!(sql_prefilter("member.tier == 'gold'"), None);
    }

    #[test]
    fn statistics_read_are_found() {
        assert_eq!(
            statistics_read(
                "member.statistics.median_gap_days > 1.0 && member.statistics.purchases > 2"
            ),
            ["median_gap_days", "purchases"]
        );
        assert_eq!(
            statistics_read("has(member.statistics.purchases)"),
            ["purchases"]
        );
        assert_eq!(
            statistics_read("member.statistics['purchases'] > 1").len(),
            STATISTICS.len()
        );
    }

    #[test]
    fn median_gaps() {
        assert_eq!(median_gap_days(&[]), None);
        assert_eq!(median_gap_days(&[10]), None);
        assert_eq!(median_gap_days(&[10, 13]), Some(3.0));
        assert_eq!(median_gap_days(&[0, 1, 11, 12]), Some(1.0));
        assert_eq!(median_gap_days(&[0, 2, 12, 13, 23]), Some(6.0));
    }

    #[test]
    fn the_default_grid_matches_the_table() {
        let rfv = RfvSegments::default();
        assert_eq!(rfv.code(5, 5), "champions");
        assert_eq!(rfv.code(5, 1), "new_customers");
        assert_eq!(rfv.code(1, 1), "hibernating");
        assert_eq!(rfv.code(1, 5), "cant_lose_them");
        assert_eq!(rfv.code(3, 3), "need_attention");
        assert_eq!(rfv.codes().len(), 10);
        assert_eq!(rfv.name("at_risk", Locale::Fa, Locale::En), "At Risk");
    }

    #[test]
    fn evaluation_reads_statistics_and_treats_null_like_sql() {
        let tz = TimeZone::UTC;
        let now: Timestamp = "2026-01-10T12:00:00Z".parse().unwrap();
        let segment = |source: &str| {
            RuleSegment::new(
                "s".into(),
                Localized::default(),
                CompiledExpr::compile(
                    source,
                    Purpose::Condition,
                    &[Variable::Member, Variable::Now],
                )
                .unwrap(),
            )
        };
        let mut member = MemberFacts {
            id: "m1".into(),
            enrolled_at: now,
            ..MemberFacts::default()
        };
        member.statistics = SegmentStatistics::default().facts(100, 2);
        let dormant = segment("member.statistics.days_since_last_purchase > 60");
        assert!(evaluate(&dormant, &member, now, &tz).is_err());
        let equal = segment("member.statistics.days_since_last_purchase == 60");
        assert!(!evaluate(&equal, &member, now, &tz).unwrap());
        let unequal = segment("member.statistics.days_since_last_purchase != 60");
        assert!(evaluate(&unequal, &member, now, &tz).unwrap());
        let absorbed = segment(
            "member.statistics.days_since_last_purchase > 60 || member.statistics.purchases == 0",
        );
        assert!(evaluate(&absorbed, &member, now, &tz).unwrap());
        member.statistics = SegmentStatistics {
            purchases: 3,
            spend_minor: 12_345,
            last_purchase_day: Some(30),
            ..SegmentStatistics::default()
        }
        .facts(100, 2);
        assert!(evaluate(&dormant, &member, now, &tz).unwrap());
        let spend =
            segment("member.statistics.spend >= 123.45 && member.statistics.purchases == 3");
        assert!(evaluate(&spend, &member, now, &tz).unwrap());
        assert!(spend.sql.is_some());
    }

    const MINIMAL: &str = "[club]\nname = \"T\"\ndefault_locale = \"en\"\ncurrency = \"USD\"\ntime_zone = \"UTC\"\n\n[earning]\npoints_per_unit = \"1\"\n\n[expiry]\npolicy = \"never\"\n\n[returns]\npolicy = \"within_balance\"\n\n[exit]\npolicy = \"forfeit\"\n";

    fn errors(extra: &str) -> Vec<String> {
        match crate::program::parse_program(&format!("{MINIMAL}{extra}")) {
            Ok(_) => Vec::new(),
            Err(diagnostics) => diagnostics
                .iter()
                .map(|d| format!("{}:{}: {}", d.line, d.column, d.message))
                .collect(),
        }
    }

    #[test]
    fn the_examples_define_segments() {
        for source in [
            include_str!("../../../examples/programs/coffee-chain.toml"),
            include_str!("../../../examples/programs/israeli-pharmacy.toml"),
            include_str!("../../../examples/programs/persian-retail.toml"),
        ] {
            let program = crate::program::parse_program(source).unwrap();
            let ids: Vec<&str> = program.segments.iter().map(|s| s.id.as_str()).collect();
            assert_eq!(ids, ["dormant", "partial_basket", "best_customers"]);
            assert!(program.segments[2].sql.is_some());
            assert!(program.segments[0].prefilter.is_some());
            assert!(program.segments[1].sql.is_none());
        }
        let coffee = crate::program::parse_program(include_str!(
            "../../../examples/programs/coffee-chain.toml"
        ))
        .unwrap();
        assert_eq!(
            coffee.rfv.name("champions", Locale::En, Locale::En),
            "Bean Legends"
        );
    }

    #[test]
    fn rfv_and_segments_are_validated_with_positions() {
        let program = crate::program::parse_program(&format!(
            "{MINIMAL}[rfv]\ngrid = [[\"a\",\"a\",\"b\",\"b\",\"b\"],[\"a\",\"a\",\"b\",\"b\",\"b\"],[\"c\",\"c\",\"c\",\"c\",\"c\"],[\"d\",\"d\",\"d\",\"d\",\"d\"],[\"d\",\"d\",\"d\",\"d\",\"e\"]]\nnames = {{ b = \"Bees\" }}\n"
        ))
        .unwrap();
        assert_eq!(program.rfv.code(5, 5), "b");
        assert_eq!(program.rfv.code(1, 5), "e");
        assert_eq!(program.rfv.name("b", Locale::En, Locale::En), "Bees");
        assert_eq!(program.rfv.name("a", Locale::En, Locale::En), "a");
        assert_eq!(
            errors("[rfv.names]\nchampoins = \"X\"\n"),
            ["19:1: `rfv.names.champoins`: the RFV grid has no segment `champoins`"]
        );
        assert_eq!(
            errors("[rfv]\ngrid = [[\"a\"]]\n"),
            ["19:8: `rfv.grid` must be 5 rows (R = 5 first) of 5 segment codes (F = 1 first)"]
        );
        let syntax = errors(
            "[[segments]]\nid = \"x\"\nname = \"X\"\ncondition = \"member.statistics.purchases >\"\n",
        );
        assert_eq!(syntax.len(), 1);
        assert!(syntax[0].starts_with("21:"), "{syntax:?}");
        assert_eq!(
            errors(
                "[[segments]]\nid = \"x\"\nname = \"X\"\ncondition = \"member.statistics.purchase > 1\"\n"
            ),
            ["21:13: `segments[0].condition`: unknown statistic `member.statistics.purchase`"]
        );
        assert_eq!(
            errors("[[segments]]\nid = \"champions\"\nname = \"X\"\ncondition = \"true\"\n"),
            ["19:6: segment id \"champions\" is a segment of the RFV grid"]
        );
        assert_eq!(
            errors(
                "[[segments]]\nid = \"x\"\nname = \"X\"\ncondition = \"purchase.total > 1.0\"\n"
            )
            .len(),
            1
        );
    }
}
