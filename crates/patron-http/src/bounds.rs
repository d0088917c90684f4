//! The bounds the server enforces, stated in the OpenAPI document.
//!
//! The handlers' annotations say what each field is; this table says how far it may go:
//! lengths, the characters a text may hold (as patterns), ranges, the values of a closed set,
//! how many items a list takes. Each bound is built from the constant or the list the
//! validation itself reads (`patron_domain::text`, `patron_domain::limits`, the engine's
//! request checks and word lists), so the document and the server cannot drift apart;
//! `tests/api/bounds.rs` checks that every bound lands on a member of the document and that each
//! text pattern accepts what the domain's check accepts, and CI's Schemathesis run
//! (`.ci/schemathesis/`) sends the document's valid and invalid requests to the server.
//!
//! What a schema cannot say is said in the field's description and left to the server: a
//! phone number's numbering plan, a card's check digit, a coupon code's check character, a
//! time zone's existence, whether an amount times a quantity passes the program's limit, ids
//! and codes that name nothing in the club. `.ci/schemathesis.toml` lists those per operation.
//!
//! Patterns are ECMA-262 regular expressions with Unicode property escapes (`\p{..}`, which
//! need the `u` flag), anchored at both ends.

use patron_domain::limits::{AMOUNT_MINOR_CEILING, POINTS_CEILING};
use patron_domain::rewards::SoftBenefit;
use patron_domain::shared::Locale;
use patron_domain::text::{self, number::NUMBER_CHARS_MAX};
use patron_domain::{card, coupon};
use patron_engine::rewards::{
    CODES_PER_BATCH_MAX, LIMIT_PERIOD_WORDS, PARTNER_CODES_PER_UPLOAD_MAX, PROMOTION_BENEFIT_KINDS,
};
use patron_engine::{
    CONSENT_CHANNELS, ENROLL_CHANNELS, EVENT_TYPE_CHARS_MAX, HOLD_MAX_MINUTES, PURCHASE_CHANNELS,
    PURCHASE_LINES_MAX,
};
use serde_json::{Map, Value, json};

/// A character an identifier may hold at either end: anything that shows or is a mark, but
/// no control, format, private-use or unassigned character, and no white space.
const ID_END: &str = r"[^\p{C}\s]";
/// A character inside an identifier: the same, and the plain space.
const ID_INNER: &str = r"(?:[^\p{C}\s]| )";
/// A character that shows by itself (`patron_domain::text::is_visible`): a letter, digit,
/// punctuation or symbol, but the Hangul fillers and the blank Braille pattern. (A spacing
/// mark, Mc, shows too; the pattern leaves it out, so a text of marks alone is refused by the
/// document but not by the server: stricter, never looser.)
const VISIBLE: &str = r"[\p{L}\p{N}\p{P}\p{S}]";
/// A character of a one-line text people read: no control, format (but the joiners and
/// direction marks writing needs), private-use or unassigned character, no line or paragraph
/// separator.
const LINE_CHAR: &str = r"(?:[^\p{C}\u2028\u2029]|[\u200C-\u200F\u061C])";
/// The same, where a text may span lines.
const TEXT_CHAR: &str = r"(?:[^\p{C}\u2028\u2029]|[\u200C-\u200F\u061C\t\n\r])";
/// A digit as members type them: ASCII, Persian or Arabic-Indic.
const DIGIT: &str = r"[0-9\u06F0-\u06F9\u0660-\u0669]";
/// The same, but zero.
const NONZERO: &str = r"[1-9\u06F1-\u06F9\u0661-\u0669]";
/// A decimal point: `.`, or the Arabic decimal separator Persian keyboards type.
const POINT: &str = r"[.\u066B]";
/// A positive decimal below one: a zero, a point, digits not all zero.
const SMALL: &str = r"[0\u06F0\u0660][.\u066B][0\u06F0\u0660]{0,8}[1-9\u06F1-\u06F9\u0661-\u0669][0-9\u06F0-\u06F9\u0660-\u0669]{0,8}";

/// How far one value may go.
#[derive(Debug, Clone, Copy)]
pub enum Bound {
    /// `text::check_identifier` with this many characters at most.
    Identifier(usize),
    /// `text::check_free_text` on one line.
    Line(usize),
    /// `text::check_free_text` over several lines.
    Text(usize),
    /// `text::check_value_text`: kept as sent, may be empty.
    Value(usize),
    /// A code of `a-z`, `0-9` and `_`.
    Code(usize),
    /// An integer in `min..=max`; `nonzero` when zero is refused too.
    Integer { min: i64, max: i64, nonzero: bool },
    /// A number above `above` and at most `max`.
    Number { above: f64, max: f64 },
    /// One of these words.
    OneOf(&'static [&'static str]),
    /// A decimal as text (`patron_domain::text::number`), positive.
    Decimal,
    /// A percentage as text: a decimal above 0 and at most 100.
    Percent,
    /// A partner's voucher code: letters and digits, dashes and spaces ignored.
    PartnerCode,
    /// A list of `min..=max` items.
    Items { min: usize, max: usize },
    /// An object of at most this many members, whose names match the pattern (an identifier
    /// when empty); `scalar_text`: the values are scalars, strings of at most this many characters.
    Members {
        max: usize,
        names: &'static str,
        name_max: usize,
        scalar_text: Option<usize>,
    },
    /// A date, `YYYY-MM-DD`.
    Date,
    /// A date, or an RFC 3339 instant.
    DateOrInstant,
    /// A card number: digits, with its check digit.
    CardNumber,
    /// A coupon code: the coupon alphabet, with dashes and spaces between groups.
    CouponCode,
    /// A phone number as people write it: digits in any of the digits members type, a
    /// leading `+`, spaces, dashes, dots and parentheses.
    Phone,
    /// An e-mail address.
    Email,
    /// An IANA time zone name.
    TimeZone,
    /// Letters, digits, `-` and `_`.
    Slug(usize),
    /// A three-letter currency code.
    Currency,
    /// An `Idempotency-Key`: printable ASCII (a header), no space at either end.
    AsciiKey,
    /// A page size: any `u32`; the server answers at most its own page limit.
    PageSize,
}

const LOCALES: &[&str] = &Locale::CODES;
const POINTS: Bound = Bound::Integer {
    min: 1,
    max: POINTS_CEILING,
    nonzero: false,
};
const AMOUNT: Bound = Bound::Integer {
    min: 0,
    max: AMOUNT_MINOR_CEILING,
    nonzero: false,
};
const POSITIVE_AMOUNT: Bound = Bound::Integer {
    min: 1,
    max: AMOUNT_MINOR_CEILING,
    nonzero: false,
};
const ID: Bound = Bound::Identifier(text::IDENTIFIER_CHARS_MAX);
const ATTRIBUTES: Bound = Bound::Members {
    max: text::ATTRIBUTES_MAX,
    names: "^[a-z][a-z0-9_]*$",
    name_max: 64,
    scalar_text: Some(text::ATTRIBUTE_STRING_CHARS_MAX),
};

/// Every bounded member of a request body: (schema, property, bound).
pub const BODY_BOUNDS: &[(&str, &str, Bound)] = &[
    (
        "AdjustBody",
        "points",
        Bound::Integer {
            min: -POINTS_CEILING,
            max: POINTS_CEILING,
            nonzero: true,
        },
    ),
    ("AdjustBody", "reason", Bound::Line(text::REASON_CHARS_MAX)),
    ("AttachBody", "member_id", ID),
    ("BenefitBody", "amount_minor", POSITIVE_AMOUNT),
    ("BenefitBody", "cap_minor", POSITIVE_AMOUNT),
    ("BenefitBody", "sku", ID),
    ("BenefitBody", "benefit", Bound::OneOf(SoftBenefit::WORDS)),
    ("BenefitBody", "kind", Bound::OneOf(PROMOTION_BENEFIT_KINDS)),
    ("BenefitBody", "percent", Bound::Percent),
    ("CaptureBody", "points", POINTS),
    ("ConsentBody", "channel", Bound::OneOf(CONSENT_CHANNELS)),
    (
        "ConsentBody",
        "method",
        Bound::Identifier(text::CONSENT_WORD_CHARS_MAX),
    ),
    (
        "ConsentBody",
        "topic",
        Bound::Identifier(text::CONSENT_WORD_CHARS_MAX),
    ),
    (
        "ConsentBody",
        "text_shown",
        Bound::Text(text::CONSENT_TEXT_CHARS_MAX),
    ),
    ("CouponReleaseBody", "order_id", ID),
    ("CouponUseBody", "cart_total_minor", AMOUNT),
    ("CouponUseBody", "member_id", ID),
    ("CouponUseBody", "order_id", ID),
    ("EnrollBody", "attributes", ATTRIBUTES),
    ("EnrollBody", "birthday", Bound::Date),
    ("EnrollBody", "card_number", Bound::CardNumber),
    ("EnrollBody", "channel", Bound::OneOf(ENROLL_CHANNELS)),
    ("EnrollBody", "consents", Bound::Items { min: 0, max: 100 }),
    ("EnrollBody", "email", Bound::Email),
    ("EnrollBody", "external_id", ID),
    ("EnrollBody", "locale", Bound::OneOf(LOCALES)),
    ("EnrollBody", "name", Bound::Line(text::NAME_CHARS_MAX)),
    ("EnrollBody", "phone", Bound::Phone),
    ("EnrollBody", "referral_code", ID),
    ("EnrollBody", "time_zone", Bound::TimeZone),
    ("EventBody", "member_id", ID),
    (
        "EventBody",
        "properties",
        Bound::Members {
            max: text::EVENT_PROPERTIES_MAX,
            names: "",
            name_max: text::EVENT_PROPERTY_KEY_CHARS_MAX,
            scalar_text: None,
        },
    ),
    ("EventBody", "type", Bound::Code(EVENT_TYPE_CHARS_MAX)),
    (
        "GenerateCodesBody",
        "count",
        Bound::Integer {
            min: 1,
            max: CODES_PER_BATCH_MAX,
            nonzero: false,
        },
    ),
    (
        "LimitBody",
        "count",
        Bound::Integer {
            min: 1,
            max: i64::MAX,
            nonzero: false,
        },
    ),
    ("LimitBody", "per", Bound::OneOf(LIMIT_PERIOD_WORDS)),
    ("MemberPatchBody", "attributes", ATTRIBUTES),
    ("MemberPatchBody", "birthday", Bound::Date),
    (
        "MemberPatchBody",
        "consents",
        Bound::Items { min: 0, max: 100 },
    ),
    ("MemberPatchBody", "email", Bound::Email),
    ("MemberPatchBody", "external_id", ID),
    ("MemberPatchBody", "locale", Bound::OneOf(LOCALES)),
    ("MemberPatchBody", "name", Bound::Line(text::NAME_CHARS_MAX)),
    ("MemberPatchBody", "phone", Bound::Phone),
    ("MemberPatchBody", "time_zone", Bound::TimeZone),
    (
        "PartnerCodesBody",
        "codes",
        Bound::Items {
            min: 1,
            max: PARTNER_CODES_PER_UPLOAD_MAX,
        },
    ),
    ("PromotionBody", "budget_minor", POSITIVE_AMOUNT),
    (
        "PromotionBody",
        "budget_redemptions",
        Bound::Integer {
            min: 1,
            max: i64::MAX,
            nonzero: false,
        },
    ),
    ("PromotionBody", "id", Bound::Slug(64)),
    ("PromotionBody", "name", Bound::Line(text::NAME_CHARS_MAX)),
    (
        "PromotionBody",
        "uses_per_code",
        Bound::Integer {
            min: 1,
            max: i64::MAX,
            nonzero: false,
        },
    ),
    ("PartnerCodesBody", "codes/items", Bound::PartnerCode),
    ("PurchaseBody", "channel", Bound::OneOf(PURCHASE_CHANNELS)),
    ("PurchaseBody", "currency", Bound::Currency),
    ("PurchaseBody", "document_id", ID),
    (
        "PurchaseBody",
        "lines",
        Bound::Items {
            min: 1,
            max: PURCHASE_LINES_MAX,
        },
    ),
    ("PurchaseBody", "member_id", ID),
    ("PurchaseBody", "store_id", ID),
    ("PurchaseLineBody", "category", ID),
    ("PurchaseLineBody", "discount_minor", AMOUNT),
    ("PurchaseLineBody", "quantity", Bound::Decimal),
    ("PurchaseLineBody", "sku", ID),
    ("PurchaseLineBody", "unit_price_minor", AMOUNT),
    (
        "RedeemBody",
        "description",
        Bound::Line(text::DESCRIPTION_CHARS_MAX),
    ),
    (
        "RedeemBody",
        "hold_minutes",
        Bound::Integer {
            min: 1,
            max: HOLD_MAX_MINUTES,
            nonzero: false,
        },
    ),
    ("RedeemBody", "points", POINTS),
    ("ReferrerBody", "referral_code", ID),
    ("RefundBody", "document_id", ID),
    (
        "RefundBody",
        "lines",
        Bound::Items {
            min: 1,
            max: PURCHASE_LINES_MAX,
        },
    ),
    (
        "RefundLineBody",
        "line_no",
        Bound::Integer {
            min: 1,
            max: PURCHASE_LINES_MAX as i64,
            nonzero: false,
        },
    ),
    ("RefundLineBody", "quantity", Bound::Decimal),
    ("ReplaceCardBody", "replacement", Bound::CardNumber),
    ("RewardRedeemBody", "reward_id", Bound::Code(64)),
    (
        "TierFloorBody",
        "reason",
        Bound::Line(text::REASON_CHARS_MAX),
    ),
    ("TierFloorBody", "tier", Bound::Code(32)),
    ("TierFloorBody", "until", Bound::DateOrInstant),
    ("TransferBody", "points", POINTS),
    ("TransferBody", "to_member_id", ID),
];

/// Every bounded parameter: (operation id, or `*` for every operation, parameter, bound).
pub const PARAMETER_BOUNDS: &[(&str, &str, Bound)] = &[
    ("*", "Idempotency-Key", Bound::AsciiKey),
    ("*", "limit", Bound::PageSize),
    ("*", "locale", Bound::OneOf(LOCALES)),
    ("get_baskets", "level", Bound::OneOf(&["category", "sku"])),
    (
        "get_baskets",
        "min_support",
        Bound::Number {
            above: 0.0,
            max: 1.0,
        },
    ),
    ("get_baskets", "since", Bound::Date),
    (
        "get_metrics",
        "period",
        Bound::OneOf(&["day", "week", "month"]),
    ),
    ("get_metrics", "from", Bound::Date),
    ("get_metrics", "to", Bound::Date),
    ("get_metrics", "store", ID),
    ("get_rfv", "as_of", Bound::Date),
    ("replace_card", "number", Bound::CardNumber),
    ("get_coupon", "code", Bound::CouponCode),
    ("validate_coupon", "code", Bound::CouponCode),
    ("redeem_coupon", "code", Bound::CouponCode),
    ("release_coupon", "code", Bound::CouponCode),
    // A look-up value is read as the stored ones are (a phone in the club's plan, a card's
    // digits...); one that cannot match any is no error, only no member.
    ("list_members", "phone", ID),
    ("list_members", "email", ID),
    ("list_members", "card", ID),
    ("list_members", "external_id", ID),
    ("list_members", "referral_code", ID),
    (
        "remove_member_tier",
        "reason",
        Bound::Line(text::REASON_CHARS_MAX),
    ),
];

/// The schema keywords that state `bound`, to merge into a value's schema.
pub fn keywords(bound: Bound) -> Map<String, Value> {
    let value = match bound {
        Bound::Identifier(max) => string(
            1,
            max,
            &format!("^(?:{ID_END}{ID_INNER}*)?{VISIBLE}(?:{ID_INNER}*{ID_END})?$"),
        ),
        Bound::Line(max) => string(1, max, &format!("^{LINE_CHAR}*{VISIBLE}{LINE_CHAR}*$")),
        Bound::Text(max) => string(1, max, &format!("^{TEXT_CHAR}*{VISIBLE}{TEXT_CHAR}*$")),
        Bound::Value(max) => string(0, max, &format!("^{TEXT_CHAR}*$")),
        Bound::Code(max) => string(1, max, "^[a-z0-9_]+$"),
        Bound::Slug(max) => string(1, max, "^[A-Za-z0-9_-]+$"),
        Bound::Currency => string(3, 3, "^[A-Z]{3}$"),
        Bound::AsciiKey => string(
            1,
            text::IDEMPOTENCY_KEY_CHARS_MAX,
            "^[!-~](?:[ -~]*[!-~])?$",
        ),
        Bound::PageSize => {
            json!({ "format": "int64", "minimum": 0, "maximum": u32::MAX })
        }
        Bound::Integer { min, max, nonzero } => {
            let mut value = json!({ "minimum": min, "maximum": max });
            if nonzero {
                value["not"] = json!({ "const": 0 });
            }
            value
        }
        Bound::Number { above, max } => json!({ "exclusiveMinimum": above, "maximum": max }),
        Bound::OneOf(words) => json!({ "enum": words }),
        Bound::Decimal => string(
            1,
            NUMBER_CHARS_MAX,
            &format!("^(?:{NONZERO}{DIGIT}{{0,8}}(?:{POINT}{DIGIT}{{1,9}})?|{SMALL})$"),
        ),
        Bound::Items { min, max } => json!({ "minItems": min, "maxItems": max }),
        Bound::Members {
            max,
            names,
            name_max,
            scalar_text,
        } => {
            let names = if names.is_empty() {
                keywords(Bound::Identifier(name_max))
            } else {
                string(1, name_max, names)
                    .as_object()
                    .cloned()
                    .unwrap_or_default()
            };
            let mut value = json!({ "maxProperties": max, "propertyNames": names });
            if let Some(max) = scalar_text {
                let mut values = keywords(Bound::Value(max));
                values.insert(
                    "type".into(),
                    json!(["string", "number", "boolean", "null"]),
                );
                value["additionalProperties"] = Value::Object(values);
            }
            value
        }
        Bound::Percent => string(
            1,
            NUMBER_CHARS_MAX,
            &format!(
                "^(?:100(?:{POINT}0{{1,9}})?|{NONZERO}{DIGIT}?(?:{POINT}{DIGIT}{{1,9}})?|{SMALL})$"
            ),
        ),
        Bound::PartnerCode => string(1, 64, "^[A-Za-z0-9 -]*[A-Za-z0-9][A-Za-z0-9 -]*$"),
        Bound::Date => json!({ "format": "date", "pattern": r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$" }),
        Bound::DateOrInstant => json!({
            "pattern": r"^[0-9]{4}-[0-9]{2}-[0-9]{2}(?:[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{1,9})?(?:[Zz]|[+-][0-9]{2}:[0-9]{2}))?$"
        }),
        Bound::CardNumber => string(
            card::CARD_NUMBER_LENGTH_MIN,
            card::CARD_NUMBER_LENGTH_MAX,
            "^[0-9]+$",
        ),
        Bound::CouponCode => string(
            2,
            coupon::CODE_CHARS_MAX,
            &format!(
                "^[{alphabet}{lower}][{alphabet}{lower} -]*[{alphabet}{lower}]$",
                alphabet = std::str::from_utf8(coupon::ALPHABET).unwrap_or_default(),
                lower = std::str::from_utf8(coupon::ALPHABET)
                    .unwrap_or_default()
                    .to_ascii_lowercase()
            ),
        ),
        Bound::Phone => string(
            1,
            patron_domain::phone::PHONE_CHARS_MAX,
            &format!(r"^\+?(?:{DIGIT}|[ ().-])*{DIGIT}(?:{DIGIT}|[ ().-])*$"),
        ),
        Bound::Email => json!({ "format": "email", "minLength": 3, "maxLength": 254 }),
        Bound::TimeZone => string(1, 64, "^[A-Za-z0-9_+/-]+$"),
    };
    value.as_object().cloned().unwrap_or_default()
}

fn string(min: usize, max: usize, pattern: &str) -> Value {
    json!({ "minLength": min, "maxLength": max, "pattern": pattern })
}

/// Merges the bounds into the document made from the handlers' annotations.
pub fn apply(document: &mut Value) {
    for (schema, property, bound) in BODY_BOUNDS {
        let pointer = format!("/components/schemas/{schema}/properties/{property}");
        if let Some(target) = document.pointer_mut(&pointer) {
            merge(target, *bound);
        }
    }
    let Some(paths) = document.get_mut("paths").and_then(Value::as_object_mut) else {
        return;
    };
    for operation in paths.values_mut().filter_map(Value::as_object_mut) {
        for operation in operation.values_mut() {
            let id = operation
                .get("operationId")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            let Some(parameters) = operation
                .get_mut("parameters")
                .and_then(Value::as_array_mut)
            else {
                continue;
            };
            for parameter in parameters {
                let name = parameter
                    .get("name")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                let bound = PARAMETER_BOUNDS
                    .iter()
                    .find(|(op, p, _)| *p == name && *op == id)
                    .or_else(|| {
                        PARAMETER_BOUNDS
                            .iter()
                            .find(|(op, p, _)| *p == name && *op == "*")
                    });
                if let (Some((_, _, bound)), Some(schema)) = (bound, parameter.get_mut("schema")) {
                    merge(schema, *bound);
                }
            }
        }
    }
}

/// Adds the keywords to a value's schema; where the value may also be `null` (`oneOf`), to
/// its non-null branch.
fn merge(schema: &mut Value, bound: Bound) {
    if let Some(branches) = schema.get_mut("oneOf").and_then(Value::as_array_mut) {
        for branch in branches {
            if branch.get("type").and_then(Value::as_str) != Some("null") {
                merge(branch, bound);
            }
        }
        return;
    }
    let nullable = schema
        .get("type")
        .and_then(Value::as_array)
        .is_some_and(|types| types.iter().any(|t| t == "null"));
    if let Some(object) = schema.as_object_mut() {
        for (key, mut value) in keywords(bound) {
            // `enum` speaks of every type: a member that may be null lists null among its values.
            if key == "enum"
                && nullable
                && let Some(values) = value.as_array_mut()
            {
                values.push(Value::Null);
            }
            object.insert(key, value);
        }
    }
}
