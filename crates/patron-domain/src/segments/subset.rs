//! The SQL subset of segment conditions: comparisons of SQL-computable statistics
//! ([`Statistic`]) with constants, combined with `&&`, `||` and parentheses, which the store
//! turns into a parameterised `WHERE` clause (see the parent module for how the two paths keep
//! CEL's meaning); and which statistics a condition reads at all ([`statistics_read`]).

use super::statistics::STATISTICS;

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
