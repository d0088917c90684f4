//! Members: enrollment, look-ups, profile changes, consents, and leaving the club.
//!
//! Enrollment creates the member, their wallet, their first card and their consents in one
//! unit of work. Leaving the club erases personal data but keeps the ledger under the
//! member's id, which after erasure identifies no one.

use jiff::Timestamp;
use patron_domain::program::Program;
use patron_domain::rules::TriggerKind;
use serde::{Deserialize, Serialize};
use sqlx::any::AnyRow;
use sqlx::{Column, Row};

use crate::batch::{Batch, Param};
use crate::cards::{self, CardKind};
use crate::idempotency::FoldedClaim;
use crate::idempotency::{Claim, Idempotent};
use crate::ledger::{self, LedgerCtx, NewTransfer, code};
use crate::programs::audit;
use crate::rules::{self, Decide, RuleGrant};
use crate::tenants::TenantId;
use crate::{Conn, Rejection, Store, StoreError, conn, idempotent_unit, time};

/// The personal data of a member. Everything here is erased when they leave.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Profile {
    pub external_id: Option<String>,
    pub name: Option<String>,
    pub phone: Option<String>,
    pub email: Option<String>,
    /// `YYYY-MM-DD`.
    pub birthday: Option<String>,
    pub locale: Option<String>,
    pub time_zone: Option<String>,
    /// A JSON object of custom attributes, validated by the engine.
    pub attributes: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsentInput {
    /// email | sms | whatsapp | push | phone | mail
    pub channel: String,
    /// What the consent covers, e.g. `marketing`.
    pub topic: String,
    pub granted: bool,
    /// How it was given: pos | web | phone | import | referral | portal ...
    pub method: String,
    /// The exact text the member was shown.
    pub text_shown: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Consent {
    pub channel: String,
    pub topic: String,
    pub granted: bool,
    pub at: Timestamp,
    pub method: String,
    pub text_shown: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewMember {
    pub id: String,
    pub profile: Profile,
    /// pos | web | phone | import | referral
    pub channel: String,
    pub consents: Vec<ConsentInput>,
    /// A pre-printed card handed over at enrollment; otherwise a virtual card is issued.
    pub physical_card: Option<String>,
    /// The program's entry tier.
    pub tier: String,
    /// The program's card number prefix.
    pub card_prefix: String,
    pub request_hash: String,
    /// The referral code the newcomer presented (canonical form), checked in the unit of
    /// work: it must belong to an active member who is not the newcomer.
    pub referral_code: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    pub id: String,
    pub status: String,
    pub profile: Profile,
    pub channel: String,
    pub tier: String,
    pub tier_since: Timestamp,
    pub enrolled_at: Timestamp,
    pub exited_at: Option<Timestamp>,
    pub updated_at: Timestamp,
    pub card_number: Option<String>,
    /// The member's referral code, and who referred them (docs/PROGRAM.md, "Referrals").
    #[serde(default)]
    pub referral: Referral,
}

/// A member's side of referrals.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Referral {
    /// Their own code (canonical form: coupon alphabet, check character, no dashes). Every
    /// member has one; `None` only for a member enrolled by an older version before the
    /// migration filled the codes.
    pub code: Option<String>,
    /// The member who referred them.
    pub referred_by: Option<String>,
    pub referred_at: Option<Timestamp>,
    /// When the referral rule paid for their first qualifying purchase (it pays once).
    pub rewarded_at: Option<Timestamp>,
}

impl Member {
    pub fn is_active(&self) -> bool {
        self.status == "active"
    }
}

/// How to find a member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup<'a> {
    Id(&'a str),
    ExternalId(&'a str),
    Phone(&'a str),
    Email(&'a str),
    Card(&'a str),
    /// A referral code (canonical form); only an active member's code is found.
    ReferralCode(&'a str),
}

const MEMBER_COLUMNS: &str = "m.id, m.external_id, m.status, m.name, m.phone, m.email, m.birthday, m.locale, \
     m.time_zone, m.channel, m.attributes, m.tier, m.tier_since, m.enrolled_at, m.exited_at, m.updated_at, \
     (SELECT c.number FROM cards c WHERE c.tenant_id = m.tenant_id AND c.member_id = m.id \
      AND c.status = 'active' ORDER BY c.bound_at DESC LIMIT 1) AS card_number, \
     m.referral_code, m.referred_by, m.referred_at, m.referral_rewarded_at";

pub(crate) fn member_from_row(row: &AnyRow) -> Result<Member, StoreError> {
    Ok(Member {
        id: row.try_get("id")?,
        status: row.try_get("status")?,
        profile: Profile {
            external_id: row.try_get("external_id")?,
            name: row.try_get("name")?,
            phone: row.try_get("phone")?,
            email: row.try_get("email")?,
            birthday: row.try_get("birthday")?,
            locale: row.try_get("locale")?,
            time_zone: row.try_get("time_zone")?,
            attributes: row.try_get("attributes")?,
        },
        channel: row.try_get("channel")?,
        tier: row.try_get("tier")?,
        tier_since: time::from_db(row.try_get("tier_since")?)?,
        enrolled_at: time::from_db(row.try_get("enrolled_at")?)?,
        exited_at: time::opt_from_db(row.try_get("exited_at")?)?,
        updated_at: time::from_db(row.try_get("updated_at")?)?,
        card_number: row.try_get("card_number")?,
        referral: Referral {
            code: row.try_get("referral_code")?,
            referred_by: row.try_get("referred_by")?,
            referred_at: time::opt_from_db(row.try_get("referred_at")?)?,
            rewarded_at: time::opt_from_db(row.try_get("referral_rewarded_at")?)?,
        },
    })
}

/// Locks one member's wallet and reads the member: the lock and the read every unit of work
/// on a member's points starts with. The member is read under the wallet lock, so a tier or
/// an exit read here is the one this unit of work commits under.
///
/// On SQLite the write transaction already excludes every other writer, so both come in one
/// statement. On PostgreSQL they must be two: under read committed, a statement that waited
/// for the row lock re-reads only the locked row, and a member joined into it would be the
/// version from before the wait (a purchase queued behind an upgrade would earn at the old
/// tier). The member query after the lock gets a fresh snapshot.
pub(crate) async fn lock_wallet_with_member(
    tx: &mut Conn,
    ctx: crate::ledger::LedgerCtx,
    member_id: &str,
) -> Result<(crate::ledger::Wallet, Member), StoreError> {
    let (wallet, member, _) =
        lock_wallet_with_member_and(tx, ctx, member_id, "", &[], None).await?;
    Ok((wallet, member))
}

/// [`lock_wallet_with_member`], with `extra` columns read in the member's statement (after
/// the lock on PostgreSQL), whose placeholders are `$1` (tenant), `$2` (member) and `$3..`
/// (`params`, in order), and with the unit's idempotency claim carried by the first
/// statement when `claim` is given (SQLite: one multi-statement call; PostgreSQL: a
/// data-modifying CTE of the locking statement). Returns the row, for the caller to read
/// its columns.
pub(crate) async fn lock_wallet_with_member_and(
    tx: &mut Conn,
    ctx: crate::ledger::LedgerCtx,
    member_id: &str,
    extra: &str,
    params: &[Param],
    claim: Option<&mut FoldedClaim<'_>>,
) -> Result<(crate::ledger::Wallet, Member, AnyRow), StoreError> {
    let not_found = || -> StoreError {
        Rejection::MemberNotFound {
            member_id: member_id.to_string(),
        }
        .into()
    };
    let carried = claim.as_ref().and_then(|claim| claim.sql(1));
    let claim_params = carried.as_ref().map_or(0, |(_, p)| p.len());
    if ctx.backend == crate::Backend::Postgres {
        let wallet = match claim {
            None => crate::ledger::lock_wallets(tx, ctx, &[member_id])
                .await?
                .remove(0),
            Some(claim) => {
                // The lock (`ledger::lock_wallet_sql`) with the claim's keys in its RETURNING.
                let lock = crate::ledger::lock_wallet_sql(
                    ctx.backend,
                    &format!("${}", claim_params + 1),
                    &format!("${}", claim_params + 2),
                );
                let (sql, mut all) = match carried {
                    Some((sql, params)) => (
                        format!(
                            "WITH c AS ({sql}) {lock}, \
                             (SELECT CAST(COALESCE(json_agg(key), '[]') AS TEXT) FROM c) AS claimed_keys"
                        ),
                        params,
                    ),
                    None => (format!("{lock}, '[]' AS claimed_keys"), Vec::new()),
                };
                all.push(ctx.tenant.0.into());
                all.push(member_id.into());
                let row = crate::batch::bind_all(sqlx::query(&sql), &all)
                    .fetch_optional(conn(tx))
                    .await?
                    .ok_or_else(not_found)?;
                let text: String = row.try_get("claimed_keys")?;
                let keys: std::collections::HashSet<String> = serde_json::from_str(&text)?;
                claim.record(keys)?;
                crate::ledger::wallet_from_row(&row)?
            }
        };
        let sql = format!(
            "SELECT {MEMBER_COLUMNS}{extra} FROM members m WHERE m.tenant_id = $1 AND m.id = $2"
        );
        let query = sqlx::query(&sql).bind(ctx.tenant.0).bind(member_id);
        let row = crate::batch::bind_all(query, params)
            .fetch_optional(conn(tx))
            .await?
            .ok_or_else(not_found)?;
        let member = member_from_row(&row)?;
        return Ok((wallet, member, row));
    }
    let select = member_with_wallet_sql(extra);
    let (sql, mut all) = match carried {
        Some((claim_sql, claim_values)) => (
            format!(
                "{claim_sql};\n{}",
                crate::batch::renumber(&select, claim_params)
            ),
            claim_values,
        ),
        None => (select, Vec::new()),
    };
    all.push(ctx.tenant.0.into());
    all.push(member_id.into());
    all.extend(params.iter().cloned());
    let mut keys = std::collections::HashSet::new();
    let mut found = None;
    for row in crate::batch::bind_all(sqlx::query(&sql), &all)
        .fetch_all(conn(tx))
        .await?
    {
        if row.columns().iter().any(|column| column.name() == "key") {
            keys.insert(row.try_get::<String, _>("key")?);
        } else {
            found = Some(row);
        }
    }
    if let Some(claim) = claim {
        claim.record(keys)?;
    }
    let row = found.ok_or_else(not_found)?;
    let (wallet, member) = member_with_wallet_from(&row)?;
    Ok((wallet, member, row))
}

/// The member `$2` of tenant `$1` joined with their wallet, and `extra` columns.
fn member_with_wallet_sql(extra: &str) -> String {
    format!(
        "SELECT {MEMBER_COLUMNS}, a.id AS account_id, a.credits_posted, a.debits_posted, \
         a.credits_pending, a.debits_pending, a.last_activity_at, a.inactivity_expires_at, \
         (SELECT MIN(l.expires_at) FROM lots l WHERE l.account_id = a.id AND l.remaining > 0) AS next_expiry_at{extra} \
         FROM accounts a JOIN members m ON m.tenant_id = a.tenant_id AND m.id = a.member_id \
         WHERE a.tenant_id = $1 AND a.member_id = $2"
    )
}

/// The wallet and the member in a row of [`member_with_wallet_sql`].
fn member_with_wallet_from(row: &AnyRow) -> Result<(crate::ledger::Wallet, Member), StoreError> {
    let member = member_from_row(row)?;
    let wallet = crate::ledger::Wallet {
        account_id: row.try_get("account_id")?,
        member_id: member.id.clone(),
        credits_posted: row.try_get("credits_posted")?,
        debits_posted: row.try_get("debits_posted")?,
        credits_pending: row.try_get("credits_pending")?,
        debits_pending: row.try_get("debits_pending")?,
        last_activity_at: time::opt_from_db(row.try_get("last_activity_at")?)?,
        inactivity_expires_at: time::opt_from_db(row.try_get("inactivity_expires_at")?)?,
        next_expiry_at: time::opt_from_db(row.try_get("next_expiry_at")?)?,
    };
    Ok((wallet, member))
}

/// What PostgreSQL's optimistic purchase path reads, in one statement and without a lock: the
/// member, their wallet with its `lock_version` (migration 13), the `extra` columns of
/// [`lock_wallet_with_member_and`], and whether any of `keys` is already claimed.
pub(crate) struct OptimisticRead {
    pub wallet: crate::ledger::Wallet,
    pub lock_version: i64,
    pub member: Member,
    pub row: AnyRow,
    pub keys_taken: bool,
}

/// Reads [`OptimisticRead`] (placeholders as in [`lock_wallet_with_member_and`]). One
/// statement, so one snapshot: the write that follows is valid only while `lock_version` is
/// unchanged, and `Batch::guard_wallet` makes it so.
pub(crate) async fn read_member_with_wallet_and(
    c: &mut Conn,
    ctx: crate::ledger::LedgerCtx,
    member_id: &str,
    extra: &str,
    params: &[Param],
    keys: &[Claim],
) -> Result<OptimisticRead, StoreError> {
    let first = params.len() + 3;
    let list = (0..keys.len().max(1))
        .map(|i| format!("${}", first + i))
        .collect::<Vec<_>>()
        .join(", ");
    let sql = member_with_wallet_sql(&format!(
        ", a.lock_version, EXISTS (SELECT 1 FROM idempotency_keys k \
         WHERE k.tenant_id = $1 AND k.key IN ({list})) AS keys_taken{extra}"
    ));
    let mut all: Vec<Param> = vec![ctx.tenant.0.into(), member_id.into()];
    all.extend(params.iter().cloned());
    match keys {
        [] => all.push(Param::Text(None)),
        keys => all.extend(keys.iter().map(|claim| Param::from(&claim.key))),
    }
    let row = crate::batch::bind_all(sqlx::query(&sql), &all)
        .fetch_optional(conn(c))
        .await?
        .ok_or_else(|| Rejection::MemberNotFound {
            member_id: member_id.to_string(),
        })?;
    let (wallet, member) = member_with_wallet_from(&row)?;
    Ok(OptimisticRead {
        wallet,
        lock_version: row.try_get("lock_version")?,
        member,
        keys_taken: row.try_get("keys_taken")?,
        row,
    })
}

pub(crate) async fn member_in_tx(
    tx: &mut Conn,
    tenant: TenantId,
    id: &str,
) -> Result<Member, StoreError> {
    let sql =
        format!("SELECT {MEMBER_COLUMNS} FROM members m WHERE m.tenant_id = $1 AND m.id = $2");
    let row = sqlx::query(&sql)
        .bind(tenant.0)
        .bind(id)
        .fetch_optional(conn(tx))
        .await?;
    match row {
        Some(row) => member_from_row(&row),
        None => Err(Rejection::MemberNotFound {
            member_id: id.to_string(),
        }
        .into()),
    }
}

/// Refuses a profile whose external id, phone or email another member already has.
async fn check_unique(
    tx: &mut Conn,
    tenant: TenantId,
    member_id: &str,
    profile: &Profile,
) -> Result<(), StoreError> {
    let fields = [
        ("external_id", profile.external_id.as_deref()),
        ("phone", profile.phone.as_deref()),
        ("email", profile.email.as_deref()),
    ];
    for (field, value) in fields {
        let Some(value) = value else { continue };
        let sql =
            format!("SELECT id FROM members WHERE tenant_id = $1 AND {field} = $2 AND id <> $3");
        let taken = sqlx::query(&sql)
            .bind(tenant.0)
            .bind(value)
            .bind(member_id)
            .fetch_optional(conn(tx))
            .await?;
        if taken.is_some() {
            return Err(Rejection::Duplicate {
                field: field.to_string(),
                value: value.to_string(),
            }
            .into());
        }
    }
    Ok(())
}

async fn insert_consents(
    tx: &mut Conn,
    tenant: TenantId,
    member_id: &str,
    consents: &[ConsentInput],
    now: Timestamp,
) -> Result<(), StoreError> {
    for consent in consents {
        sqlx::query(
            "INSERT INTO consents (tenant_id, member_id, channel, topic, granted, at, method, text_shown) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(tenant.0)
        .bind(member_id)
        .bind(&consent.channel)
        .bind(&consent.topic)
        .bind(i64::from(consent.granted))
        .bind(time::to_db(now))
        .bind(&consent.method)
        .bind(&consent.text_shown)
        .execute(conn(tx))
        .await?;
    }
    Ok(())
}

/// Inserts one member with wallet, card and consents (inside the caller's transaction).
pub(crate) async fn insert_member(
    tx: &mut Conn,
    tenant: TenantId,
    new: &NewMember,
    now: Timestamp,
) -> Result<Member, StoreError> {
    // The referral first: a newcomer with the referrer's phone is a self-referral, not a
    // duplicate.
    let referrer = match &new.referral_code {
        Some(code) => Some(referrer_for(tx, tenant, code, &new.profile).await?),
        None => None,
    };
    check_unique(tx, tenant, &new.id, &new.profile).await?;
    let referral_code = unused_referral_code(tx, tenant).await?;
    let p = &new.profile;
    let inserted = sqlx::query(
        "INSERT INTO members (tenant_id, id, external_id, status, name, phone, email, birthday, locale, time_zone, \
         channel, attributes, tier, tier_since, enrolled_at, updated_at, referral_code, referred_by, referred_at) \
         VALUES ($1, $2, $3, 'active', $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $13, $13, $14, $15, $16)",
    )
    .bind(tenant.0)
    .bind(&new.id)
    .bind(&p.external_id)
    .bind(&p.name)
    .bind(&p.phone)
    .bind(&p.email)
    .bind(&p.birthday)
    .bind(&p.locale)
    .bind(&p.time_zone)
    .bind(&new.channel)
    .bind(&p.attributes)
    .bind(&new.tier)
    .bind(time::to_db(now))
    .bind(&referral_code)
    .bind(&referrer)
    .bind(referrer.as_ref().map(|_| time::to_db(now)))
    .execute(conn(tx))
    .await;
    if let Err(error) = inserted {
        return Err(unique_to_rejection(error.into(), p));
    }
    ledger::create_wallet(tx, tenant, &new.id).await?;
    match &new.physical_card {
        Some(number) => cards::bind_card(tx, tenant, number, &new.id, now).await?,
        None => {
            cards::issue_card(
                tx,
                tenant,
                &new.card_prefix,
                CardKind::Virtual,
                Some(&new.id),
                None,
                now,
            )
            .await?;
        }
    }
    insert_consents(tx, tenant, &new.id, &new.consents, now).await?;
    member_in_tx(tx, tenant, &new.id).await
}

/// Credits the join gift of the enrollment rules to a member just inserted.
async fn join_gift(
    tx: &mut Conn,
    ctx: LedgerCtx,
    program: &Program,
    member_id: &str,
    decide: Decide<'_, RuleGrant>,
) -> Result<Member, StoreError> {
    let (mut wallet, member) = lock_wallet_with_member(tx, ctx, member_id).await?;
    let periods = rules::limit_periods(program, TriggerKind::Enrollment, ctx.now);
    let usage = rules::usage_in(tx, ctx.tenant, member_id, &periods).await?;
    let grant = decide(&member, &usage);
    rules::credit_grant(
        tx,
        ctx,
        program,
        &mut wallet,
        code::JOIN,
        "enrollment",
        member_id,
        grant.points,
    )
    .await?;
    rules::record_awards(
        tx,
        ctx,
        member_id,
        "enrollment",
        member_id,
        &grant.awards,
        &periods,
        ctx.now,
    )
    .await?;
    Ok(member)
}

/// A unique violation that raced past `check_unique` still becomes a clear answer.
fn unique_to_rejection(error: StoreError, profile: &Profile) -> StoreError {
    if !error.is_unique_violation() {
        return error;
    }
    let text = error.to_string();
    // Two enrollments drew the same referral code at once (1 in 31^7): an infrastructure
    // answer, so nothing is stored and the retry draws another.
    if text.contains("referral_code") {
        return error;
    }
    let (field, value) = if text.contains("phone") {
        ("phone", profile.phone.clone())
    } else if text.contains("email") {
        ("email", profile.email.clone())
    } else {
        ("external_id", profile.external_id.clone())
    };
    Rejection::Duplicate {
        field: field.to_string(),
        value: value.unwrap_or_default(),
    }
    .into()
}

/// The caller's merge of a profile change ([`Store::update_member`]): given the profile as
/// stored, read under the member's wallet lock, it answers the whole new profile, or an error
/// that refuses the change with nothing written ([`StoreError::Invalid`] for a value that is
/// not valid). It may be called more than once (a unit of work retried after a serialization
/// failure); it must be pure.
pub type MergeProfile<'a> = &'a (dyn Fn(&Profile) -> Result<Profile, StoreError> + Send + Sync);

/// What happened when a member left.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExitReceipt {
    pub member_id: String,
    pub exited_at: Timestamp,
    pub points_forfeited: i64,
    pub pending_voided: i64,
    pub holds_released: i64,
    pub points_kept: i64,
    /// The member's unused coupons (rewards they bought, codes given to them) voided on exit.
    /// Absent from receipts stored before this field existed: 0.
    #[serde(default)]
    pub coupons_voided: u64,
}

impl Store {
    /// Enrolls a member (idempotent under `claim`). With `gift`, the program's enrollment
    /// rules run in the same unit of work: `decide` is called with the new member (under
    /// their wallet lock) and what it grants is credited at once, as a `join` transfer.
    pub async fn enroll(
        &self,
        tenant: TenantId,
        new: &NewMember,
        gift: Option<(&Program, Decide<'_, RuleGrant>)>,
        claims: &[Claim],
        now: Timestamp,
    ) -> Result<Idempotent<Member>, StoreError> {
        let ctx = LedgerCtx {
            tenant,
            backend: self.backend(),
            now,
        };
        idempotent_unit!(
            self,
            tenant,
            claims,
            now,
            async |c: &mut Conn, _tail: &mut Batch| {
                let member = insert_member(c, tenant, new, now).await?;
                match gift {
                    Some((program, decide)) => join_gift(c, ctx, program, &member.id, decide).await,
                    None => Ok(member),
                }
            }
        )
    }

    pub async fn find_member(
        &self,
        tenant: TenantId,
        lookup: Lookup<'_>,
    ) -> Result<Option<Member>, StoreError> {
        let (condition, value) = match lookup {
            Lookup::Id(v) => ("m.id = $2", v),
            Lookup::ExternalId(v) => ("m.external_id = $2", v),
            Lookup::Phone(v) => ("m.phone = $2", v),
            Lookup::Email(v) => ("m.email = $2", v),
            Lookup::Card(v) => (
                "m.id = (SELECT c.member_id FROM cards c WHERE c.tenant_id = $1 AND c.number = $2 AND c.status = 'active')",
                v,
            ),
            Lookup::ReferralCode(v) => ("m.referral_code = $2 AND m.status = 'active'", v),
        };
        let sql = format!(
            "SELECT {MEMBER_COLUMNS} FROM members m WHERE m.tenant_id = $1 AND {condition}"
        );
        let row = sqlx::query(&sql)
            .bind(tenant.0)
            .bind(value)
            .fetch_optional(self.pool())
            .await?;
        row.as_ref().map(member_from_row).transpose()
    }

    /// Members in id order after `after` (cursor pagination).
    pub async fn list_members(
        &self,
        tenant: TenantId,
        after: Option<&str>,
        limit: i64,
    ) -> Result<Vec<Member>, StoreError> {
        let sql = format!(
            "SELECT {MEMBER_COLUMNS} FROM members m WHERE m.tenant_id = $1 AND m.id > $2 ORDER BY m.id LIMIT $3"
        );
        let rows = sqlx::query(&sql)
            .bind(tenant.0)
            .bind(after.unwrap_or(""))
            .bind(limit.clamp(1, 1000))
            .fetch_all(self.pool())
            .await?;
        rows.iter().map(member_from_row).collect()
    }

    pub async fn count_members(&self, tenant: TenantId) -> Result<i64, StoreError> {
        let row =
            sqlx::query("SELECT CAST(COUNT(*) AS BIGINT) AS n FROM members WHERE tenant_id = $1")
                .bind(tenant.0)
                .fetch_one(self.pool())
                .await?;
        Ok(row.try_get("n")?)
    }

    /// Changes a member's profile and appends consents, refused for members who left. The
    /// change is merged under the member's wallet lock: `merge` is called with the profile as
    /// stored once every earlier change committed, and answers the whole new profile (or
    /// refuses the change, e.g. [`StoreError::Invalid`], and nothing is written). So two
    /// concurrent changes of different fields both survive: the second merges onto the first.
    pub async fn update_member(
        &self,
        tenant: TenantId,
        member_id: &str,
        merge: MergeProfile<'_>,
        consents: &[ConsentInput],
        claims: &[Claim],
        now: Timestamp,
    ) -> Result<Idempotent<Member>, StoreError> {
        let ctx = LedgerCtx {
            tenant,
            backend: self.backend(),
            now,
        };
        idempotent_unit!(
            self,
            tenant,
            claims,
            now,
            async |c: &mut Conn, _tail: &mut Batch| {
                // Under the wallet lock, which leaving the club and every other change of the
                // profile hold: an update racing an exit must not write personal data back onto
                // a member who was just erased, and one racing another update must merge onto
                // what that one wrote, not onto what was there before it.
                let (_, member) = lock_wallet_with_member(c, ctx, member_id).await?;
                if !member.is_active() {
                    return Err(Rejection::MemberExited {
                        member_id: member_id.to_string(),
                    }
                    .into());
                }
                let profile = &merge(&member.profile)?;
                check_unique(c, tenant, member_id, profile).await?;
                let updated = sqlx::query(
                    "UPDATE members SET external_id = $3, name = $4, phone = $5, email = $6, birthday = $7, \
                     locale = $8, time_zone = $9, attributes = $10, updated_at = $11 WHERE tenant_id = $1 AND id = $2",
                )
                .bind(tenant.0)
                .bind(member_id)
                .bind(&profile.external_id)
                .bind(&profile.name)
                .bind(&profile.phone)
                .bind(&profile.email)
                .bind(&profile.birthday)
                .bind(&profile.locale)
                .bind(&profile.time_zone)
                .bind(&profile.attributes)
                .bind(time::to_db(now))
                .execute(conn(c))
                .await;
                if let Err(error) = updated {
                    return Err(unique_to_rejection(error.into(), profile));
                }
                insert_consents(c, tenant, member_id, consents, now).await?;
                member_in_tx(c, tenant, member_id).await
            }
        )
    }

    pub async fn consents(
        &self,
        tenant: TenantId,
        member_id: &str,
    ) -> Result<Vec<Consent>, StoreError> {
        let rows = sqlx::query(
            "SELECT channel, topic, granted, at, method, text_shown FROM consents \
             WHERE tenant_id = $1 AND member_id = $2 ORDER BY id",
        )
        .bind(tenant.0)
        .bind(member_id)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|row| {
                Ok(Consent {
                    channel: row.try_get("channel")?,
                    topic: row.try_get("topic")?,
                    granted: row.try_get::<i64, _>("granted")? != 0,
                    at: time::from_db(row.try_get("at")?)?,
                    method: row.try_get("method")?,
                    text_shown: row.try_get("text_shown")?,
                })
            })
            .collect()
    }

    /// The member leaves the club: pending points are voided, holds released, points forfeited
    /// or kept as the program says, personal data erased, cards blocked, the erasure audited.
    pub async fn exit_member(
        &self,
        tenant: TenantId,
        member_id: &str,
        forfeit: bool,
        actor: &str,
        claims: &[Claim],
        now: Timestamp,
    ) -> Result<Idempotent<ExitReceipt>, StoreError> {
        let backend = self.backend();
        idempotent_unit!(
            self,
            tenant,
            claims,
            now,
            async |c: &mut Conn, _tail: &mut Batch| {
                let ctx = LedgerCtx {
                    tenant,
                    backend,
                    now,
                };
                // The wallet lock before the status, so two racing exits cannot both see an
                // active member (every unit of work on the member takes this lock first).
                let mut wallet = ledger::lock_wallets(c, ctx, &[member_id]).await?.remove(0);
                let member = member_in_tx(c, tenant, member_id).await?;
                if !member.is_active() {
                    return Err(Rejection::MemberExited {
                        member_id: member_id.to_string(),
                    }
                    .into());
                }
                ledger::expire_due(c, ctx, &mut wallet).await?;
                let (pending_voided, holds_released) =
                    resolve_open_pending(c, ctx, &mut wallet).await?;
                // Released holds give points back to their lots, which may have expired while
                // held: expire those now, or the forfeit below would try to take points that
                // no unexpired lot holds (and keep_until_expiry would leave them past due).
                ledger::expire_due(c, ctx, &mut wallet).await?;
                let mut points_forfeited = 0;
                let spendable = wallet.spendable();
                if forfeit && spendable > 0 {
                    let to = ledger::system_account(c, tenant, "forfeit").await?;
                    let transfer = NewTransfer::posted(
                        format!("exit:{member_id}"),
                        0,
                        0,
                        spendable,
                        code::FORFEIT,
                    )
                    .member(member_id)
                    .document("member_exit", member_id);
                    ledger::debit(c, ctx, &mut wallet, to, transfer, false).await?;
                    points_forfeited = spendable;
                }
                crate::erasure::erase_copies(c, tenant, &member).await?;
                sqlx::query(
                    "UPDATE members SET status = 'exited', external_id = NULL, name = NULL, phone = NULL, email = NULL, \
                     birthday = NULL, time_zone = NULL, attributes = '{}', exited_at = $3, updated_at = $3 \
                     WHERE tenant_id = $1 AND id = $2",
                )
                .bind(tenant.0)
                .bind(member_id)
                .bind(time::to_db(now))
                .execute(conn(c))
                .await?;
                sqlx::query(
                    "UPDATE cards SET status = 'blocked', blocked_at = $3 WHERE tenant_id = $1 AND member_id = $2 AND status = 'active'",
                )
                .bind(tenant.0)
                .bind(member_id)
                .bind(time::to_db(now))
                .execute(conn(c))
                .await?;
                // Their benefits end with their membership: a coupon in their name could
                // otherwise still be used at a till after the points were settled.
                let coupons_voided = crate::coupons::void_member_coupons(c, ctx, member_id).await?;
                let receipt = ExitReceipt {
                    member_id: member_id.to_string(),
                    exited_at: now,
                    points_forfeited,
                    pending_voided,
                    holds_released,
                    points_kept: wallet.spendable().max(0),
                    coupons_voided,
                };
                let details = format!(
                    "personal data erased; forfeited {points_forfeited}, kept {}, pending voided {pending_voided}, holds released {holds_released}, coupons voided {coupons_voided}",
                    receipt.points_kept
                );
                audit(
                    c,
                    tenant,
                    now,
                    actor,
                    "member.exit",
                    &format!("member:{member_id}"),
                    &details,
                )
                .await?;
                Ok(receipt)
            }
        )
    }
}

/// Voids every unresolved pending credit into the wallet and releases every hold on it.
/// Returns (points of pending credits voided, points of holds released).
async fn resolve_open_pending(
    tx: &mut Conn,
    ctx: LedgerCtx,
    wallet: &mut ledger::Wallet,
) -> Result<(i64, i64), StoreError> {
    let rows = sqlx::query(
        "SELECT t.id, t.credit_account FROM transfers t WHERE t.tenant_id = $1 AND t.kind = 'pending' \
         AND (t.credit_account = $2 OR t.debit_account = $2) \
         AND NOT EXISTS (SELECT 1 FROM transfers r WHERE r.tenant_id = t.tenant_id AND r.pending_id = t.id) ORDER BY t.id",
    )
    .bind(ctx.tenant.0)
    .bind(wallet.account_id)
    .fetch_all(conn(tx))
    .await?;
    let (mut voided, mut released) = (0, 0);
    for row in rows {
        let id: i64 = row.try_get("id")?;
        let credit_account: i64 = row.try_get("credit_account")?;
        let pending = ledger::pending_transfer(tx, ctx, id).await?;
        if credit_account == wallet.account_id {
            ledger::resolve_pending_credit(tx, ctx, wallet, &pending, 0, None).await?;
            voided += pending.amount;
            sqlx::query("UPDATE purchases SET earn_state = 'voided' WHERE tenant_id = $1 AND earn_transfer_id = $2")
                .bind(ctx.tenant.0)
                .bind(id)
                .execute(conn(tx))
                .await?;
        } else {
            ledger::resolve_pending_debit(tx, ctx, wallet, &pending, 0).await?;
            released += pending.amount;
            sqlx::query(
                "UPDATE redemptions SET status = 'released', resolved_at = $3 WHERE tenant_id = $1 AND transfer_id = $2",
            )
            .bind(ctx.tenant.0)
            .bind(id)
            .bind(time::to_db(ctx.now))
            .execute(conn(tx))
            .await?;
        }
    }
    Ok((voided, released))
}

// ----- Referrals --------------------------------------------------------------------------

/// Random characters in a referral code (then one check character): 31^7 ≈ 2.75 × 10^10
/// codes, so a club of millions draws a used one about once in ten thousand enrollments (and
/// then draws again).
const REFERRAL_CODE_RANDOM_CHARS: usize = 7;

/// The format of referral codes: the coupon alphabet (no 0/O, 1/I/L) with its check
/// character, no prefix, shown in groups of four.
pub fn referral_code_format() -> Result<patron_domain::coupon::CodeFormat, StoreError> {
    patron_domain::coupon::CodeFormat::new("", REFERRAL_CODE_RANDOM_CHARS, 4)
        .map_err(|e| StoreError::Config(format!("referral code format: {e}")))
}

/// A new referral code in canonical form (no dashes): seven characters drawn from the 122
/// random bits of a v4 UUID (31^7 < 2^35, so the modulo bias is below 2^-87), then the check
/// character.
pub(crate) fn new_referral_code() -> Result<String, StoreError> {
    use patron_domain::coupon::{ALPHABET, check_character};
    let mut bits = uuid::Uuid::new_v4().as_u128();
    let base = ALPHABET.len() as u128;
    let mut code = String::with_capacity(REFERRAL_CODE_RANDOM_CHARS + 1);
    for _ in 0..REFERRAL_CODE_RANDOM_CHARS {
        let index = usize::try_from(bits % base).unwrap_or(0);
        bits /= base;
        code.push(char::from(ALPHABET[index]));
    }
    let check = check_character(&code)
        .ok_or_else(|| StoreError::Config("referral code has no check character".into()))?;
    code.push(check);
    Ok(code)
}

/// A referral code no member of the club has yet. The unique index is the guarantee; this
/// look-up only keeps a collision from failing the unit of work.
async fn unused_referral_code(tx: &mut Conn, tenant: TenantId) -> Result<String, StoreError> {
    for _ in 0..8 {
        let code = new_referral_code()?;
        let taken =
            sqlx::query("SELECT id FROM members WHERE tenant_id = $1 AND referral_code = $2")
                .bind(tenant.0)
                .bind(&code)
                .fetch_optional(conn(tx))
                .await?;
        if taken.is_none() {
            return Ok(code);
        }
    }
    Err(StoreError::Conflict(
        "could not draw an unused referral code".into(),
    ))
}

/// The member a newcomer's referral code names: an active member (a member who left has no
/// working code) who is not the newcomer themselves (same phone or email).
async fn referrer_for(
    tx: &mut Conn,
    tenant: TenantId,
    code: &str,
    newcomer: &Profile,
) -> Result<String, StoreError> {
    let row = sqlx::query(
        "SELECT id, phone, email FROM members WHERE tenant_id = $1 AND referral_code = $2 AND status = 'active'",
    )
    .bind(tenant.0)
    .bind(code)
    .fetch_optional(conn(tx))
    .await?;
    let Some(row) = row else {
        return Err(Rejection::UnknownReferralCode {
            referral_code: code.to_string(),
        }
        .into());
    };
    let phone: Option<String> = row.try_get("phone")?;
    let email: Option<String> = row.try_get("email")?;
    // Emails compare without case: `Ada@` and `ada@` may be two addresses to a mail server,
    // but they are one person to a referral.
    let lower = |text: Option<&String>| text.map(|t| t.to_lowercase());
    for (field, theirs, mine) in [
        ("phone", phone, newcomer.phone.clone()),
        (
            "email",
            lower(email.as_ref()),
            lower(newcomer.email.as_ref()),
        ),
    ] {
        if theirs.is_some() && theirs == mine {
            return Err(Rejection::SelfReferral {
                field: field.to_string(),
            }
            .into());
        }
    }
    Ok(row.try_get("id")?)
}

/// Gives every member of `tenant` (every tenant: `None`) who has no referral code one: the
/// members enrolled before migration 0009 (enrollment and the batch import draw codes as
/// they insert). One statement finds them (a partial index holds exactly them), then one
/// update per member.
pub(crate) async fn fill_referral_codes(
    store: &Store,
    tenant: Option<TenantId>,
) -> Result<u64, StoreError> {
    let mut filled = 0u64;
    loop {
        let rows = match tenant {
            Some(tenant) => {
                sqlx::query(
                    "SELECT tenant_id, id FROM members WHERE tenant_id = $1 AND referral_code IS NULL LIMIT 500",
                )
                .bind(tenant.0)
                .fetch_all(store.pool())
                .await?
            }
            None => {
                sqlx::query("SELECT tenant_id, id FROM members WHERE referral_code IS NULL LIMIT 500")
                    .fetch_all(store.pool())
                    .await?
            }
        };
        if rows.is_empty() {
            return Ok(filled);
        }
        let mut missing = Vec::with_capacity(rows.len());
        for row in &rows {
            missing.push((
                row.try_get::<i64, _>("tenant_id")?,
                row.try_get::<String, _>("id")?,
            ));
        }
        let mut tx = store.begin_write().await?;
        for (tenant_id, member_id) in &missing {
            let code = unused_referral_code(&mut tx, TenantId(*tenant_id)).await?;
            sqlx::query(
                "UPDATE members SET referral_code = $3 WHERE tenant_id = $1 AND id = $2 AND referral_code IS NULL",
            )
            .bind(tenant_id)
            .bind(member_id)
            .bind(&code)
            .execute(conn(&mut tx))
            .await?;
        }
        tx.commit().await?;
        filled += missing.len() as u64;
    }
}

/// The longest referral chain walked when checking a later link for a loop (a chain is one
/// member per level, so this is far beyond any real one; past it the link is refused).
const REFERRAL_CHAIN_MAX: usize = 10_000;

/// Links a member to the referrer whose code they present, after enrollment ("referred
/// later"): see [`Store::set_referrer`].
async fn set_referrer_in(
    c: &mut Conn,
    ctx: LedgerCtx,
    member_id: &str,
    referral_code: &str,
) -> Result<Member, StoreError> {
    // Later links are the only way a loop could form (a newcomer has no one below them), so
    // they take turns in the club: two links made at once (A under B, B under A) cannot
    // both see no loop. The row is the club's counter of later links.
    sqlx::query(
        "INSERT INTO counters (tenant_id, name, value) VALUES ($1, 'referral_links', 1) \
         ON CONFLICT (tenant_id, name) DO UPDATE SET value = counters.value + 1",
    )
    .bind(ctx.tenant.0)
    .execute(conn(c))
    .await?;
    // The newcomer's wallet lock: their purchases (which read the link) wait for it.
    let (_wallet, member) = lock_wallet_with_member(c, ctx, member_id).await?;
    if !member.is_active() {
        return Err(Rejection::MemberExited {
            member_id: member_id.to_string(),
        }
        .into());
    }
    if member.referral.referred_by.is_some() {
        return Err(Rejection::ReferralNotAllowed {
            member_id: member_id.to_string(),
            reason: "the member already has a referrer".into(),
        }
        .into());
    }
    let purchased =
        sqlx::query("SELECT id FROM purchases WHERE tenant_id = $1 AND member_id = $2 LIMIT 1")
            .bind(ctx.tenant.0)
            .bind(member_id)
            .fetch_optional(conn(c))
            .await?;
    if purchased.is_some() {
        return Err(Rejection::ReferralNotAllowed {
            member_id: member_id.to_string(),
            reason: "a referrer can be added only before the member's first purchase".into(),
        }
        .into());
    }
    if member.referral.code.as_deref() == Some(referral_code) {
        return Err(Rejection::SelfReferral {
            field: "referral_code".into(),
        }
        .into());
    }
    let referrer_id = referrer_for(c, ctx.tenant, referral_code, &member.profile).await?;
    if referrer_id == member.id {
        return Err(Rejection::SelfReferral {
            field: "referral_code".into(),
        }
        .into());
    }
    // No loop: the member must not be above the referrer in the referral tree.
    let mut above = Some(referrer_id.clone());
    let mut levels = 0;
    while let Some(id) = above {
        if id == member.id || levels > REFERRAL_CHAIN_MAX {
            return Err(Rejection::ReferralLoop {
                member_id: member.id.clone(),
                referrer_id,
            }
            .into());
        }
        levels += 1;
        above = sqlx::query("SELECT referred_by FROM members WHERE tenant_id = $1 AND id = $2")
            .bind(ctx.tenant.0)
            .bind(&id)
            .fetch_optional(conn(c))
            .await?
            .map(|row| row.try_get::<Option<String>, _>("referred_by"))
            .transpose()?
            .flatten();
    }
    sqlx::query(
        "UPDATE members SET referred_by = $3, referred_at = $4, updated_at = $4 WHERE tenant_id = $1 AND id = $2",
    )
    .bind(ctx.tenant.0)
    .bind(member_id)
    .bind(&referrer_id)
    .bind(time::to_db(ctx.now))
    .execute(conn(c))
    .await?;
    member_in_tx(c, ctx.tenant, member_id).await
}

impl Store {
    /// Gives every member of the club who has no referral code one (migrations call it for
    /// every club). Returns how many.
    pub async fn fill_referral_codes(&self, tenant: TenantId) -> Result<u64, StoreError> {
        fill_referral_codes(self, Some(tenant)).await
    }

    /// Records who referred a member after their enrollment (idempotent under `claims`):
    /// refused when they already have a referrer or a purchase, when the code is unknown or
    /// the referrer's own (same member, phone or email), and when the referrer is below them
    /// in the referral tree (a loop).
    pub async fn set_referrer(
        &self,
        tenant: TenantId,
        member_id: &str,
        referral_code: &str,
        claims: &[Claim],
        now: Timestamp,
    ) -> Result<Idempotent<Member>, StoreError> {
        let ctx = LedgerCtx {
            tenant,
            backend: self.backend(),
            now,
        };
        idempotent_unit!(
            self,
            tenant,
            claims,
            now,
            async |c: &mut Conn, _tail: &mut Batch| {
                set_referrer_in(c, ctx, member_id, referral_code).await
            }
        )
    }
}
