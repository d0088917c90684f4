//! The JSON shapes of the API: request bodies and responses, with their OpenAPI schemas.
//!
//! They mirror the engine's request types and the store's records on purpose: the API is a
//! contract of its own, and each conversion below names every field (struct literals and full
//! destructuring), so a field added to the engine or the store fails to compile here until
//! someone decides whether the API shows it.

use std::collections::BTreeMap;

use jiff::Timestamp;
use patron_engine::queries::LedgerEntry;
use patron_engine::{
    AdjustRequest, ConsentRequest, EnrollRequest, EventRequest, MemberPatch, ProfileFields,
    PurchaseLineRequest, PurchaseRequest, RedeemRequest, RefundLineRequest, RefundRequest,
    TransferRequest,
};
use patron_store::cards::CardReplacement;
use patron_store::members::{ExitReceipt, Member, Profile};
use patron_store::purchases::{Purchase, PurchaseLine, PurchaseReceipt, RefundReceipt, TierStatus};
use patron_store::redemptions::{
    AdjustmentReceipt, Balance, ExpiringPoints, Redemption, TransferReceipt,
};
use patron_store::rules::{EventReceipt, RuleAward};
use serde::{Deserialize, Deserializer, Serialize};
use utoipa::ToSchema;

use crate::ids::{ClubIds, Present, TransferId};

/// A custom attribute value: a string, number, boolean or null.
pub type AttributeValue = serde_json::Value;

// ----- requests -----

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

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PurchaseLineBody {
    pub sku: String,
    pub category: String,
    /// A decimal as text (`"2"`, `"0.75"`), so no precision is lost in JSON.
    pub quantity: String,
    /// The unit price in minor units of the currency (cents).
    pub unit_price_minor: i64,
    /// A discount on the whole line, in minor units.
    #[serde(default)]
    pub discount_minor: i64,
}

/// A purchase at a till or a web shop. Posted once per `document_id`: posting the same
/// document again answers the stored receipt.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PurchaseBody {
    /// The shop's own id of the receipt.
    pub document_id: String,
    /// Absent: an anonymous purchase (attach it to a member later).
    pub member_id: Option<String>,
    pub store_id: String,
    /// pos | web | phone | app
    pub channel: String,
    /// When it happened at the till (RFC 3339); defaults to now.
    pub occurred_at: Option<Timestamp>,
    /// ISO 4217; must be the program's currency.
    pub currency: String,
    pub lines: Vec<PurchaseLineBody>,
}

impl From<PurchaseBody> for PurchaseRequest {
    fn from(body: PurchaseBody) -> Self {
        let PurchaseBody {
            document_id,
            member_id,
            store_id,
            channel,
            occurred_at,
            currency,
            lines,
        } = body;
        PurchaseRequest {
            document_id,
            member_id,
            store_id,
            channel,
            occurred_at,
            currency,
            lines: lines
                .into_iter()
                .map(|line| {
                    let PurchaseLineBody {
                        sku,
                        category,
                        quantity,
                        unit_price_minor,
                        discount_minor,
                    } = line;
                    PurchaseLineRequest {
                        sku,
                        category,
                        quantity,
                        unit_price_minor,
                        discount_minor,
                    }
                })
                .collect(),
        }
    }
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefundLineBody {
    /// The purchase line (1-based).
    pub line_no: i64,
    /// A decimal as text.
    pub quantity: String,
}

/// Returns goods. Applied once per `document_id`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefundBody {
    /// The shop's id of the return document.
    pub document_id: String,
    /// Absent: everything that remains of the purchase.
    pub lines: Option<Vec<RefundLineBody>>,
    pub occurred_at: Option<Timestamp>,
}

impl From<RefundBody> for RefundRequest {
    fn from(body: RefundBody) -> Self {
        let RefundBody {
            document_id,
            lines,
            occurred_at,
        } = body;
        RefundRequest {
            document_id,
            lines: lines.map(|lines| {
                lines
                    .into_iter()
                    .map(|RefundLineBody { line_no, quantity }| RefundLineRequest {
                        line_no,
                        quantity,
                    })
                    .collect()
            }),
            occurred_at,
        }
    }
}

/// A custom event that happened to a member: the program's `event` rules of its `type`
/// decide what it earns.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EventBody {
    pub member_id: String,
    /// The event type, as the program's rules name it (`review_written`): 1 to 64
    /// characters of `a-z`, `0-9`, `_`.
    #[serde(rename = "type")]
    pub event_type: String,
    /// When it happened (RFC 3339); defaults to now. Rule windows and limit periods use it.
    pub occurred_at: Option<Timestamp>,
    /// What the rules read as `event.properties` (at most 100).
    #[serde(default)]
    #[schema(value_type = Object)]
    pub properties: serde_json::Map<String, serde_json::Value>,
}

impl From<EventBody> for EventRequest {
    fn from(body: EventBody) -> Self {
        let EventBody {
            member_id,
            event_type,
            occurred_at,
            properties,
        } = body;
        EventRequest {
            member_id,
            event_type,
            occurred_at,
            properties,
        }
    }
}

/// Gives an anonymous purchase to a member, who earns for it then.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AttachBody {
    pub member_id: String,
}

/// Spends points on an amount. With `hold: true` the points are reserved at checkout and
/// captured or released later (or released by themselves after `hold_minutes`).
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RedeemBody {
    pub points: i64,
    #[serde(default)]
    pub hold: bool,
    /// How long a hold lasts (1 to 10080 minutes; 30 when absent).
    pub hold_minutes: Option<i64>,
    pub description: Option<String>,
}

impl From<RedeemBody> for RedeemRequest {
    fn from(body: RedeemBody) -> Self {
        let RedeemBody {
            points,
            hold,
            hold_minutes,
            description,
        } = body;
        RedeemRequest {
            points,
            hold,
            hold_minutes,
            description,
        }
    }
}

/// Captures a hold: all of it, or `points` of it (the rest is released).
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CaptureBody {
    pub points: Option<i64>,
}

/// An audited correction by an administrator.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AdjustBody {
    /// Positive credits, negative debits (never below zero).
    pub points: i64,
    /// Why: required, 1 to 500 characters; kept in the audit log.
    pub reason: String,
}

impl From<AdjustBody> for AdjustRequest {
    fn from(body: AdjustBody) -> Self {
        let AdjustBody { points, reason } = body;
        AdjustRequest { points, reason }
    }
}

/// Moves points to another member of the club; they keep their expiry dates.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TransferBody {
    pub to_member_id: String,
    pub points: i64,
}

impl From<TransferBody> for TransferRequest {
    fn from(body: TransferBody) -> Self {
        let TransferBody {
            to_member_id,
            points,
        } = body;
        TransferRequest {
            to_member_id,
            points,
        }
    }
}

/// Replaces a lost or damaged card.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReplaceCardBody {
    /// A pre-printed card to bind instead; absent: a new virtual card is issued.
    pub replacement: Option<String>,
}

// ----- responses -----

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
    pub tier: crate::dto_tiers::MemberTierOut,
    /// When the member will move down if nothing changes, and what keeps the tier; null when
    /// they are safe through the next review or the program never moves members down.
    pub tier_review: Option<crate::dto_tiers::TierReviewOut>,
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

/// What a posted purchase earned.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PurchaseReceiptOut {
    pub purchase_id: String,
    pub document_id: String,
    pub member_id: Option<String>,
    /// Points earned: `base_points` plus the points of every rule in `rules`.
    pub points: i64,
    /// The program's base earning (eligible amount × rate × the tier multiplier).
    pub base_points: i64,
    /// The earning rules that fired, in the order they ran, each with its points and its
    /// name in the member's language (for the "you earned..." lines of a receipt).
    pub rules: Vec<RuleAwardOut>,
    /// none (anonymous, or nothing earned) | pending | posted | voided
    pub points_state: String,
    /// When pending points post, once the return window closes.
    pub pending_until: Option<Timestamp>,
    /// The member's balance after the purchase (null in a dry run).
    pub balance: Option<BalanceOut>,
    /// The member's tier after the purchase (null in a dry run).
    pub tier: Option<TierOut>,
}

/// One earning rule that fired.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RuleAwardOut {
    /// The rule's id in the program.
    pub rule_id: String,
    /// The rule's name in the member's language (else the club's default language).
    pub name: String,
    /// Points this rule gave.
    pub points: i64,
}

impl From<RuleAward> for RuleAwardOut {
    fn from(award: RuleAward) -> Self {
        let RuleAward {
            rule_id,
            name,
            points,
        } = award;
        RuleAwardOut {
            rule_id,
            name,
            points,
        }
    }
}

impl From<PurchaseReceipt> for PurchaseReceiptOut {
    fn from(receipt: PurchaseReceipt) -> Self {
        let PurchaseReceipt {
            purchase_id,
            document_id,
            member_id,
            points,
            base_points,
            rules,
            points_state,
            pending_until,
            balance,
            tier,
        } = receipt;
        PurchaseReceiptOut {
            purchase_id,
            document_id,
            member_id,
            points,
            base_points,
            rules: rules.into_iter().map(RuleAwardOut::from).collect(),
            points_state,
            pending_until,
            balance: balance.map(BalanceOut::from),
            tier: tier.map(TierOut::from),
        }
    }
}

/// What a recorded event earned.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EventReceiptOut {
    pub event_id: String,
    pub member_id: String,
    #[serde(rename = "type")]
    pub event_type: String,
    pub occurred_at: Timestamp,
    /// Points credited (posted at once): the sum of `rules`.
    pub points: i64,
    /// The event rules that fired, with their points, in the member's language.
    pub rules: Vec<RuleAwardOut>,
    /// The member's balance after the event.
    pub balance: BalanceOut,
}

impl From<EventReceipt> for EventReceiptOut {
    fn from(receipt: EventReceipt) -> Self {
        let EventReceipt {
            event_id,
            member_id,
            event_type,
            occurred_at,
            points,
            rules,
            balance,
        } = receipt;
        EventReceiptOut {
            event_id,
            member_id,
            event_type,
            occurred_at,
            points,
            rules: rules.into_iter().map(RuleAwardOut::from).collect(),
            balance: BalanceOut::from(balance),
        }
    }
}

#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PurchaseLineOut {
    pub line_no: i64,
    pub sku: String,
    pub category: String,
    /// A decimal as text.
    pub quantity: String,
    pub unit_price_minor: i64,
    pub discount_minor: i64,
    pub total_minor: i64,
    /// Whether the line earns points.
    pub eligible: bool,
    /// How much of the quantity was returned, a decimal as text.
    pub refunded_quantity: String,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PurchaseOut {
    pub id: String,
    pub document_id: String,
    pub store_id: String,
    pub channel: String,
    pub member_id: Option<String>,
    pub occurred_at: Timestamp,
    pub currency: String,
    pub total_minor: i64,
    pub eligible_minor: i64,
    pub points: i64,
    /// none | pending | posted | voided
    pub earn_state: String,
    pub pending_until: Option<Timestamp>,
    pub refunded_minor: i64,
    /// Points of the purchase that were posted to the member.
    pub settled_points: i64,
    pub clawed_back_points: i64,
    pub lines: Vec<PurchaseLineOut>,
    /// The rules that fired, with their points, in the member's language (the receipt's
    /// lines, as the purchase answered them).
    pub rules: Vec<RuleAwardOut>,
}

impl From<Purchase> for PurchaseOut {
    fn from(purchase: Purchase) -> Self {
        let Purchase {
            id,
            document_id,
            store_id,
            channel,
            member_id,
            occurred_at,
            currency,
            total_minor,
            eligible_minor,
            points,
            earn_state,
            pending_until,
            refunded_minor,
            settled_points,
            clawed_back_points,
            lines,
            refunded_quantities,
        } = purchase;
        let lines = lines
            .into_iter()
            .enumerate()
            .map(|(index, line)| {
                let PurchaseLine {
                    line_no,
                    sku,
                    category,
                    quantity,
                    unit_price_minor,
                    discount_minor,
                    total_minor,
                    eligible,
                } = line;
                PurchaseLineOut {
                    line_no,
                    sku,
                    category,
                    quantity,
                    unit_price_minor,
                    discount_minor,
                    total_minor,
                    eligible,
                    refunded_quantity: refunded_quantities
                        .get(index)
                        .cloned()
                        .unwrap_or_else(|| "0".to_string()),
                }
            })
            .collect();
        PurchaseOut {
            id,
            document_id,
            store_id,
            channel,
            member_id,
            occurred_at,
            currency,
            total_minor,
            eligible_minor,
            points,
            earn_state,
            pending_until,
            refunded_minor,
            settled_points,
            clawed_back_points,
            lines,
            rules: Vec::new(),
        }
    }
}

/// What a refund did.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefundReceiptOut {
    pub refund_id: String,
    pub purchase_id: String,
    pub document_id: String,
    pub amount_minor: i64,
    /// Posted points taken back.
    pub clawed_back_points: i64,
    /// Pending points that will not post.
    pub reduced_pending_points: i64,
    /// Points the return policy let the member keep.
    pub forgiven_points: i64,
    pub balance: Option<BalanceOut>,
}

impl From<RefundReceipt> for RefundReceiptOut {
    fn from(receipt: RefundReceipt) -> Self {
        let RefundReceipt {
            refund_id,
            purchase_id,
            document_id,
            amount_minor,
            clawed_back_points,
            reduced_pending_points,
            forgiven_points,
            balance,
        } = receipt;
        RefundReceiptOut {
            refund_id,
            purchase_id,
            document_id,
            amount_minor,
            clawed_back_points,
            reduced_pending_points,
            forgiven_points,
            balance: balance.map(BalanceOut::from),
        }
    }
}

#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RedemptionOut {
    pub id: String,
    pub member_id: String,
    pub points: i64,
    pub captured_points: i64,
    /// held | captured | released | completed | reversed
    pub status: String,
    pub hold_expires_at: Option<Timestamp>,
    pub description: Option<String>,
    pub created_at: Timestamp,
    /// The member's balance after the operation (absent when only read back).
    pub balance: Option<BalanceOut>,
}

/// A reward redemption cancelled while its coupon was unused.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RewardCancellationOut {
    /// The reward redemption (`rrd_...`).
    pub redemption_id: String,
    pub member_id: String,
    pub reward_id: String,
    /// The coupon, now voided: every check answers `coupon_expired`.
    pub coupon_code: String,
    /// Points given back, to the lots they came from (original expiry).
    pub points: i64,
    pub cancelled_at: Timestamp,
    pub balance: BalanceOut,
}

impl From<patron_store::reward_cancel::RewardCancellation> for RewardCancellationOut {
    fn from(cancellation: patron_store::reward_cancel::RewardCancellation) -> Self {
        let patron_store::reward_cancel::RewardCancellation {
            redemption_id,
            member_id,
            reward_id,
            coupon_code,
            points,
            cancelled_at,
            balance,
        } = cancellation;
        RewardCancellationOut {
            redemption_id,
            member_id,
            reward_id,
            coupon_code,
            points,
            cancelled_at,
            balance: BalanceOut::from(balance),
        }
    }
}

impl From<Redemption> for RedemptionOut {
    fn from(redemption: Redemption) -> Self {
        let Redemption {
            id,
            member_id,
            points,
            captured_points,
            status,
            hold_expires_at,
            description,
            created_at,
            balance,
        } = redemption;
        RedemptionOut {
            id,
            member_id,
            points,
            captured_points,
            status,
            hold_expires_at,
            description,
            created_at,
            balance: balance.map(BalanceOut::from),
        }
    }
}

#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AdjustmentOut {
    pub member_id: String,
    pub points: i64,
    pub reason: String,
    /// The ledger entry written.
    pub transfer_id: TransferId,
    pub balance: BalanceOut,
}

impl Present<AdjustmentReceipt> for AdjustmentOut {
    fn present(receipt: AdjustmentReceipt, ids: &ClubIds) -> Self {
        let AdjustmentReceipt {
            member_id,
            points,
            reason,
            transfer_id,
            balance,
        } = receipt;
        AdjustmentOut {
            member_id,
            points,
            reason,
            transfer_id: ids.transfer(transfer_id),
            balance: balance.into(),
        }
    }
}

#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TransferOut {
    pub from_member_id: String,
    pub to_member_id: String,
    pub points: i64,
    /// The ledger entry written.
    pub transfer_id: TransferId,
    /// The sender's balance after the transfer.
    pub balance: BalanceOut,
}

impl Present<TransferReceipt> for TransferOut {
    fn present(receipt: TransferReceipt, ids: &ClubIds) -> Self {
        let TransferReceipt {
            from_member_id,
            to_member_id,
            points,
            transfer_id,
            balance,
        } = receipt;
        TransferOut {
            from_member_id,
            to_member_id,
            points,
            transfer_id: ids.transfer(transfer_id),
            balance: balance.into(),
        }
    }
}

#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CardReplacementOut {
    pub member_id: String,
    /// The number now blocked.
    pub old_number: String,
    /// The member's new card.
    pub new_number: String,
}

impl From<CardReplacement> for CardReplacementOut {
    fn from(replacement: CardReplacement) -> Self {
        let CardReplacement {
            member_id,
            old_number,
            new_number,
        } = replacement;
        CardReplacementOut {
            member_id,
            old_number,
            new_number,
        }
    }
}

/// The club's current program.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProgramOut {
    pub version: i64,
    /// The TOML text, exactly as applied.
    pub source: String,
    pub created_at: Timestamp,
    pub created_by: String,
}

/// The result of applying a program.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProgramAppliedOut {
    pub version: i64,
    /// False when the text was the same as the current version.
    pub changed: bool,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HealthOut {
    /// Always `ok`: the process answers.
    pub status: String,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReadyOut {
    /// `ready`, or `not_ready` with status 503.
    pub status: String,
    pub database: bool,
    pub migrations_current: bool,
}
