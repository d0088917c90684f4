//! Members: enrollment, look-ups, profile changes, consents, and leaving the club.
//!
//! Enrollment creates the member, their wallet, their first card and their consents in one
//! unit of work. Leaving the club erases personal data but keeps the ledger under the
//! member's id, which after erasure identifies no one.
//!
//! This module holds the member's records and the reads every unit of work on a wallet
//! shares (the member read under the wallet's lock); the units of work are in `enroll`
//! (enrollment, look-ups, profile changes, consents), `exit` (leaving the club) and
//! `referrals` (who referred whom).

mod enroll;
mod exit;
pub(crate) mod referrals;

use jiff::Timestamp;
use patron_domain::clawback::{self, ClawbackMode};
use patron_domain::program::Program;
use serde::{Deserialize, Serialize};
use sqlx::any::AnyRow;
use sqlx::{Column, Row};

use crate::batch::Param;
use crate::idempotency::Claim;
use crate::idempotency::FoldedClaim;
use crate::ledger::LedgerCtx;
use crate::tenants::TenantId;
use crate::{Conn, Rejection, StoreError, conn, time};

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

/// The clawback mode for a refund's earning on `member_id`'s wallet, locked by the caller:
/// the program's return policy (`posting::clawback_mode`), except that a member who left the
/// club is never taken into debt (`clawback::mode_for_account`). Their status is read only
/// when it can matter.
pub(crate) async fn clawback_mode(
    c: &mut Conn,
    ctx: LedgerCtx,
    program: &Program,
    member_id: &str,
) -> Result<ClawbackMode, StoreError> {
    let mode = patron_domain::posting::clawback_mode(program.returns);
    if mode != ClawbackMode::Unlimited {
        return Ok(mode);
    }
    let member = member_in_tx(c, ctx.tenant, member_id).await?;
    Ok(clawback::mode_for_account(mode, member.is_active()))
}
