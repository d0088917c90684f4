//! CEL expressions behind Patron's own types.
//!
//! This is the only module that names the `cel` crate (and `chrono`, which `cel` uses for
//! timestamps). Everything else works with [`CompiledExpr`], [`ExprValue`], [`Scope`] and
//! [`ExprError`], so the interpreter can be swapped without touching rules, the parser or the
//! engine.
//!
//! An expression is compiled once, when the program is parsed, and checked as far as its
//! types are known without running it: unknown variables, variables a rule kind does not have
//! (`item` outside a per-line rule), unknown fields of Patron's own objects (`purchase.totl`),
//! arithmetic that mixes whole numbers and decimals (CEL never converts between them), and a
//! condition that cannot be true or false. What only shows at run time (a missing attribute,
//! a division by zero) is an [`ExprError`]; the rule is skipped and the caller counts it.
//!
//! Timestamps carry the club's UTC offset at that instant, so `purchase.time.getHours()` is
//! the hour on the club's clocks, and `getDayOfWeek()` its weekday (0 = Sunday).

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, LazyLock};

use cel::common::ast::{Expr, IdedExpr, LiteralValue};
use jiff::Timestamp;
use jiff::tz::TimeZone;
use rust_decimal::Decimal;

use crate::shared::closest as closest_word;

/// An expression may be this long at most (characters); a rule condition is a line or two.
pub const EXPRESSION_CHARS_MAX: usize = 2_000;
/// Nesting deeper than this is refused when compiling (a guard for the recursive checker).
const NESTING_MAX: usize = 64;

/// The standard CEL environment, built once per process: building it costs tens of
/// microseconds, far more than evaluating a rule.
static ENVIRONMENT: LazyLock<Arc<cel::Env>> = LazyLock::new(|| Arc::new(cel::Env::stdlib()));

/// What an expression's value is used for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Purpose {
    /// A condition: must be `true` or `false`.
    Condition,
    /// A number of points: a whole number or a decimal, not negative.
    Amount,
}

/// A top-level variable an expression can read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Variable {
    /// The member the rule is evaluated for.
    Member,
    /// The purchase being posted (purchase rules).
    Purchase,
    /// One line of the purchase (per-line rules: `multiplier` and `product`).
    Item,
    /// The custom event being recorded (`event` rules).
    Event,
    /// The current instant.
    Now,
}

impl Variable {
    /// Every variable, in the order hints list them.
    pub const ALL: [Variable; 5] = [
        Variable::Member,
        Variable::Purchase,
        Variable::Item,
        Variable::Event,
        Variable::Now,
    ];

    /// The name expressions use.
    pub fn name(self) -> &'static str {
        match self {
            Variable::Member => "member",
            Variable::Purchase => "purchase",
            Variable::Item => "item",
            Variable::Event => "event",
            Variable::Now => "now",
        }
    }

    fn shape(self) -> Type {
        match self {
            Variable::Member => Type::Object(&MEMBER_FIELDS),
            Variable::Purchase => Type::Object(&PURCHASE_FIELDS),
            Variable::Item => Type::Object(&ITEM_FIELDS),
            Variable::Event => Type::Object(&EVENT_FIELDS),
            Variable::Now => Type::Timestamp,
        }
    }
}

/// What the checker knows about a value's type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Type {
    Int,
    UInt,
    Double,
    Text,
    Bool,
    Timestamp,
    List,
    Map,
    Null,
    /// One of Patron's objects, with a fixed set of fields.
    Object(&'static Fields),
    /// Not known before running (a map value, a comprehension variable...).
    Dynamic,
}

impl Type {
    fn describe(self) -> &'static str {
        match self {
            Type::Int => "a whole number (int)",
            Type::UInt => "an unsigned whole number (uint)",
            Type::Double => "a decimal number (double)",
            Type::Text => "a string",
            Type::Bool => "true/false",
            Type::Timestamp => "a timestamp",
            Type::List => "a list",
            Type::Map | Type::Object(_) => "a map",
            Type::Null => "null",
            Type::Dynamic => "a value",
        }
    }

    fn is_number(self) -> bool {
        matches!(self, Type::Int | Type::UInt | Type::Double)
    }
}

type Fields = [(&'static str, Type)];

/// `member`: who earns.
const MEMBER_FIELDS: [(&str, Type); 8] = [
    ("id", Type::Text),
    ("tier", Type::Text),
    ("segments", Type::List),
    ("attributes", Type::Map),
    ("statistics", Type::Map),
    // A timestamp at 00:00 on the birthday in the club's time zone, or null when unknown.
    ("birth_date", Type::Dynamic),
    ("enrolled_at", Type::Timestamp),
    ("days_since_enrollment", Type::Int),
];
/// `purchase`: money in major units (dollars, rials) as decimals.
const PURCHASE_FIELDS: [(&str, Type); 7] = [
    ("total", Type::Double),
    ("eligible_total", Type::Double),
    ("channel", Type::Text),
    ("store", Type::Text),
    ("time", Type::Timestamp),
    ("item_count", Type::Int),
    ("items", Type::List),
];
/// `item`: one purchase line.
const ITEM_FIELDS: [(&str, Type); 6] = [
    ("sku", Type::Text),
    ("category", Type::Text),
    ("quantity", Type::Double),
    ("unit_price", Type::Double),
    ("line_total", Type::Double),
    ("eligible", Type::Bool),
];
/// `event`: a custom event.
const EVENT_FIELDS: [(&str, Type); 3] = [
    ("type", Type::Text),
    ("time", Type::Timestamp),
    ("properties", Type::Map),
];

/// The field names of a top-level variable, for documentation and hints.
pub fn field_names(variable: Variable) -> Vec<&'static str> {
    match variable.shape() {
        Type::Object(fields) => fields.iter().map(|(name, _)| *name).collect(),
        _ => Vec::new(),
    }
}

/// The variables and fields a set of expressions reads, so an evaluation builds only those.
/// A variable used other than through a field (`member` alone, `member.?tier`) counts as all
/// of its fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct FieldSet(u64);

impl FieldSet {
    /// Every field of every variable.
    pub const ALL: FieldSet = FieldSet(u64::MAX);

    /// Whether the expressions read `variable` at all.
    pub fn uses_variable(self, variable: Variable) -> bool {
        let (first, count) = Self::range(variable);
        (self.0 >> first) & ((1_u64 << count) - 1) != 0
    }

    /// Whether the expressions read `variable.field`.
    pub fn uses(self, variable: Variable, field: &str) -> bool {
        Self::bit(variable, field).is_some_and(|bit| self.0 & (1 << bit) != 0)
    }

    /// Both sets together.
    pub fn union(self, other: FieldSet) -> FieldSet {
        FieldSet(self.0 | other.0)
    }

    fn add_variable(&mut self, variable: Variable) {
        let (first, count) = Self::range(variable);
        self.0 |= ((1_u64 << count) - 1) << first;
    }

    fn add_field(&mut self, variable: Variable, field: &str) {
        match Self::bit(variable, field) {
            Some(bit) => self.0 |= 1 << bit,
            None => self.add_variable(variable),
        }
    }

    /// The first bit and the number of bits of a variable (one per field; one for `now`).
    fn range(variable: Variable) -> (u32, u32) {
        match variable {
            Variable::Member => (0, 8),
            Variable::Purchase => (8, 7),
            Variable::Item => (15, 6),
            Variable::Event => (21, 3),
            Variable::Now => (24, 1),
        }
    }

    fn bit(variable: Variable, field: &str) -> Option<u32> {
        let (first, _) = Self::range(variable);
        let index = match variable.shape() {
            Type::Object(fields) => fields.iter().position(|(name, _)| *name == field)?,
            _ => 0,
        };
        Some(first + u32::try_from(index).ok()?)
    }
}

/// A problem found while compiling an expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompileError {
    /// Character offset (0-based) in the expression text where the problem is.
    pub char_offset: usize,
    pub message: String,
    pub hint: Option<String>,
}

/// A compiled CEL expression and its source text. Cheap to clone; compared by source text
/// (two programs parsed from the same file are equal).
#[derive(Clone)]
pub struct CompiledExpr {
    source: Arc<str>,
    program: Arc<cel::Program>,
    reads: FieldSet,
}

impl fmt::Debug for CompiledExpr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("CompiledExpr").field(&self.source).finish()
    }
}

impl PartialEq for CompiledExpr {
    fn eq(&self, other: &Self) -> bool {
        self.source == other.source
    }
}

impl Eq for CompiledExpr {}

impl CompiledExpr {
    /// Compiles `source` for `purpose`, allowing only `variables`. On failure, returns every
    /// problem found (a syntax error is reported alone).
    pub fn compile(
        source: &str,
        purpose: Purpose,
        variables: &[Variable],
    ) -> Result<CompiledExpr, Vec<CompileError>> {
        let chars = source.chars().count();
        if chars > EXPRESSION_CHARS_MAX {
            return Err(vec![CompileError {
                char_offset: 0,
                message: format!(
                    "the expression is {chars} characters long; at most \
                     {EXPRESSION_CHARS_MAX} are allowed"
                ),
                hint: Some("split the rule in two".to_owned()),
            }]);
        }
        if source.trim().is_empty() {
            return Err(vec![CompileError {
                char_offset: 0,
                message: "the expression is empty".to_owned(),
                hint: Some(match purpose {
                    Purpose::Condition => "remove the key to apply the rule always".to_owned(),
                    Purpose::Amount => "write a number of points, such as 10".to_owned(),
                }),
            }]);
        }
        let program = match ENVIRONMENT.compile(source) {
            Ok(program) => program,
            Err(errors) => return Err(syntax_errors(source, &errors)),
        };
        let mut checker = Checker {
            source,
            program: &program,
            variables,
            bound: Vec::new(),
            errors: Vec::new(),
            selecting: None,
            reads: FieldSet::default(),
        };
        let result = checker.infer(program.expression(), 0);
        let reads = checker.reads;
        let mut errors = checker.errors;
        if errors.is_empty() {
            let whole = CompileError {
                char_offset: 0,
                message: String::new(),
                hint: None,
            };
            match purpose {
                Purpose::Condition if !matches!(result, Type::Bool | Type::Dynamic) => {
                    errors.push(CompileError {
                        message: format!(
                            "a condition must be true or false, but this gives {}",
                            result.describe()
                        ),
                        hint: Some("compare it, for example `purchase.total >= 50.0`".to_owned()),
                        ..whole
                    });
                }
                Purpose::Amount if !(result.is_number() || result == Type::Dynamic) => {
                    errors.push(CompileError {
                        message: format!(
                            "an amount must be a number of points, but this gives {}",
                            result.describe()
                        ),
                        hint: Some(
                            "write a number, or an expression such as `item.quantity * 5.0`"
                                .to_owned(),
                        ),
                        ..whole
                    });
                }
                _ => {}
            }
        }
        if !errors.is_empty() {
            errors.sort_by_key(|error| error.char_offset);
            return Err(errors);
        }
        Ok(CompiledExpr {
            source: Arc::from(source),
            program: Arc::new(program),
            reads,
        })
    }

    /// The expression as written in the program file.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The variables and fields the expression reads.
    pub fn reads(&self) -> FieldSet {
        self.reads
    }

    /// Evaluates a condition.
    pub fn condition(&self, scope: &Scope<'_>) -> Result<bool, ExprError> {
        match self.program.execute(&scope.context) {
            Ok(cel::Value::Bool(value)) => Ok(value),
            Ok(other) => Err(ExprError::WrongType {
                expected: "true/false",
                found: value_type(&other),
            }),
            Err(error) => Err(ExprError::from_execution(error)),
        }
    }

    /// Evaluates an amount: a whole or decimal number, not negative.
    pub fn amount(&self, scope: &Scope<'_>) -> Result<Decimal, ExprError> {
        let value = match self.program.execute(&scope.context) {
            Ok(cel::Value::Int(value)) => Decimal::from(value),
            Ok(cel::Value::UInt(value)) => Decimal::from(value),
            Ok(cel::Value::Float(value)) => {
                if !value.is_finite() {
                    return Err(ExprError::Invalid(format!("the amount is {value}")));
                }
                Decimal::try_from(value)
                    .map_err(|_| ExprError::Invalid(format!("the amount {value} is too large")))?
            }
            Ok(other) => {
                return Err(ExprError::WrongType {
                    expected: "a number",
                    found: value_type(&other),
                });
            }
            Err(error) => return Err(ExprError::from_execution(error)),
        };
        if value.is_sign_negative() && !value.is_zero() {
            return Err(ExprError::Invalid(format!(
                "the amount is negative ({value})"
            )));
        }
        Ok(value)
    }
}

/// Why an expression could not be evaluated. The rule is skipped, never the purchase.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExprError {
    /// A map has no such key: usually a member attribute or event property that was not sent.
    /// `has(member.attributes.x)` tests for it first.
    MissingKey(String),
    /// A value has another type than the expression needs.
    WrongType {
        expected: &'static str,
        found: String,
    },
    /// Any other failure: division by zero, overflow, an operator applied to the wrong types,
    /// a negative or infinite amount.
    Invalid(String),
}

impl ExprError {
    fn from_execution(error: cel::ExecutionError) -> ExprError {
        match error {
            cel::ExecutionError::NoSuchKey(key) => ExprError::MissingKey(key.to_string()),
            cel::ExecutionError::UnexpectedType { got, want } => ExprError::WrongType {
                expected: "a value of another type",
                found: format!("{got} where {want} was needed"),
            },
            other => ExprError::Invalid(other.to_string()),
        }
    }
}

impl fmt::Display for ExprError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExprError::MissingKey(key) => write!(f, "no such key: {key}"),
            ExprError::WrongType { expected, found } => {
                write!(f, "expected {expected}, found {found}")
            }
            ExprError::Invalid(message) => f.write_str(message),
        }
    }
}

impl std::error::Error for ExprError {}

fn value_type(value: &cel::Value) -> String {
    value.type_of().to_string()
}

// ----- Values and scopes ---------------------------------------------------------------------

/// A value an expression can read: the facts about a member, a purchase, a line or an event.
#[derive(Debug, Clone)]
pub struct ExprValue(cel::Value);

impl ExprValue {
    /// `null`.
    pub fn null() -> ExprValue {
        ExprValue(cel::Value::Null)
    }

    /// A boolean.
    pub fn bool(value: bool) -> ExprValue {
        ExprValue(cel::Value::Bool(value))
    }

    /// A whole number.
    pub fn int(value: i64) -> ExprValue {
        ExprValue(cel::Value::Int(value))
    }

    /// A decimal number (CEL's `double`).
    pub fn double(value: f64) -> ExprValue {
        ExprValue(cel::Value::Float(value))
    }

    /// A text.
    pub fn text(value: &str) -> ExprValue {
        ExprValue(cel::Value::String(Arc::new(value.to_owned())))
    }

    /// An instant, carrying `tz`'s UTC offset at that instant so that `getHours()` and friends
    /// read the club's clocks. An instant outside what CEL can represent is `null`.
    pub fn timestamp(value: Timestamp, tz: &TimeZone) -> ExprValue {
        let nanoseconds = value.as_nanosecond();
        let seconds = i64::try_from(nanoseconds.div_euclid(1_000_000_000)).ok();
        let subsecond = u32::try_from(nanoseconds.rem_euclid(1_000_000_000)).ok();
        let offset = chrono::FixedOffset::east_opt(tz.to_offset(value).seconds());
        match (seconds, subsecond, offset) {
            (Some(seconds), Some(subsecond), Some(offset)) => {
                match chrono::DateTime::from_timestamp(seconds, subsecond) {
                    Some(utc) => ExprValue(cel::Value::Timestamp(utc.with_timezone(&offset))),
                    None => ExprValue::null(),
                }
            }
            _ => ExprValue::null(),
        }
    }

    /// A list.
    pub fn list(values: Vec<ExprValue>) -> ExprValue {
        ExprValue(cel::Value::List(Arc::new(
            values.into_iter().map(|value| value.0).collect(),
        )))
    }

    /// A map with text keys.
    pub fn map<'k>(entries: impl IntoIterator<Item = (&'k str, ExprValue)>) -> ExprValue {
        let map: HashMap<cel::objects::Key, cel::Value> = entries
            .into_iter()
            .map(|(key, value)| (cel::objects::Key::from(key), value.0))
            .collect();
        ExprValue(cel::Value::Map(cel::objects::Map { map: Arc::new(map) }))
    }
}

/// The variables one evaluation sees. Built once per evaluation; per-line variables (`item`)
/// go in a [`Scope::child`] that shares everything else.
pub struct Scope<'p> {
    context: cel::Context<'p, 'static>,
}

impl fmt::Debug for Scope<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Scope")
    }
}

impl Scope<'static> {
    /// A scope with these variables.
    pub fn new(variables: Vec<(Variable, ExprValue)>) -> Result<Scope<'static>, ExprError> {
        let mut context = cel::Context::with_env(Arc::clone(&ENVIRONMENT));
        for (variable, value) in variables {
            bind(&mut context, variable, value)?;
        }
        Ok(Scope { context })
    }
}

impl Scope<'_> {
    /// A scope that adds (or replaces) one variable and sees all of this one's.
    pub fn child(&self, variable: Variable, value: ExprValue) -> Result<Scope<'_>, ExprError> {
        let mut context = self.context.new_inner_scope();
        bind(&mut context, variable, value)?;
        Ok(Scope { context })
    }
}

fn bind(
    context: &mut cel::Context<'_, 'static>,
    variable: Variable,
    value: ExprValue,
) -> Result<(), ExprError> {
    let value: Box<dyn cel::common::value::Val> = value
        .0
        .try_into()
        .map_err(|error: cel::ExecutionError| ExprError::Invalid(error.to_string()))?;
    context.add_variable_as_val(variable.name(), value);
    Ok(())
}

// ----- Compile-time checks -------------------------------------------------------------------

fn syntax_errors(source: &str, errors: &cel::ParseErrors) -> Vec<CompileError> {
    let mut found: Vec<CompileError> = errors
        .errors
        .iter()
        .map(|error| {
            // Positions are 1-based line and character column within the expression.
            let line = usize::try_from(error.pos.0).unwrap_or(1).max(1);
            let column = usize::try_from(error.pos.1).unwrap_or(1).max(1);
            CompileError {
                char_offset: char_offset_of(source, line, column),
                message: syntax_message(&error.msg),
                hint: Some(
                    "check the parentheses and quotes; strings in CEL use 'single' or \
                     \"double\" quotes"
                        .to_owned(),
                ),
            }
        })
        .collect();
    if found.is_empty() {
        found.push(CompileError {
            char_offset: 0,
            message: "the expression is not valid CEL".to_owned(),
            hint: None,
        });
    }
    // The first syntax error is the useful one; the rest usually follow from it.
    found.truncate(1);
    found
}

/// The parser's message without the long list of expected tokens.
fn syntax_message(message: &str) -> String {
    let short = message.split(" expecting ").next().unwrap_or(message);
    let short = short.strip_prefix("Syntax error: ").unwrap_or(short);
    format!("syntax error in the expression: {short}")
}

fn char_offset_of(source: &str, line: usize, column: usize) -> usize {
    let mut offset = 0;
    for (index, text) in source.split('\n').enumerate() {
        if index + 1 == line {
            return offset + (column - 1).min(text.chars().count());
        }
        offset += text.chars().count() + 1;
    }
    source.chars().count()
}

struct Checker<'a> {
    source: &'a str,
    program: &'a cel::Program,
    variables: &'a [Variable],
    /// Names bound by comprehensions (`x` in `items.exists(x, ...)`), innermost last.
    bound: Vec<String>,
    errors: Vec<CompileError>,
    /// The field a `Select` is about to read from the node being inferred (taken at once by
    /// [`Checker::infer`], so only an identifier directly under the `Select` sees it).
    selecting: Option<String>,
    reads: FieldSet,
}

impl Checker<'_> {
    fn offset(&self, id: u64) -> usize {
        let byte = self
            .program
            .source_info()
            .offset_for(id)
            .map_or(0, |(start, _)| usize::try_from(start).unwrap_or(0));
        // The parser reports byte offsets; diagnostics count characters.
        self.source
            .char_indices()
            .take_while(|(index, _)| *index < byte)
            .count()
    }

    fn error(&mut self, id: u64, message: String, hint: Option<String>) {
        let char_offset = self.offset(id);
        self.errors.push(CompileError {
            char_offset,
            message,
            hint,
        });
    }

    fn infer(&mut self, node: &IdedExpr, depth: usize) -> Type {
        let selecting = self.selecting.take();
        if depth > NESTING_MAX {
            if !self
                .errors
                .iter()
                .any(|error| error.message.contains("nested"))
            {
                self.error(
                    node.id,
                    format!("the expression is nested more than {NESTING_MAX} levels deep"),
                    None,
                );
            }
            return Type::Dynamic;
        }
        match &node.expr {
            Expr::Literal(literal) => match literal {
                LiteralValue::Boolean(_) => Type::Bool,
                LiteralValue::Bytes(_) => Type::Dynamic,
                LiteralValue::Double(_) => Type::Double,
                LiteralValue::Int(_) => Type::Int,
                LiteralValue::UInt(_) => Type::UInt,
                LiteralValue::Null => Type::Null,
                LiteralValue::String(_) => Type::Text,
            },
            Expr::Ident(name) => self.identifier(node.id, name, selecting.as_deref()),
            Expr::Select(select) => {
                self.selecting = Some(select.field.clone());
                let operand = self.infer(&select.operand, depth + 1);
                let field_type = match operand {
                    Type::Object(fields) => {
                        self.field(node.id, &select.operand, fields, &select.field)
                    }
                    _ => Type::Dynamic,
                };
                if select.test { Type::Bool } else { field_type }
            }
            Expr::Call(call) => {
                let target = call
                    .target
                    .as_ref()
                    .map(|target| self.infer(target, depth + 1));
                let arguments: Vec<Type> = call
                    .args
                    .iter()
                    .map(|argument| self.infer(argument, depth + 1))
                    .collect();
                self.call(node.id, &call.func_name, target, &arguments)
            }
            Expr::Comprehension(comprehension) => {
                self.infer(&comprehension.iter_range, depth + 1);
                self.infer(&comprehension.accu_init, depth + 1);
                let bound_before = self.bound.len();
                self.bound.push(comprehension.iter_var.clone());
                if let Some(second) = &comprehension.iter_var2 {
                    self.bound.push(second.clone());
                }
                self.bound.push(comprehension.accu_var.clone());
                self.infer(&comprehension.loop_cond, depth + 1);
                self.infer(&comprehension.loop_step, depth + 1);
                self.infer(&comprehension.result, depth + 1);
                self.bound.truncate(bound_before);
                Type::Dynamic
            }
            Expr::List(list) => {
                for element in &list.elements {
                    self.infer(element, depth + 1);
                }
                Type::List
            }
            Expr::Map(map) => {
                for entry in &map.entries {
                    if let cel::common::ast::EntryExpr::MapEntry(entry) = &entry.expr {
                        self.infer(&entry.key, depth + 1);
                        self.infer(&entry.value, depth + 1);
                    }
                }
                Type::Map
            }
            Expr::Struct(_) | Expr::Unspecified => Type::Dynamic,
        }
    }

    fn identifier(&mut self, id: u64, name: &str, field: Option<&str>) -> Type {
        if self.bound.iter().any(|bound| bound == name) {
            return Type::Dynamic;
        }
        if let Some(variable) = Variable::ALL
            .into_iter()
            .find(|variable| variable.name() == name)
        {
            if self.variables.contains(&variable) {
                match field {
                    Some(field) => self.reads.add_field(variable, field),
                    None => self.reads.add_variable(variable),
                }
                return variable.shape();
            }
            let message = format!("`{name}` is not available in this rule");
            let hint = format!(
                "{}; variables here: {}",
                match variable {
                    Variable::Item =>
                        "`item` exists in per-line rules (kind \"multiplier\" or \"product\")",
                    Variable::Purchase =>
                        "`purchase` exists in purchase rules (kind \"spend\", \"multiplier\", \"product\" or \"referral\")",
                    Variable::Event => "`event` exists in rules of kind \"event\"",
                    Variable::Member | Variable::Now => "",
                },
                self.variable_list()
            );
            self.error(id, message, Some(hint.trim_start_matches("; ").to_owned()));
            return Type::Dynamic;
        }
        // Type names, usable in `type(x) == int`.
        if matches!(
            name,
            "int"
                | "uint"
                | "double"
                | "string"
                | "bool"
                | "bytes"
                | "list"
                | "map"
                | "null_type"
                | "type"
                | "timestamp"
                | "duration"
        ) {
            return Type::Dynamic;
        }
        let names: Vec<&str> = self
            .variables
            .iter()
            .map(|variable| variable.name())
            .collect();
        let hint = match closest_word(name, &names) {
            Some(suggestion) => format!(
                "did you mean `{suggestion}`? variables here: {}",
                self.variable_list()
            ),
            None => format!("variables here: {}", self.variable_list()),
        };
        self.error(id, format!("unknown variable `{name}`"), Some(hint));
        Type::Dynamic
    }

    fn variable_list(&self) -> String {
        self.variables
            .iter()
            .map(|variable| format!("`{}`", variable.name()))
            .collect::<Vec<_>>()
            .join(", ")
    }

    fn field(&mut self, id: u64, operand: &IdedExpr, fields: &Fields, field: &str) -> Type {
        if let Some((_, field_type)) = fields.iter().find(|(name, _)| *name == field) {
            return *field_type;
        }
        let object = match &operand.expr {
            Expr::Ident(name) => name.as_str(),
            _ => "this object",
        };
        let names: Vec<&str> = fields.iter().map(|(name, _)| *name).collect();
        let listed = names
            .iter()
            .map(|name| format!("`{name}`"))
            .collect::<Vec<_>>()
            .join(", ");
        let hint = match closest_word(field, &names) {
            Some(suggestion) => format!("did you mean `{object}.{suggestion}`? fields: {listed}"),
            None => format!("fields of `{object}`: {listed}"),
        };
        self.error(id, format!("`{object}` has no field `{field}`"), Some(hint));
        Type::Dynamic
    }

    fn call(&mut self, id: u64, function: &str, target: Option<Type>, arguments: &[Type]) -> Type {
        match (function, arguments) {
            ("_+_" | "_-_" | "_*_" | "_/_" | "_%_", [left, right]) => {
                if left.is_number() && right.is_number() && left != right {
                    let operator = &function[1..function.len() - 1];
                    self.error(
                        id,
                        format!(
                            "`{operator}` between {} and {}: CEL does not convert numbers \
                             automatically",
                            left.describe(),
                            right.describe()
                        ),
                        Some(
                            "write decimals with a point (2.0, not 2), or convert with \
                             double(...) or int(...)"
                                .to_owned(),
                        ),
                    );
                    return Type::Dynamic;
                }
                match (left, right) {
                    (Type::Timestamp, _) | (_, Type::Timestamp) => Type::Dynamic,
                    (left, right) if left == right && *left != Type::Dynamic => *left,
                    _ => Type::Dynamic,
                }
            }
            ("-_", [operand]) => *operand,
            (
                "_==_"
                | "_!=_"
                | "_<_"
                | "_<=_"
                | "_>_"
                | "_>=_"
                | "_&&_"
                | "_||_"
                | "!_"
                | "@in"
                | "@not_strictly_false",
                _,
            ) => Type::Bool,
            ("_?_:_", [_, yes, no]) if yes == no => *yes,
            ("size", _) | ("int", _) => Type::Int,
            ("uint", _) => Type::UInt,
            ("double", _) => Type::Double,
            ("string", _) => Type::Text,
            ("bool", _) => Type::Bool,
            ("timestamp", _) => Type::Timestamp,
            ("contains" | "startsWith" | "endsWith", _) if target.is_some() => Type::Bool,
            (
                "getFullYear" | "getMonth" | "getDayOfYear" | "getDayOfMonth" | "getDate"
                | "getDayOfWeek" | "getHours" | "getMinutes" | "getSeconds" | "getMilliseconds",
                _,
            ) if target.is_some() => Type::Int,
            _ => Type::Dynamic,
        }
    }
}
