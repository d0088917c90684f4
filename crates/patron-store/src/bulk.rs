//! The bulk enrollment path (member import): set-based checks and multi-row inserts, so a batch
//! of hundreds of members costs a handful of statements instead of hundreds.
//!
//! It answers exactly what enrolling the rows one by one would: a row whose external id,
//! phone or email is already taken (in the database or by an earlier row of the batch), or
//! whose pre-printed card is unknown or in use, is refused with the same rejection, and
//! nothing of it is written; the others land together in one transaction.

use std::collections::{HashMap, HashSet};

use jiff::Timestamp;
use patron_domain::card;
use sqlx::Row;
use sqlx::any::AnyArguments;
use sqlx::query::Query;

use crate::batch::{ROWS_PER_STATEMENT, placeholders_on};
use crate::members::NewMember;
use crate::tenants::TenantId;
use crate::{Backend, Conn, Rejection, Store, StoreError, conn, time, unit_of_work};

/// The values of `field` among `candidates` that some member of the tenant already has.
///
/// The `IN` lists here are not prepared statements (`persistent(false)`): PostgreSQL plans a
/// cached statement generically after five runs, and a generic plan chosen while the table
/// was small kept scanning it whole, comparing each row with each of 500 parameters one by
/// one (30 ms a batch at 15,000 members: the import fell to a fifth of its rate). Planned
/// with its values, the list is an index probe or a hashed scan.
async fn taken(
    c: &mut Conn,
    tenant: TenantId,
    field: &str,
    candidates: &[&str],
) -> Result<HashSet<String>, StoreError> {
    let mut found = HashSet::new();
    for chunk in candidates.chunks(ROWS_PER_STATEMENT) {
        let list = (0..chunk.len())
            .map(|i| format!("${}", i + 2))
            .collect::<Vec<_>>()
            .join(", ");
        let sql = format!(
            "SELECT {field} AS v FROM members WHERE tenant_id = $1 AND {field} IN ({list})"
        );
        let mut query = sqlx::query(&sql).persistent(false).bind(tenant.0);
        for value in chunk {
            query = query.bind(*value);
        }
        for row in query.fetch_all(conn(c)).await? {
            found.insert(row.try_get::<String, _>("v")?);
        }
    }
    Ok(found)
}

/// Which rows may land, and why the others may not: one ordered pass with the answers
/// enrolling them one at a time would give (a value is taken if the database has it or an
/// earlier accepted row of the batch has it; the fields are checked in the same order).
async fn screen(
    c: &mut Conn,
    tenant: TenantId,
    batch: &[NewMember],
) -> Result<Vec<Option<Rejection>>, StoreError> {
    type Getter = fn(&NewMember) -> Option<&str>;
    let fields: [(&str, Getter); 3] = [
        ("external_id", |m| m.profile.external_id.as_deref()),
        ("phone", |m| m.profile.phone.as_deref()),
        ("email", |m| m.profile.email.as_deref()),
    ];
    let mut in_database = Vec::with_capacity(fields.len());
    for (field, get) in fields {
        let values: Vec<&str> = batch.iter().filter_map(get).collect();
        in_database.push(taken(c, tenant, field, &values).await?);
    }
    let cards: Vec<&str> = batch
        .iter()
        .filter_map(|m| m.physical_card.as_deref())
        .collect();
    let mut card_status: HashMap<String, String> = HashMap::new();
    for chunk in cards.chunks(ROWS_PER_STATEMENT) {
        let list = (0..chunk.len())
            .map(|i| format!("${}", i + 2))
            .collect::<Vec<_>>()
            .join(", ");
        let sql =
            format!("SELECT number, status FROM cards WHERE tenant_id = $1 AND number IN ({list})");
        let mut query = sqlx::query(&sql).bind(tenant.0);
        for number in chunk {
            query = query.bind(*number);
        }
        for row in query.fetch_all(conn(c)).await? {
            card_status.insert(row.try_get("number")?, row.try_get("status")?);
        }
    }

    let mut accepted: Vec<HashSet<&str>> = vec![HashSet::new(); fields.len()];
    let mut cards_bound: HashSet<&str> = HashSet::new();
    let mut verdicts = Vec::with_capacity(batch.len());
    for new in batch {
        let mut verdict = None;
        for (index, (field, get)) in fields.iter().enumerate() {
            if let Some(value) = get(new)
                && (in_database[index].contains(value) || accepted[index].contains(value))
            {
                verdict = Some(Rejection::Duplicate {
                    field: field.to_string(),
                    value: value.to_string(),
                });
                break;
            }
        }
        if verdict.is_none()
            && let Some(number) = new.physical_card.as_deref()
        {
            verdict = match card_status.get(number).map(String::as_str) {
                None => Some(Rejection::CardNotFound {
                    number: number.to_string(),
                }),
                Some("available") if !cards_bound.contains(number) => None,
                Some("available") => Some(Rejection::CardUnavailable {
                    number: number.to_string(),
                    status: "active".into(),
                }),
                Some(other) => Some(Rejection::CardUnavailable {
                    number: number.to_string(),
                    status: other.to_string(),
                }),
            };
        }
        if verdict.is_none() {
            for (index, (_, get)) in fields.iter().enumerate() {
                if let Some(value) = get(new) {
                    accepted[index].insert(value);
                }
            }
            if let Some(number) = new.physical_card.as_deref() {
                cards_bound.insert(number);
            }
        }
        verdicts.push(verdict);
    }
    Ok(verdicts)
}

/// `count` referral codes unused in the club and distinct from each other, drawn at random
/// and checked set-wise (one query per chunk and round; a round redraws only the taken ones,
/// which are rare: 31^7 codes).
async fn unused_referral_codes(
    c: &mut Conn,
    tenant: TenantId,
    count: usize,
) -> Result<Vec<String>, StoreError> {
    let mut codes = Vec::with_capacity(count);
    for _ in 0..count {
        codes.push(crate::members::new_referral_code()?);
    }
    for _ in 0..8 {
        let mut seen = HashSet::with_capacity(codes.len());
        let mut redraw: Vec<usize> = Vec::new();
        for (index, code) in codes.iter().enumerate() {
            if !seen.insert(code.clone()) {
                redraw.push(index);
            }
        }
        for chunk in codes.chunks(ROWS_PER_STATEMENT) {
            let list = (0..chunk.len())
                .map(|i| format!("${}", i + 2))
                .collect::<Vec<_>>()
                .join(", ");
            let sql = format!(
                "SELECT referral_code FROM members WHERE tenant_id = $1 AND referral_code IN ({list})"
            );
            let mut query = sqlx::query(&sql).persistent(false).bind(tenant.0);
            for code in chunk {
                query = query.bind(code);
            }
            let taken: HashSet<String> = query
                .fetch_all(conn(c))
                .await?
                .iter()
                .map(|row| row.try_get("referral_code"))
                .collect::<Result<_, _>>()?;
            redraw.extend(
                codes
                    .iter()
                    .enumerate()
                    .filter(|(_, code)| taken.contains(*code))
                    .map(|(index, _)| index),
            );
        }
        if redraw.is_empty() {
            return Ok(codes);
        }
        for index in redraw {
            codes[index] = crate::members::new_referral_code()?;
        }
    }
    Err(StoreError::Conflict(
        "could not draw unused referral codes".into(),
    ))
}

async fn execute<'q>(
    c: &mut Conn,
    query: Query<'q, sqlx::Any, AnyArguments<'q>>,
) -> Result<(), StoreError> {
    query.execute(conn(c)).await?;
    Ok(())
}

impl Store {
    /// Enrolls many members in one transaction (the import path). Rows that would break a
    /// uniqueness rule or name an unusable card are refused individually, with the rejection
    /// enrolling them one at a time would give; the rest land together.
    pub async fn enroll_batch(
        &self,
        tenant: TenantId,
        batch: &[NewMember],
        now: Timestamp,
    ) -> Result<Vec<Result<String, Rejection>>, StoreError> {
        let backend = self.backend();
        unit_of_work!(self, |tx| {
            async {
                let verdicts = screen(&mut tx, tenant, batch).await?;
                let accepted: Vec<&NewMember> = batch
                    .iter()
                    .zip(&verdicts)
                    .filter(|(_, v)| v.is_none())
                    .map(|(m, _)| m)
                    .collect();
                let rows = Rows {
                    backend,
                    tenant,
                    at: time::to_db(now),
                };
                rows.insert_members(&mut tx, &accepted).await?;
                rows.issue_virtual_cards(&mut tx, &accepted).await?;
                rows.bind_physical_cards(&mut tx, &accepted).await?;
                rows.insert_consents(&mut tx, &accepted).await?;
                Ok(batch
                    .iter()
                    .zip(verdicts)
                    .map(|(m, verdict)| match verdict {
                        None => Ok(m.id.clone()),
                        Some(rejection) => Err(rejection),
                    })
                    .collect())
            }
            .await
        })
    }
}

/// What every row of an accepted batch is written with: the backend's placeholders, the
/// tenant, and the instant of the enrollment (as stored).
struct Rows {
    backend: Backend,
    tenant: TenantId,
    at: i64,
}

impl Rows {
    /// The members, each with a fresh referral code, and their wallets.
    async fn insert_members(
        &self,
        c: &mut Conn,
        accepted: &[&NewMember],
    ) -> Result<(), StoreError> {
        let (tenant, at) = (self.tenant, self.at);
        let codes = unused_referral_codes(c, tenant, accepted.len()).await?;
        for (chunk, codes) in accepted
            .chunks(ROWS_PER_STATEMENT)
            .zip(codes.chunks(ROWS_PER_STATEMENT))
        {
            let sql = format!(
                "INSERT INTO members (tenant_id, id, external_id, status, name, phone, email, birthday, locale, \
                 time_zone, channel, attributes, tier, tier_since, enrolled_at, updated_at, referral_code) VALUES {}",
                placeholders_on(self.backend, chunk.len(), 17)
            );
            let mut query = sqlx::query(&sql);
            for (m, code) in chunk.iter().zip(codes) {
                let p = &m.profile;
                query = query
                    .bind(tenant.0)
                    .bind(&m.id)
                    .bind(&p.external_id)
                    .bind("active")
                    .bind(&p.name)
                    .bind(&p.phone)
                    .bind(&p.email)
                    .bind(&p.birthday)
                    .bind(&p.locale)
                    .bind(&p.time_zone)
                    .bind(&m.channel)
                    .bind(&p.attributes)
                    .bind(&m.tier)
                    .bind(at)
                    .bind(at)
                    .bind(at)
                    .bind(code);
            }
            execute(c, query).await?;

            let sql = format!(
                "INSERT INTO accounts (tenant_id, kind, member_id) VALUES {}",
                placeholders_on(self.backend, chunk.len(), 3)
            );
            let mut query = sqlx::query(&sql);
            for m in chunk {
                query = query.bind(tenant.0).bind("wallet").bind(&m.id);
            }
            execute(c, query).await?;
        }
        Ok(())
    }

    /// Virtual cards for the members without a pre-printed one: reserve a run of serials
    /// with one counter update.
    async fn issue_virtual_cards(
        &self,
        c: &mut Conn,
        accepted: &[&NewMember],
    ) -> Result<(), StoreError> {
        let (tenant, at) = (self.tenant, self.at);
        let virtual_members: Vec<&NewMember> = accepted
            .iter()
            .copied()
            .filter(|m| m.physical_card.is_none())
            .collect();
        if virtual_members.is_empty() {
            return Ok(());
        }
        let count = i64::try_from(virtual_members.len())
            .map_err(|_| StoreError::Corrupt("batch too large".into()))?;
        let last: i64 = sqlx::query(
            "INSERT INTO counters (tenant_id, name, value) VALUES ($1, 'card_serial', $2) \
             ON CONFLICT (tenant_id, name) DO UPDATE SET value = counters.value + $2 RETURNING value",
        )
        .bind(tenant.0)
        .bind(count)
        .fetch_one(conn(c))
        .await?
        .try_get("value")?;
        let first = last - count + 1;
        let mut numbers = Vec::with_capacity(virtual_members.len());
        for (offset, m) in virtual_members.iter().enumerate() {
            let serial = u64::try_from(first + offset as i64)
                .map_err(|_| StoreError::Corrupt("negative card serial".into()))?;
            let number =
                card::card_number(&m.card_prefix, serial, card::CARD_NUMBER_LENGTH_DEFAULT)
                    .ok_or_else(|| {
                        StoreError::Config(format!(
                            "card prefix {:?} leaves no room for serial {serial}",
                            m.card_prefix
                        ))
                    })?;
            numbers.push((number, &m.id));
        }
        for chunk in numbers.chunks(ROWS_PER_STATEMENT) {
            let sql = format!(
                "INSERT INTO cards (tenant_id, number, kind, status, member_id, issued_at, bound_at) VALUES {}",
                placeholders_on(self.backend, chunk.len(), 7)
            );
            let mut query = sqlx::query(&sql);
            for (number, member_id) in chunk {
                query = query
                    .bind(tenant.0)
                    .bind(number)
                    .bind("virtual")
                    .bind("active")
                    .bind(*member_id)
                    .bind(at)
                    .bind(at);
            }
            execute(c, query).await?;
        }
        Ok(())
    }

    /// The pre-printed cards, bound to their members.
    async fn bind_physical_cards(
        &self,
        c: &mut Conn,
        accepted: &[&NewMember],
    ) -> Result<(), StoreError> {
        for m in accepted.iter().filter(|m| m.physical_card.is_some()) {
            sqlx::query(
                "UPDATE cards SET status = 'active', member_id = $3, bound_at = $4 \
                 WHERE tenant_id = $1 AND number = $2",
            )
            .bind(self.tenant.0)
            .bind(&m.physical_card)
            .bind(&m.id)
            .bind(self.at)
            .execute(conn(c))
            .await?;
        }
        Ok(())
    }

    /// The consents given at enrollment.
    async fn insert_consents(
        &self,
        c: &mut Conn,
        accepted: &[&NewMember],
    ) -> Result<(), StoreError> {
        let consents: Vec<(&NewMember, &crate::members::ConsentInput)> = accepted
            .iter()
            .flat_map(|m| m.consents.iter().map(move |c| (*m, c)))
            .collect();
        for chunk in consents.chunks(ROWS_PER_STATEMENT) {
            let sql = format!(
                "INSERT INTO consents (tenant_id, member_id, channel, topic, granted, at, method, text_shown) VALUES {}",
                placeholders_on(self.backend, chunk.len(), 8)
            );
            let mut query = sqlx::query(&sql);
            for (m, consent) in chunk {
                query = query
                    .bind(self.tenant.0)
                    .bind(&m.id)
                    .bind(&consent.channel)
                    .bind(&consent.topic)
                    .bind(i64::from(consent.granted))
                    .bind(self.at)
                    .bind(&consent.method)
                    .bind(&consent.text_shown);
            }
            execute(c, query).await?;
        }
        Ok(())
    }
}
