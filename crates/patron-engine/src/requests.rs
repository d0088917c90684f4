//! The requests use cases accept. They are plain data (serde) so that the HTTP layer can
//! deserialize them, the CLI can build them, and the engine can hash their canonical JSON to
//! bind an idempotency key to one request.

use std::collections::BTreeMap;

use jiff::Timestamp;
use patron_domain::text;
use patron_store::members::Profile;
use serde::{Deserialize, Serialize};

use crate::EngineError;

/// Longest list of lines in one purchase (TIGER_STYLE: a limit on everything).
pub const PURCHASE_LINES_MAX: usize = 1000;

/// Where a purchase is made.
pub const PURCHASE_CHANNELS: &[&str] = &["pos", "web", "phone", "app"];

/// How a member joins.
pub const ENROLL_CHANNELS: &[&str] = &["pos", "web", "phone", "import", "referral"];

/// The channels a member consents (or not) to be contacted on.
pub const CONSENT_CHANNELS: &[&str] = &["email", "sms", "whatsapp", "push", "phone", "mail"];

/// An identifier (a document id, a SKU...): see `patron_domain::text` for what it refuses.
pub(crate) fn check_text(field: &str, value: &str) -> Result<(), EngineError> {
    text::check_identifier(value, text::IDENTIFIER_CHARS_MAX)
        .map_err(|e| EngineError::invalid(field, e.to_string()))
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProfileFields {
    #[serde(default)]
    pub external_id: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub phone: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
    /// `YYYY-MM-DD`
    #[serde(default)]
    pub birthday: Option<String>,
    /// fa | he | en
    #[serde(default)]
    pub locale: Option<String>,
    /// IANA, e.g. `Asia/Tehran`
    #[serde(default)]
    pub time_zone: Option<String>,
    #[serde(default)]
    pub attributes: BTreeMap<String, serde_json::Value>,
}

impl ProfileFields {
    pub(crate) fn from_profile(profile: &Profile) -> Result<ProfileFields, EngineError> {
        let attributes: BTreeMap<String, serde_json::Value> =
            serde_json::from_str(&profile.attributes).map_err(|e| {
                EngineError::Store(patron_store::StoreError::Corrupt(format!(
                    "stored attributes: {e}"
                )))
            })?;
        Ok(ProfileFields {
            external_id: profile.external_id.clone(),
            name: profile.name.clone(),
            phone: profile.phone.clone(),
            email: profile.email.clone(),
            birthday: profile.birthday.clone(),
            locale: profile.locale.clone(),
            time_zone: profile.time_zone.clone(),
            attributes,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsentRequest {
    /// email | sms | whatsapp | push | phone | mail
    pub channel: String,
    #[serde(default)]
    pub topic: Option<String>,
    pub granted: bool,
    /// How it was given (pos, web, phone, import...).
    pub method: String,
    /// The exact text the member was shown: the evidence.
    pub text_shown: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnrollRequest {
    #[serde(flatten)]
    pub profile: ProfileFields,
    /// pos | web | phone | import | referral
    pub channel: String,
    /// A pre-printed card handed over at enrollment; otherwise a virtual card is issued.
    #[serde(default)]
    pub card_number: Option<String>,
    #[serde(default)]
    pub consents: Vec<ConsentRequest>,
}

/// Reads a field that is present (even as `null`) as `Some`, so `null` can mean "clear it";
/// a missing field stays `None` through `#[serde(default)]`.
fn present<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}

/// A partial update: a field that is absent stays, `null` clears it.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MemberPatch {
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub external_id: Option<Option<String>>,
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub name: Option<Option<String>>,
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub phone: Option<Option<String>>,
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub email: Option<Option<String>>,
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub birthday: Option<Option<String>>,
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub locale: Option<Option<String>>,
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub time_zone: Option<Option<String>>,
    /// Attributes to set (a `null` value removes one).
    #[serde(default)]
    pub attributes: BTreeMap<String, serde_json::Value>,
    #[serde(default)]
    pub consents: Vec<ConsentRequest>,
}

impl MemberPatch {
    pub(crate) fn apply(&self, fields: &mut ProfileFields) {
        let set = |target: &mut Option<String>, patch: &Option<Option<String>>| {
            if let Some(value) = patch {
                *target = value.clone();
            }
        };
        set(&mut fields.external_id, &self.external_id);
        set(&mut fields.name, &self.name);
        set(&mut fields.phone, &self.phone);
        set(&mut fields.email, &self.email);
        set(&mut fields.birthday, &self.birthday);
        set(&mut fields.locale, &self.locale);
        set(&mut fields.time_zone, &self.time_zone);
        for (key, value) in &self.attributes {
            if value.is_null() {
                fields.attributes.remove(key);
            } else {
                fields.attributes.insert(key.clone(), value.clone());
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PurchaseLineRequest {
    pub sku: String,
    pub category: String,
    /// A decimal as text (`"2"`, `"0.75"`), so no precision is lost in JSON.
    pub quantity: String,
    pub unit_price_minor: i64,
    #[serde(default)]
    pub discount_minor: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PurchaseRequest {
    /// The shop's own id of the receipt: a purchase is posted once per document id.
    pub document_id: String,
    /// None: an anonymous purchase (kept for the identified-revenue metric).
    #[serde(default)]
    pub member_id: Option<String>,
    pub store_id: String,
    /// pos | web | phone | app
    pub channel: String,
    /// When it happened at the till; defaults to now.
    #[serde(default)]
    pub occurred_at: Option<Timestamp>,
    /// ISO 4217; must be the program's currency.
    pub currency: String,
    pub lines: Vec<PurchaseLineRequest>,
}

impl PurchaseRequest {
    pub fn validate(&self) -> Result<(), EngineError> {
        check_text("document_id", &self.document_id)?;
        check_text("store_id", &self.store_id)?;
        if !PURCHASE_CHANNELS.contains(&self.channel.as_str()) {
            return Err(EngineError::invalid(
                "channel",
                "use pos, web, phone or app",
            ));
        }
        if self.currency.len() != 3 || !self.currency.chars().all(|c| c.is_ascii_uppercase()) {
            return Err(EngineError::invalid(
                "currency",
                "an ISO 4217 code such as USD",
            ));
        }
        if self.lines.is_empty() || self.lines.len() > PURCHASE_LINES_MAX {
            return Err(EngineError::invalid(
                "lines",
                format!("a purchase has 1 to {PURCHASE_LINES_MAX} lines"),
            ));
        }
        for (i, line) in self.lines.iter().enumerate() {
            check_text(&format!("lines[{i}].sku"), &line.sku)?;
            check_text(&format!("lines[{i}].category"), &line.category)?;
        }
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RefundLineRequest {
    pub line_no: i64,
    pub quantity: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RefundRequest {
    /// The shop's id of the return document: a refund is applied once per document id.
    pub document_id: String,
    /// Absent: everything that remains of the purchase.
    #[serde(default)]
    pub lines: Option<Vec<RefundLineRequest>>,
    #[serde(default)]
    pub occurred_at: Option<Timestamp>,
}

impl RefundRequest {
    /// The lines to return, their quantities read in any digits (`patron_domain::text::number`)
    /// and written in ASCII, as the store reads them; `None`: everything that remains.
    pub(crate) fn refund_lines(
        &self,
    ) -> Result<Option<Vec<patron_store::purchases::RefundLine>>, EngineError> {
        let Some(lines) = &self.lines else {
            return Ok(None);
        };
        let mut read = Vec::with_capacity(lines.len());
        for (i, line) in lines.iter().enumerate() {
            let quantity = text::number::parse_decimal(&line.quantity)
                .map_err(|e| EngineError::invalid(format!("lines[{i}].quantity"), e.to_string()))?;
            read.push(patron_store::purchases::RefundLine {
                line_no: line.line_no,
                quantity: quantity.to_string(),
            });
        }
        Ok(Some(read))
    }

    pub fn validate(&self) -> Result<(), EngineError> {
        check_text("document_id", &self.document_id)?;
        if let Some(lines) = &self.lines
            && (lines.is_empty() || lines.len() > PURCHASE_LINES_MAX)
        {
            return Err(EngineError::invalid(
                "lines",
                "name 1 or more lines, or leave lines out to refund everything",
            ));
        }
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedeemRequest {
    pub points: i64,
    /// Reserve the points at checkout; capture or release them later.
    #[serde(default)]
    pub hold: bool,
    /// How long a hold lasts before it is released by itself.
    #[serde(default)]
    pub hold_minutes: Option<i64>,
    #[serde(default)]
    pub description: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdjustRequest {
    /// Positive credits, negative debits.
    pub points: i64,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TransferRequest {
    pub to_member_id: String,
    pub points: i64,
}

/// Longest event type.
pub const EVENT_TYPE_CHARS_MAX: usize = 64;

/// A custom event that happened to a member (a review written, an app installed...): the
/// program's `event` rules of its type decide what it earns.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventRequest {
    pub member_id: String,
    /// The event type, as the rules name it: 1 to 64 characters of `a-z`, `0-9`, `_`.
    #[serde(rename = "type")]
    pub event_type: String,
    /// When it happened; defaults to now.
    #[serde(default)]
    pub occurred_at: Option<Timestamp>,
    /// What rules read as `event.properties` (at most 100).
    #[serde(default)]
    pub properties: serde_json::Map<String, serde_json::Value>,
}

impl EventRequest {
    pub fn validate(&self) -> Result<(), EngineError> {
        check_text("member_id", &self.member_id)?;
        if self.event_type.is_empty()
            || self.event_type.len() > EVENT_TYPE_CHARS_MAX
            || !self
                .event_type
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        {
            return Err(EngineError::invalid(
                "type",
                format!("must be 1 to {EVENT_TYPE_CHARS_MAX} characters of a-z, 0-9 and _"),
            ));
        }
        check_event_properties(&self.properties)
    }
}

/// At most [`text::EVENT_PROPERTIES_MAX`] properties with identifier keys, in at most
/// [`text::EVENT_PROPERTIES_BYTES_MAX`] bytes of JSON: rules read them, and they are stored
/// with the event.
fn check_event_properties(
    properties: &serde_json::Map<String, serde_json::Value>,
) -> Result<(), EngineError> {
    if properties.len() > text::EVENT_PROPERTIES_MAX {
        return Err(EngineError::invalid(
            "properties",
            format!("at most {} properties", text::EVENT_PROPERTIES_MAX),
        ));
    }
    for key in properties.keys() {
        text::check_identifier(key, text::EVENT_PROPERTY_KEY_CHARS_MAX)
            .map_err(|e| EngineError::invalid("properties", format!("a property's name {e}")))?;
    }
    let bytes = serde_json::Value::Object(properties.clone())
        .to_string()
        .len();
    if bytes > text::EVENT_PROPERTIES_BYTES_MAX {
        return Err(EngineError::invalid(
            "properties",
            format!(
                "must be at most {} bytes of JSON, these are {bytes}",
                text::EVENT_PROPERTIES_BYTES_MAX
            ),
        ));
    }
    Ok(())
}
