//! Member import from CSV (`patron members import`).
//!
//! The header names the columns: `external_id, name, phone, email, birthday, locale,
//! time_zone, card_number, consent_email, consent_sms, consent_whatsapp`, and `attr.KEY` for
//! custom attributes. Every row is validated on its own; a bad row is reported with its line
//! number and reason and skipped; good rows land in batches, one transaction per batch (a
//! savepoint per row), so a crash leaves whole rows or none.
//!
//! Imported members get their referral codes right after each batch. They do not get the
//! join gift (`join` rules): an import moves an existing club's members, who joined long
//! ago; a gift to each would be a windfall the club never promised and a liability it did
//! not plan. A club that wants one grants it with an adjustment or an event rule.

use std::io::Read;

use patron_store::tenants::Tenant;

use crate::{ConsentRequest, EngineError, EnrollRequest, ProfileFields, request_hash};

/// Rows enrolled per transaction.
pub const IMPORT_BATCH_ROWS: usize = 500;

const KNOWN: &[&str] = &[
    "external_id",
    "name",
    "phone",
    "email",
    "birthday",
    "locale",
    "time_zone",
    "card_number",
    "consent_email",
    "consent_sms",
    "consent_whatsapp",
];

/// One refused row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowError {
    /// 1-based line number in the file (the header is line 1).
    pub line: u64,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ImportReport {
    pub rows: u64,
    pub imported: u64,
    pub rejected: Vec<RowError>,
}

fn parse_bool(value: &str) -> Option<bool> {
    match value.trim().to_ascii_lowercase().as_str() {
        "true" | "yes" | "1" | "y" => Some(true),
        "false" | "no" | "0" | "n" => Some(false),
        _ => None,
    }
}

fn optional(value: &str) -> Option<String> {
    let value = value.trim();
    (!value.is_empty()).then(|| value.to_string())
}

impl crate::Engine {
    /// Imports members from CSV. `progress` is called with the number of rows processed.
    pub async fn import_members<R: Read + Send>(
        &self,
        tenant: &Tenant,
        input: R,
        consent_text: &str,
        progress: &(dyn Fn(u64) + Send + Sync),
    ) -> Result<ImportReport, EngineError> {
        let program = self.program(tenant).await?.program;
        let mut reader = csv::ReaderBuilder::new()
            .flexible(false)
            .trim(csv::Trim::All)
            .from_reader(input);
        let headers = reader
            .headers()
            .map_err(|e| EngineError::invalid("header", e.to_string()))?
            .clone();
        for name in headers.iter() {
            if !KNOWN.contains(&name) && !name.starts_with("attr.") {
                return Err(EngineError::invalid(
                    "header",
                    format!(
                        "line 1: unknown column {name:?}; known columns are {} and attr.KEY",
                        KNOWN.join(", ")
                    ),
                ));
            }
        }
        let mut report = ImportReport::default();
        let mut batch = Vec::with_capacity(IMPORT_BATCH_ROWS);
        let mut lines = Vec::with_capacity(IMPORT_BATCH_ROWS);
        for record in reader.records() {
            report.rows += 1;
            let record = match record {
                Ok(record) => record,
                Err(error) => {
                    let line = error
                        .position()
                        .map(|p| p.line())
                        .unwrap_or(report.rows + 1);
                    report.rejected.push(RowError {
                        line,
                        reason: error.to_string(),
                    });
                    continue;
                }
            };
            let line = record
                .position()
                .map(|p| p.line())
                .unwrap_or(report.rows + 1);
            match self.import_row(&headers, &record, &program, consent_text) {
                Ok(new) => {
                    batch.push(new);
                    lines.push(line);
                }
                Err(error) => report.rejected.push(RowError {
                    line,
                    reason: error.to_string(),
                }),
            }
            if batch.len() == IMPORT_BATCH_ROWS {
                self.flush_import(tenant, &mut batch, &mut lines, &mut report)
                    .await?;
                progress(report.rows);
            }
        }
        self.flush_import(tenant, &mut batch, &mut lines, &mut report)
            .await?;
        if report.imported > 0 {
            self.store().refresh_member_statistics().await?;
        }
        progress(report.rows);
        report.rejected.sort_by_key(|e| e.line);
        Ok(report)
    }

    fn import_row(
        &self,
        headers: &csv::StringRecord,
        record: &csv::StringRecord,
        program: &patron_domain::program::Program,
        consent_text: &str,
    ) -> Result<patron_store::members::NewMember, EngineError> {
        let mut profile = ProfileFields::default();
        let mut card_number = None;
        let mut consents = Vec::new();
        for (name, value) in headers.iter().zip(record.iter()) {
            match name {
                "external_id" => profile.external_id = optional(value),
                "name" => profile.name = optional(value),
                "phone" => profile.phone = optional(value),
                "email" => profile.email = optional(value),
                "birthday" => profile.birthday = optional(value),
                "locale" => profile.locale = optional(value),
                "time_zone" => profile.time_zone = optional(value),
                "card_number" => card_number = optional(value),
                consent if consent.starts_with("consent_") => {
                    if value.trim().is_empty() {
                        continue;
                    }
                    let granted = parse_bool(value).ok_or_else(|| {
                        EngineError::invalid(name, format!("{value:?} is not true or false"))
                    })?;
                    consents.push(ConsentRequest {
                        channel: consent.trim_start_matches("consent_").to_string(),
                        topic: None,
                        granted,
                        method: "import".into(),
                        text_shown: consent_text.to_string(),
                    });
                }
                attribute => {
                    if let (Some(key), Some(value)) =
                        (attribute.strip_prefix("attr."), optional(value))
                    {
                        profile
                            .attributes
                            .insert(key.to_string(), serde_json::Value::String(value));
                    }
                }
            }
        }
        let request = EnrollRequest {
            profile,
            channel: "import".into(),
            card_number,
            consents,
        };
        let hash = request_hash("member.enroll", &request)?;
        self.new_member(&request, program, hash)
    }

    async fn flush_import(
        &self,
        tenant: &Tenant,
        batch: &mut Vec<patron_store::members::NewMember>,
        lines: &mut Vec<u64>,
        report: &mut ImportReport,
    ) -> Result<(), EngineError> {
        if batch.is_empty() {
            return Ok(());
        }
        let results = self
            .store
            .enroll_batch(tenant.id, batch, self.now())
            .await?;
        // Every member has a referral code: the batch draws them in its own transaction.
        for (result, line) in results.into_iter().zip(lines.iter()) {
            match result {
                Ok(_) => report.imported += 1,
                Err(rejection) => report.rejected.push(RowError {
                    line: *line,
                    reason: rejection.to_string(),
                }),
            }
        }
        batch.clear();
        lines.clear();
        Ok(())
    }
}
