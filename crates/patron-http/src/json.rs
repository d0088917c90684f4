//! Request bodies and query strings read strictly, with what is wrong said in JSON's words.
//!
//! serde's derived `Deserialize` lets a data format hand a struct its fields as a sequence,
//! and serde_json does so for an array: `["d-1", "mem_1", ...]` would fill a purchase field
//! by field in declaration order, past `deny_unknown_fields`. serde_json has no switch for it
//! (serde-rs/serde#1587), so a body is first read into a [`Node`] tree, which keeps every
//! member of an object in order (duplicates too, so a type still refuses a field given
//! twice), and the request type is then deserialized from the tree by [`Strict`], which
//! offers an object to a struct and nothing else. Every failure is a [`JsonError`] made here,
//! with the path of the value at fault and what was expected and found in JSON's vocabulary,
//! where serde's own messages would name Rust types ("expected struct PurchaseBody with 7
//! elements", "expected i64").
//!
//! A query string is read the same way from a tree of strings; numbers and booleans are
//! parsed from the text when the type asks for one.
//!
//! Types that buffer their input (`#[serde(flatten)]`, untagged or internally tagged enums)
//! would see serde's own deserializer again: request types do not use them.

use std::fmt;

use serde::de::{
    self, DeserializeOwned, DeserializeSeed, Deserializer, Error as _, IntoDeserializer, MapAccess,
    SeqAccess, Unexpected, Visitor,
};
use serde::{Deserialize, forward_to_deserialize_any};

use crate::problem::{Code, Problem};

/// A JSON document as it was written: objects keep their members in order, duplicates too.
#[derive(Debug, Clone, PartialEq)]
pub enum Node {
    Null,
    Bool(bool),
    Number(serde_json::Number),
    String(String),
    Array(Vec<Node>),
    Object(Vec<(String, Node)>),
}

impl Node {
    /// Whether this is an object with a member `name`.
    pub fn has_member(&self, name: &str) -> bool {
        matches!(self, Node::Object(members) if members.iter().any(|(key, _)| key == name))
    }

    /// What the value is, for a detail: "an array", "the number 7".
    fn describe(&self) -> String {
        match self {
            Node::Null => "null".into(),
            Node::Bool(value) => value.to_string(),
            Node::Number(number) => format!("the number {number}"),
            Node::String(_) => "a string".into(),
            Node::Array(_) => "an array".into(),
            Node::Object(_) => "an object".into(),
        }
    }
}

struct NodeVisitor;

impl<'de> Visitor<'de> for NodeVisitor {
    type Value = Node;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("a JSON value")
    }

    fn visit_bool<E: de::Error>(self, value: bool) -> Result<Node, E> {
        Ok(Node::Bool(value))
    }

    fn visit_i64<E: de::Error>(self, value: i64) -> Result<Node, E> {
        Ok(Node::Number(value.into()))
    }

    fn visit_u64<E: de::Error>(self, value: u64) -> Result<Node, E> {
        Ok(Node::Number(value.into()))
    }

    fn visit_f64<E: de::Error>(self, value: f64) -> Result<Node, E> {
        serde_json::Number::from_f64(value)
            .map(Node::Number)
            .ok_or_else(|| E::custom("a number must be finite"))
    }

    fn visit_str<E: de::Error>(self, value: &str) -> Result<Node, E> {
        Ok(Node::String(value.to_owned()))
    }

    fn visit_string<E: de::Error>(self, value: String) -> Result<Node, E> {
        Ok(Node::String(value))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Node, E> {
        Ok(Node::Null)
    }

    fn visit_none<E: de::Error>(self) -> Result<Node, E> {
        Ok(Node::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Node, D::Error> {
        Node::deserialize(deserializer)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut elements: A) -> Result<Node, A::Error> {
        let mut out = Vec::with_capacity(elements.size_hint().unwrap_or(0).min(1024));
        while let Some(element) = elements.next_element()? {
            out.push(element);
        }
        Ok(Node::Array(out))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut members: A) -> Result<Node, A::Error> {
        let mut out = Vec::with_capacity(members.size_hint().unwrap_or(0).min(1024));
        while let Some(member) = members.next_entry::<String, Node>()? {
            out.push(member);
        }
        Ok(Node::Object(out))
    }
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Node, D::Error> {
        deserializer.deserialize_any(NodeVisitor)
    }
}

/// One step of the path to a value: a member of an object or an element of an array.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Step {
    Key(String),
    Index(usize),
}

/// What is wrong with the value at the error's path.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Fault {
    /// A value of the wrong kind; `expected` is filled in by the deserializer that was asked.
    Type {
        expected: Option<String>,
        found: String,
    },
    /// A value of the right kind that the type does not take (an integer out of range).
    Value {
        expected: Option<String>,
        found: String,
    },
    UnknownField {
        field: String,
        known: &'static [&'static str],
    },
    MissingField(&'static str),
    DuplicateField(&'static str),
    /// A type's own message (a date that does not parse).
    Other(String),
}

/// Why a value could not be read, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonError {
    /// Innermost step first: errors gather their path on the way out.
    path: Vec<Step>,
    fault: Fault,
}

impl JsonError {
    fn new(fault: Fault) -> JsonError {
        JsonError {
            path: Vec::new(),
            fault,
        }
    }

    fn wrong_type(expected: &str, found: String) -> JsonError {
        JsonError::new(Fault::Type {
            expected: Some(expected.to_owned()),
            found,
        })
    }

    fn within(mut self, step: Step) -> JsonError {
        self.path.push(step);
        self
    }

    /// Says what the value at this very place should have been, when the type's visitor
    /// refused it without saying so in JSON's words.
    fn expecting(mut self, what: &str) -> JsonError {
        if self.path.is_empty()
            && let Fault::Type { expected, .. } | Fault::Value { expected, .. } = &mut self.fault
            && expected.is_none()
        {
            *expected = Some(what.to_owned());
        }
        self
    }

    /// An optional value may also be null.
    fn or_null(mut self) -> JsonError {
        if self.path.is_empty()
            && let Fault::Type {
                expected: Some(expected),
                ..
            } = &mut self.fault
        {
            expected.push_str(" or null");
        }
        self
    }

    /// The path as clients write it: `lines[0].sku`; empty for the whole document.
    fn path_text(&self) -> String {
        let mut text = String::new();
        for step in self.path.iter().rev() {
            match step {
                Step::Key(key) if text.is_empty() => text.push_str(key),
                Step::Key(key) => {
                    text.push('.');
                    text.push_str(key);
                }
                Step::Index(index) => text.push_str(&format!("[{index}]")),
            }
        }
        text
    }

    /// The field at fault, as the problem's `field` names it; `None` for the whole document.
    pub fn field(&self) -> Option<String> {
        let path = self.path_text();
        let join = |name: &str| {
            if path.is_empty() {
                name.to_owned()
            } else {
                format!("{path}.{name}")
            }
        };
        match &self.fault {
            Fault::UnknownField { field, .. } => Some(join(field)),
            Fault::MissingField(field) | Fault::DuplicateField(field) => Some(join(field)),
            _ => (!path.is_empty()).then_some(path),
        }
    }

    /// For people: `whole` names the document ("the body"), `noun` its parts ("field").
    pub fn detail(&self, whole: &str, noun: &str) -> String {
        let subject = match self.field() {
            Some(field) => format!("`{field}`"),
            None => whole.to_owned(),
        };
        match &self.fault {
            Fault::Type { expected, found } | Fault::Value { expected, found } => match expected {
                Some(expected) => format!("{subject} must be {expected}, not {found}"),
                None => format!("{subject} cannot be {found}"),
            },
            Fault::UnknownField { known: [], .. } => {
                format!("{subject} is not a {noun} here: there are none")
            }
            Fault::UnknownField { known, .. } => {
                format!(
                    "{subject} is not a {noun} here; the {noun}s are {}",
                    known.join(", ")
                )
            }
            Fault::MissingField(_) => format!("{subject} is required"),
            Fault::DuplicateField(_) => format!("{subject} is given more than once"),
            Fault::Other(message) => format!("{subject}: {message}"),
        }
    }

    /// The problem it answers: unknown and missing fields have their own codes; anything
    /// else is `invalid` (a wrong type in a body, a bad parameter in a query).
    fn problem(&self, invalid: Code, whole: &str, noun: &str) -> Problem {
        let code = match self.fault {
            Fault::UnknownField { .. } if invalid == Code::InvalidType => Code::UnknownField,
            Fault::MissingField(_) if invalid == Code::InvalidType => Code::MissingField,
            _ => invalid,
        };
        let problem = Problem::new(code, self.detail(whole, noun));
        match self.field() {
            Some(field) => problem.with_field(field),
            None => problem,
        }
    }
}

/// What serde's `Unexpected` was, in JSON's words.
fn unexpected(value: &Unexpected<'_>) -> String {
    match value {
        Unexpected::Bool(value) => value.to_string(),
        Unexpected::Unsigned(value) => format!("the number {value}"),
        Unexpected::Signed(value) => format!("the number {value}"),
        Unexpected::Float(value) => format!("the number {value:?}"),
        Unexpected::Char(_) | Unexpected::Str(_) => "a string".into(),
        Unexpected::Unit | Unexpected::Option => "null".into(),
        Unexpected::Seq => "an array".into(),
        Unexpected::Map => "an object".into(),
        _ => "this value".into(),
    }
}

impl fmt::Display for JsonError {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&self.detail("the document", "field"))
    }
}

impl std::error::Error for JsonError {}

impl de::Error for JsonError {
    fn custom<T: fmt::Display>(message: T) -> JsonError {
        JsonError::new(Fault::Other(message.to_string()))
    }

    // The visitors' own expectations (`exp`) are Rust types; the deserializer that was
    // asked says what it expected instead (`expecting`).
    fn invalid_type(found: Unexpected<'_>, _exp: &dyn de::Expected) -> JsonError {
        JsonError::new(Fault::Type {
            expected: None,
            found: unexpected(&found),
        })
    }

    fn invalid_value(found: Unexpected<'_>, _exp: &dyn de::Expected) -> JsonError {
        JsonError::new(Fault::Value {
            expected: None,
            found: unexpected(&found),
        })
    }

    fn invalid_length(length: usize, _exp: &dyn de::Expected) -> JsonError {
        JsonError::new(Fault::Value {
            expected: None,
            found: format!("an array of {length}"),
        })
    }

    fn unknown_variant(variant: &str, expected: &'static [&'static str]) -> JsonError {
        JsonError::new(Fault::Value {
            expected: Some(format!("one of {}", expected.join(", "))),
            found: format!("{variant:?}"),
        })
    }

    fn unknown_field(field: &str, known: &'static [&'static str]) -> JsonError {
        JsonError::new(Fault::UnknownField {
            field: field.to_owned(),
            known,
        })
    }

    fn missing_field(field: &'static str) -> JsonError {
        JsonError::new(Fault::MissingField(field))
    }

    fn duplicate_field(field: &'static str) -> JsonError {
        JsonError::new(Fault::DuplicateField(field))
    }
}

/// A deserializer over a [`Node`] that gives each type only the JSON kind it asks for.
/// `text`: the tree is a query string's, whose values are all strings; numbers and booleans
/// are then parsed from them.
#[derive(Debug, Clone, Copy)]
pub struct Strict<'a> {
    node: &'a Node,
    text: bool,
}

/// The integer a number written with a fraction or an exponent stands for (`80.0`, `1e3`):
/// JSON Schema counts it an integer, so the API does too, as long as the number was read
/// exactly: below 2^53 in magnitude, where every integer has its own `f64` (the parser
/// rounds to the nearest, `float_roundtrip`). At 2^53 and beyond, `9007199254740993.0` would
/// read as its neighbour.
fn exact_integer(value: f64) -> Option<i128> {
    const EXACT: f64 = 9_007_199_254_740_992.0;
    (value.fract() == 0.0 && value.abs() < EXACT).then_some(value as i128)
}

/// An integer type's name in JSON's words, with its range.
fn integer_range(min: i128, max: i128) -> String {
    format!("an integer from {min} to {max}")
}

impl Strict<'_> {
    /// The value as an integer, for a type that holds `min..=max`.
    fn integer(&self, min: i128, max: i128) -> Result<i128, JsonError> {
        let (value, found) = match self.node {
            Node::Number(number) => {
                let value = number
                    .as_i64()
                    .map(i128::from)
                    .or_else(|| number.as_u64().map(i128::from))
                    .or_else(|| number.as_f64().and_then(exact_integer));
                (value, self.node.describe())
            }
            Node::String(text) if self.text => (text.parse::<i128>().ok(), format!("{text:?}")),
            other => (None, other.describe()),
        };
        let Some(value) = value else {
            return Err(JsonError::wrong_type("an integer", found));
        };
        if value < min || value > max {
            return Err(JsonError::new(Fault::Value {
                expected: Some(integer_range(min, max)),
                found,
            }));
        }
        Ok(value)
    }

    fn number(&self) -> Result<f64, JsonError> {
        match self.node {
            Node::Number(number) => number.as_f64(),
            Node::String(text) if self.text => text.parse::<f64>().ok().filter(|n| n.is_finite()),
            _ => None,
        }
        .ok_or_else(|| JsonError::wrong_type("a number", self.found()))
    }

    fn found(&self) -> String {
        match self.node {
            Node::String(text) if self.text => format!("{text:?}"),
            other => other.describe(),
        }
    }
}

macro_rules! integers {
    ($($method:ident => $visit:ident: $type:ty,)*) => {
        $(
            fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, JsonError> {
                let value = self.integer(i128::from(<$type>::MIN), i128::from(<$type>::MAX))?;
                let value = <$type>::try_from(value)
                    .map_err(|_| JsonError::custom("an integer out of range"))?;
                visitor.$visit(value).map_err(|e: JsonError| e.expecting("an integer"))
            }
        )*
    };
}

impl<'de> Deserializer<'de> for Strict<'_> {
    type Error = JsonError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, JsonError> {
        match self.node {
            Node::Null => visitor.visit_unit(),
            Node::Bool(value) => visitor.visit_bool(*value),
            Node::Number(number) => match (number.as_u64(), number.as_i64(), number.as_f64()) {
                (Some(value), _, _) => visitor.visit_u64(value),
                (None, Some(value), _) => visitor.visit_i64(value),
                (None, None, Some(value)) => visitor.visit_f64(value),
                (None, None, None) => Err(JsonError::custom("a number out of range")),
            },
            Node::String(text) => visitor.visit_str(text),
            Node::Array(elements) => visitor.visit_seq(Elements::new(elements, self.text)),
            Node::Object(members) => visitor.visit_map(Members::new(members, self.text)),
        }
    }

    integers! {
        deserialize_i8 => visit_i8: i8,
        deserialize_i16 => visit_i16: i16,
        deserialize_i32 => visit_i32: i32,
        deserialize_i64 => visit_i64: i64,
        deserialize_u8 => visit_u8: u8,
        deserialize_u16 => visit_u16: u16,
        deserialize_u32 => visit_u32: u32,
        deserialize_u64 => visit_u64: u64,
    }

    fn deserialize_f32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, JsonError> {
        self.deserialize_f64(visitor)
    }

    fn deserialize_f64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, JsonError> {
        let value = self.number()?;
        visitor
            .visit_f64(value)
            .map_err(|e: JsonError| e.expecting("a number"))
    }

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, JsonError> {
        let value = match self.node {
            Node::Bool(value) => Some(*value),
            Node::String(text) if self.text => match text.as_str() {
                "true" => Some(true),
                "false" => Some(false),
                _ => None,
            },
            _ => None,
        };
        match value {
            Some(value) => visitor.visit_bool(value),
            None => Err(JsonError::wrong_type("true or false", self.found())),
        }
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, JsonError> {
        match self.node {
            Node::String(text) => visitor
                .visit_str(text)
                .map_err(|e: JsonError| e.expecting("a string")),
            other => Err(JsonError::wrong_type("a string", other.describe())),
        }
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, JsonError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_char<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, JsonError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_bytes<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, JsonError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_byte_buf<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, JsonError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, JsonError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, JsonError> {
        match self.node {
            Node::Null => visitor.visit_none(),
            // A query has no null: a parameter is there or it is not.
            _ if self.text => visitor.visit_some(self),
            _ => visitor.visit_some(self).map_err(JsonError::or_null),
        }
    }

    fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, JsonError> {
        match self.node {
            Node::Null => visitor.visit_unit(),
            other => Err(JsonError::wrong_type("null", other.describe())),
        }
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, JsonError> {
        self.deserialize_unit(visitor)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, JsonError> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, JsonError> {
        match self.node {
            Node::Array(elements) => visitor
                .visit_seq(Elements::new(elements, self.text))
                .map_err(|e: JsonError| e.expecting("an array")),
            other => Err(JsonError::wrong_type("an array", other.describe())),
        }
    }

    fn deserialize_tuple<V: Visitor<'de>>(
        self,
        _length: usize,
        visitor: V,
    ) -> Result<V::Value, JsonError> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _length: usize,
        visitor: V,
    ) -> Result<V::Value, JsonError> {
        self.deserialize_seq(visitor)
    }

    /// The point of this deserializer: a struct or a map is read from an object only.
    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, JsonError> {
        match self.node {
            Node::Object(members) => visitor
                .visit_map(Members::new(members, self.text))
                .map_err(|e: JsonError| e.expecting("an object")),
            other => Err(JsonError::wrong_type("an object", other.describe())),
        }
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, JsonError> {
        self.deserialize_map(visitor)
    }

    /// Enums are read from their name as a string (unit variants: the only kind request
    /// types have).
    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, JsonError> {
        match self.node {
            Node::String(text) => visitor.visit_enum(text.as_str().into_deserializer()),
            other => Err(JsonError::wrong_type("a string", other.describe())),
        }
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, JsonError> {
        visitor.visit_unit()
    }

    fn deserialize_i128<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, JsonError> {
        let value = self.integer(i128::MIN, i128::MAX)?;
        visitor.visit_i128(value)
    }
}

/// The members of an object, each value at its key's step of the path.
struct Members<'a> {
    members: std::slice::Iter<'a, (String, Node)>,
    value: Option<&'a (String, Node)>,
    text: bool,
}

impl<'a> Members<'a> {
    fn new(members: &'a [(String, Node)], text: bool) -> Members<'a> {
        Members {
            members: members.iter(),
            value: None,
            text,
        }
    }
}

impl<'de> MapAccess<'de> for Members<'_> {
    type Error = JsonError;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, JsonError> {
        let Some(member) = self.members.next() else {
            return Ok(None);
        };
        self.value = Some(member);
        seed.deserialize(Key(&member.0)).map(Some)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, JsonError> {
        let Some((key, node)) = self.value.take() else {
            return Err(JsonError::custom("a value was read before its name"));
        };
        seed.deserialize(Strict {
            node,
            text: self.text,
        })
        .map_err(|e| e.within(Step::Key(key.clone())))
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.members.len())
    }
}

/// An object's member name: a string to whatever type reads it (a field name, a map key).
struct Key<'a>(&'a str);

impl<'de> Deserializer<'de> for Key<'_> {
    type Error = JsonError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, JsonError> {
        visitor.visit_str(self.0)
    }

    forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf option unit unit_struct newtype_struct seq tuple
        tuple_struct map struct enum identifier ignored_any
    }
}

/// The elements of an array, each at its index's step of the path.
struct Elements<'a> {
    elements: std::iter::Enumerate<std::slice::Iter<'a, Node>>,
    text: bool,
}

impl<'a> Elements<'a> {
    fn new(elements: &'a [Node], text: bool) -> Elements<'a> {
        Elements {
            elements: elements.iter().enumerate(),
            text,
        }
    }
}

impl<'de> SeqAccess<'de> for Elements<'_> {
    type Error = JsonError;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, JsonError> {
        let Some((index, node)) = self.elements.next() else {
            return Ok(None);
        };
        seed.deserialize(Strict {
            node,
            text: self.text,
        })
        .map(Some)
        .map_err(|e| e.within(Step::Index(index)))
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.elements.len())
    }
}

/// Reads a JSON tree into `T`.
pub fn from_node<T: DeserializeOwned>(node: &Node) -> Result<T, JsonError> {
    T::deserialize(Strict { node, text: false })
}

/// Reads a JSON body into `T`; every failure is a 400 problem naming the field at fault.
pub fn body<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Problem> {
    body_from_node(&parse(bytes)?)
}

/// Reads `T` from a body already read as a tree (to look at it first).
pub fn body_from_node<T: DeserializeOwned>(node: &Node) -> Result<T, Problem> {
    from_node(node).map_err(|error| error.problem(Code::InvalidType, "the body", "field"))
}

/// Reads the body as a JSON tree; not JSON is `malformed_body`.
pub fn parse(bytes: &[u8]) -> Result<Node, Problem> {
    let not_json = |error: serde_json::Error| {
        Problem::new(
            Code::MalformedBody,
            format!("the body is not JSON: {error}"),
        )
    };
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let node = Node::deserialize(&mut deserializer).map_err(not_json)?;
    deserializer.end().map_err(not_json)?;
    Ok(node)
}

/// Reads a query string (without the `?`) into `T`; every failure is `invalid_parameter`
/// naming the parameter.
pub fn query<T: DeserializeOwned>(query: &str) -> Result<T, Problem> {
    let members = form_urlencoded::parse(query.as_bytes())
        .map(|(name, value)| (name.into_owned(), Node::String(value.into_owned())))
        .collect();
    let node = Node::Object(members);
    T::deserialize(Strict {
        node: &node,
        text: true,
    })
    .map_err(|error| error.problem(Code::InvalidParameter, "the query string", "parameter"))
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    #[derive(Debug, Deserialize, PartialEq)]
    struct Count {
        n: i64,
    }

    fn read(text: &str) -> Option<i64> {
        super::body::<Count>(text.as_bytes()).ok().map(|c| c.n)
    }

    #[test]
    fn integers_are_read_as_json_schema_reads_them() {
        assert_eq!(read(r#"{"n": 80}"#), Some(80));
        assert_eq!(read(r#"{"n": 80.0}"#), Some(80));
        assert_eq!(read(r#"{"n": 1e3}"#), Some(1000));
        assert_eq!(read(r#"{"n": -41331.0}"#), Some(-41331));
        // Near 2^51 the parser must round to the nearest: the default one was one unit off.
        assert_eq!(
            read(r#"{"n": 2251799813685247.0}"#),
            Some(2_251_799_813_685_247)
        );
        assert_eq!(read(r#"{"n": 80.5}"#), None);
        assert_eq!(read(r#"{"n": 1e300}"#), None);
        // From 2^53 on, a float no longer names one integer: 2^53 + 1 would read as 2^53.
        assert_eq!(read(r#"{"n": 9007199254740993.0}"#), None);
        assert_eq!(read(r#"{"n": 9007199254740992.0}"#), None);
        assert_eq!(
            read(r#"{"n": 9007199254740991.0}"#),
            Some(9_007_199_254_740_991)
        );
    }
}
