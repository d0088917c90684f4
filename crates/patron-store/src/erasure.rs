//! Erasure reaches every copy: when a member leaves, their personal data goes from the member
//! row (`members::exit_member`) and from every other place it was copied to, in the same unit
//! of work.
//!
//! What is personal, per table and column, is decided in docs/ARCHITECTURE.md ("Personal data
//! and erasure"), and the engine's erasure test fails on any text column of the schema that is
//! not classified there. In short:
//!
//! - **Stored idempotent responses** (`idempotency_keys.response`): a member view of the
//!   member (an enrollment, a profile change, a referrer added) keeps its shape with every
//!   personal field null and the custom attributes empty; in any response that names the
//!   member, a personal value inside a text is replaced by [`ERASED`]; in every response of
//!   the club, a text that *is* the member's phone, email or external id (a `duplicate`
//!   refusal another enrollment stored) becomes [`ERASED`]. The status and the ids stay, so a
//!   replay still answers what was done (API-DESIGN.md, "Idempotency").
//! - **Custom events** (`events.properties`): the member's are emptied. They are whatever the
//!   client sent, so nothing short of emptying them is sure to erase; the type, time and points
//!   stay with the ledger.
//! - **Free texts about the member** (audit rows about them, adjustment notes on their
//!   transfers, their redemptions' descriptions, their tier floor's reason, the consent texts
//!   they were shown): the member's name, phone, email and external id are replaced by
//!   [`ERASED`] wherever they appear; the rest of the text is the club's own evidence.
//!
//! Kept: the ledger, purchases, coupons and statistics under the member's id (which after the
//! exit identifies no one), card numbers (the club's stock, blocked at the exit), the referral
//! code and links (ids), the language (`locale`, not identifying), and request hashes (one-way;
//! a replay must still match its key).

use serde_json::Value;
use sqlx::Row;

use crate::idempotency::DOCUMENT_KEY_PREFIX;
use crate::members::Member;
use crate::tenants::TenantId;
use crate::{Conn, StoreError, conn};

/// What an erased value reads as wherever it was part of a kept text.
pub const ERASED: &str = "(erased)";

/// The profile fields a member view carries that an exit erases (all but `locale`).
const PROFILE_FIELDS_ERASED: [&str; 6] = [
    "external_id",
    "name",
    "phone",
    "email",
    "birthday",
    "time_zone",
];

/// The member's personal values as they may appear in other texts.
struct Personal {
    member_id: String,
    /// Values that identify the person on their own: phone, email, external id.
    identifiers: Vec<String>,
    /// Every value to cut out of a text about the member, longest first (so a name that
    /// contains an external id goes whole).
    values: Vec<String>,
}

impl Personal {
    fn of(member: &Member) -> Self {
        let mut personal = Personal {
            member_id: member.id.clone(),
            identifiers: Vec::new(),
            values: Vec::new(),
        };
        personal.learn(&member.profile.to_values());
        personal
    }

    /// Adds values the member had (a stored view may hold a name or phone since changed).
    fn learn(&mut self, values: &ProfileValues) {
        let present = |v: &Option<String>| v.clone().filter(|v| !v.trim().is_empty());
        for identifier in [&values.phone, &values.email, &values.external_id]
            .into_iter()
            .filter_map(present)
        {
            if !self.identifiers.contains(&identifier) {
                self.identifiers.push(identifier.clone());
            }
        }
        for value in self
            .identifiers
            .clone()
            .into_iter()
            .chain(present(&values.name))
        {
            if !self.values.contains(&value) {
                self.values.push(value);
            }
        }
        self.values.sort_by_key(|v| std::cmp::Reverse(v.len()));
    }

    fn cut(&self, text: &str) -> String {
        self.values.iter().fold(text.to_owned(), |text, value| {
            text.replace(value.as_str(), ERASED)
        })
    }
}

/// The values of a profile that other texts may repeat.
#[derive(Debug, Default)]
struct ProfileValues {
    external_id: Option<String>,
    name: Option<String>,
    phone: Option<String>,
    email: Option<String>,
}

impl crate::members::Profile {
    fn to_values(&self) -> ProfileValues {
        ProfileValues {
            external_id: self.external_id.clone(),
            name: self.name.clone(),
            phone: self.phone.clone(),
            email: self.email.clone(),
        }
    }
}

/// Erases `member`'s personal data from every copy outside the member row. Runs inside the
/// exit's unit of work, before the row itself is cleared (it reads the values from `member`).
pub(crate) async fn erase_copies(
    c: &mut Conn,
    tenant: TenantId,
    member: &Member,
) -> Result<(), StoreError> {
    let mut personal = Personal::of(member);
    // Stored views first: they may hold values the member had before a profile change, which
    // the free texts below may repeat too.
    redact_stored_responses(c, tenant, &mut personal).await?;
    sqlx::query("UPDATE events SET properties = '{}' WHERE tenant_id = $1 AND member_id = $2")
        .bind(tenant.0)
        .bind(&member.id)
        .execute(conn(c))
        .await?;
    if personal.values.is_empty() {
        return Ok(());
    }
    let subject = format!("member:{}", member.id);
    // Every transfer into or out of the wallet (a transfer between members names only one).
    let wallet = "(debit_account IN (SELECT id FROM accounts WHERE tenant_id = $1 AND member_id = $2) \
                  OR credit_account IN (SELECT id FROM accounts WHERE tenant_id = $1 AND member_id = $2))";
    let free_texts: [(&str, &str, &str, &str); 5] = [
        ("audit_log", "details", "subject = $2", &subject),
        ("tier_floors", "reason", "member_id = $2", &member.id),
        ("consents", "text_shown", "member_id = $2", &member.id),
        ("redemptions", "description", "member_id = $2", &member.id),
        ("transfers", "note", wallet, &member.id),
    ];
    for (table, column, filter, key) in free_texts {
        cut_values(c, tenant, &personal, table, column, filter, key).await?;
    }
    Ok(())
}

/// Replaces every personal value in `table.column` of the rows `filter` selects (`$1` is the
/// tenant, `$2` is `key`). Only rows that contain one are written.
async fn cut_values(
    c: &mut Conn,
    tenant: TenantId,
    personal: &Personal,
    table: &str,
    column: &str,
    filter: &str,
    key: &str,
) -> Result<(), StoreError> {
    let mut replaced = column.to_owned();
    let mut matches = Vec::with_capacity(personal.values.len());
    for index in 0..personal.values.len() {
        let placeholder = index + 3;
        replaced = format!("REPLACE({replaced}, ${placeholder}, '{ERASED}')");
        matches.push(format!("{column} LIKE '%' || ${placeholder} || '%'"));
    }
    let sql = format!(
        "UPDATE {table} SET {column} = {replaced} WHERE tenant_id = $1 AND {filter} AND ({})",
        matches.join(" OR ")
    );
    let mut query = sqlx::query(&sql).bind(tenant.0).bind(key);
    for value in &personal.values {
        query = query.bind(value.as_str());
    }
    // LIKE is only the filter (its wildcards in a value merely widen it); REPLACE is exact.
    query.execute(conn(c)).await?;
    Ok(())
}

/// Rewrites the club's stored responses that carry the member's personal data. First the
/// responses that name the member, whose views of them show every value they had (a phone
/// since changed); then every response that holds one of those values or names the member.
async fn redact_stored_responses(
    c: &mut Conn,
    tenant: TenantId,
    personal: &mut Personal,
) -> Result<(), StoreError> {
    let naming = std::slice::from_ref(&personal.member_id).to_vec();
    for (_, _, stored) in stored_responses(c, tenant, &naming).await? {
        collect_views(&stored, personal);
    }
    let needles: Vec<String> = std::iter::once(&personal.member_id)
        .chain(personal.identifiers.iter())
        .cloned()
        .collect();
    for (key, response, mut stored) in stored_responses(c, tenant, &needles).await? {
        let names_member = response.contains(personal.member_id.as_str());
        redact(&mut stored, personal, names_member);
        let redacted = serde_json::to_string(&stored)?;
        if redacted != response {
            sqlx::query(
                "UPDATE idempotency_keys SET response = $3 WHERE tenant_id = $1 AND key = $2",
            )
            .bind(tenant.0)
            .bind(&key)
            .bind(&redacted)
            .execute(conn(c))
            .await?;
        }
    }
    Ok(())
}

/// The club's stored responses (key, text, parsed) whose text contains one of `values`.
async fn stored_responses(
    c: &mut Conn,
    tenant: TenantId,
    values: &[String],
) -> Result<Vec<(String, String, Value)>, StoreError> {
    let matches: Vec<String> = (0..values.len())
        .map(|i| format!("response LIKE '%' || ${} || '%'", i + 2))
        .collect();
    // Keys of shop documents (kept forever, one per purchase and refund) store receipts,
    // which carry amounts, points and ids but no personal data: skipping them keeps an exit's
    // scan to the client keys of the retention period.
    let sql = format!(
        "SELECT key, response FROM idempotency_keys WHERE tenant_id = $1 \
         AND key NOT LIKE '{DOCUMENT_KEY_PREFIX}%' AND ({})",
        matches.join(" OR ")
    );
    let mut query = sqlx::query(&sql).bind(tenant.0);
    for value in values {
        query = query.bind(json_text(value));
    }
    let mut found = Vec::new();
    for row in query.fetch_all(conn(c)).await? {
        let key: String = row.try_get("key")?;
        let response: String = row.try_get("response")?;
        // A response is JSON by construction; one that is not has nothing to redact as JSON.
        if let Ok(stored) = serde_json::from_str::<Value>(&response) {
            found.push((key, response, stored));
        }
    }
    Ok(found)
}

/// A value as it appears inside a JSON string (escaped, without the quotes).
fn json_text(value: &str) -> String {
    let quoted = serde_json::to_string(value).unwrap_or_default();
    quoted
        .strip_prefix('"')
        .and_then(|q| q.strip_suffix('"'))
        .unwrap_or(&quoted)
        .to_owned()
}

/// Redacts one stored response in place (see the module documentation). `names_member`: the
/// response is about the member, so personal values are cut out of its texts too.
/// The profile of a view of the member (an object with their `id` and a `profile`).
fn member_profile<'v>(
    object: &'v serde_json::Map<String, Value>,
    personal: &Personal,
) -> Option<&'v serde_json::Map<String, Value>> {
    if object.get("id").and_then(Value::as_str) != Some(personal.member_id.as_str()) {
        return None;
    }
    object.get("profile").and_then(Value::as_object)
}

/// Learns the values every stored view of the member shows (before a change of name, say).
fn collect_views(value: &Value, personal: &mut Personal) {
    match value {
        Value::Object(object) => {
            if let Some(profile) = member_profile(object, personal) {
                let text = |field: &str| {
                    profile
                        .get(field)
                        .and_then(Value::as_str)
                        .map(str::to_owned)
                };
                let values = ProfileValues {
                    external_id: text("external_id"),
                    name: text("name"),
                    phone: text("phone"),
                    email: text("email"),
                };
                personal.learn(&values);
            }
            object
                .values()
                .for_each(|child| collect_views(child, personal));
        }
        Value::Array(items) => items.iter().for_each(|item| collect_views(item, personal)),
        _ => {}
    }
}

fn redact(value: &mut Value, personal: &Personal, names_member: bool) {
    match value {
        Value::Object(object) => {
            let is_member_view = member_profile(object, personal).is_some();
            if is_member_view && let Some(Value::Object(profile)) = object.get_mut("profile") {
                for field in PROFILE_FIELDS_ERASED {
                    if profile.contains_key(field) {
                        profile.insert(field.to_owned(), Value::Null);
                    }
                }
                if profile.contains_key("attributes") {
                    profile.insert("attributes".to_owned(), Value::String("{}".to_owned()));
                }
            }
            for child in object.values_mut() {
                redact(child, personal, names_member);
            }
        }
        Value::Array(items) => {
            for item in items {
                redact(item, personal, names_member);
            }
        }
        Value::String(text) => {
            if personal.identifiers.iter().any(|i| i == text) {
                *text = ERASED.to_owned();
            } else if names_member {
                *text = personal.cut(text);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {

    use super::*;

    fn member() -> Member {
        serde_json::from_value(serde_json::json!({
            "id": "mem_1",
            "status": "active",
            "profile": {
                "external_id": "crm-1", "name": "Dana Levi", "phone": "+972501234567",
                "email": "dana@example.com", "birthday": "1990-05-17", "locale": "he",
                "time_zone": "Asia/Jerusalem", "attributes": "{\"kids\":2}"
            },
            "channel": "pos", "tier": "member",
            "tier_since": "2026-03-02T17:00:00Z", "enrolled_at": "2026-03-02T17:00:00Z",
            "exited_at": null, "updated_at": "2026-03-02T17:00:00Z", "card_number": "42001"
        }))
        .unwrap()
    }

    #[test]
    fn a_stored_member_view_keeps_its_shape_with_personal_fields_null() {
        let member = member();
        let personal = Personal::of(&member);
        let mut stored = serde_json::json!({"status": "ok", "value": member});
        redact(&mut stored, &personal, true);
        let back: Member = serde_json::from_value(stored["value"].clone()).unwrap();
        let p = &back.profile;
        assert_eq!(
            (
                &p.external_id,
                &p.name,
                &p.phone,
                &p.email,
                &p.birthday,
                &p.time_zone
            ),
            (&None, &None, &None, &None, &None, &None)
        );
        assert_eq!(p.attributes, "{}");
        assert_eq!(p.locale.as_deref(), Some("he"));
        assert_eq!(
            (back.id.as_str(), back.card_number.as_deref()),
            ("mem_1", Some("42001"))
        );
    }

    #[test]
    fn another_requests_refusal_loses_the_members_phone_but_not_other_texts() {
        let member = member();
        let personal = Personal::of(&member);
        let mut stored = serde_json::json!({"status": "rejected", "rejection":
            {"Duplicate": {"field": "phone", "value": "+972501234567"}}, "note": "Dana Levi"});
        redact(&mut stored, &personal, false);
        assert_eq!(stored["rejection"]["Duplicate"]["value"], ERASED);
        assert_eq!(
            stored["note"], "Dana Levi",
            "not about the member: only identifiers go"
        );
    }

    #[test]
    fn texts_about_the_member_lose_every_personal_value() {
        let member = member();
        let personal = Personal::of(&member);
        assert_eq!(
            personal.cut("call Dana Levi on +972501234567 (crm-1)"),
            "call (erased) on (erased) ((erased))"
        );
    }
}
