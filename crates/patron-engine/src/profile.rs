//! A member's profile and consents from the fields of a request: every value validated and
//! normalized before anything is written (phone in E.164, read in the program's country;
//! email with a lower-case domain; birthday as a date not after today in the program's time
//! zone; names and texts by `patron_domain::text`'s rules and limits).

use jiff::Timestamp;
use patron_domain::program::Program;
use patron_domain::text::{self, Lines};
use patron_domain::{contact, phone};
use patron_store::members::{ConsentInput, Profile};

use crate::{ConsentRequest, EngineError, ProfileFields};

pub(crate) fn profile_from(
    request: &ProfileFields,
    program: &Program,
    now: Timestamp,
) -> Result<Profile, EngineError> {
    let today = now.to_zoned(program.tz()).date();
    if let Some(id) = &request.external_id {
        text::check_identifier(id, text::IDENTIFIER_CHARS_MAX)
            .map_err(|e| EngineError::invalid("external_id", e.to_string()))?;
    }
    let name = request
        .name
        .as_deref()
        .map(text::check_name)
        .transpose()
        .map_err(|e| EngineError::invalid("name", e.to_string()))?;
    let phone = request
        .phone
        .as_deref()
        .map(|p| phone::normalize_phone(p, program.country))
        .transpose()
        .map_err(|e| EngineError::invalid("phone", e.to_string()))?;
    let email = request
        .email
        .as_deref()
        .map(contact::normalize_email)
        .transpose()
        .map_err(|e| EngineError::invalid("email", e.to_string()))?;
    let birthday = request
        .birthday
        .as_deref()
        .map(|b| contact::parse_birthday(b, today))
        .transpose()
        .map_err(|e| EngineError::invalid("birthday", e.to_string()))?
        .map(|d| d.to_string());
    let locale = match &request.locale {
        Some(code) => match patron_domain::program::Locale::from_code(code) {
            Some(locale) => Some(locale.code().to_string()),
            None => return Err(EngineError::invalid("locale", "use fa, he or en")),
        },
        None => None,
    };
    if let Some(tz) = &request.time_zone
        && jiff::tz::TimeZone::get(tz).is_err()
    {
        return Err(EngineError::invalid(
            "time_zone",
            format!("{tz:?} is not an IANA time zone"),
        ));
    }
    Ok(Profile {
        external_id: request.external_id.clone(),
        name: name.map(str::to_string),
        phone,
        email,
        birthday,
        locale,
        time_zone: request.time_zone.clone(),
        attributes: attributes_json(&request.attributes)?,
    })
}

/// The custom attributes as the JSON object stored: at most [`text::ATTRIBUTES_MAX`] of them,
/// keys that rules and segments can name, scalar values, strings of at most
/// [`text::ATTRIBUTE_STRING_CHARS_MAX`] characters, and the whole at most
/// [`text::ATTRIBUTES_BYTES_MAX`] bytes: every member's profile is read with every purchase.
fn attributes_json(
    attributes: &std::collections::BTreeMap<String, serde_json::Value>,
) -> Result<String, EngineError> {
    let mut object = serde_json::Map::new();
    for (key, value) in attributes {
        let field = || format!("attributes.{key}");
        contact::validate_custom_attribute_key(key)
            .map_err(|e| EngineError::invalid(field(), e.to_string()))?;
        if value.is_object() || value.is_array() {
            return Err(EngineError::invalid(
                field(),
                "must be a string, number, boolean or null",
            ));
        }
        if let Some(value) = value.as_str() {
            text::check_value_text(value, text::ATTRIBUTE_STRING_CHARS_MAX)
                .map_err(|e| EngineError::invalid(field(), e.to_string()))?;
        }
        object.insert(key.clone(), value.clone());
    }
    if object.len() > text::ATTRIBUTES_MAX {
        return Err(EngineError::invalid(
            "attributes",
            format!("at most {} custom attributes", text::ATTRIBUTES_MAX),
        ));
    }
    let json = serde_json::Value::Object(object).to_string();
    if json.len() > text::ATTRIBUTES_BYTES_MAX {
        return Err(EngineError::invalid(
            "attributes",
            format!(
                "must be at most {} bytes of JSON all together, these are {}",
                text::ATTRIBUTES_BYTES_MAX,
                json.len()
            ),
        ));
    }
    Ok(json)
}

/// The consents of a request, each with its evidence: the text the member was shown is kept
/// exactly as sent (once checked), the channel is one Patron knows.
pub(crate) fn consents_from(consents: &[ConsentRequest]) -> Result<Vec<ConsentInput>, EngineError> {
    consents
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let field = |name: &str| format!("consents[{i}].{name}");
            if !crate::CONSENT_CHANNELS.contains(&c.channel.as_str()) {
                return Err(EngineError::invalid(
                    field("channel"),
                    format!("use one of {}", crate::CONSENT_CHANNELS.join(", ")),
                ));
            }
            text::check_free_text(&c.text_shown, text::CONSENT_TEXT_CHARS_MAX, Lines::Many)
                .map_err(|e| {
                    EngineError::invalid(
                        field("text_shown"),
                        format!("the text the member was shown is the evidence: it {e}"),
                    )
                })?;
            text::check_identifier(&c.method, text::CONSENT_WORD_CHARS_MAX)
                .map_err(|e| EngineError::invalid(field("method"), e.to_string()))?;
            if let Some(topic) = &c.topic {
                text::check_identifier(topic, text::CONSENT_WORD_CHARS_MAX)
                    .map_err(|e| EngineError::invalid(field("topic"), e.to_string()))?;
            }
            Ok(ConsentInput {
                channel: c.channel.clone(),
                topic: c.topic.clone().unwrap_or_else(|| "marketing".into()),
                granted: c.granted,
                method: c.method.clone(),
                text_shown: c.text_shown.clone(),
            })
        })
        .collect()
}
