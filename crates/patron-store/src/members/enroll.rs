//! Enrolling members, finding and listing them, changing their profile and consents.

use jiff::Timestamp;
use patron_domain::program::Program;
use patron_domain::rules::TriggerKind;
use sqlx::Row;

use super::referrals::referrer_for;
use super::*;
use crate::batch::Batch;
use crate::cards::{self, CardKind};
use crate::idempotency::{Claim, Idempotent};
use crate::ledger::{self, LedgerCtx, code};
use crate::rules::{self, Decide, RuleGrant};
use crate::tenants::TenantId;
use crate::{Conn, Rejection, Store, StoreError, conn, idempotent_unit, time};

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
    let credit = rules::Grant {
        reason: code::JOIN,
        document_type: "enrollment",
        document_id: member_id,
        points: grant.points,
    };
    rules::credit_grant(tx, ctx, program, &mut wallet, credit).await?;
    let awards = rules::Awards {
        member_id,
        source_type: "enrollment",
        source_id: member_id,
        awards: &grant.awards,
        periods: &periods,
        occurred_at: ctx.now,
    };
    rules::record_awards(tx, ctx, awards).await?;
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
}
