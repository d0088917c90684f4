//! The shapes of the members endpoints: enrollment, the profile and its patch, exit, the
//! balance with tier progress, and the ledger.

use std::collections::BTreeMap;

use jiff::Timestamp;
use patron_engine::model::{Balance, ExitReceipt, ExpiringPoints, Member, Profile, TierStatus};
use patron_engine::queries::LedgerEntry;
use patron_engine::{ConsentRequest, EnrollRequest, MemberPatch, ProfileFields};
use serde::{Deserialize, Deserializer, Serialize};
use utoipa::ToSchema;

use crate::dto::tiers::{MemberTierOut, TierReviewOut};
use crate::ids::{ClubIds, Present, TransferId};

/// A custom attribute value: a string, number, boolean or null.
pub type AttributeValue = serde_json::Value;

/// A consent the member gave or refused, with the evidence.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConsentBody {
    /// email | sms | whatsapp | push | phone | mail
    pub channel: String,
    /// What the consent covers; `marketing` when absent.
    pub topic: Option<String>,
    pub granted: bool,
    /// How it was given (pos, web, phone, import...).
    pub method: String,
    /// The exact text the member was shown: the evidence.
    pub text_shown: String,
}

impl From<ConsentBody> for ConsentRequest {
    fn from(body: ConsentBody) -> Self {
        let ConsentBody {
            channel,
            topic,
            granted,
            method,
            text_shown,
        } = body;
        ConsentRequest {
            channel,
            topic,
            granted,
            method,
            text_shown,
        }
    }
}

/// Enrolls a member. Phone numbers are normalized to E.164, emails to lower case.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EnrollBody {
    /// The club's own id for the member (unique in the club).
    pub external_id: Option<String>,
    pub name: Option<String>,
    /// E.164 (`+12015550123`) or a national number the program's country understands.
    pub phone: Option<String>,
    pub email: Option<String>,
    /// `YYYY-MM-DD`
    pub birthday: Option<String>,
    /// fa | he | en
    pub locale: Option<String>,
    /// An IANA time zone, e.g. `Asia/Tehran`.
    pub time_zone: Option<String>,
    /// Custom attributes: values are strings, numbers, booleans or null.
    #[serde(default)]
    #[schema(value_type = Object, additional_properties)]
    pub attributes: BTreeMap<String, AttributeValue>,
    /// pos | web | phone | import | referral
    pub channel: String,
    /// A pre-printed card handed over at enrollment; otherwise a virtual card is issued.
    pub card_number: Option<String>,
    #[serde(default)]
    pub consents: Vec<ConsentBody>,
    /// The referral code of the member who referred the newcomer (dashes and case do not
    /// matter). It must belong to an active member who is not the newcomer.
    #[serde(default)]
    pub referral_code: Option<String>,
}

/// Who referred a member, given after their enrollment.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReferrerBody {
    /// The referrer's referral code (dashes and case do not matter).
    pub referral_code: String,
}

impl From<EnrollBody> for EnrollRequest {
    fn from(body: EnrollBody) -> Self {
        let EnrollBody {
            external_id,
            name,
            phone,
            email,
            birthday,
            locale,
            time_zone,
            attributes,
            channel,
            card_number,
            consents,
            referral_code: _,
        } = body;
        EnrollRequest {
            profile: ProfileFields {
                external_id,
                name,
                phone,
                email,
                birthday,
                locale,
                time_zone,
                attributes,
            },
            channel,
            card_number,
            consents: consents.into_iter().map(ConsentRequest::from).collect(),
        }
    }
}

/// Present and `null` is `Some(None)`; absent is `None` (with `#[serde(default)]`).
fn present<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(deserializer).map(Some)
}

/// A partial update: a field that is absent stays as it is, `null` clears it.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MemberPatchBody {
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub external_id: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub name: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub phone: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub email: Option<Option<String>>,
    /// `YYYY-MM-DD`
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub birthday: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub locale: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub time_zone: Option<Option<String>>,
    /// Attributes to set; a `null` value removes one.
    #[serde(default)]
    #[schema(value_type = Object, additional_properties)]
    pub attributes: BTreeMap<String, AttributeValue>,
    /// Consents to record (appended to the member's consent history).
    #[serde(default)]
    pub consents: Vec<ConsentBody>,
}

impl From<MemberPatchBody> for MemberPatch {
    fn from(body: MemberPatchBody) -> Self {
        let MemberPatchBody {
            external_id,
            name,
            phone,
            email,
            birthday,
            locale,
            time_zone,
            attributes,
            consents,
        } = body;
        MemberPatch {
            external_id,
            name,
            phone,
            email,
            birthday,
            locale,
            time_zone,
            attributes,
            consents: consents.into_iter().map(ConsentRequest::from).collect(),
        }
    }
}

#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MemberOut {
    pub id: String,
    /// active | exited
    pub status: String,
    pub external_id: Option<String>,
    pub name: Option<String>,
    pub phone: Option<String>,
    pub email: Option<String>,
    pub birthday: Option<String>,
    pub locale: Option<String>,
    pub time_zone: Option<String>,
    #[schema(value_type = Object, additional_properties)]
    pub attributes: serde_json::Map<String, serde_json::Value>,
    /// How the member joined: pos | web | phone | import | referral
    pub channel: String,
    pub tier: String,
    pub tier_since: Timestamp,
    pub enrolled_at: Timestamp,
    pub exited_at: Option<Timestamp>,
    pub updated_at: Timestamp,
    /// The member's active card, if any.
    pub card_number: Option<String>,
    /// The member's own referral code, to give to friends (8 characters, no 0/O or 1/I/L).
    pub referral_code: Option<String>,
    /// The member who referred them, if anyone did.
    pub referred_by: Option<String>,
    pub referred_at: Option<Timestamp>,
    /// When their first qualifying purchase rewarded the referral (it pays once).
    pub referral_rewarded_at: Option<Timestamp>,
}

impl From<Member> for MemberOut {
    fn from(member: Member) -> Self {
        let Member {
            id,
            status,
            profile,
            channel,
            tier,
            tier_since,
            enrolled_at,
            exited_at,
            updated_at,
            card_number,
            referral,
        } = member;
        let Profile {
            external_id,
            name,
            phone,
            email,
            birthday,
            locale,
            time_zone,
            attributes,
        } = profile;
        // The engine stores a validated JSON object; anything else shows as no attributes.
        let attributes = match serde_json::from_str(&attributes) {
            Ok(serde_json::Value::Object(map)) => map,
            _ => serde_json::Map::new(),
        };
        MemberOut {
            id,
            status,
            external_id,
            name,
            phone,
            email,
            birthday,
            locale,
            time_zone,
            attributes,
            channel,
            tier,
            tier_since,
            enrolled_at,
            exited_at,
            updated_at,
            card_number,
            referral_code: referral.code,
            referred_by: referral.referred_by,
            referred_at: referral.referred_at,
            referral_rewarded_at: referral.rewarded_at,
        }
    }
}

/// A page of members, in id order.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MemberPage {
    pub data: Vec<MemberOut>,
    /// Pass as `?cursor=` for the next page; null on the last page.
    pub next_cursor: Option<String>,
}

/// What happened when a member left the club.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExitOut {
    pub member_id: String,
    pub exited_at: Timestamp,
    /// Points forfeited under the program's exit policy.
    pub points_forfeited: i64,
    pub pending_voided: i64,
    pub holds_released: i64,
    /// Points kept on the (now anonymous) record.
    pub points_kept: i64,
    /// The member's unused coupons (rewards bought with points, codes in their name), voided:
    /// a till that presents one gets `member_exited`.
    pub coupons_voided: u64,
}

impl From<ExitReceipt> for ExitOut {
    fn from(receipt: ExitReceipt) -> Self {
        let ExitReceipt {
            member_id,
            exited_at,
            points_forfeited,
            pending_voided,
            holds_released,
            points_kept,
            coupons_voided,
        } = receipt;
        ExitOut {
            member_id,
            exited_at,
            points_forfeited,
            pending_voided,
            holds_released,
            points_kept,
            coupons_voided,
        }
    }
}

/// Points expiring at one instant.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExpiringOut {
    pub at: Timestamp,
    pub points: i64,
}

/// A balance.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BalanceOut {
    /// Spendable now (never negative; see `debt`).
    pub available: i64,
    /// Earned, waiting for the return window to close: what will post (a refund while
    /// pending reduces it at once).
    pub pending: i64,
    /// Reserved by redemption holds.
    pub held: i64,
    /// Owed after clawbacks beyond the balance; paid by the next earnings.
    pub debt: i64,
    /// All points ever earned and posted.
    pub lifetime_earned: i64,
    /// The soonest expiries (at most five).
    pub expiring: Vec<ExpiringOut>,
}

impl From<Balance> for BalanceOut {
    fn from(balance: Balance) -> Self {
        let Balance {
            available,
            pending,
            held,
            debt,
            lifetime_credited,
            expiring,
        } = balance;
        BalanceOut {
            available,
            pending,
            held,
            debt,
            lifetime_earned: lifetime_credited,
            expiring: expiring
                .into_iter()
                .map(|ExpiringPoints { at, points }| ExpiringOut { at, points })
                .collect(),
        }
    }
}

/// Where a member stands on the tier ladder.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TierOut {
    /// The tier code.
    pub code: String,
    /// Set when this call moved the member up, from this tier.
    pub upgraded_from: Option<String>,
    /// The qualifying metric in the program's window (points, spend in minor units, or visits).
    pub metric: i64,
    /// The next tier, if there is one.
    pub next: Option<String>,
    /// How much more metric reaches `next`.
    pub needed_for_next: i64,
}

impl From<TierStatus> for TierOut {
    fn from(status: TierStatus) -> Self {
        let TierStatus {
            code,
            upgraded_from,
            metric,
            next,
            needed_for_next,
        } = status;
        TierOut {
            code,
            upgraded_from,
            metric,
            next,
            needed_for_next,
        }
    }
}

/// A member's balance and tier progress.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MemberBalanceOut {
    pub member_id: String,
    /// Spendable now (never negative; see `debt`).
    pub available: i64,
    /// Earned, waiting for the return window to close: what will post (a refund while
    /// pending reduces it at once).
    pub pending: i64,
    /// Reserved by redemption holds.
    pub held: i64,
    /// Owed after clawbacks beyond the balance; paid by the next earnings.
    pub debt: i64,
    /// All points ever earned and posted.
    pub lifetime_earned: i64,
    /// The soonest expiries (at most five).
    pub expiring: Vec<ExpiringOut>,
    pub tier: MemberTierOut,
    /// When the member will move down if nothing changes, and what keeps the tier; null when
    /// they are safe through the next review or the program never moves members down.
    pub tier_review: Option<TierReviewOut>,
}

impl MemberBalanceOut {
    pub fn new(
        member_id: String,
        balance: Balance,
        tier: &patron_engine::tiers::MemberTier,
    ) -> Self {
        let BalanceOut {
            available,
            pending,
            held,
            debt,
            lifetime_earned,
            expiring,
        } = BalanceOut::from(balance);
        MemberBalanceOut {
            member_id,
            available,
            pending,
            held,
            debt,
            lifetime_earned,
            expiring,
            tier: tier.into(),
            tier_review: tier.review.as_ref().map(Into::into),
        }
    }
}

/// One ledger entry as the member sees it.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LedgerEntryOut {
    pub id: TransferId,
    /// Positive: credited to the member; negative: debited.
    pub points: i64,
    /// earn | redeem | expire | clawback | adjust | transfer | forfeit | reversal
    pub code: String,
    /// posted | pending | post_pending | void_pending
    pub kind: String,
    /// For post_pending and void_pending: the pending entry resolved.
    pub pending_id: Option<TransferId>,
    /// For a pending entry: when it resolves by itself.
    pub timeout_at: Option<Timestamp>,
    pub document_type: Option<String>,
    pub document_id: Option<String>,
    pub note: Option<String>,
    pub created_at: Timestamp,
}

impl Present<LedgerEntry> for LedgerEntryOut {
    fn present(entry: LedgerEntry, ids: &ClubIds) -> Self {
        let LedgerEntry {
            id,
            points,
            code,
            kind,
            pending_id,
            timeout_at,
            document_type,
            document_id,
            note,
            created_at,
        } = entry;
        LedgerEntryOut {
            id: ids.transfer(id),
            points,
            code,
            kind,
            pending_id: pending_id.map(|id| ids.transfer(id)),
            timeout_at,
            document_type,
            document_id,
            note,
            created_at,
        }
    }
}

/// A page of a member's ledger, newest first.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LedgerPage {
    pub data: Vec<LedgerEntryOut>,
    /// Pass as `?cursor=` for the next page; null on the last page.
    pub next_cursor: Option<String>,
}
