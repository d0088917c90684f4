//! Members: enrollment (with the join gift and referrals), lookups, profile updates, the
//! referrer, exit and cards.

use patron_domain::program::Program;
use patron_domain::rules::{RuleUsage, Trigger, TriggerKind};
use patron_domain::{contact, phone};
use patron_store::Rejection;
use patron_store::members::{Lookup, Member, NewMember, Profile};
use patron_store::purchases::MemberReads;
use patron_store::rules::RuleGrant;
use patron_store::tenants::Tenant;

use crate::profile::{consents_from, profile_from};
use crate::{
    Engine, EngineError, EnrollRequest, MemberPatch, Outcome, ProfileFields, claims, new_id,
    request_hash, rules, unwrap_idempotent, validate_idempotency_key,
};

impl Engine {
    fn profile_from(
        &self,
        request: &ProfileFields,
        program: &Program,
    ) -> Result<Profile, EngineError> {
        profile_from(request, program, self.now())
    }

    pub(crate) fn new_member(
        &self,
        request: &EnrollRequest,
        program: &Program,
        hash: String,
    ) -> Result<NewMember, EngineError> {
        if !crate::ENROLL_CHANNELS.contains(&request.channel.as_str()) {
            return Err(EngineError::invalid(
                "channel",
                format!("use one of {}", crate::ENROLL_CHANNELS.join(", ")),
            ));
        }
        let physical_card = match &request.card_number {
            Some(number) => {
                let number = patron_domain::card::normalize_card_number(number);
                if !patron_domain::card::is_valid_card_number(&number) {
                    return Err(EngineError::invalid(
                        "card_number",
                        "not a valid card number (check digit)",
                    ));
                }
                Some(number)
            }
            None => None,
        };
        let tier = program
            .tiers
            .levels
            .first()
            .map(|t| t.code.clone())
            .unwrap_or_default();
        Ok(NewMember {
            id: new_id("mem"),
            profile: self.profile_from(&request.profile, program)?,
            channel: request.channel.clone(),
            consents: consents_from(&request.consents)?,
            physical_card,
            tier,
            card_prefix: program.cards.prefix.clone(),
            request_hash: hash,
            referral_code: None,
        })
    }

    pub async fn enroll(
        &self,
        tenant: &Tenant,
        request: &EnrollRequest,
        idempotency_key: Option<&str>,
    ) -> Outcome<Member> {
        self.enroll_referred(tenant, request, None, idempotency_key)
            .await
    }

    /// [`Engine::enroll`] with the referral code the newcomer presented (docs/PROGRAM.md,
    /// "Referrals"): it must belong to an active member who is not the newcomer (same phone
    /// or email), checked in the unit of work; the member records who referred them.
    pub async fn enroll_referred(
        &self,
        tenant: &Tenant,
        request: &EnrollRequest,
        referral_code: Option<&str>,
        idempotency_key: Option<&str>,
    ) -> Outcome<Member> {
        validate_idempotency_key(idempotency_key)?;
        let program = self.program(tenant).await?.program;
        let referral_code = referral_code
            .map(|code| {
                patron_store::members::referral_code_format()?
                    .parse(code)
                    .map_err(|e| {
                        EngineError::Rejected(Rejection::UnknownReferralCode {
                            referral_code: format!("{code} ({e})"),
                        })
                    })
            })
            .transpose()?;
        // Without a code the hash is the one enrollments always had.
        let hash = match &referral_code {
            None => request_hash("member.enroll", request)?,
            Some(code) => request_hash("member.enroll", &(request, code))?,
        };
        let mut new = self.new_member(request, &program, hash.clone())?;
        new.referral_code = referral_code;
        let claims = claims(idempotency_key, "member.enroll", &hash);
        let now = self.now();
        // The join gift: the enrollment rules, credited in the same unit of work.
        let failures = rules::Failures::default();
        let decide = |member: &Member, usage: &RuleUsage| {
            let (grant, failed) = rules::grant(
                &program,
                member,
                &MemberReads::default(),
                Trigger::Enrollment,
                now,
                usage,
            );
            failures.set(failed);
            grant
        };
        let decide: patron_store::rules::Decide<'_, RuleGrant> = &decide;
        let gift = program
            .rules_for(TriggerKind::Enrollment)
            .next()
            .is_some()
            .then_some((&*program, decide));
        let result = self
            .store
            .enroll(tenant.id, &new, gift, &claims, now)
            .await?;
        if !result.replayed {
            self.report_rule_failures(failures.take());
        }
        unwrap_idempotent(result)
    }

    pub async fn member(&self, tenant: &Tenant, member_id: &str) -> Result<Member, EngineError> {
        self.store
            .find_member(tenant.id, Lookup::Id(member_id))
            .await?
            .ok_or_else(|| {
                Rejection::MemberNotFound {
                    member_id: member_id.to_string(),
                }
                .into()
            })
    }

    pub async fn find_member(
        &self,
        tenant: &Tenant,
        lookup: Lookup<'_>,
    ) -> Result<Option<Member>, EngineError> {
        let normalized;
        let lookup = match lookup {
            Lookup::Phone(p) => {
                // A national number is read in the program's country, as at enrollment.
                let country = self.program(tenant).await?.program.country;
                normalized = phone::normalize_phone(p, country)
                    .map_err(|e| EngineError::invalid("phone", e.to_string()))?;
                Lookup::Phone(&normalized)
            }
            Lookup::Email(e) => {
                normalized = contact::normalize_email(e)
                    .map_err(|e| EngineError::invalid("email", e.to_string()))?;
                Lookup::Email(&normalized)
            }
            Lookup::Card(c) => {
                normalized = patron_domain::card::normalize_card_number(c);
                Lookup::Card(&normalized)
            }
            Lookup::ReferralCode(code) => {
                normalized = patron_domain::coupon::normalize(code);
                Lookup::ReferralCode(&normalized)
            }
            other => other,
        };
        Ok(self.store.find_member(tenant.id, lookup).await?)
    }

    /// Applies a partial update: fields present in the patch replace the stored ones, `null`
    /// clears them. The patch is merged inside the store's unit of work, onto the profile as
    /// read under the member's lock, so concurrent patches of different fields all survive.
    pub async fn update_member(
        &self,
        tenant: &Tenant,
        member_id: &str,
        patch: &MemberPatch,
        idempotency_key: Option<&str>,
    ) -> Outcome<Member> {
        validate_idempotency_key(idempotency_key)?;
        let program = self.program(tenant).await?.program;
        let now = self.now();
        // The patch's own values first, so a malformed one is refused before any unit of
        // work; the merged profile is validated again under the lock (the number of custom
        // attributes, say, depends on what is stored).
        let mut alone = ProfileFields::default();
        patch.apply(&mut alone);
        profile_from(&alone, &program, now)?;
        let consents = consents_from(&patch.consents)?;
        let hash = request_hash("member.update", &(member_id, patch))?;
        let claims = claims(idempotency_key, "member.update", &hash);
        let merge = |current: &Profile| -> Result<Profile, patron_store::StoreError> {
            let mut fields =
                ProfileFields::from_profile(current).map_err(EngineError::into_store)?;
            patch.apply(&mut fields);
            profile_from(&fields, &program, now).map_err(EngineError::into_store)
        };
        unwrap_idempotent(
            self.store
                .update_member(tenant.id, member_id, &merge, &consents, &claims, now)
                .await?,
        )
    }

    /// Records who referred a member after their enrollment ("referred later"; docs/PROGRAM.md,
    /// "Referrals"): only before their first purchase, once, and never making a loop.
    pub async fn set_referrer(
        &self,
        tenant: &Tenant,
        member_id: &str,
        referral_code: &str,
        idempotency_key: Option<&str>,
    ) -> Outcome<Member> {
        validate_idempotency_key(idempotency_key)?;
        let code = patron_store::members::referral_code_format()?
            .parse(referral_code)
            .map_err(|e| {
                EngineError::Rejected(Rejection::UnknownReferralCode {
                    referral_code: format!("{referral_code} ({e})"),
                })
            })?;
        let hash = request_hash("member.referrer", &(member_id, &code))?;
        let claims = claims(idempotency_key, "member.referrer", &hash);
        unwrap_idempotent(
            self.store
                .set_referrer(tenant.id, member_id, &code, &claims, self.now())
                .await?,
        )
    }

    pub async fn exit_member(
        &self,
        tenant: &Tenant,
        member_id: &str,
        actor: &str,
        idempotency_key: Option<&str>,
    ) -> Outcome<patron_store::members::ExitReceipt> {
        validate_idempotency_key(idempotency_key)?;
        let program = self.program(tenant).await?.program;
        let forfeit = matches!(program.exit, patron_domain::program::ExitPolicy::Forfeit);
        let hash = request_hash("member.exit", &member_id)?;
        let claims = claims(idempotency_key, "member.exit", &hash);
        unwrap_idempotent(
            self.store
                .exit_member(tenant.id, member_id, forfeit, actor, &claims, self.now())
                .await?,
        )
    }

    pub async fn replace_card(
        &self,
        tenant: &Tenant,
        number: &str,
        replacement: Option<&str>,
        actor: &str,
        idempotency_key: Option<&str>,
    ) -> Outcome<patron_store::cards::CardReplacement> {
        validate_idempotency_key(idempotency_key)?;
        let program = self.program(tenant).await?.program;
        let number = patron_domain::card::normalize_card_number(number);
        let replacement = replacement.map(patron_domain::card::normalize_card_number);
        if let Some(r) = &replacement
            && !patron_domain::card::is_valid_card_number(r)
        {
            return Err(EngineError::invalid(
                "replacement",
                "not a valid card number (check digit)",
            ));
        }
        let hash = request_hash("card.replace", &(&number, &replacement))?;
        let claims = claims(idempotency_key, "card.replace", &hash);
        unwrap_idempotent(
            self.store
                .replace_card(
                    tenant.id,
                    &number,
                    replacement.as_deref(),
                    &program.cards.prefix,
                    actor,
                    &claims,
                    self.now(),
                )
                .await?,
        )
    }

    pub async fn issue_card_batch(
        &self,
        tenant: &Tenant,
        count: u32,
        actor: &str,
    ) -> Result<(i64, Vec<String>), EngineError> {
        if count == 0 || count > 1_000_000 {
            return Err(EngineError::invalid(
                "count",
                "issue 1 to 1,000,000 cards at a time",
            ));
        }
        let program = self.program(tenant).await?.program;
        Ok(self
            .store
            .issue_card_batch(tenant.id, &program.cards.prefix, count, actor, self.now())
            .await?)
    }
}
