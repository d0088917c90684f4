//! Patron's use cases.
//!
//! The engine validates requests with `patron-domain`, decides what a purchase, an event or
//! an enrollment earns by the program's rules ([`rules`]: evaluated inside the store's unit
//! of work, under the member's wallet lock), and hands the store one atomic unit of work per
//! call. It owns the clock ([`Clock`]) and the cache of parsed programs.
//! It knows neither SQL nor HTTP; JSON appears only as the canonical form hashed for
//! idempotency and the storage form of stored responses.

pub mod clock;
pub mod error;
pub mod import;
pub mod jobs;
pub mod keys;
pub mod metrics;
mod profile;
pub mod queries;
pub mod requests;
pub mod rewards;
pub mod rules;
pub mod segments;
pub mod tiers;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use jiff::{SignedDuration, Timestamp};
use patron_domain::program::{Program, parse_program};
use patron_domain::rules::{RuleFailure, RuleUsage, Trigger, TriggerKind};
use patron_domain::{contact, earning, phone, text};
use patron_store::idempotency::{Claim, DOCUMENT_KEY_PREFIX, Idempotent};
use patron_store::members::{Lookup, Member, NewMember, Profile};
use patron_store::purchases::{
    MemberReads, NewPurchase, NewRefund, PurchaseLine, PurchaseReceipt, RefundReceipt,
};
use patron_store::redemptions::{
    AdjustmentReceipt, Balance, NewRedemption, Redemption, TransferReceipt,
};
use patron_store::rules::{EventReceipt, NewEvent, RuleGrant};
use patron_store::tenants::{Tenant, TenantId};
use patron_store::{Rejection, Store};
use sha2::{Digest, Sha256};

pub use clock::{Clock, ManualClock, SystemClock};
pub use error::EngineError;
pub use requests::*;
pub use rules::RuleFailureObserver;

use profile::{consents_from, profile_from};

/// Redemption holds that name no expiry are released after this long.
pub const HOLD_DEFAULT_MINUTES: i64 = 30;
/// The longest a hold may last.
pub const HOLD_MAX_MINUTES: i64 = 7 * 24 * 60;

/// A parsed program and its version.
#[derive(Debug, Clone)]
pub struct LoadedProgram {
    pub version: i64,
    pub program: Arc<Program>,
}

#[derive(Debug, Clone)]
pub struct Engine {
    store: Store,
    clock: Arc<dyn Clock>,
    rule_failures: Option<Arc<dyn RuleFailureObserver>>,
    programs: Arc<Mutex<HashMap<TenantId, LoadedProgram>>>,
}

/// A result that may be a stored replay.
pub type Outcome<T> = Result<Replayable<T>, EngineError>;

/// The answer of an idempotent call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Replayable<T> {
    pub value: T,
    pub replayed: bool,
}

fn unwrap_idempotent<T>(result: Idempotent<T>) -> Outcome<T> {
    match result.outcome {
        Ok(value) => Ok(Replayable {
            value,
            replayed: result.replayed,
        }),
        Err(rejection) if result.replayed => Err(EngineError::ReplayedRejection(rejection)),
        Err(rejection) => Err(EngineError::Rejected(rejection)),
    }
}

/// sha256 of the canonical JSON of a request: the fingerprint an idempotency key is bound to.
pub fn request_hash<T: serde::Serialize>(
    operation: &str,
    request: &T,
) -> Result<String, EngineError> {
    let body =
        serde_json::to_vec(request).map_err(|e| EngineError::invalid("request", e.to_string()))?;
    let mut hasher = Sha256::new();
    hasher.update(operation.as_bytes());
    hasher.update([0]);
    hasher.update(&body);
    Ok(hex::encode(hasher.finalize()))
}

/// The id of a new row (`mem_...`, `pur_...`): the prefix and a version 7 UUID whose bits
/// below the millisecond are all random. `Uuid::now_v7` fills them from a counter the whole
/// process shares, which would number the rows every club makes within a millisecond
/// (docs/API-DESIGN.md, "Ids").
pub fn new_id(prefix: &str) -> String {
    let uuid = uuid::Uuid::new_v7(uuid::Timestamp::now(uuid::NoContext));
    format!("{prefix}_{}", uuid.simple())
}

fn claims(key: Option<&str>, operation: &str, hash: &str) -> Vec<Claim> {
    key.map(|k| vec![Claim::new(format!("client:{k}"), operation, hash)])
        .unwrap_or_default()
}

/// One operation's points within the program's `[limits] points_max`.
fn check_points(program: &Program, points: i64) -> Result<(), EngineError> {
    program
        .limits
        .check_points(points)
        .map_err(|e| EngineError::invalid("points", e.to_string()))
}

/// A purchase's, refund's or event's time within the program's window around now.
fn check_time(program: &Program, at: Timestamp, now: Timestamp) -> Result<(), EngineError> {
    program
        .limits
        .check_time(at, now)
        .map_err(|e| EngineError::invalid("occurred_at", e.to_string()))
}

fn validate_idempotency_key(key: Option<&str>) -> Result<(), EngineError> {
    match key {
        Some(key) => text::check_identifier(key, text::IDEMPOTENCY_KEY_CHARS_MAX)
            .map_err(|e| EngineError::invalid("Idempotency-Key", e.to_string())),
        None => Ok(()),
    }
}

impl Engine {
    pub fn new(store: Store, clock: Arc<dyn Clock>) -> Engine {
        Engine {
            store,
            clock,
            rule_failures: None,
            programs: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    /// Tells `observer` about every rule skipped because its expression failed at run time
    /// (the HTTP layer counts them in `/metrics`).
    pub fn with_rule_failure_observer(mut self, observer: Arc<dyn RuleFailureObserver>) -> Engine {
        self.rule_failures = Some(observer);
        self
    }

    /// Logs and reports rules that failed at run time; they were skipped, nothing else.
    fn report_rule_failures(&self, failures: Vec<RuleFailure>) {
        for failure in failures {
            let part = match failure.part {
                patron_domain::rules::RulePart::When => "when",
                patron_domain::rules::RulePart::Amount => "amount",
            };
            let error = failure.error.to_string();
            tracing::warn!(rule = %failure.rule_id, part, %error, "earning rule failed at run time and was skipped");
            if let Some(observer) = &self.rule_failures {
                observer.rule_failed(&failure.rule_id, &error);
            }
        }
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn now(&self) -> Timestamp {
        self.clock.now()
    }

    // ----- tenants and programs -----

    pub async fn tenant(&self, name: &str) -> Result<Tenant, EngineError> {
        self.store
            .tenant_by_name(name)
            .await?
            .ok_or_else(|| EngineError::TenantNotFound(name.to_string()))
    }

    /// Validates a program text; every problem comes back with its line and column.
    pub fn validate_program(source: &str) -> Result<Program, EngineError> {
        parse_program(source).map_err(EngineError::Program)
    }

    /// Validates and stores a program for a tenant (created if needed), auditing the diff.
    /// Returns (tenant, version, whether anything changed).
    pub async fn apply_program(
        &self,
        tenant_name: &str,
        source: &str,
        actor: &str,
    ) -> Result<(Tenant, i64, bool), EngineError> {
        if tenant_name.is_empty()
            || tenant_name.len() > 64
            || !tenant_name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(EngineError::invalid(
                "tenant",
                "use 1 to 64 letters, digits, '-' or '_'",
            ));
        }
        let program = Self::validate_program(source)?;
        let now = self.now();
        let tenant = self.store.ensure_tenant(tenant_name, now).await?;
        let previous = self
            .store
            .current_program(tenant.id)
            .await?
            .map(|p| p.source)
            .unwrap_or_default();
        let diff = similar::TextDiff::from_lines(previous.as_str(), source)
            .unified_diff()
            .context_radius(2)
            .header("previous", "new")
            .to_string();
        // The version the decision compares with is the one read here; another applied
        // meanwhile would only be compared by the next apply (the facts are read in the unit).
        let current = (!previous.is_empty())
            .then(|| parse_program(&previous).ok())
            .flatten();
        let decide = |history: &patron_domain::program::history::History| {
            patron_domain::program::history::check_change(current.as_ref(), &program, history)
        };
        let (version, changed) = self
            .store
            .apply_program_checked(tenant.id, source, actor, &diff, now, &decide)
            .await?
            .map_err(|refusals| {
                EngineError::Program(refusals.iter().map(|r| r.locate(source)).collect())
            })?;
        if let Ok(mut cache) = self.programs.lock() {
            cache.remove(&tenant.id);
        }
        Ok((tenant, version, changed))
    }

    /// The tenant's current program, parsed once per version.
    pub async fn program(&self, tenant: &Tenant) -> Result<LoadedProgram, EngineError> {
        let no_program = || Rejection::NoProgram {
            tenant: tenant.name.clone(),
        };
        // Every use case starts here: ask only for the version number, and fetch and parse
        // the text only when it changed.
        let version = self
            .store
            .current_program_version(tenant.id)
            .await?
            .ok_or_else(no_program)?;
        if let Ok(cache) = self.programs.lock()
            && let Some(loaded) = cache.get(&tenant.id).filter(|l| l.version == version)
        {
            return Ok(loaded.clone());
        }
        let stored = self
            .store
            .current_program(tenant.id)
            .await?
            .ok_or_else(no_program)?;
        let program = parse_program(&stored.source).map_err(EngineError::Program)?;
        let loaded = LoadedProgram {
            version: stored.version,
            program: Arc::new(program),
        };
        if let Ok(mut cache) = self.programs.lock() {
            cache.insert(tenant.id, loaded.clone());
        }
        Ok(loaded)
    }

    /// The program in this process's cache, without asking the database whether it is still
    /// current (for callers that check the version themselves, in their unit of work).
    fn cached_program(&self, tenant: &Tenant) -> Option<LoadedProgram> {
        self.programs
            .lock()
            .ok()
            .and_then(|cache| cache.get(&tenant.id).cloned())
    }

    // ----- members -----

    fn profile_from(
        &self,
        request: &ProfileFields,
        program: &Program,
    ) -> Result<Profile, EngineError> {
        profile_from(request, program, self.now())
    }

    fn new_member(
        &self,
        request: &EnrollRequest,
        program: &Program,
        hash: String,
    ) -> Result<NewMember, EngineError> {
        if !ENROLL_CHANNELS.contains(&request.channel.as_str()) {
            return Err(EngineError::invalid(
                "channel",
                format!("use one of {}", ENROLL_CHANNELS.join(", ")),
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

    // ----- purchases -----

    fn new_purchase(
        &self,
        request: &PurchaseRequest,
        program: &Program,
        member_id: Option<String>,
        hash: String,
    ) -> Result<NewPurchase, EngineError> {
        request.validate()?;
        if request.currency != program.currency.code {
            return Err(EngineError::Rejected(Rejection::WrongCurrency {
                expected: program.currency.code.clone(),
                found: request.currency.clone(),
            }));
        }
        let limits = &program.limits;
        let occurred_at = request.occurred_at.unwrap_or_else(|| self.now());
        check_time(program, occurred_at, self.now())?;
        let mut lines = Vec::with_capacity(request.lines.len());
        let (mut total, mut eligible_total) = (0i64, 0i64);
        for (i, line) in request.lines.iter().enumerate() {
            let quantity = text::number::parse_decimal(&line.quantity)
                .map_err(|e| EngineError::invalid(format!("lines[{i}].quantity"), e.to_string()))?;
            limits
                .check_line(quantity, 0)
                .map_err(|e| EngineError::invalid(format!("lines[{i}].quantity"), e.to_string()))?;
            let line_total = patron_domain::purchase::line_total_minor(
                quantity,
                line.unit_price_minor,
                line.discount_minor,
            )
            .map_err(|e| EngineError::invalid(format!("lines[{i}]"), e.to_string()))?;
            limits.check_line(quantity, line_total).map_err(|e| {
                EngineError::invalid(format!("lines[{i}]"), format!("the line's total {e}"))
            })?;
            let eligible = earning::is_eligible(&program.earning, &line.sku, &line.category);
            total = limits
                .add_to_purchase(total, line_total)
                .map_err(|e| EngineError::invalid("lines", format!("the purchase's total {e}")))?;
            if eligible {
                // At most `total`, which the limit bounds.
                eligible_total += line_total;
            }
            lines.push(PurchaseLine {
                line_no: i64::try_from(i).unwrap_or(i64::MAX) + 1,
                sku: line.sku.clone(),
                category: line.category.clone(),
                quantity: quantity.normalize().to_string(),
                unit_price_minor: line.unit_price_minor,
                discount_minor: line.discount_minor,
                total_minor: line_total,
                eligible,
            });
        }
        Ok(NewPurchase {
            id: new_id("pur"),
            document_id: request.document_id.clone(),
            store_id: request.store_id.clone(),
            channel: request.channel.clone(),
            member_id,
            occurred_at,
            currency: request.currency.clone(),
            total_minor: total,
            eligible_minor: eligible_total,
            lines,
            request_hash: hash,
        })
    }

    /// Posts a purchase; idempotent by the shop's document id, and by the key when given.
    /// What it earns (base + rules) is decided inside the unit of work, under the member's
    /// wallet lock, so rule limits hold under concurrency.
    pub async fn post_purchase(
        &self,
        tenant: &Tenant,
        request: &PurchaseRequest,
        idempotency_key: Option<&str>,
    ) -> Outcome<PurchaseReceipt> {
        validate_idempotency_key(idempotency_key)?;
        // A member's purchase checks the program's version in the statement that reads the
        // member, inside its unit of work: so the cached program is used without a read of
        // its own, and if another version was applied meanwhile the unit (which wrote
        // nothing) runs again with it. An anonymous purchase reads nothing else: it asks.
        let mut loaded = match (&request.member_id, self.cached_program(tenant)) {
            (Some(_), Some(loaded)) => loaded,
            _ => self.program(tenant).await?,
        };
        let mut attempt = 0;
        loop {
            attempt += 1;
            match self
                .post_purchase_under(tenant, request, idempotency_key, &loaded)
                .await
            {
                Err(EngineError::Store(patron_store::StoreError::ProgramChanged { .. }))
                    if attempt < 4 =>
                {
                    loaded = self.program(tenant).await?;
                }
                other => return other,
            }
        }
    }

    /// [`Engine::post_purchase`] under one version of the program.
    async fn post_purchase_under(
        &self,
        tenant: &Tenant,
        request: &PurchaseRequest,
        idempotency_key: Option<&str>,
        loaded: &LoadedProgram,
    ) -> Outcome<PurchaseReceipt> {
        let program = &loaded.program;
        let hash = request_hash("purchase.post", request)?;
        // The member is read (and an unknown one refused, nothing stored) under the wallet
        // lock inside the unit of work: no read of its own before it.
        let purchase =
            self.new_purchase(request, program, request.member_id.clone(), hash.clone())?;
        let mut claims = claims(idempotency_key, "purchase.post", &hash);
        claims.push(Claim::new(
            format!("{DOCUMENT_KEY_PREFIX}purchase:{}", request.document_id),
            "purchase.post",
            &hash,
        ));
        let now = self.now();
        // `member.statistics` (without this purchase) and `member.segments` for the rules are
        // read with the member under the wallet lock, and only when a purchase rule reads them.
        let failures = rules::Failures::default();
        let decide = |member: &Member, usage: &RuleUsage, reads: &MemberReads| {
            let (plan, failed) = rules::earn_plan_with(
                program,
                member,
                reads.statistics.as_ref(),
                &reads.segments,
                &purchase,
                now,
                usage,
            )
            .map_err(EngineError::into_store)?;
            failures.set(failed);
            Ok(plan)
        };
        let decide = rules::earn_decision(program, &decide);
        let result = self
            .store
            .post_purchase(
                tenant.id,
                program,
                Some(loaded.version),
                &purchase,
                decide,
                &claims,
                now,
            )
            .await?;
        if !result.replayed {
            self.report_rule_failures(failures.take());
        }
        unwrap_idempotent(result)
    }

    /// What posting this purchase would answer now (points, the rules that would fire, the
    /// state the points would have), without writing anything: no idempotency key is claimed
    /// and nothing is stored. The receipt's `purchase_id` is not stored anywhere, and it has
    /// no balance or tier (nothing changed).
    pub async fn preview_purchase(
        &self,
        tenant: &Tenant,
        request: &PurchaseRequest,
    ) -> Result<PurchaseReceipt, EngineError> {
        let program = self.program(tenant).await?.program;
        let hash = request_hash("purchase.post", request)?;
        let member = match &request.member_id {
            Some(id) => Some(self.member(tenant, id).await?),
            None => None,
        };
        let purchase = self.new_purchase(
            request,
            &program,
            member.as_ref().map(|m| m.id.clone()),
            hash,
        )?;
        let now = self.now();
        let mut receipt = PurchaseReceipt {
            purchase_id: purchase.id.clone(),
            document_id: purchase.document_id.clone(),
            member_id: purchase.member_id.clone(),
            points: 0,
            base_points: 0,
            rules: Vec::new(),
            points_state: "none".into(),
            pending_until: None,
            balance: None,
            tier: None,
        };
        let Some(member) = member else {
            return Ok(receipt);
        };
        if !member.is_active() {
            return Err(Rejection::MemberExited {
                member_id: member.id.clone(),
            }
            .into());
        }
        let usage = self
            .store
            .rule_usage(
                tenant.id,
                &program,
                TriggerKind::Purchase,
                &member.id,
                purchase.occurred_at,
            )
            .await?;
        let reads = rules::read_member(
            &self.store,
            tenant.id,
            &program,
            TriggerKind::Purchase,
            &member.id,
        )
        .await?;
        let (plan, failures) = rules::earn_plan_with(
            &program,
            &member,
            reads.statistics.as_ref(),
            &reads.segments,
            &purchase,
            now,
            &usage,
        )?;
        self.report_rule_failures(failures);
        let points = plan.points.max(0);
        let pending = plan.pending_until.filter(|until| *until > now);
        receipt.points = points;
        receipt.base_points = plan.base_points;
        receipt.rules = plan.awards;
        receipt.points_state = match (points, pending) {
            (0, _) => "none",
            (_, Some(_)) => "pending",
            (_, None) => "posted",
        }
        .into();
        receipt.pending_until = if points > 0 { pending } else { None };
        Ok(receipt)
    }

    /// A member's statistics (docs/ANALYTICS.md, "Member statistics"); `None` before their
    /// first counted purchase.
    pub async fn member_stats(
        &self,
        tenant: &Tenant,
        member_id: &str,
    ) -> Result<Option<patron_store::stats::MemberStats>, EngineError> {
        Ok(self.store.member_stats(tenant.id, member_id).await?)
    }

    /// Recomputes the tenant's member statistics from the purchase history and reports every
    /// difference from the stored ones; `fix` rewrites the members that differ.
    pub async fn rebuild_member_stats(
        &self,
        tenant: &Tenant,
        fix: bool,
    ) -> Result<patron_store::stats::StatsRebuild, EngineError> {
        let program = self.program(tenant).await?.program;
        Ok(self
            .store
            .rebuild_member_stats(tenant.id, &program.tz(), fix, self.now())
            .await?)
    }

    pub async fn purchase(
        &self,
        tenant: &Tenant,
        purchase_id: &str,
    ) -> Result<patron_store::purchases::Purchase, EngineError> {
        self.store
            .purchase(tenant.id, purchase_id)
            .await?
            .ok_or_else(|| {
                Rejection::PurchaseNotFound {
                    purchase_id: purchase_id.to_string(),
                }
                .into()
            })
    }

    /// The rules that fired for a purchase, with their points, named in the member's
    /// language as the receipt showed them (the referrer's line of a referral is theirs, not
    /// the purchase's).
    pub async fn purchase_rules(
        &self,
        tenant: &Tenant,
        purchase_id: &str,
    ) -> Result<Vec<patron_store::rules::RuleAward>, EngineError> {
        Ok(self
            .store
            .rule_awards(tenant.id, "purchase", purchase_id)
            .await?)
    }

    pub async fn refund(
        &self,
        tenant: &Tenant,
        purchase_id: &str,
        request: &RefundRequest,
        idempotency_key: Option<&str>,
    ) -> Outcome<RefundReceipt> {
        validate_idempotency_key(idempotency_key)?;
        request.validate()?;
        let program = self.program(tenant).await?.program;
        if let Some(occurred_at) = request.occurred_at {
            check_time(&program, occurred_at, self.now())?;
        }
        let hash = request_hash("purchase.refund", &(purchase_id, request))?;
        let refund = NewRefund {
            id: new_id("ref"),
            purchase_id: purchase_id.to_string(),
            document_id: request.document_id.clone(),
            lines: request.refund_lines()?,
            occurred_at: request.occurred_at.unwrap_or_else(|| self.now()),
            request_hash: hash.clone(),
        };
        let mut claims = claims(idempotency_key, "purchase.refund", &hash);
        claims.push(Claim::new(
            format!("{DOCUMENT_KEY_PREFIX}refund:{}", request.document_id),
            "purchase.refund",
            &hash,
        ));
        unwrap_idempotent(
            self.store
                .refund_purchase(tenant.id, &program, &refund, &claims, self.now())
                .await?,
        )
    }

    /// Attaches an anonymous purchase to a member, who earns for it then.
    pub async fn attach_purchase(
        &self,
        tenant: &Tenant,
        purchase_id: &str,
        member_id: &str,
        idempotency_key: Option<&str>,
    ) -> Outcome<PurchaseReceipt> {
        validate_idempotency_key(idempotency_key)?;
        let program = self.program(tenant).await?.program;
        let hash = request_hash("purchase.attach", &(purchase_id, member_id))?;
        let claims = claims(idempotency_key, "purchase.attach", &hash);
        let stored = self.purchase(tenant, purchase_id).await?;
        let draft = NewPurchase {
            id: stored.id.clone(),
            document_id: stored.document_id.clone(),
            store_id: stored.store_id.clone(),
            channel: stored.channel.clone(),
            member_id: Some(member_id.to_string()),
            occurred_at: stored.occurred_at,
            currency: stored.currency.clone(),
            total_minor: stored.total_minor,
            eligible_minor: stored.eligible_minor,
            lines: stored.lines.clone(),
            request_hash: hash.clone(),
        };
        let now = self.now();
        let failures = rules::Failures::default();
        // Earns as it would have when posted: the rules see the member's statistics (without
        // this purchase) and segments, read under the wallet lock.
        let decide = |member: &Member, usage: &RuleUsage, reads: &MemberReads| {
            let (plan, failed) = rules::earn_plan_with(
                &program,
                member,
                reads.statistics.as_ref(),
                &reads.segments,
                &draft,
                now,
                usage,
            )
            .map_err(EngineError::into_store)?;
            failures.set(failed);
            Ok(plan)
        };
        let decide = rules::earn_decision(&program, &decide);
        let result = self
            .store
            .attach_purchase(
                tenant.id,
                &program,
                purchase_id,
                member_id,
                decide,
                &claims,
                now,
            )
            .await?;
        if !result.replayed {
            self.report_rule_failures(failures.take());
        }
        unwrap_idempotent(result)
    }

    // ----- events -----

    /// Records a custom event for a member and credits what the program's `event` rules give
    /// (posted at once, with a lot). Idempotent by the key when given.
    pub async fn post_event(
        &self,
        tenant: &Tenant,
        request: &EventRequest,
        idempotency_key: Option<&str>,
    ) -> Outcome<EventReceipt> {
        validate_idempotency_key(idempotency_key)?;
        request.validate()?;
        let program = self.program(tenant).await?.program;
        let hash = request_hash("event.post", request)?;
        let claims = claims(idempotency_key, "event.post", &hash);
        let now = self.now();
        let occurred_at = request.occurred_at.unwrap_or(now);
        check_time(&program, occurred_at, now)?;
        let event = NewEvent {
            id: new_id("evt"),
            member_id: request.member_id.clone(),
            event_type: request.event_type.clone(),
            occurred_at,
            properties: serde_json::Value::Object(request.properties.clone()).to_string(),
            request_hash: hash,
        };
        let facts = rules::event_facts(&request.event_type, occurred_at, &request.properties);
        let reads = rules::read_member(
            &self.store,
            tenant.id,
            &program,
            TriggerKind::Event,
            &request.member_id,
        )
        .await?;
        let failures = rules::Failures::default();
        let decide = |member: &Member, usage: &RuleUsage| {
            let (grant, failed) =
                rules::grant(&program, member, &reads, Trigger::Event(&facts), now, usage);
            failures.set(failed);
            grant
        };
        let result = self
            .store
            .post_event(tenant.id, &program, &event, &decide, &claims, now)
            .await?;
        if !result.replayed {
            self.report_rule_failures(failures.take());
        }
        unwrap_idempotent(result)
    }

    // ----- points -----

    pub async fn balance(&self, tenant: &Tenant, member_id: &str) -> Result<Balance, EngineError> {
        Ok(self.store.balance(tenant.id, member_id, self.now()).await?)
    }

    pub async fn redeem(
        &self,
        tenant: &Tenant,
        member_id: &str,
        request: &RedeemRequest,
        idempotency_key: Option<&str>,
    ) -> Outcome<Redemption> {
        validate_idempotency_key(idempotency_key)?;
        if request.points <= 0 {
            return Err(EngineError::invalid("points", "must be greater than zero"));
        }
        let description = request
            .description
            .as_deref()
            .map(|d| text::check_free_text(d, text::DESCRIPTION_CHARS_MAX, text::Lines::One))
            .transpose()
            .map_err(|e| EngineError::invalid("description", e.to_string()))?
            .map(str::to_string);
        let minutes = request.hold_minutes.unwrap_or(HOLD_DEFAULT_MINUTES);
        if request.hold && !(1..=HOLD_MAX_MINUTES).contains(&minutes) {
            return Err(EngineError::invalid(
                "hold_minutes",
                format!("must be 1 to {HOLD_MAX_MINUTES}"),
            ));
        }
        let program = self.program(tenant).await?.program;
        check_points(&program, request.points)?;
        let hash = request_hash("points.redeem", &(member_id, request))?;
        let claims = claims(idempotency_key, "points.redeem", &hash);
        let now = self.now();
        let new = NewRedemption {
            id: new_id("red"),
            member_id: member_id.to_string(),
            points: request.points,
            hold: request.hold,
            hold_expires_at: request.hold.then(|| {
                now.checked_add(SignedDuration::from_mins(minutes))
                    .unwrap_or(now)
            }),
            description,
        };
        unwrap_idempotent(
            self.store
                .redeem(tenant.id, &program, &new, &claims, now)
                .await?,
        )
    }

    pub async fn capture(
        &self,
        tenant: &Tenant,
        redemption_id: &str,
        points: Option<i64>,
        idempotency_key: Option<&str>,
    ) -> Outcome<Redemption> {
        validate_idempotency_key(idempotency_key)?;
        if points.is_some_and(|p| p <= 0) {
            return Err(EngineError::invalid(
                "points",
                "must be greater than zero; release the hold instead",
            ));
        }
        let program = self.program(tenant).await?.program;
        if let Some(points) = points {
            check_points(&program, points)?;
        }
        let hash = request_hash("redemption.capture", &(redemption_id, points))?;
        let claims = claims(idempotency_key, "redemption.capture", &hash);
        unwrap_idempotent(
            self.store
                .capture_redemption(
                    tenant.id,
                    &program,
                    redemption_id,
                    points,
                    &claims,
                    self.now(),
                )
                .await?,
        )
    }

    pub async fn release(
        &self,
        tenant: &Tenant,
        redemption_id: &str,
        idempotency_key: Option<&str>,
    ) -> Outcome<Redemption> {
        validate_idempotency_key(idempotency_key)?;
        let program = self.program(tenant).await?.program;
        let hash = request_hash("redemption.release", &redemption_id)?;
        let claims = claims(idempotency_key, "redemption.release", &hash);
        unwrap_idempotent(
            self.store
                .release_redemption(tenant.id, &program, redemption_id, &claims, self.now())
                .await?,
        )
    }

    pub async fn reverse_redemption(
        &self,
        tenant: &Tenant,
        redemption_id: &str,
        idempotency_key: Option<&str>,
    ) -> Outcome<Redemption> {
        validate_idempotency_key(idempotency_key)?;
        let hash = request_hash("redemption.reverse", &redemption_id)?;
        let claims = claims(idempotency_key, "redemption.reverse", &hash);
        unwrap_idempotent(
            self.store
                .reverse_redemption(tenant.id, redemption_id, &claims, self.now())
                .await?,
        )
    }

    /// Cancels a reward redemption while its coupon is unused: the coupon is voided, the
    /// points come back to the lots they came from, the unit of stock is returned.
    pub async fn cancel_reward_redemption(
        &self,
        tenant: &Tenant,
        redemption_id: &str,
        idempotency_key: Option<&str>,
    ) -> Outcome<patron_store::reward_cancel::RewardCancellation> {
        validate_idempotency_key(idempotency_key)?;
        let hash = request_hash("rewards.cancel", &redemption_id)?;
        let claims = claims(idempotency_key, "rewards.cancel", &hash);
        unwrap_idempotent(
            self.store
                .cancel_reward_redemption(tenant.id, redemption_id, &claims, self.now())
                .await?,
        )
    }

    pub async fn adjust(
        &self,
        tenant: &Tenant,
        member_id: &str,
        request: &AdjustRequest,
        actor: &str,
        idempotency_key: Option<&str>,
    ) -> Outcome<AdjustmentReceipt> {
        validate_idempotency_key(idempotency_key)?;
        if request.points == 0 {
            return Err(EngineError::invalid("points", "must not be zero"));
        }
        let reason =
            text::check_free_text(&request.reason, text::REASON_CHARS_MAX, text::Lines::One)
                .map_err(|e| {
                    EngineError::invalid("reason", format!("an adjustment's reason {e}"))
                })?;
        let program = self.program(tenant).await?.program;
        check_points(&program, request.points)?;
        let hash = request_hash("points.adjust", &(member_id, request))?;
        let claims = claims(idempotency_key, "points.adjust", &hash);
        unwrap_idempotent(
            self.store
                .adjust(
                    tenant.id,
                    &program,
                    member_id,
                    &new_id("adj"),
                    request.points,
                    reason,
                    actor,
                    &claims,
                    self.now(),
                )
                .await?,
        )
    }

    pub async fn transfer(
        &self,
        tenant: &Tenant,
        from_member: &str,
        request: &TransferRequest,
        idempotency_key: Option<&str>,
    ) -> Outcome<TransferReceipt> {
        validate_idempotency_key(idempotency_key)?;
        if request.points <= 0 {
            return Err(EngineError::invalid("points", "must be greater than zero"));
        }
        let program = self.program(tenant).await?.program;
        check_points(&program, request.points)?;
        let hash = request_hash("points.transfer", &(from_member, request))?;
        let claims = claims(idempotency_key, "points.transfer", &hash);
        unwrap_idempotent(
            self.store
                .transfer_points(
                    tenant.id,
                    &program,
                    &new_id("trf"),
                    from_member,
                    &request.to_member_id,
                    request.points,
                    &claims,
                    self.now(),
                )
                .await?,
        )
    }

    // ----- jobs -----

    /// Runs the time-driven ledger work due now: pending points whose return window closed
    /// are posted, due lots expire, stale holds are released. Safe to run repeatedly.
    pub async fn run_due_jobs(&self, tenant: &Tenant) -> Result<JobReport, EngineError> {
        let program = self.program(tenant).await?.program;
        let now = self.now();
        let mut report = JobReport::default();
        loop {
            let activated = self
                .store
                .activate_due_pending(tenant.id, &program, now, 1000)
                .await?;
            report.pending_posted += activated;
            if activated < 1000 {
                break;
            }
        }
        let (expired, released) = self
            .store
            .run_expiry(tenant.id, &program, now, 100_000)
            .await?;
        report.points_expired = expired;
        report.holds_released = released;
        Ok(report)
    }
}

/// What [`Engine::run_due_jobs`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JobReport {
    pub pending_posted: u64,
    pub points_expired: i64,
    pub holds_released: i64,
}
