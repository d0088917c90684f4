//! The bounds the OpenAPI document states (`patron_http::bounds`) against the checks the
//! server makes: every bound lands on a member of the document, and each text pattern accepts
//! exactly what the domain's check accepts (never more; less only where the pattern says why).

use patron_domain::text::{self, Lines};
use patron_http::bounds::{self, BODY_BOUNDS, Bound};
use proptest::prelude::*;
use serde_json::{Value, json};

#[test]
fn every_bound_lands_on_a_member_of_the_document() {
    let document: Value = serde_json::from_str(&patron_http::openapi_json()).unwrap();
    for (schema, property, _) in BODY_BOUNDS {
        let pointer = format!("/components/schemas/{schema}/properties/{property}");
        let member = document.pointer(&pointer);
        assert!(
            member.is_some(),
            "{pointer}: no such member in the document"
        );
        let text = member.unwrap().to_string();
        assert!(
            [
                "pattern",
                "minimum",
                "maxItems",
                "enum",
                "maxProperties",
                "format",
                "maxLength"
            ]
            .iter()
            .any(|keyword| text.contains(keyword)),
            "{pointer} carries no bound: {text}"
        );
    }
}

fn validator(bound: Bound) -> jsonschema::Validator {
    let mut schema = bounds::keywords(bound);
    schema.insert("type".into(), json!("string"));
    jsonschema::validator_for(&Value::Object(schema)).unwrap()
}

const ORDINARY: &[char] = &['a', 'Z', '7', '-', '.', ' ', 'س', 'ل', 'م', 'ש', '۲', '😀'];
const SPECIAL: &[char] = &[
    '\t',
    '\n',
    '\r',
    '\u{0}',
    '\u{7F}',
    '\u{85}',
    '\u{A0}',
    '\u{AD}',
    '\u{0301}',
    '\u{061C}',
    '\u{200B}',
    '\u{200C}',
    '\u{200D}',
    '\u{200E}',
    '\u{200F}',
    '\u{2028}',
    '\u{2029}',
    '\u{202E}',
    '\u{2066}',
    '\u{3000}',
    '\u{3164}',
    '\u{E000}',
    '\u{FEFF}',
    '\u{0378}',
    '\u{10FFFF}',
    '\u{0903}',
];

/// Characters that each rule treats in its own way, ordinary ones, and any at all.
fn character() -> impl Strategy<Value = char> {
    prop_oneof![
        4 => prop::sample::select(ORDINARY.to_vec()),
        1 => prop::sample::select(SPECIAL.to_vec()),
        1 => any::<char>(),
    ]
}

/// Where a pattern may refuse what the server takes: a spacing mark (Mc) alone, which the
/// server counts as visible; a character the server's Unicode tables (`unicode-properties`)
/// know and an older validator's do not (it is unassigned, `\p{Cn}`, to that validator). Where
/// it may take what the server refuses: a Hangul filler or the blank Braille pattern as the
/// only "letters" (they are L and So to Unicode, blank to the server).
fn documented_gap(value: &str) -> bool {
    value.chars().any(|c| matches!(c, '\u{0903}' | '\u{3164}'))
}

/// Whether every character is one the test names (not drawn from the whole of Unicode).
fn named(value: &str) -> bool {
    value
        .chars()
        .all(|c| ORDINARY.contains(&c) || SPECIAL.contains(&c))
}

fn agree(bound: Bound, value: &str, server: bool) -> Result<(), TestCaseError> {
    let document = validator(bound).is_valid(&json!(value));
    // Looser than the server is a lie a client pays for; stricter only where said above.
    let looser = document && !server;
    let stricter = !document && server && named(value);
    if (looser || stricter) && !documented_gap(value) {
        return Err(TestCaseError::fail(format!(
            "{bound:?} on {:?}: the document says {document}, the server {server}",
            value.escape_unicode().to_string()
        )));
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn text_patterns_accept_what_the_server_accepts(
        chars in prop::collection::vec(character(), 0..8)
    ) {
        let value: String = chars.into_iter().collect();
        agree(Bound::Identifier(128), &value, text::check_identifier(&value, 128).is_ok())?;
        // The server trims a name before it checks it; the document states the text as sent.
        let trimmed_ok = text::check_free_text(&value, 200, Lines::One).is_ok();
        let line = Bound::Line(200);
        if validator(line).is_valid(&json!(value)) {
            prop_assert!(trimmed_ok || documented_gap(&value), "{value:?}");
        } else if value.trim() == value {
            agree(line, &value, trimmed_ok)?;
        }
        let many = text::check_free_text(&value, 200, Lines::Many).is_ok();
        if value.trim() == value {
            agree(Bound::Text(200), &value, many)?;
        }
        agree(Bound::Value(200), &value, text::check_value_text(&value, 200).is_ok())?;
    }

    #[test]
    fn decimal_patterns_accept_only_positive_numbers_the_server_reads(
        whole in "[0-9\u{06F0}-\u{06F9}]{0,11}",
        fraction in prop::option::of("[0-9\u{0660}-\u{0669}]{0,10}"),
        point in prop::sample::select(vec![".", "\u{066B}", ","]),
    ) {
        let value = match fraction {
            Some(fraction) => format!("{whole}{point}{fraction}"),
            None => whole,
        };
        let read = text::number::parse_decimal(&value);
        if validator(Bound::Decimal).is_valid(&json!(value)) {
            let read = read.unwrap();
            prop_assert!(read > 0.into() && read < 1_000_000_000.into(), "{value:?} = {read}");
        }
        if validator(Bound::Percent).is_valid(&json!(value)) {
            let read = text::number::parse_decimal(&value).unwrap();
            prop_assert!(read > 0.into() && read <= 100.into(), "{value:?} = {read}");
        }
    }
}
